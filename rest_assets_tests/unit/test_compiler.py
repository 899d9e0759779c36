"""Unit tests of the compiler: SourceSpec → dlt rest_api source with our runtime pieces.

Secrets come from the environment (`SOURCES__<SOURCE>__<KEY>`), HTTP is mocked
with `responses`, and waits go to a fake `sleep`.
"""

from __future__ import annotations

import json
import os
import re
import threading
from urllib.parse import parse_qs, unquote, urlsplit

import pyarrow as pa
import pytest
import responses
from responses import matchers

from rest_assets.compile.source import compile_source
from rest_assets.dialect import load_spec_dirs, load_spec_file
from rest_assets.dialect.loader import BUNDLED_SOURCES_DIR
from rest_assets.errors import MissingSecretError, MissingSettingError, ResponseFormatError
from rest_assets.runtime.retry import RetryPolicy

HOST = "127.0.0.1:8765"
BUNDLED = {spec.name: spec for spec in load_spec_dirs([BUNDLED_SOURCES_DIR])}
ALL_5XX_AND_429 = frozenset({429, 500, 502, 503, 504})

# source -> (retry policy of every endpoint, hosts credentials may go to, token URL override or None)
EXPECTED = {
    "chat_analytics": (RetryPolicy(ALL_5XX_AND_429, 3, 2.0), {HOST}, None),
    "client_portal": (RetryPolicy(frozenset({401, 403, 404}), 3, 2.0), {HOST, "id.example.com"}, None),
    "contact_book": (RetryPolicy(frozenset({429}), 3, 2.0), {HOST}, None),
    "help_desk": (RetryPolicy(ALL_5XX_AND_429, 3, 2.0), {HOST}, f"http://{HOST}/help_desk/v2/oauth2/token"),
    "sales_crm": (RetryPolicy(frozenset({429}), 4, 2.0), {HOST}, None),
}


class Sleeps(list):
    def __call__(self, seconds: float) -> None:
        self.append(seconds)


@pytest.fixture(autouse=True)
def clean_env(monkeypatch, tmp_path):
    """No secret or override from the machine: an empty cwd and no SOURCES__* or bare KEY variables."""
    keys = {key.upper() for spec in BUNDLED.values() for key in spec.secret_keys} | {"TOKEN", "BASE_URL", "TOKEN_URL"}
    for name in list(os.environ):
        if name.startswith("SOURCES__") or name in keys:
            monkeypatch.delenv(name)
    monkeypatch.chdir(tmp_path)


@pytest.fixture()
def http():
    with responses.RequestsMock(assert_all_requests_are_fired=False) as mock:
        yield mock


def secret_value(source: str, key: str) -> str:
    return f"{source[:4]}-{key}-s3cr3t"


def configure(monkeypatch, source: str, skip: str | None = None) -> str:
    """Set every secret of `source` (but `skip`) and point it at the local host; return the base URL."""
    for key in BUNDLED[source].secret_keys:
        if key != skip:
            monkeypatch.setenv(f"SOURCES__{source.upper()}__{key.upper()}", secret_value(source, key))
    base_url = f"http://{HOST}/{source}"
    monkeypatch.setenv(f"SOURCES__{source.upper()}__BASE_URL", base_url)
    token_url = EXPECTED[source][2]
    if token_url:
        monkeypatch.setenv(f"SOURCES__{source.upper()}__TOKEN_URL", token_url)
    return base_url


def concrete(path: str) -> str:
    return re.sub(r"\{[^}]*\}", "7", path)


@pytest.mark.parametrize("source", sorted(BUNDLED))
def test_bundled_spec_compiles_with_resources_hosts_and_retry_routes(monkeypatch, source):
    base_url = configure(monkeypatch, source)
    spec = BUNDLED[source]
    compiled = compile_source(spec, sleep=Sleeps())
    policy, hosts, _ = EXPECTED[source]
    names = [r.name for r in spec.resources]
    assert set(names) <= set(compiled.source.resources)
    assert sorted(compiled.source.selected_resources) == sorted(names)  # private parent copies stay unselected
    assert compiled.session.source == source
    assert compiled.session.allowed_hosts == hosts
    for resource in spec.resources:
        assert compiled.session.route(f"{base_url}{concrete(resource.path)}") == (resource.name, policy)
        assert compiled.session.route(f"{base_url}{concrete(resource.path)}/?x=1") == (resource.name, policy)
    assert compiled.session.route(f"{base_url}/not/a/resource") == (source, RetryPolicy())


def test_help_desk_children_of_incremental_parents_get_private_parent_copies(monkeypatch):
    configure(monkeypatch, "help_desk")
    resources = compile_source(BUNDLED["help_desk"], sleep=Sleeps()).source.resources
    for parent, child in [
        ("conversations", "conversation_threads"),
        ("inboxes", "inbox_custom_fields"),
        ("inboxes", "inbox_folders"),
        ("teams", "team_members"),
    ]:
        private = f"{parent}__for__{child}"
        assert private in resources and not resources[private].selected


def test_a_run_compiles_only_the_resources_it_extracts_and_the_parents_they_come_through(monkeypatch):
    configure(monkeypatch, "help_desk")
    resources = compile_source(BUNDLED["help_desk"], sleep=Sleeps(), extracted=["conversation_threads"]).source.resources
    assert set(resources) == {"conversations", "conversation_threads", "conversations__for__conversation_threads"}
    everything = compile_source(BUNDLED["help_desk"], sleep=Sleeps()).source.resources
    assert {r.name for r in BUNDLED["help_desk"].resources} < set(everything)


@pytest.mark.parametrize(
    ("source", "missing"),
    [(source, key) for source, spec in sorted(BUNDLED.items()) for key in spec.secret_keys],
)
def test_missing_secret_names_what_to_set(monkeypatch, source, missing):
    configure(monkeypatch, source, skip=missing)
    with pytest.raises(MissingSecretError) as info:
        compile_source(BUNDLED[source], sleep=Sleeps())
    message = str(info.value)
    assert f"SOURCES__{source.upper()}__{missing.upper()}" in message
    assert ".dlt/secrets.toml" in message and f"[sources.{source}]" in message
    for key in BUNDLED[source].secret_keys:
        assert secret_value(source, key) not in message


def test_bare_key_secret_is_a_fallback(monkeypatch):
    configure(monkeypatch, "contact_book", skip="api_key")
    monkeypatch.setenv("API_KEY", "bare-api-key-value")
    compiled = compile_source(BUNDLED["contact_book"], sleep=Sleeps())
    assert "contacts" in compiled.source.resources


# ---------------------------------------------------------------- extraction against mocked HTTP


def extract(compiled, *names, resource=None):
    """The records extracted, whether dlt hands them over as dicts or as Arrow batches.

    Arrow batches carry their `_dlt_id` (and a blank `_dlt_load_id`, filled in when dlt writes them) from
    extraction on; rows get theirs when dlt normalizes them: left out.
    """
    source = compiled.source.with_resources(*names)
    items = list(source.resources[resource]) if resource else list(source)
    dlts = ["_dlt_id", "_dlt_load_id"]
    batches = [
        item.drop_columns([c for c in dlts if c in item.column_names]).to_pylist() if isinstance(item, pa.Table) else [item]
        for item in items
    ]
    return [row for rows in batches for row in rows]


def test_sales_crm_sends_headers_page_params_and_incremental_start(monkeypatch, http):
    base_url = configure(monkeypatch, "sales_crm")
    tags = f"{base_url}/v1/tags"
    first = [{"id": i, "updated_at": f"2024-01-{i:02d}T00:00:00Z"} for i in range(1, 11)]
    http.get(
        tags,
        json={"data": first},
        match=[matchers.query_param_matcher({"updated_since": "1970-01-01T00:00:00Z", "page[number]": "1", "page[size]": "10"})],
    )
    http.get(
        tags,
        json={"data": [{"id": 11, "updated_at": "2024-01-11T00:00:00Z"}]},
        match=[matchers.query_param_matcher({"updated_since": "1970-01-01T00:00:00Z", "page[number]": "2", "page[size]": "10"})],
    )
    rows = extract(compile_source(BUNDLED["sales_crm"], sleep=Sleeps()), "tags")
    assert [row["id"] for row in rows] == list(range(1, 12))
    assert len(http.calls) == 2
    for call in http.calls:
        assert call.request.headers["api_key"] == secret_value("sales_crm", "api_key")
        assert call.request.headers["X-Organization-Id"] == secret_value("sales_crm", "organization_id")


def test_help_desk_child_rows_carry_the_parent_key(monkeypatch, http):
    base_url = configure(monkeypatch, "help_desk")
    http.post(EXPECTED["help_desk"][2], json={"access_token": "at_hd_1", "expires_in": 3600})
    http.get(
        f"{base_url}/v2/teams",
        json={
            "_embedded": {
                "teams": [{"id": 1, "updated_at": "2024-01-01T00:00:00Z"}, {"id": 2, "updated_at": "2024-01-02T00:00:00Z"}]
            },
            "_links": {},
        },
    )
    http.get(f"{base_url}/v2/teams/1/members", json={"_embedded": {"users": [{"id": 10}]}, "_links": {}})
    http.get(f"{base_url}/v2/teams/2/members", json={"_embedded": {"users": [{"id": 10}, {"id": 11}]}, "_links": {}})
    rows = extract(compile_source(BUNDLED["help_desk"], sleep=Sleeps()), "team_members", resource="team_members")
    assert rows == [{"id": 10, "_teams_id": 1}, {"id": 10, "_teams_id": 2}, {"id": 11, "_teams_id": 2}]
    token_form = http.calls[0].request.body
    assert "grant_type=client_credentials" in token_form
    assert all(call.request.headers["Authorization"] == "Bearer at_hd_1" for call in http.calls[1:])


def _threads_fetching_items(http, monkeypatch, tmp_path, extracted):
    """The names of the threads that requested the plain spec's `items` pages."""
    path = tmp_path / "shop.yaml"
    path.write_text(PLAIN_DLT_SPEC, encoding="utf-8")
    monkeypatch.setenv("SOURCES__SHOP__TOKEN", PLAIN_TOKEN)
    threads: list[str] = []

    def page(request):
        threads.append(threading.current_thread().name)
        return 200, {}, json.dumps({"data": [{"id": 1}], "links": {"next": None}})

    http.add_callback(responses.GET, "https://api.example.com/v1/items", callback=page)
    compiled = compile_source(load_spec_file(path), sleep=Sleeps(), extracted=extracted)
    assert extract(compiled, "items") == [{"id": 1}]
    return threads


def test_top_level_pages_are_read_ahead_only_when_the_run_extracts_several_resources(http, monkeypatch, tmp_path):
    assert _threads_fetching_items(http, monkeypatch, tmp_path, extracted=["items"]) == [threading.main_thread().name]
    ahead = _threads_fetching_items(http, monkeypatch, tmp_path, extracted=None)  # every resource: items and item_notes
    assert len(ahead) == 1 and ahead[0] != threading.main_thread().name and ahead[0].endswith("rest_assets_parent")


PLAIN_DLT_SPEC = """
client:
  base_url: https://api.example.com/v1
  auth: {type: bearer, token: {secret: token}}
  paginator: {type: json_link, next_url_path: links.next}
resources:
  - name: items
    primary_key: id
    endpoint: {path: items, data_selector: data}
  - name: item_notes
    endpoint: "items/{resources.items.id}/notes"
    include_from_parent: [id]
"""
PLAIN_TOKEN = "plain-bearer-tok-123"


@pytest.fixture()
def plain_spec_file(tmp_path, monkeypatch):
    path = tmp_path / "shop.yaml"
    path.write_text(PLAIN_DLT_SPEC, encoding="utf-8")
    monkeypatch.setenv("SOURCES__SHOP__TOKEN", PLAIN_TOKEN)
    return path


@pytest.fixture()
def plain(tmp_path, monkeypatch):
    path = tmp_path / "shop.yaml"
    path.write_text(PLAIN_DLT_SPEC, encoding="utf-8")
    monkeypatch.setenv("SOURCES__SHOP__TOKEN", PLAIN_TOKEN)
    return compile_source(load_spec_file(path), sleep=Sleeps())


def test_plain_dlt_config_compiles_and_extracts(plain, http):
    items = "https://api.example.com/v1/items"
    http.get(
        items,
        json={"data": [{"id": 1}, {"id": 2}], "links": {"next": f"{items}?page=2"}},
        match=[matchers.query_param_matcher({})],
    )
    http.get(items, json={"data": [{"id": 3}], "links": {"next": None}}, match=[matchers.query_param_matcher({"page": "2"})])
    for item in (1, 2, 3):
        http.get(f"{items}/{item}/notes", json=[{"note": f"n{item}"}])
    assert extract(plain, "items") == [{"id": 1}, {"id": 2}, {"id": 3}]
    assert [call.request.url for call in http.calls] == [items, f"{items}?page=2"]
    assert all(call.request.headers["Authorization"] == f"Bearer {PLAIN_TOKEN}" for call in http.calls)
    assert plain.session.stats.pages == {"items": 2}


def test_plain_dlt_native_parent_placeholder(plain, http):
    items = "https://api.example.com/v1/items"
    http.get(items, json={"data": [{"id": 1}, {"id": 2}], "links": {}})
    for item in (1, 2):
        http.get(f"{items}/{item}/notes", json=[{"note": f"n{item}"}])
    notes = extract(plain, "item_notes", resource="item_notes")
    assert notes == [{"note": "n1", "_items_id": 1}, {"note": "n2", "_items_id": 2}]


def test_a_204_no_content_page_is_a_page_without_records_that_ends_the_paging(plain, http):
    items = "https://api.example.com/v1/items"
    http.get(items, json={"data": [{"id": 1}], "links": {"next": f"{items}?page=2"}})
    http.get(f"{items}?page=2", status=204)
    assert extract(plain, "items") == [{"id": 1}]
    assert len(http.calls) == 2


def test_a_body_without_the_selector_that_response_actions_ignore_is_no_error(http, tmp_path, monkeypatch):
    spec_file = tmp_path / "shop.yaml"
    spec_file.write_text(
        PLAIN_DLT_SPEC.replace(
            "endpoint: {path: items, data_selector: data}",
            "endpoint: {path: items, data_selector: data, response_actions: [{content: no more results, action: ignore}]}",
        ),
        encoding="utf-8",
    )
    monkeypatch.setenv("SOURCES__SHOP__TOKEN", PLAIN_TOKEN)
    compiled = compile_source(load_spec_file(spec_file), sleep=Sleeps())
    items = "https://api.example.com/v1/items"
    http.get(items, json={"data": [{"id": 1}], "links": {"next": f"{items}?page=2"}})
    http.get(f"{items}?page=2", json={"links": {"next": None}, "message": "no more results"})
    assert extract(compiled, "items") == [{"id": 1}]


@pytest.mark.parametrize("selector", ["$.data[*]", "data[*].item"])
def test_an_empty_list_under_a_wildcard_selector_is_a_page_without_records_as_in_dlt(http, tmp_path, monkeypatch, selector):
    endpoint = f"endpoint: {{path: items, data_selector: '{selector}'}}"
    spec_file = tmp_path / "shop.yaml"
    spec_file.write_text(PLAIN_DLT_SPEC.replace("endpoint: {path: items, data_selector: data}", endpoint), encoding="utf-8")
    monkeypatch.setenv("SOURCES__SHOP__TOKEN", PLAIN_TOKEN)
    compiled = compile_source(load_spec_file(spec_file), sleep=Sleeps())
    items = "https://api.example.com/v1/items"
    first = [{"id": 1}] if selector.endswith("[*]") else [{"item": {"id": 1}}]
    http.get(items, json={"data": first, "links": {"next": f"{items}?page=2"}})
    http.get(f"{items}?page=2", json={"data": [], "links": {"next": None}})
    assert extract(compiled, "items") == [{"id": 1}]
    assert len(http.calls) == 2  # not retried as a bad body


@pytest.mark.parametrize(
    ("mock", "message"),
    [
        ({"json": {"items": [{"id": 1}]}}, r"has no 'data' in the body \(top-level keys: \['items'\]\)"),
        (
            {"body": "<!DOCTYPE html><html><h1>Maintenance</h1></html>", "content_type": "text/html"},
            r"returned a body that is not valid JSON \(text/html\): '<!DOCTYPE html>",
        ),
        (
            {"body": '{"data": [{"id": 1}, {"id"', "content_type": "application/json"},
            r"returned a body that is not valid JSON \(application/json\)",
        ),
    ],
    ids=["data-selector-missing", "html", "truncated"],
)
def test_bad_bodies_raise_response_format_error_naming_the_resource(plain, http, mock, message):
    for _ in range(4):
        http.get("https://api.example.com/v1/items", **mock)
    with pytest.raises(Exception) as info:
        extract(plain, "items")
    error = info.value if isinstance(info.value, ResponseFormatError) else info.value.__cause__
    assert isinstance(error, ResponseFormatError), repr(info.value)
    assert re.search(r"source 'shop', resource 'items': https://api\.example\.com/v1/items " + message, str(error))
    assert PLAIN_TOKEN not in str(error)
    assert len(http.calls) == 4  # retried like any transient fault (default policy: 3 retries), then reported


def test_bad_body_then_good_body_recovers(plain, http):
    items = "https://api.example.com/v1/items"
    http.get(items, body="<html>busy</html>", content_type="text/html")
    http.get(items, json={"data": [{"id": 1}], "links": {}})
    assert extract(plain, "items") == [{"id": 1}]
    assert plain.session.stats.retries == {"items": 1}


def test_next_url_to_another_host_is_refused_in_a_compiled_source(plain, http):
    http.get(
        "https://api.example.com/v1/items", json={"data": [{"id": 1}], "links": {"next": "https://evil.example.net/v1/items"}}
    )
    http.get("https://evil.example.net/v1/items", json={"data": [], "links": {}})
    with pytest.raises(Exception) as info:
        extract(plain, "items")
    assert "credentials are only sent to api.example.com" in str(info.value)
    assert [call.request.url for call in http.calls] == ["https://api.example.com/v1/items"]


def test_compiling_does_not_mutate_the_spec(monkeypatch):
    configure(monkeypatch, "help_desk")
    spec = BUNDLED["help_desk"]
    before = [(r.name, repr(r.config)) for r in spec.resources], repr(spec.client)
    compile_source(spec, sleep=Sleeps())
    assert ([(r.name, repr(r.config)) for r in spec.resources], repr(spec.client)) == before


GRANDCHILD_SPEC = (
    PLAIN_DLT_SPEC
    + """
  - name: note_likes
    endpoint: {path: "notes/{resources.item_notes.id}/likes", data_selector: data}
    include_from_parent: [id]
"""
)


@pytest.fixture()
def grandchildren(tmp_path, monkeypatch, http):
    path = tmp_path / "shop.yaml"
    path.write_text(GRANDCHILD_SPEC, encoding="utf-8")
    monkeypatch.setenv("SOURCES__SHOP__TOKEN", PLAIN_TOKEN)
    api = "https://api.example.com/v1"
    http.get(f"{api}/items", json={"data": [{"id": 1}, {"id": 2}], "links": {"next": None}})
    for item in (1, 2):
        http.get(f"{api}/items/{item}/notes", json={"data": [{"id": 10 * item}, {"id": 10 * item + 1}], "links": {}})
    for note in (10, 11, 20, 21):
        http.get(f"{api}/notes/{note}/likes", json={"data": [{"user": f"u{note}"}], "links": {}})
    return load_spec_file(path)


def test_a_grandchild_is_fetched_once_per_child_record_through_its_whole_chain(grandchildren, http):
    compiled = compile_source(grandchildren, sleep=Sleeps(), extracted=["note_likes"])
    assert {"items", "item_notes", "note_likes"} <= set(compiled.source.resources)
    rows = extract(compiled, "note_likes", resource="note_likes")
    assert sorted((row["user"], row["_item_notes_id"]) for row in rows) == [("u10", 10), ("u11", 11), ("u20", 20), ("u21", 21)]
    assert sorted(call.request.url.rsplit("/v1/", 1)[1] for call in http.calls if "/likes" in call.request.url) == [
        "notes/10/likes",
        "notes/11/likes",
        "notes/20/likes",
        "notes/21/likes",
    ]


def test_a_whole_chain_under_an_incremental_parent_extracts_together(tmp_path, monkeypatch, http):
    # the child reads a private copy of the incremental parent (renaming its include_from_parent fields)
    # while the grandchild reads the child itself: the child's renamed batches keep their records
    spec = GRANDCHILD_SPEC.replace(
        "endpoint: {path: items, data_selector: data}",
        "endpoint: {path: items, data_selector: data, incremental: {cursor_path: seq, start_param: since, initial_value: 0}}",
    )
    (tmp_path / "shop.yaml").write_text(spec, encoding="utf-8")
    monkeypatch.setenv("SOURCES__SHOP__TOKEN", PLAIN_TOKEN)
    api = "https://api.example.com/v1"
    http.get(f"{api}/items", json={"data": [{"id": 1, "seq": 1}, {"id": 2, "seq": 2}], "links": {"next": None}})
    for item in (1, 2):
        http.get(f"{api}/items/{item}/notes", json={"data": [{"id": 10 * item}], "links": {}})
    for note in (10, 20):
        http.get(f"{api}/notes/{note}/likes", json={"data": [{"user": f"u{note}"}], "links": {}})
    compiled = compile_source(load_spec_file(tmp_path / "shop.yaml"), sleep=Sleeps())
    rows = extract(compiled, "items", "item_notes", "note_likes")
    assert sorted((row["id"], row["_items_id"]) for row in rows if "_items_id" in row) == [(10, 1), (20, 2)]
    assert sorted((row["user"], row["_item_notes_id"]) for row in rows if "user" in row) == [("u10", 10), ("u20", 20)]


def test_a_child_and_its_grandchild_extract_together(grandchildren):
    rows = extract(compile_source(grandchildren, sleep=Sleeps()), "item_notes", "note_likes")
    assert sorted(row["id"] for row in rows if "user" not in row) == [10, 11, 20, 21]
    assert sorted((row["user"], row["_item_notes_id"]) for row in rows if "user" in row) == [
        ("u10", 10),
        ("u11", 11),
        ("u20", 20),
        ("u21", 21),
    ]


@pytest.mark.parametrize("value", ["Zq{hunter22xyz}Zq", "ab}cd", "ab{}cd", "{0}", "{{x}}"])
def test_secrets_and_settings_with_braces_are_sent_as_they_are(tmp_path, monkeypatch, http, value):
    # dlt formats an endpoint's path, params, json and headers: a value's own braces are no placeholders
    (tmp_path / "shop.yaml").write_text(
        """
client: {base_url: 'https://api.example.com/v1', paginator: single_page}
resources:
  - name: items
    endpoint:
      path: "accounts/{config.account}/items"
      method: POST
      params: {q: {secret: query_key}}
      headers: {X-Key: {secret: header_key}}
      json: {token: {secret: body_key}, note: "{config.account}"}
""",
        encoding="utf-8",
    )
    for key in ("QUERY_KEY", "HEADER_KEY", "BODY_KEY", "ACCOUNT"):
        monkeypatch.setenv(f"SOURCES__SHOP__{key}", f"{key.lower()}-{value}")
    http.post(re.compile(r"https://api\.example\.com/v1/accounts/.*/items.*"), json=[{"id": 1}])
    rows = extract(compile_source(load_spec_file(tmp_path / "shop.yaml"), sleep=Sleeps()), "items")
    assert [row["id"] for row in rows] == [1]
    (call,) = http.calls
    assert unquote(urlsplit(call.request.url).path) == f"/v1/accounts/account-{value}/items"
    assert parse_qs(urlsplit(call.request.url).query) == {"q": [f"query_key-{value}"]}
    assert call.request.headers["X-Key"] == f"header_key-{value}"
    assert json.loads(call.request.body) == {"token": f"body_key-{value}", "note": f"account-{value}"}


@pytest.mark.parametrize("override", ["127.0.0.1:18765", "ftp://files.example.com", "https:///v1"])
def test_a_base_url_that_is_no_http_url_names_what_to_set(plain_spec_file, monkeypatch, override):
    monkeypatch.setenv("SOURCES__SHOP__BASE_URL", override)
    with pytest.raises(MissingSettingError, match="SOURCES__SHOP__BASE_URL") as info:
        compile_source(load_spec_file(plain_spec_file), sleep=Sleeps())
    assert override not in str(info.value)


def test_a_base_url_that_is_one_setting_is_read_at_run_time(tmp_path, monkeypatch, http):
    (tmp_path / "shop.yaml").write_text(
        "client: {base_url: '{config.url}', paginator: single_page}\nresources:\n  - {name: items, endpoint: {path: items}}\n"
    )
    monkeypatch.setenv("SOURCES__SHOP__URL", "https://shop.example.net/v2")
    http.get("https://shop.example.net/v2/items", json=[{"id": 1}])
    assert extract(compile_source(load_spec_file(tmp_path / "shop.yaml"), sleep=Sleeps()), "items") == [{"id": 1}]


def test_every_unset_secret_and_setting_is_named_at_once(tmp_path, monkeypatch):
    for name in [n for n in os.environ if n.startswith("SOURCES__SHOP__") or n in ("TOKEN", "QUERY_KEY", "ACCOUNT")]:
        monkeypatch.delenv(name)
    (tmp_path / "shop.yaml").write_text(
        "client: {base_url: 'https://api.example.com/v1', auth: {type: bearer, token: {secret: token}}}\n"
        "resources:\n"
        "  - {name: items, endpoint: {path: 'accounts/{config.account}/items', params: {q: {secret: query_key}}}}\n"
    )
    with pytest.raises(MissingSecretError) as info:
        compile_source(load_spec_file(tmp_path / "shop.yaml"), sleep=Sleeps())
    message = str(info.value)
    assert "needs 3 secrets or settings" in message
    assert all(f"SOURCES__SHOP__{key}" in message for key in ("TOKEN", "QUERY_KEY", "ACCOUNT"))


def test_two_resources_on_one_path_each_count_their_own_requests(tmp_path, monkeypatch, http):
    (tmp_path / "shop.yaml").write_text(
        "client: {base_url: 'https://api.example.com/v1', paginator: single_page}\n"
        "resources:\n"
        "  - {name: opened, endpoint: {path: events, params: {kind: opened}}}\n"
        "  - {name: closed, endpoint: {path: events, params: {kind: closed}}}\n"
    )
    http.get("https://api.example.com/v1/events", json=[{"id": 1}])
    compiled = compile_source(load_spec_file(tmp_path / "shop.yaml"), sleep=Sleeps())
    assert len(extract(compiled, "opened", "closed")) == 2
    assert compiled.session.stats.requests == {"opened": 1, "closed": 1}
