"""Unit tests of the authenticators built from spec `auth` mappings (HTTP mocked with `responses`)."""

from __future__ import annotations

import base64
import json
import re
import stat
import threading
from concurrent.futures import ThreadPoolExecutor
from types import SimpleNamespace
from urllib.parse import parse_qsl, urlsplit

import pytest
import requests
import responses
from dlt.sources.helpers.rest_client import RESTClient
from responses import matchers

import rest_assets.runtime.auth as auth_module
from rest_assets.errors import HttpError, LoadError
from rest_assets.runtime.auth import DEFAULT_TOKEN_LIFETIME_SECONDS, OAuth2Auth, build_auth
from rest_assets.runtime.http import GuardedSession
from rest_assets.runtime.paginators import build_paginator
from rest_assets.runtime.retry import RetryPolicy

API = "https://api.example.com"
ME = f"{API}/v1/me"
TOKEN_URL = "https://id.example.com/oauth/token"
CLIENT_ID = "cid_5f2a9e"
CLIENT_SECRET = "csec_8d4b1c7e"
REFRESH = "rt_first_3e9a"


@pytest.fixture()
def http():
    with responses.RequestsMock(assert_all_requests_are_fired=False) as mock:
        yield mock


@pytest.fixture()
def session():
    return GuardedSession(
        source="portal",
        allowed_hosts={"api.example.com", "id.example.com"},
        routes=[],
        default_policy=RetryPolicy(frozenset({503}), max_retries=1),
        sleep=lambda s: None,
    )


@pytest.fixture()
def clock(monkeypatch):
    """A fake monotonic clock for the token cache (only the auth module sees it)."""
    now = [1000.0]
    monkeypatch.setattr(auth_module, "time", SimpleNamespace(monotonic=lambda: now[0]))
    return now


def get(session, auth, url=ME):
    client = RESTClient(API, session=session, auth=auth)
    return [row for page in client.paginate(url, paginator=build_paginator("single_page"), data_selector="data") for row in page]


def api_calls(http):
    return [call for call in http.calls if call.request.url.startswith(API)]


def token_calls(http):
    return [call for call in http.calls if call.request.url == TOKEN_URL]


def form_of(call) -> dict[str, str]:
    return dict(parse_qsl(call.request.body))


def oauth2(session, **extra):
    config = {"type": "oauth2", "client_id": CLIENT_ID, "client_secret": CLIENT_SECRET, "token_url": TOKEN_URL, **extra}
    return build_auth("portal", config, session)


def serve_tokens(http, *bodies, status=200):
    for body in bodies:
        http.post(TOKEN_URL, json=body, status=status)


def token(value, **extra):
    return {"access_token": value, "token_type": "bearer", "expires_in": 3600, **extra}


def serve_me(http, *statuses):
    for status in statuses:
        http.get(ME, status=status, json={"data": [{"id": 1}]} if status == 200 else {"error": "unauthorized"})


# ---------------------------------------------------------------- static credentials


@pytest.mark.parametrize(
    ("config", "expected_headers", "expected_query"),
    [
        ({"type": "bearer", "token": "tok_abc123"}, {"Authorization": "Bearer tok_abc123"}, {}),
        ({"type": "bearer", "api_key": "tok_abc123", "location": "header"}, {"Authorization": "Bearer tok_abc123"}, {}),
        ({"type": "api_key", "name": "api_key", "api_key": "key_abc123", "location": "header"}, {"api_key": "key_abc123"}, {}),
        ({"type": "api_key", "name": "X-Key", "api_key": "key_abc123"}, {"X-Key": "key_abc123"}, {}),
        ({"type": "api_key", "name": "api_key", "api_key": "key_abc123", "location": "query"}, {}, {"api_key": "key_abc123"}),
        (
            {"type": "api_key", "name": "session", "api_key": "key_abc123", "location": "cookie"},
            {"Cookie": "session=key_abc123"},
            {},
        ),
        (
            {"type": "http_basic", "username": "ann", "password": "pw_abc123"},
            {"Authorization": "Basic " + base64.b64encode(b"ann:pw_abc123").decode()},
            {},
        ),
    ],
    ids=[
        "bearer",
        "bearer-api_key-alias",
        "api_key-header",
        "api_key-default-location",
        "api_key-query",
        "api_key-cookie",
        "http_basic",
    ],
)
def test_static_credentials_are_sent(http, session, config, expected_headers, expected_query):
    http.get(ME, json={"data": [{"id": 1}]})
    assert get(session, build_auth("portal", config, session)) == [{"id": 1}]
    request = http.calls[0].request
    for name, value in expected_headers.items():
        assert request.headers[name] == value
    assert dict(parse_qsl(urlsplit(request.url).query)) == expected_query
    if "Authorization" not in expected_headers:
        assert "Authorization" not in request.headers


def test_query_api_key_keeps_other_params(http, session):
    http.get(ME, json={"data": []}, match=[matchers.query_param_matcher({"page": "2", "api_key": "key_abc123"})])
    auth = build_auth("portal", {"type": "api_key", "name": "api_key", "api_key": "key_abc123", "location": "query"}, session)
    assert get(session, auth, url=f"{ME}?page=2") == []


@pytest.mark.parametrize("url", ["https://h/p", "https://h/p?a=1", "https://h/p/?a=1&b=%2F#frag", "https://h/p#x"])
@pytest.mark.parametrize("key", ["key_abc123", "a b&c=d/é+%#?"])
def test_query_api_key_encodes_like_requests_and_keeps_the_fragment_last(url, key):
    expected = requests.PreparedRequest()
    expected.prepare_url(url, {"api_key": key})
    request = requests.PreparedRequest()
    request.prepare_url(url, None)
    auth = build_auth("portal", {"type": "api_key", "name": "api_key", "api_key": key, "location": "query"}, None)
    assert auth(request).url == expected.url


def test_no_auth_config_gives_no_authenticator(session):
    assert build_auth("portal", None, session) is None
    assert build_auth("portal", {}, session) is None


# ---------------------------------------------------------------- OAuth2


@pytest.mark.parametrize(
    ("extra", "expected_form"),
    [
        ({}, {"grant_type": "client_credentials", "client_id": CLIENT_ID, "client_secret": CLIENT_SECRET}),
        (
            {"scopes": ["read", "write"]},
            {"grant_type": "client_credentials", "client_id": CLIENT_ID, "client_secret": CLIENT_SECRET, "scope": "read write"},
        ),
        (
            {"refresh_token": REFRESH},
            {"grant_type": "refresh_token", "refresh_token": REFRESH, "client_id": CLIENT_ID, "client_secret": CLIENT_SECRET},
        ),
        (
            {"access_token_request_data": {"audience": "api"}},
            {"grant_type": "client_credentials", "client_id": CLIENT_ID, "client_secret": CLIENT_SECRET, "audience": "api"},
        ),
    ],
    ids=["client-credentials", "scopes", "refresh-token", "extra-request-data"],
)
def test_oauth2_grant_form_and_token_cached_across_requests(http, session, extra, expected_form):
    serve_tokens(http, token("at_one"))
    serve_me(http, 200, 200, 200)
    auth = oauth2(session, **extra)
    for _ in range(3):
        assert get(session, auth) == [{"id": 1}]
    assert len(token_calls(http)) == 1
    assert form_of(token_calls(http)[0]) == expected_form
    assert token_calls(http)[0].request.headers["Content-Type"] == "application/x-www-form-urlencoded"
    assert [c.request.headers["Authorization"] for c in api_calls(http)] == ["Bearer at_one"] * 3


def test_401_refreshes_once_and_retries(http, session):
    serve_tokens(http, token("at_old"), token("at_new"))
    serve_me(http, 200, 401, 200)
    auth = oauth2(session)
    assert get(session, auth) == [{"id": 1}]
    assert get(session, auth) == [{"id": 1}]
    assert len(token_calls(http)) == 2
    assert [c.request.headers["Authorization"] for c in api_calls(http)] == ["Bearer at_old", "Bearer at_old", "Bearer at_new"]


def test_a_second_401_is_not_looped(http, session):
    serve_tokens(http, token("at_1"), token("at_2"), token("at_3"))
    serve_me(http, 401, 401, 401, 200)
    with pytest.raises(HttpError, match="failed with HTTP 401 after 1 retry"):
        get(session, oauth2(session))
    assert len(api_calls(http)) == 2  # the first try and one retry with a fresh token (max_retries=1)
    assert len(token_calls(http)) == 2


def test_rotated_refresh_token_is_used_on_the_next_refresh(http, session):
    serve_tokens(http, token("at_1", refresh_token="rt_rotated_2"), token("at_2", refresh_token="rt_rotated_3"), token("at_3"))
    serve_me(http, 200, 401, 200, 401, 200)
    auth = oauth2(session, refresh_token=REFRESH)
    for _ in range(3):  # a token, then two 401s that each force one refresh
        assert get(session, auth) == [{"id": 1}]
    assert [form_of(call)["refresh_token"] for call in token_calls(http)] == [REFRESH, "rt_rotated_2", "rt_rotated_3"]
    assert auth.refresh_token == "rt_rotated_3"  # the last response rotated nothing: the last one given stays


@pytest.mark.parametrize(
    ("expires_in", "lifetime"),
    [
        (None, DEFAULT_TOKEN_LIFETIME_SECONDS),
        ("abc", DEFAULT_TOKEN_LIFETIME_SECONDS),
        (0, DEFAULT_TOKEN_LIFETIME_SECONDS),
        (600, 600),
        ("120", 120),
    ],
    ids=["missing", "not-a-number", "zero", "int", "string"],
)
def test_token_lifetime_and_refresh_on_expiry(http, session, clock, expires_in, lifetime):
    body = {"access_token": "at_1"} if expires_in is None else {"access_token": "at_1", "expires_in": expires_in}
    serve_tokens(http, body, token("at_2"))
    serve_me(http, 200, 200, 200)
    auth = oauth2(session)
    get(session, auth)
    assert auth.expires_at == clock[0] + lifetime - 30  # refreshed 30 s early
    clock[0] += lifetime - 31
    get(session, auth)
    assert len(token_calls(http)) == 1  # still cached
    clock[0] += 1
    get(session, auth)
    assert len(token_calls(http)) == 2
    assert api_calls(http)[-1].request.headers["Authorization"] == "Bearer at_2"


@pytest.mark.parametrize(
    ("status", "body", "message"),
    [
        (400, {"error": "invalid_client", "detail": f"bad secret {CLIENT_SECRET}"}, r"answered HTTP 400: .*invalid_client"),
        (401, {"error": "invalid_grant"}, r"answered HTTP 401"),
        (200, "<html>login</html>", r"did not return JSON"),
        (200, {"token_type": "bearer"}, r"returned no access_token"),
    ],
    ids=["400-echoing-the-secret", "401", "html", "no-access-token"],
)
def test_token_endpoint_errors_are_clear_and_secret_free(http, session, status, body, message):
    if isinstance(body, str):
        http.post(TOKEN_URL, body=body, status=status, content_type="text/html")
    else:
        http.post(TOKEN_URL, json=body, status=status)
    where = r"source 'portal': the token endpoint https://id\.example\.com/oauth/token "
    with pytest.raises(HttpError, match=where + message) as info:
        get(session, oauth2(session, refresh_token=REFRESH))
    text = str(info.value)
    for secret in (CLIENT_ID, CLIENT_SECRET, REFRESH):
        assert secret not in text
    assert api_calls(http) == []  # nothing was sent to the API without a token


def test_token_endpoint_outage_is_retried_then_named(http, session):
    http.post(TOKEN_URL, status=503)
    http.post(TOKEN_URL, status=503)
    with pytest.raises(
        HttpError,
        match=r"source 'portal', resource 'portal': POST https://id\.example\.com/oauth/token "
        r"failed with HTTP 503 after 1 retry",
    ) as info:
        get(session, oauth2(session))
    assert CLIENT_SECRET not in str(info.value)
    assert len(token_calls(http)) == 2


def test_token_url_override_wins(http, session):
    http.post("https://id.example.com/other/token", json=token("at_x"))
    serve_me(http, 200)
    auth = build_auth(
        "portal",
        {"type": "oauth2", "client_id": CLIENT_ID, "client_secret": CLIENT_SECRET, "token_url": TOKEN_URL},
        session,
        "https://id.example.com/other/token",
    )
    assert isinstance(auth, OAuth2Auth)
    assert get(session, auth) == [{"id": 1}]
    assert http.calls[0].request.url == "https://id.example.com/other/token"


# ---------------------------------------------------------------- credentials per attempt, single-flight refresh


def _session(max_retries=3, sleep=lambda s: None):
    return GuardedSession(
        source="portal",
        allowed_hosts={"api.example.com", "id.example.com"},
        routes=[],
        default_policy=RetryPolicy(frozenset({503}), max_retries=max_retries),
        sleep=sleep,
    )


def _numbered_tokens(http):
    """The token endpoint hands out at_1, at_2, ... one per grant."""
    issued = []

    def grant(request):
        issued.append(f"at_{len(issued) + 1}")
        return 200, {}, json.dumps(token(issued[-1]))

    http.add_callback(responses.POST, TOKEN_URL, callback=grant)
    return issued


def test_a_retry_after_503_carries_the_token_current_when_it_is_sent(http):
    """Another thread replaces the token while a request waits to retry a 503: the retry carries the new one."""
    issued = _numbered_tokens(http)
    other = f"{API}/v1/other"
    http.get(other, status=401, json={"error": "revoked"})
    http.get(other, status=200, json={"data": []})
    serve_me(http, 503, 200)
    holder = {}

    def sleep(seconds):  # the backoff before the retry: meanwhile another thread gets a 401 and refreshes
        thread = threading.Thread(target=lambda: get(holder["session"], holder["auth"], other))
        thread.start()
        thread.join()

    session = holder["session"] = _session(sleep=sleep)
    auth = holder["auth"] = oauth2(session)
    assert get(session, auth) == [{"id": 1}]
    assert issued == ["at_1", "at_2"]
    me = [c.request.headers["Authorization"] for c in api_calls(http) if c.request.url == ME]
    assert me == ["Bearer at_1", "Bearer at_2"]


def test_401s_under_16_threads_give_exactly_one_grant_and_no_request_leaves_with_the_replaced_token(http):
    """at_1 is revoked while 16 requests use it: half get 401, half 503 first. One grant; after it, no at_1."""
    issued = _numbered_tokens(http)
    valid = {"at_1"}
    seen_after_grant = []
    granted = threading.Event()
    lock = threading.Lock()

    def api(request):
        used = request.headers["Authorization"].removeprefix("Bearer ")
        number = int(parse_qsl(urlsplit(request.url).query)[0][1])
        with lock:
            if len(issued) > 1:
                seen_after_grant.append(used)
                granted.set()
            first = request.url not in tried
            tried.add(request.url)
        if first and number % 2 == 0:
            return 503, {}, json.dumps({"error": "busy"})
        if used not in valid:
            return 401, {}, json.dumps({"error": "invalid_token"})
        return 200, {}, json.dumps({"data": [{"id": number}]})

    tried: set[str] = set()
    http.add_callback(responses.GET, ME, callback=api)
    session = _session(sleep=lambda s: granted.wait(10))  # a 503'd request retries only after the grant
    auth = oauth2(session)
    assert get(session, auth, f"{ME}?n=-1") == [{"id": -1}]  # warm-up: at_1
    valid.clear()  # the server revokes at_1; the grant that replaces it issues at_2
    original = http.registered()[0].callback

    def grant(request):
        result = original(request)
        valid.add(issued[-1])
        return result

    http.registered()[0].callback = grant
    with ThreadPoolExecutor(16) as pool:
        rows = list(pool.map(lambda n: get(session, auth, f"{ME}?n={n}"), range(16)))
    assert sorted(r[0]["id"] for r in rows) == list(range(16))
    assert issued == ["at_1", "at_2"]  # exactly one grant for the revocation, whichever thread saw it first
    assert seen_after_grant and set(seen_after_grant) == {"at_2"}


def test_a_401_for_a_token_already_replaced_retries_without_a_grant(http, session):
    issued = _numbered_tokens(http)
    serve_me(http, 200, 401, 200)
    auth = oauth2(session)
    get(session, auth)
    get(session, auth)  # 401 for at_1: one grant, at_2
    assert auth.after_unauthorized("at_1") is True  # a late 401 for at_1 from another thread
    assert issued == ["at_1", "at_2"] and auth.access_token == "at_2"


def test_401_retries_share_the_retry_budget_and_end_in_a_clear_error(http):
    issued = _numbered_tokens(http)
    serve_me(http, 401, 401, 401, 401)
    session = _session(max_retries=2)
    with pytest.raises(
        HttpError,
        match=r"source 'portal', resource 'portal': GET https://api\.example\.com/v1/me "
        r"failed with HTTP 401 after 2 retries",
    ) as info:
        get(session, oauth2(session))
    assert info.value.status == 401
    assert len(api_calls(http)) == 3 and issued == ["at_1", "at_2", "at_3"]


def test_a_failed_refresh_ends_every_attempt_with_one_clear_error(http, session):
    serve_tokens(http, token("at_1"))
    http.post(TOKEN_URL, status=400, json={"error": "invalid_grant", "echo": CLIENT_SECRET})
    serve_me(http, 401, 200, 200)
    auth = oauth2(session, refresh_token=REFRESH)
    for _ in range(2):  # the second request (another thread, later) gets the same error, no new grant
        with pytest.raises(
            HttpError,
            match=r"source 'portal': getting an OAuth2 access token from token host "
            r"id\.example\.com failed.*answered HTTP 400",
        ) as info:
            get(session, auth)
        assert info.value.status == 400
        assert CLIENT_SECRET not in str(info.value) and REFRESH not in str(info.value)
    assert len(token_calls(http)) == 2


def test_rotation_is_counted_and_warned_naming_the_secret(http, session, caplog):
    serve_tokens(http, token("at_1", refresh_token="rt_rotated_2"))
    serve_me(http, 200)
    auth = build_auth(
        "portal",
        {
            "type": "oauth2",
            "client_id": CLIENT_ID,
            "client_secret": CLIENT_SECRET,
            "token_url": TOKEN_URL,
            "refresh_token": REFRESH,
        },
        session,
        refresh_token_key="portal_refresh",
    )
    with caplog.at_level("WARNING", logger="rest_assets"):
        get(session, auth)
    assert auth.rotations == 1 and session.stats.rotated_refresh_tokens == 1
    assert "SOURCES__PORTAL__PORTAL_REFRESH" in caplog.text and "rt_rotated_2" not in caplog.text


def stored_refresh_token(tmp_path, monkeypatch, value: str):
    """A store file outside the working directory (which the test enters), holding `value`."""
    (tmp_path / "work").mkdir()
    monkeypatch.chdir(tmp_path / "work")
    store = tmp_path / "secrets" / "portal.refresh"
    store.parent.mkdir()
    store.write_text(value)
    return store


def test_refresh_token_store_is_read_first_and_written_0600_on_rotation(http, session, tmp_path, monkeypatch):
    store = stored_refresh_token(tmp_path, monkeypatch, "rt_stored_9")
    serve_tokens(http, token("at_1", refresh_token="rt_rotated_2"))
    serve_me(http, 200)
    auth = oauth2(session, refresh_token=REFRESH, refresh_token_store=str(store))
    get(session, auth)
    assert form_of(token_calls(http)[0])["refresh_token"] == "rt_stored_9"
    assert store.read_text() == "rt_rotated_2"
    assert stat.S_IMODE(store.stat().st_mode) == 0o600
    assert [p.name for p in store.parent.iterdir()] == ["portal.refresh"]  # no temporary file left


def test_a_refused_refresh_token_from_the_store_names_the_store_file(http, session, tmp_path, monkeypatch):
    """A stale store wins over a newly configured refresh token: the error says which file to delete."""
    store = stored_refresh_token(tmp_path, monkeypatch, "rt_stale_3")
    http.post(TOKEN_URL, status=400, json={"error": "invalid_grant"})
    with pytest.raises(HttpError, match=rf"read from auth.refresh_token_store {re.escape(str(store))}.*delete that file"):
        get(session, oauth2(session, refresh_token=REFRESH, refresh_token_store=str(store)))


def test_refresh_token_store_inside_the_working_directory_is_refused(session, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    with pytest.raises(LoadError, match=r"source 'portal': auth.refresh_token_store .* is inside the working directory"):
        oauth2(session, refresh_token=REFRESH, refresh_token_store="tokens/portal.refresh")
    assert not (tmp_path / "tokens").exists()


def _until(predicate):
    while not predicate():  # the other thread is about to block; nothing here is timed
        threading.Event().wait(0.001)


def test_a_grant_waits_for_attempts_in_flight_and_holds_new_ones_back():
    """No request leaves with a token the client has replaced: grant and attempts exclude each other."""
    gate = auth_module._GrantGate()
    order = []
    first = gate.attempt()
    first.__enter__()
    granter = threading.Thread(target=gate.exclusive, args=(lambda: True, lambda: order.append("grant")))
    granter.start()
    _until(lambda: gate._granting or order)  # the grant waits for the attempt in flight (or, broken, ran)
    late = threading.Thread(target=lambda: gate.attempt().__enter__() or order.append("late attempt"))
    late.start()
    assert order == []
    order.append("first attempt done")
    first.__exit__(None, None, None)
    granter.join()
    late.join()
    assert order == ["first attempt done", "grant", "late attempt"]


def test_no_grant_when_no_longer_needed():
    gate = auth_module._GrantGate()
    ran = []
    gate.exclusive(lambda: False, lambda: ran.append(1))
    assert ran == []
