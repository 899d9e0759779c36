"""Non-secret settings: `{config: KEY}` as a whole value and `{config.KEY}` inside any string.

Resolved at run time like secrets (`SOURCES__<SOURCE>__<KEY>`, then `<KEY>`),
but never redacted; an unknown placeholder is refused when the spec loads.
"""

from __future__ import annotations

import pytest
import responses
from responses import matchers

from rest_assets.compile.source import compile_source
from rest_assets.dialect import load_spec_file
from rest_assets.dialect.model import ConfigRef
from rest_assets.errors import MissingSettingError, SpecError
from rest_assets.runtime.redaction import redact

SPEC = """\
client:
  base_url: "https://{config.subdomain}.example.com/api/{config.api_version}"
  headers: {X-Account: "acct-{config.account_id}"}
resources:
  - name: orders
    endpoint:
      path: "regions/{config.region}/orders"
      params: {tenant: {config: tenant}, since: "{incremental.start_value}"}
      incremental: {cursor_path: id, initial_value: 0}
      paginator: single_page
"""
SETTINGS = {"subdomain": "acme", "api_version": "v2", "account_id": "A-17", "region": "eu", "tenant": "t9"}


@pytest.fixture()
def spec(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    path = tmp_path / "shop.yaml"
    path.write_text(SPEC, encoding="utf-8")
    return load_spec_file(path)


def test_settings_are_found_in_whole_values_and_strings(spec):
    assert spec.config_keys == ["subdomain", "api_version", "account_id", "region", "tenant"]
    assert spec.resource("orders").endpoint["params"]["tenant"] == ConfigRef("tenant")
    assert spec.secret_keys == []


def test_settings_fill_url_path_headers_and_params_at_run_time(spec, monkeypatch):
    for key, value in SETTINGS.items():
        monkeypatch.setenv(f"SOURCES__SHOP__{key.upper()}", value)
    url = "https://acme.example.com/api/v2/regions/eu/orders"
    with responses.RequestsMock() as api:
        api.get(
            url,
            json=[{"id": 1}, {"id": 2}],
            match=[
                matchers.query_param_matcher({"tenant": "t9", "since": "0"}),
                matchers.header_matcher({"X-Account": "acct-A-17"}),
            ],
        )
        rows = list(compile_source(spec, arrow_pages=False).source.with_resources("orders"))
    assert rows == [{"id": 1}, {"id": 2}]
    assert redact(url) == url  # a setting is not a secret: it is never masked


def test_a_bare_key_is_a_fallback_for_a_setting(spec, monkeypatch):
    for key, value in SETTINGS.items():
        monkeypatch.setenv(key.upper(), value)
    with responses.RequestsMock() as api:
        api.get("https://acme.example.com/api/v2/regions/eu/orders", json=[])
        assert list(compile_source(spec, arrow_pages=False).source.with_resources("orders")) == []


def test_a_missing_setting_names_what_to_set(spec, monkeypatch):
    for key, value in SETTINGS.items():
        if key != "region":
            monkeypatch.setenv(f"SOURCES__SHOP__{key.upper()}", value)
    with pytest.raises(
        MissingSettingError,
        match=r"source 'shop' needs the setting 'region': set the environment "
        r"variable SOURCES__SHOP__REGION \(or REGION\)",
    ):
        compile_source(spec)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        (
            'client: {base_url: "https://{confg.subdomain}.example.com"}',
            r"key 'client.base_url': unknown placeholder '\{confg.subdomain\}'. Did you mean '\{config.subdomain\}'\?",
        ),
        (
            'client: {base_url: "https://{config.sub-domain}.example.com"}',
            r"key 'client.base_url': '\{config.sub-domain\}': a setting is written \{config.KEY\} with KEY an identifier",
        ),
        (
            'client: {base_url: "https://{incremental.start_value}.example.com"}',
            r"key 'client.base_url': only \{config.KEY\} settings may be placed in base_url",
        ),
        (
            'client: {base_url: "https://x.example.com", headers: {X-A: {config: [a]}}}',
            r"key 'client.headers.X-A': a config is written \{config: KEY\}",
        ),
    ],
)
def test_bad_settings_are_refused_when_the_spec_loads(tmp_path, text, message):
    path = tmp_path / "shop.yaml"
    path.write_text(text + "\nresources: [orders]\n", encoding="utf-8")
    with pytest.raises(SpecError, match=r"shop\.yaml:1 - " + message):
        load_spec_file(path)


OAUTH_SPEC = """\
client:
  base_url: https://api.example.com
  auth:
    type: oauth2_client_credentials
    access_token_url: https://id.example.com/token
    access_token_request_data: {grant_type: account_credentials, account_id: "{config.account_id}"}
resources: [{name: orders, endpoint: {path: orders, paginator: single_page}}]
"""


def test_oauth2_client_credentials_takes_its_client_from_dlt_config_and_any_grant_type(tmp_path, monkeypatch):
    """dlt resolves a missing client id/secret from its providers and lets the request data set grant_type."""
    monkeypatch.chdir(tmp_path)
    (tmp_path / "shop.yaml").write_text(OAUTH_SPEC, encoding="utf-8")
    spec = load_spec_file(tmp_path / "shop.yaml")
    monkeypatch.setenv("SOURCES__SHOP__ACCOUNT_ID", "acc-1")
    monkeypatch.setenv("SOURCES__SHOP__CLIENT_ID", "id-from-env")
    with pytest.raises(
        Exception, match=r"needs the secret 'client_secret': set the environment variable SOURCES__SHOP__CLIENT_SECRET"
    ):
        list(compile_source(spec, arrow_pages=False).source.with_resources("orders"))
    monkeypatch.setenv("SOURCES__SHOP__CLIENT_SECRET", "secret-from-env")
    with responses.RequestsMock() as api:
        api.post(
            "https://id.example.com/token",
            json={"access_token": "tok-123456", "expires_in": 600},
            match=[
                matchers.urlencoded_params_matcher(
                    {
                        "grant_type": "account_credentials",
                        "account_id": "acc-1",
                        "client_id": "id-from-env",
                        "client_secret": "secret-from-env",
                    }
                )
            ],
        )
        api.get(
            "https://api.example.com/orders",
            json=[{"id": 1}],
            match=[matchers.header_matcher({"Authorization": "Bearer tok-123456"})],
        )
        assert list(compile_source(spec, arrow_pages=False).source.with_resources("orders")) == [{"id": 1}]
