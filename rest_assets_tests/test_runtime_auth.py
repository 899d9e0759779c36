"""Unit tests of the authenticators built from spec `auth` mappings (HTTP mocked with `responses`)."""

from __future__ import annotations

import base64
from types import SimpleNamespace
from urllib.parse import parse_qsl, urlsplit

import pytest
import requests
import responses
from dlt.sources.helpers.rest_client import RESTClient
from responses import matchers

import rest_assets.runtime.auth as auth_module
from rest_assets.errors import HttpError
from rest_assets.runtime.auth import DEFAULT_TOKEN_LIFETIME_SECONDS, OAuth2Auth, build_auth
from rest_assets.runtime.http import GuardedSession, RetryPolicy
from rest_assets.runtime.paginators import build_paginator

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
    return GuardedSession(source="portal", allowed_hosts={"api.example.com", "id.example.com"}, routes=[],
                          default_policy=RetryPolicy(frozenset({503}), max_retries=1), sleep=lambda s: None)


@pytest.fixture()
def clock(monkeypatch):
    """A fake monotonic clock for the token cache (only the auth module sees it)."""
    now = [1000.0]
    monkeypatch.setattr(auth_module, "time", SimpleNamespace(monotonic=lambda: now[0]))
    return now


def get(session, auth, url=ME):
    client = RESTClient(API, session=session, auth=auth)
    return [row for page in client.paginate(url, paginator=build_paginator("single_page"), data_selector="data")
            for row in page]


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
        ({"type": "api_key", "name": "session", "api_key": "key_abc123", "location": "cookie"},
         {"Cookie": "session=key_abc123"}, {}),
        ({"type": "http_basic", "username": "ann", "password": "pw_abc123"},
         {"Authorization": "Basic " + base64.b64encode(b"ann:pw_abc123").decode()}, {}),
    ],
    ids=["bearer", "bearer-api_key-alias", "api_key-header", "api_key-default-location", "api_key-query", "api_key-cookie",
         "http_basic"],
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
        ({"scopes": ["read", "write"]},
         {"grant_type": "client_credentials", "client_id": CLIENT_ID, "client_secret": CLIENT_SECRET, "scope": "read write"}),
        ({"refresh_token": REFRESH},
         {"grant_type": "refresh_token", "refresh_token": REFRESH, "client_id": CLIENT_ID, "client_secret": CLIENT_SECRET}),
        ({"access_token_request_data": {"audience": "api"}},
         {"grant_type": "client_credentials", "client_id": CLIENT_ID, "client_secret": CLIENT_SECRET, "audience": "api"}),
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
    with pytest.raises(requests.HTTPError, match="401"):
        get(session, oauth2(session))
    assert len(api_calls(http)) == 2  # the first try and one retry with a fresh token
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
    [(None, DEFAULT_TOKEN_LIFETIME_SECONDS), ("abc", DEFAULT_TOKEN_LIFETIME_SECONDS), (0, DEFAULT_TOKEN_LIFETIME_SECONDS),
     (600, 600), ("120", 120)],
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
    with pytest.raises(HttpError, match=r"source 'portal', resource 'portal': POST https://id\.example\.com/oauth/token "
                                        r"failed with HTTP 503 after 1 retry") as info:
        get(session, oauth2(session))
    assert CLIENT_SECRET not in str(info.value)
    assert len(token_calls(http)) == 2


def test_token_url_override_wins(http, session):
    http.post("https://id.example.com/other/token", json=token("at_x"))
    serve_me(http, 200)
    auth = build_auth("portal", {"type": "oauth2", "client_id": CLIENT_ID, "client_secret": CLIENT_SECRET,
                                 "token_url": TOKEN_URL}, session, "https://id.example.com/other/token")
    assert isinstance(auth, OAuth2Auth)
    assert get(session, auth) == [{"id": 1}]
    assert http.calls[0].request.url == "https://id.example.com/other/token"
