"""Credentials go only to the spec's API host and token host, and not over plain http:// to a remote host.

End to end (real HTTP, real Dagster run): an API on 127.0.0.1 whose next-page
link or redirect points at a second server on 127.0.0.2 that records every
connection; the run must fail with a clear error and that server must
receive nothing at all. Unit tests (responses) cover the plain-http rule,
which needs a non-loopback host that a test machine cannot serve.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
import responses
from conftest import failure_errors, failure_messages, read_table
from reliability_support import Recorded, RecordingServer, Reply, json_reply, run_source

from rest_assets.compile.source import compile_source
from rest_assets.dialect.validate import build_source_spec
from rest_assets.dialect.yaml_source import parse_yaml
from rest_assets.errors import CredentialScopeError, SpecError
from rest_assets.runtime.credential_scope import is_loopback_host
from rest_assets.runtime.http import GuardedSession
from rest_assets.runtime.retry import RetryPolicy

SECRET = "scope-test-key-5f1c9a"


def _write_scoped_spec(folder: Path, base_url: str, path: str = "/items") -> Path:
    """A spec `scoped` with an API key (query string) and a link-following cursor paginator."""
    spec = {
        "client": {
            "base_url": base_url,
            "auth": {"type": "api_key", "name": "key", "api_key": {"secret": "api_key"}, "location": "query"},
        },
        "resources": [
            {
                "name": "items",
                "primary_key": "id",
                "endpoint": {
                    "path": path,
                    "data_selector": "items",
                    "paginator": {"type": "cursor", "cursor_path": "next", "stop_condition": "next is none"},
                },
            }
        ],
    }
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "scoped.yaml").write_text(json.dumps(spec))
    return folder


def _run_scoped(workdir: Any, tmp_path: Path, api: Callable[[Recorded], Reply], path: str = "/items") -> tuple[Any, Any]:
    """Run source `scoped` against `api` on 127.0.0.1; return (result, the 127.0.0.2 recorder)."""
    with RecordingServer(host="127.0.0.2") as elsewhere, RecordingServer(handler=api) as server:
        server.elsewhere = elsewhere.url  # type: ignore[attr-defined]
        workdir.use_specs(_write_scoped_spec(tmp_path / "specs", server.url, path))
        workdir.monkeypatch.setenv("SOURCES__SCOPED__API_KEY", SECRET)
        api.server = server  # type: ignore[attr-defined]
        result = run_source("scoped")
    return result, elsewhere


def _assert_refused(result: Any, elsewhere: RecordingServer) -> None:
    assert not result.success
    errors = [message for cls, message in failure_errors(result) if cls == "LoadError"]
    assert len(errors) == 1, failure_errors(result)
    assert "refused a request to http://127.0.0.2" in errors[0] and "credentials are only sent to" in errors[0]
    assert SECRET not in "\n".join(m for _, m in failure_errors(result))
    assert elsewhere.connections == 0 and elsewhere.requests == [], "the other host must receive nothing"


@pytest.mark.e2e
def test_next_page_url_to_another_host_is_refused(workdir, tmp_path):
    def api(request: Recorded) -> Reply:
        return json_reply({"items": [{"id": 1}], "next": api.server.elsewhere + "/items?page=2"})  # type: ignore[attr-defined]

    result, elsewhere = _run_scoped(workdir, tmp_path, api)

    _assert_refused(result, elsewhere)


@pytest.mark.e2e
def test_redirect_to_another_host_is_refused(workdir, tmp_path):
    def api(request: Recorded) -> Reply:
        return 302, {"Location": api.server.elsewhere + "/items"}, b""  # type: ignore[attr-defined]

    result, elsewhere = _run_scoped(workdir, tmp_path, api)

    _assert_refused(result, elsewhere)


@pytest.mark.e2e
def test_same_host_redirect_and_next_links_are_followed_with_credentials(workdir, tmp_path):
    """The control case: scoping refuses other hosts, not redirects or links as such."""

    def api(request: Recorded) -> Reply:
        if request.path.startswith("/old"):
            return 301, {"Location": "/items?page=1&key=" + SECRET}, b""
        page = 2 if "page=2" in request.path else 1
        following = api.server.url + "/items?page=2" if page == 1 else None  # type: ignore[attr-defined]
        return json_reply({"items": [{"id": page}], "next": following})

    result, elsewhere = _run_scoped(workdir, tmp_path, api, path="/old")

    assert result.success, failure_messages(result)
    assert sorted(r["id"] for r in read_table("scoped", "items")) == [1, 2]
    assert elsewhere.connections == 0


# -- plain http:// to a remote host (unit tests: responses) -----------------------------------------------


def _session(**kwargs: Any) -> GuardedSession:
    hosts = {"api.example.com", "127.0.0.1:8080", "localhost:8080", "[::1]:8080"}
    return GuardedSession(
        source="s",
        allowed_hosts=hosts,
        routes=[],
        default_policy=RetryPolicy(max_retries=0),
        sleep=lambda seconds: None,
        **kwargs,
    )


@responses.activate
def test_plain_http_to_a_remote_host_with_credentials_is_refused_before_sending():
    responses.get("http://api.example.com/v1/items", json={"items": []})

    with pytest.raises(CredentialScopeError) as refused:
        _session().get("http://api.example.com/v1/items", headers={"Authorization": "Bearer " + SECRET})

    assert "plain http://" in str(refused.value) and "allow_insecure_http" in str(refused.value)
    assert len(responses.calls) == 0


@responses.activate
def test_plain_http_is_allowed_with_the_opt_in_or_without_credentials():
    responses.get("http://api.example.com/v1/items", json={"items": []})

    assert _session(allow_insecure_http=True).get("http://api.example.com/v1/items").status_code == 200
    assert _session(sends_credentials=False).get("http://api.example.com/v1/items").status_code == 200
    assert len(responses.calls) == 2


@responses.activate
@pytest.mark.parametrize(
    "url",
    [
        "https://api.example.com/v1/items",
        "http://127.0.0.1:8080/v1/items",
        "http://localhost:8080/v1/items",
        "http://[::1]:8080/v1/items",
    ],
)
def test_https_and_loopback_http_are_allowed(url):
    responses.get(url, json={"items": []})

    assert _session().get(url).status_code == 200


@responses.activate
def test_redirect_from_https_to_plain_http_is_refused():
    responses.get("https://api.example.com/v1/items", status=302, headers={"Location": "http://api.example.com/v1/items"})
    responses.get("http://api.example.com/v1/items", json={"items": []})

    with pytest.raises(CredentialScopeError, match="plain http://"):
        _session().get("https://api.example.com/v1/items")

    assert [c.request.url for c in responses.calls] == ["https://api.example.com/v1/items"]


@pytest.mark.parametrize(
    "host,loopback",
    [
        ("127.0.0.1", True),
        ("127.0.0.2", True),
        ("localhost", True),
        ("::1", True),
        ("[::1]", True),
        ("api.localhost", True),
        ("10.0.0.1", False),
        ("api.example.com", False),
        ("", False),
        ("127.0.0.1.nip.io", False),
        ("localhost.example.com", False),
    ],
)
def test_is_loopback_host(host, loopback):
    assert is_loopback_host(host) is loopback


def _spec(client_extra: str, base_url: str = "http://api.example.com") -> Any:
    text = (
        f"client:\n  base_url: {base_url}\n  auth: {{type: bearer, token: {{secret: token}}}}\n{client_extra}"
        "resources:\n  - name: items\n    endpoint: {path: /v1/items, data_selector: items, paginator: single_page}\n"
    )
    return build_source_spec(parse_yaml(text, "insecure.yaml"), "insecure")


@pytest.mark.parametrize("opt_in", [False, True])
def test_the_spec_opt_in_reaches_the_transport(monkeypatch, opt_in):
    monkeypatch.setenv("SOURCES__INSECURE__TOKEN", SECRET)
    spec = _spec("  allow_insecure_http: true\n" if opt_in else "")

    session = compile_source(spec).session

    assert session.allow_insecure_http is opt_in and session.sends_credentials is True
    with responses.RequestsMock(assert_all_requests_are_fired=False) as mocked:
        mocked.get("http://api.example.com/v1/items", json={"items": []})
        if opt_in:
            assert session.get("http://api.example.com/v1/items").status_code == 200
        else:
            with pytest.raises(CredentialScopeError):
                session.get("http://api.example.com/v1/items")
            mocked.assert_call_count("http://api.example.com/v1/items", 0)


@pytest.mark.parametrize("value", ["yes", 1, "true", None])
def test_allow_insecure_http_must_be_a_boolean(value):
    with pytest.raises(SpecError) as error:
        _spec(f"  allow_insecure_http: {json.dumps(value)}\n")

    assert error.value.key == "client.allow_insecure_http" and error.value.file == "insecure.yaml"


def test_no_credentials_means_plain_http_is_not_refused(monkeypatch):
    text = (
        "client:\n  base_url: http://api.example.com\nresources:\n  - name: items\n"
        "    endpoint: {path: /v1/items, data_selector: items, paginator: single_page}\n"
    )
    session = compile_source(build_source_spec(parse_yaml(text, "open.yaml"), "open")).session

    assert session.sends_credentials is False
    with responses.RequestsMock() as mocked:
        mocked.get("http://api.example.com/v1/items", json={"items": []})
        assert session.get("http://api.example.com/v1/items").status_code == 200


def test_refusal_happens_before_any_connection_is_attempted():
    """No mock here: a request that were really sent to TEST-NET-1 would time out instead."""
    session = _session(timeout=5)
    session.allowed_hosts.add("192.0.2.1:9")

    with pytest.raises(CredentialScopeError, match="plain http://"):
        session.get("http://192.0.2.1:9/v1/items")
    assert session.stats.requests == {}


# ---------------------------------------------------------------- each auth is scoped to its own token host

_TWO_AUTHS = """
client:
  base_url: https://api.example.com
  auth: {type: oauth2, client_id: {secret: a_id}, client_secret: {secret: a_secret},
         token_url: https://id-a.example.com/token}
resources:
  - name: items
    endpoint: {path: /v1/items, data_selector: items, paginator: single_page}
  - name: audit
    endpoint:
      path: /v1/audit
      data_selector: items
      paginator: single_page
      auth: {type: oauth2, client_id: {secret: b_id}, client_secret: {secret: b_secret},
             token_url: https://id-b.example.com/token}
"""
_IDS = {"A_ID": "client-a-7f3e", "A_SECRET": "secret-a-91c2", "B_ID": "client-b-4d8a", "B_SECRET": "secret-b-6e0f"}


@pytest.mark.parametrize("override", [None, "https://id-a.example.com/other-token"])
def test_endpoint_oauth2_uses_its_own_token_host_and_never_sends_its_credentials_to_the_clients(monkeypatch, override):
    for key, value in _IDS.items():
        monkeypatch.setenv(f"SOURCES__TWOAUTH__{key}", value)
    if override:
        monkeypatch.setenv("SOURCES__TWOAUTH__TOKEN_URL", override)  # the client-level auth's token URL only
    a_token_url = override or "https://id-a.example.com/token"
    compiled = compile_source(build_source_spec(parse_yaml(_TWO_AUTHS, "twoauth.yaml"), "twoauth"), arrow_pages=False)
    assert compiled.session.allowed_hosts == {"api.example.com", "id-a.example.com", "id-b.example.com"}
    with responses.RequestsMock(assert_all_requests_are_fired=False) as mocked:
        mocked.post(a_token_url, json={"access_token": "token-of-a-123", "expires_in": 3600})
        mocked.post("https://id-b.example.com/token", json={"access_token": "token-of-b-456", "expires_in": 3600})
        mocked.get("https://api.example.com/v1/items", json={"items": [{"id": 1}]})
        mocked.get("https://api.example.com/v1/audit", json={"items": [{"id": 2}]})
        rows = list(compiled.source.with_resources("items", "audit"))
        calls = [(c.request.url, c.request.headers.get("Authorization"), c.request.body or "") for c in mocked.calls]
    assert sorted(row["id"] for row in rows) == [1, 2]
    a_grants = [body for url, _, body in calls if url == a_token_url]
    b_grants = [body for url, _, body in calls if url == "https://id-b.example.com/token"]
    assert len(a_grants) == 1 and _IDS["A_ID"] in a_grants[0] and _IDS["A_SECRET"] in a_grants[0]
    assert len(b_grants) == 1 and _IDS["B_ID"] in b_grants[0] and _IDS["B_SECRET"] in b_grants[0]
    for url, _, body in calls:
        if urlsplit(url).netloc != "id-b.example.com":
            assert _IDS["B_ID"] not in body + url and _IDS["B_SECRET"] not in body + url
    headers = {url: auth for url, auth, _ in calls if url.startswith("https://api.example.com")}
    assert headers == {
        "https://api.example.com/v1/items": "Bearer token-of-a-123",
        "https://api.example.com/v1/audit": "Bearer token-of-b-456",
    }


def _auth_spec(auth: str) -> str:
    return f"client:\n  base_url: https://api.example.com\n  auth: {auth}\nresources:\n  - name: items\n"


def test_refresh_token_store_is_accepted_under_oauth2_only():
    oauth2 = (
        "{type: oauth2, client_id: {secret: cid}, client_secret: {secret: cs}, token_url: https://id.example.com/t, "
        "refresh_token: {secret: rt}, refresh_token_store: ~/.config/rest_assets/shop.refresh_token}"
    )
    spec = build_source_spec(parse_yaml(_auth_spec(oauth2), "shop.yaml"), "shop")
    assert spec.client["auth"]["refresh_token_store"] == "~/.config/rest_assets/shop.refresh_token"
    with pytest.raises(SpecError, match="refresh_token_store") as error:
        build_source_spec(
            parse_yaml(_auth_spec("{type: bearer, token: {secret: t}, refresh_token_store: /x}"), "shop.yaml"), "shop"
        )
    assert error.value.file == "shop.yaml"
    with pytest.raises(SpecError, match="must be a file path"):
        build_source_spec(
            parse_yaml(_auth_spec(oauth2.replace("~/.config/rest_assets/shop.refresh_token", "''")), "shop.yaml"), "shop"
        )
