"""Unit tests of the guarded transport and the dialect's paginators, driven through dlt's RESTClient.

All HTTP is mocked with `responses`; every wait goes to an injected `sleep` fake.
"""

from __future__ import annotations

import email.utils
import time
from base64 import b64encode
from urllib.parse import parse_qsl, urlsplit

import pytest
import requests
import responses
from dlt.sources.helpers.rest_client import RESTClient
from responses import matchers

from rest_assets.errors import CredentialScopeError, HttpError, PaginationError
from rest_assets.runtime.auth import ApiKeyAuth
from rest_assets.runtime.host_gate import HostGate
from rest_assets.runtime.http import GuardedSession
from rest_assets.runtime.paginators import build_paginator
from rest_assets.runtime.redaction import redact
from rest_assets.runtime.retry import EndpointRoute, RetryPolicy, parse_retry_after
from rest_assets.runtime.transport_stats import TransportStats

API = "https://api.example.com"
ORDERS = f"{API}/v1/orders"
EVIL = "https://evil.example.net"
SECRET_KEY = "qk_live_7c1e4b9a2d"


class Sleeps(list):
    """An injected `sleep`: records delays, never sleeps."""

    def __call__(self, seconds: float) -> None:
        self.append(seconds)


@pytest.fixture()
def sleeps():
    return Sleeps()


@pytest.fixture()
def http():
    with responses.RequestsMock(assert_all_requests_are_fired=False) as mock:
        yield mock


def make_session(sleep, policy: RetryPolicy | None = None, hosts=("api.example.com",)) -> GuardedSession:
    routes = [
        EndpointRoute.for_path("orders", "", "/v1/orders", policy or RetryPolicy()),
        EndpointRoute.for_path("order_items", "", "/v1/orders/{resources.orders.id}/items", RetryPolicy(max_retries=0)),
    ]
    return GuardedSession(
        source="shop", allowed_hosts=set(hosts), routes=routes, default_policy=RetryPolicy(max_retries=1), sleep=sleep
    )


def fetch(session, paginator=None, path="/v1/orders", data_selector="data", auth=None, params=None):
    client = RESTClient(API, session=session, auth=auth)
    paginator = paginator if paginator is not None else build_paginator("single_page")
    return [list(page) for page in client.paginate(path, paginator=paginator, data_selector=data_selector, params=params)]


def query_of(call) -> dict[str, str]:
    return dict(parse_qsl(urlsplit(call.request.url).query))


def queries(http) -> list[dict[str, str]]:
    return [query_of(call) for call in http.calls]


def add_pages(http, url, bodies, param_sets=None):
    """Register one response per body, each optionally matched on its exact query."""
    for index, body in enumerate(bodies):
        match = [matchers.query_param_matcher(param_sets[index])] if param_sets else []
        http.get(url, json=body, match=match)


# ---------------------------------------------------------------- paginators


def rows(*ids):
    return [{"id": i} for i in ids]


@pytest.mark.parametrize(
    ("config", "bodies", "expected_queries"),
    [
        pytest.param(  # no total: a short page ends the paging
            {"type": "offset", "limit": 2},
            [{"data": rows(1, 2)}, {"data": rows(3, 4)}, {"data": rows(5)}],
            [{"offset": "0", "limit": "2"}, {"offset": "2", "limit": "2"}, {"offset": "4", "limit": "2"}],
            id="offset-short-page",
        ),
        pytest.param(  # no total: an empty page after full ones ends it too
            {"type": "offset", "limit": 2},
            [{"data": rows(1, 2)}, {"data": []}],
            [{"offset": "0", "limit": "2"}, {"offset": "2", "limit": "2"}],
            id="offset-empty-page",
        ),
        pytest.param(  # total reached on a full page
            {"type": "offset", "limit": 2, "total_path": "total"},
            [{"data": rows(1, 2), "total": 4}, {"data": rows(3, 4), "total": 4}],
            [{"offset": "0", "limit": "2"}, {"offset": "2", "limit": "2"}],
            id="offset-total",
        ),
        pytest.param(  # a total that overstates the rows: paged on to the total, the empty page ends it (as dlt)
            {"type": "offset", "limit": 2, "total_path": "total"},
            [{"data": rows(1, 2), "total": 10}, {"data": rows(3), "total": 10}, {"data": [], "total": 10}],
            [{"offset": "0", "limit": "2"}, {"offset": "2", "limit": "2"}, {"offset": "4", "limit": "2"}],
            id="offset-total-short-page",
        ),
        pytest.param(  # an API that leaves out hidden records: a short page before the total does not end it
            {"type": "offset", "limit": 3},
            [{"data": rows(1, 2, 3), "total": 8}, {"data": rows(5), "total": 8}, {"data": rows(7, 8), "total": 8}],
            [{"offset": "0", "limit": "3"}, {"offset": "3", "limit": "3"}, {"offset": "6", "limit": "3"}],
            id="offset-short-page-before-the-total",
        ),
        pytest.param(  # a total of 0 that a full page contradicts: paged to the short page
            {"type": "offset", "limit": 2},
            [{"data": rows(1, 2), "total": 0}, {"data": rows(3, 4), "total": 0}, {"data": rows(5), "total": 0}],
            [{"offset": "0", "limit": "2"}, {"offset": "2", "limit": "2"}, {"offset": "4", "limit": "2"}],
            id="offset-total-zero-contradicted",
        ),
        pytest.param(  # -1 ("unknown"), the same
            {"type": "page_number", "base_page": 1, "limit": 2, "total_path": "pages"},
            [{"data": rows(1, 2), "pages": -1}, {"data": rows(3), "pages": -1}],
            [{"page": "1", "limit": "2"}, {"page": "2", "limit": "2"}],
            id="page-number-total-minus-one-contradicted",
        ),
        pytest.param(
            {"type": "page_number", "base_page": 1, "page_param": "page[number]", "limit_param": "page[size]", "limit": 2},
            [{"data": rows(1, 2)}, {"data": rows(3, 4)}, {"data": rows(5)}],
            [
                {"page[number]": "1", "page[size]": "2"},
                {"page[number]": "2", "page[size]": "2"},
                {"page[number]": "3", "page[size]": "2"},
            ],
            id="page-number-limit-param",
        ),
        pytest.param(
            {
                "type": "page_number",
                "base_page": 1,
                "page_param": "page",
                "limit_param": "per_page",
                "limit": 2,
                "total_path": "meta.pages",
            },
            [{"data": rows(1, 2), "meta": {"pages": 2}}, {"data": rows(3, 4), "meta": {"pages": 2}}],
            [{"page": "1", "per_page": "2"}, {"page": "2", "per_page": "2"}],
            id="page-number-total-pages",
        ),
    ],
)
def test_range_paginators(http, sleeps, config, bodies, expected_queries):
    add_pages(http, ORDERS, bodies, expected_queries)
    pages = fetch(make_session(sleeps), build_paginator(config))
    assert [row for page in pages for row in page] == [row for body in bodies for row in body["data"]]
    assert len(pages) == len(bodies)  # one page per request, the empty one included
    assert queries(http) == expected_queries


def test_cursor_follows_a_url_value_as_the_next_url(http, sleeps):
    next_url = f"{ORDERS}?cursor=abc&per_page=2"
    http.get(ORDERS, json={"data": rows(1, 2), "links": {"next": next_url}}, match=[matchers.query_param_matcher({"limit": "2"})])
    http.get(
        ORDERS, json={"data": rows(3), "links": {}}, match=[matchers.query_param_matcher({"cursor": "abc", "per_page": "2"})]
    )
    paginator = build_paginator(
        {"type": "cursor", "cursor_param": "next", "limit": 2, "stop_condition": "not response.get('links', {}).get('next', {})"}
    )
    assert fetch(make_session(sleeps), paginator) == [rows(1, 2), rows(3)]
    assert [call.request.url for call in http.calls] == [f"{ORDERS}?limit=2", next_url]


def test_cursor_follows_a_relative_url(http, sleeps):
    http.get(
        ORDERS,
        json={"data": rows(1), "_links": {"next": {"href": "/v1/orders?page=2"}}},
        match=[matchers.query_param_matcher({})],
    )
    http.get(ORDERS, json={"data": rows(2), "_links": {}}, match=[matchers.query_param_matcher({"page": "2"})])
    paginator = build_paginator({"type": "cursor", "cursor_path": "_links.next.href", "stop_condition": "_links.next is none"})
    assert fetch(make_session(sleeps), paginator) == [rows(1), rows(2)]
    assert queries(http) == [{}, {"page": "2"}]


def test_cursor_sends_an_opaque_value_as_cursor_param(http, sleeps):
    add_pages(
        http,
        ORDERS,
        [{"data": rows(1, 2), "meta": {"next": "b64=="}}, {"data": rows(3), "meta": {"next": None}}],
        [{"status": "open"}, {"status": "open", "after": "b64=="}],
    )
    paginator = build_paginator({"type": "cursor", "cursor_path": "meta.next", "cursor_param": "after"})
    assert fetch(make_session(sleeps), paginator, params={"status": "open"}) == [rows(1, 2), rows(3)]
    assert queries(http) == [{"status": "open"}, {"status": "open", "after": "b64=="}]


def test_an_opaque_cursor_starting_with_a_slash_is_a_cursor_not_a_path(http, sleeps):
    token = "/wEAAA=="  # base64 page tokens may start with '/'
    add_pages(http, ORDERS, [{"data": rows(1), "next": token}, {"data": rows(2), "next": None}], [{}, {"cursor": token}])
    paginator = build_paginator({"type": "cursor", "cursor_path": "next", "cursor_param": "cursor"})
    assert fetch(make_session(sleeps), paginator) == [rows(1), rows(2)]
    assert queries(http) == [{}, {"cursor": token}]


@pytest.mark.parametrize("cursor", [6, ["2024-01-06T00:00:00Z", 6]], ids=["int", "search-after-list"])
def test_a_cursor_in_the_body_keeps_its_json_type(http, sleeps, cursor):
    http.post(ORDERS, json={"data": rows(1), "next": cursor}, match=[matchers.json_params_matcher({"q": 1})])
    http.post(ORDERS, json={"data": rows(2), "next": None}, match=[matchers.json_params_matcher({"q": 1, "after": cursor})])
    paginator = build_paginator({"type": "cursor", "cursor_path": "next", "cursor_body_path": "after"})
    client = RESTClient(API, session=make_session(sleeps))
    pages = list(client.paginate("/v1/orders", method="post", json={"q": 1}, paginator=paginator, data_selector="data"))
    assert pages == [rows(1), rows(2)]


def test_a_stop_condition_saying_more_without_a_cursor_is_an_error_not_a_silent_stop(http, sleeps):
    http.get(ORDERS, json={"data": rows(1), "_links": {"next": "https://api.example.com/v1/orders?cursor=p2"}})
    paginator = build_paginator({"type": "cursor", "cursor_path": "_links.next.href", "stop_condition": "_links.next is none"})
    with pytest.raises(PaginationError, match="another page, but the body has no cursor at '_links.next.href'"):
        fetch(make_session(sleeps), paginator)


def test_cursor_stop_condition_ends_paging_even_with_a_cursor(http, sleeps):
    add_pages(
        http,
        ORDERS,
        [
            {"data": rows(1), "meta": {"has_more": True, "next": "c1"}},
            {"data": rows(2), "meta": {"has_more": False, "next": "c2"}},
        ],
    )
    paginator = build_paginator({"type": "cursor", "cursor_path": "meta.next", "stop_condition": "not meta.has_more"})
    assert fetch(make_session(sleeps), paginator) == [rows(1), rows(2)]
    assert len(http.calls) == 2


@pytest.mark.parametrize("last_cursor", [0, False, ""], ids=["zero", "false", "empty"])
def test_a_falsy_cursor_ends_the_paging_as_in_dlt(http, sleeps, last_cursor):
    add_pages(http, ORDERS, [{"data": rows(1), "next": 7}, {"data": rows(2), "next": last_cursor}], [{}, {"cursor": "7"}])
    paginator = build_paginator({"type": "cursor", "cursor_path": "next", "cursor_param": "cursor"})
    assert fetch(make_session(sleeps), paginator) == [rows(1), rows(2)]
    assert len(http.calls) == 2


@pytest.mark.parametrize(("more", "done"), [("yes", "no"), ("Y", "N"), ("1", "0"), ("t", "f"), (True, "false")])
def test_a_has_more_flag_is_read_as_dlt_reads_it(http, sleeps, more, done):
    add_pages(http, ORDERS, [{"data": rows(1, 2), "more": more}, {"data": rows(3, 4), "more": done}])
    paginator = build_paginator({"type": "offset", "limit": 2, "total_path": None, "has_more_path": "more"})
    assert fetch(make_session(sleeps), paginator) == [rows(1, 2), rows(3, 4)]
    assert len(http.calls) == 2


def test_repeated_cursor_is_a_pagination_error(http, sleeps):
    add_pages(http, ORDERS, [{"data": rows(1), "next": "same"}] * 3)
    paginator = build_paginator({"type": "cursor", "cursor_path": "next"})
    with pytest.raises(PaginationError, match="same cursor twice"):
        fetch(make_session(sleeps), paginator)
    assert len(http.calls) == 2


@pytest.mark.parametrize(
    ("config", "pages_available", "max_pages", "fails"),
    [
        ({"type": "offset", "limit": 1}, 10, 3, True),
        ({"type": "cursor", "cursor_path": "next"}, 10, 3, True),
        ({"type": "cursor", "cursor_path": "next"}, 3, 3, False),  # exactly max_pages pages is fine
        ({"type": "page_number", "base_page": 1, "limit": 1}, 2, 3, False),
    ],
)
def test_page_cap(http, sleeps, config, pages_available, max_pages, fails):
    bodies = [{"data": rows(i), "next": f"c{i}" if i < pages_available else None} for i in range(1, pages_available + 1)]
    bodies[-1]["data"] = [] if config["type"] != "cursor" else bodies[-1]["data"]
    add_pages(http, ORDERS, bodies)
    paginator = build_paginator(config, max_pages=max_pages)
    if fails:
        with pytest.raises(PaginationError, match=f"more than max_pages={max_pages} pages"):
            fetch(make_session(sleeps), paginator)
        assert len(http.calls) == max_pages
    else:
        fetch(make_session(sleeps), paginator)
        assert len(http.calls) == pages_available


# ---------------------------------------------------------------- retries


@pytest.mark.parametrize(
    ("statuses", "policy", "expected_sleeps"),
    [
        ([503, 503, 200], RetryPolicy(frozenset({503}), max_retries=2, backoff_factor=0.5), [0.5, 1.0]),
        ([500, 502, 504, 429, 200], RetryPolicy(max_retries=4, backoff_factor=2), [2, 4, 8, 16]),
        ([500, 500, 500, 200], RetryPolicy(max_retries=3, backoff_factor=2, max_backoff=3), [2, 3, 3]),
        ([429, 200], RetryPolicy(frozenset({429}), max_retries=1, backoff_factor=0), [0]),
    ],
)
def test_retryable_statuses_are_retried_with_exponential_backoff(http, sleeps, statuses, policy, expected_sleeps):
    for status in statuses:
        http.get(ORDERS, status=status, json={"data": rows(1)} if status == 200 else {"error": "x"})
    session = make_session(sleeps, policy)
    assert fetch(session, data_selector="data") == [rows(1)]
    assert len(http.calls) == len(statuses)
    assert sleeps == expected_sleeps
    assert session.stats.retries == {"orders": len(statuses) - 1}
    assert session.stats.requests == {"orders": len(statuses)}
    assert session.stats.pages == {"orders": 1}
    assert session.stats.throttled.get("orders", 0) == statuses.count(429)


def test_max_retries_is_respected_and_the_error_names_source_resource_and_status(http, sleeps):
    for _ in range(5):
        http.get(ORDERS, status=503)
    with pytest.raises(HttpError) as info:
        fetch(make_session(sleeps, RetryPolicy(max_retries=2, backoff_factor=1)))
    assert len(http.calls) == 3  # the first try and two retries
    assert sleeps == [1, 2]
    message = str(info.value)
    assert info.value.status == 503
    for part in ("source 'shop'", "resource 'orders'", "HTTP 503", "after 2 retries", "GET https://api.example.com/v1/orders"):
        assert part in message


@pytest.mark.parametrize("status", [400, 404, 422])
def test_statuses_outside_the_policy_are_not_retried(http, sleeps, status):
    http.get(ORDERS, status=status, json={"error": "no"})
    with pytest.raises(requests.HTTPError):
        fetch(make_session(sleeps))
    assert len(http.calls) == 1
    assert sleeps == []


def test_policy_is_chosen_per_endpoint(http, sleeps):
    http.get(f"{ORDERS}/42/items", status=503)
    http.get(f"{API}/v1/other", status=503)
    http.get(f"{API}/v1/other", json={"data": []})
    session = make_session(sleeps)
    with pytest.raises(HttpError, match="resource 'order_items'.*after 0 retries"):
        fetch(session, path="/v1/orders/42/items")
    assert fetch(session, path="/v1/other") == [[]]  # default policy of the source: one retry
    assert session.route(f"{API}/v1/other") == ("shop", RetryPolicy(max_retries=1))


@pytest.mark.parametrize(
    "error",
    [
        requests.exceptions.ConnectionError("connection reset"),
        requests.exceptions.ReadTimeout("read timed out"),
        requests.exceptions.ConnectTimeout("connect timed out"),
        requests.exceptions.ChunkedEncodingError("truncated"),
        requests.exceptions.ContentDecodingError("Received response with content-encoding: gzip, but failed to decode it."),
    ],
    ids=lambda e: type(e).__name__,
)
def test_connection_errors_and_timeouts_are_retried(http, sleeps, error):
    http.get(ORDERS, body=error)
    http.get(ORDERS, json={"data": rows(1)})
    session = make_session(sleeps, RetryPolicy(max_retries=1, backoff_factor=3))
    assert fetch(session) == [rows(1)]
    assert len(http.calls) == 2 and sleeps == [3]


def test_connection_errors_give_up_with_a_clear_message(http, sleeps):
    for _ in range(3):
        http.get(ORDERS, body=requests.exceptions.ConnectionError("connection refused"))
    with pytest.raises(
        HttpError,
        match=r"source 'shop', resource 'orders': GET .* failed with ConnectionError: "
        r"connection refused after 2 retries",
    ) as info:
        fetch(make_session(sleeps, RetryPolicy(max_retries=2)))
    assert info.value.status is None


def test_give_up_message_never_contains_a_query_string_api_key(http, sleeps):
    for _ in range(3):
        http.get(ORDERS, status=500, body=f"error for key {SECRET_KEY}")
    auth = ApiKeyAuth("api_key", SECRET_KEY, "query")
    with pytest.raises(HttpError) as info:
        fetch(make_session(sleeps, RetryPolicy(max_retries=2)), auth=auth)
    assert all(query_of(call) == {"api_key": SECRET_KEY} for call in http.calls)  # the key was sent...
    assert SECRET_KEY not in str(info.value) and SECRET_KEY not in repr(info.value)  # ...and never shown
    assert "api_key=***" in str(info.value)
    assert "resource 'orders'" in str(info.value) and "HTTP 500" in str(info.value)


# ---------------------------------------------------------------- Retry-After and the host gate


def http_date(seconds_from_now: float) -> str:
    return email.utils.formatdate(time.time() + seconds_from_now, usegmt=True)


@pytest.mark.parametrize(
    ("retry_after", "expected", "tolerance"),
    [(lambda: "7", 7.0, 1.0), (lambda: "2.5", 2.5, 1.0), (lambda: http_date(30), 30.0, 2.0)],  # built when the test runs
    ids=["seconds", "fraction", "http-date"],
)
def test_retry_after_wins_over_backoff_and_holds_the_host(http, sleeps, retry_after, expected, tolerance):
    http.get(ORDERS, status=429, headers={"Retry-After": retry_after()})
    http.get(ORDERS, json={"data": rows(1)})
    http.get(f"{API}/v1/customers", json={"data": rows(9)})
    session = make_session(sleeps, RetryPolicy(max_retries=2, backoff_factor=100))
    assert fetch(session) == [rows(1)]
    assert len(sleeps) == 1 and sleeps[0] == pytest.approx(expected, abs=tolerance)  # no backoff sleep of 100
    assert session.stats.throttled == {"orders": 1}
    # the fake sleep did not let time pass: any other request to that host is held back as well
    assert fetch(session, path="/v1/customers") == [rows(9)]
    assert len(sleeps) == 2 and 0 < sleeps[1] <= sleeps[0]
    assert session.stats.seconds_waited["shop"] == pytest.approx(sleeps[1])


def test_host_gate_blocks_one_host_only():
    sleeps = Sleeps()
    gate = HostGate(sleeps)
    gate.block("api.example.com", 5)
    gate.block("api.example.com", 1)  # a shorter Retry-After never shortens the hold
    assert gate.wait("id.example.com") == 0.0
    assert gate.wait("api.example.com") == pytest.approx(5, abs=0.5)
    assert sleeps == [pytest.approx(5, abs=0.5)]


@pytest.mark.parametrize(
    ("value", "expected"),
    [(None, None), ("", None), ("soon", None), ("120", 120.0), ("100000", 600.0), ("Wed, 21 Oct 2015 07:28:00 GMT", 0.0)],
)
def test_parse_retry_after(value, expected):
    assert parse_retry_after(value) == expected


def test_parse_retry_after_http_date_relative_to_now():
    now = time.time()
    assert parse_retry_after(email.utils.formatdate(now + 60, usegmt=True), now=now) == pytest.approx(60, abs=1)


# ---------------------------------------------------------------- credential scoping


def test_next_url_to_another_host_is_refused_before_it_is_sent(http, sleeps):
    http.get(ORDERS, json={"data": rows(1), "links": {"next": f"{EVIL}/v1/orders?cursor=2"}})
    http.get(f"{EVIL}/v1/orders", json={"data": rows(2), "links": {}})
    paginator = build_paginator({"type": "cursor", "cursor_path": "links.next"})
    with pytest.raises(
        CredentialScopeError,
        match=r"source 'shop': refused a request to https://evil\.example\.net/.*"
        r"credentials are only sent to api\.example\.com",
    ):
        fetch(make_session(sleeps), paginator, auth=ApiKeyAuth("X-Key", SECRET_KEY, "header"))
    assert [urlsplit(call.request.url).netloc for call in http.calls] == ["api.example.com"]


@pytest.mark.parametrize("status", [301, 302, 307, 308])
def test_redirect_to_another_host_is_refused(http, sleeps, status):
    http.get(ORDERS, status=status, headers={"Location": f"{EVIL}/steal"})
    http.get(f"{EVIL}/steal", json={"data": []})
    with pytest.raises(CredentialScopeError, match="evil.example.net"):
        fetch(make_session(sleeps), auth=ApiKeyAuth("X-Key", SECRET_KEY, "header"))
    assert [call.request.url for call in http.calls] == [ORDERS]


def test_redirect_on_the_same_host_is_followed(http, sleeps):
    http.get(ORDERS, status=301, headers={"Location": "/v2/orders"})
    http.get(f"{API}/v2/orders", json={"data": rows(1)})
    assert fetch(make_session(sleeps)) == [rows(1)]
    assert [call.request.url for call in http.calls] == [ORDERS, f"{API}/v2/orders"]


def test_a_second_allowed_host_is_reachable(http, sleeps):
    http.get("https://id.example.com/v1/orders", json={"data": rows(1)})
    session = make_session(sleeps, hosts=("api.example.com", "id.example.com"))
    client = RESTClient("https://id.example.com", session=session)
    pages = client.paginate("/v1/orders", paginator=build_paginator("single_page"), data_selector="data")
    assert [list(page) for page in pages] == [rows(1)]


# ---------------------------------------------------------------- redirects end in 2xx or in an error


def test_a_same_host_redirect_loop_is_an_error_never_data(http, sleeps):
    http.get(ORDERS, status=302, headers={"Location": "/v1/orders"}, json={"data": rows(3)})
    with pytest.raises(
        HttpError,
        match=r"source 'shop', resource 'orders': GET https://api\.example\.com/v1/orders "
        r"after 5 redirects would be redirected again",
    ) as info:
        fetch(make_session(sleeps))
    assert info.value.status == 302
    assert len(http.calls) == 6  # the request and 5 redirects, then it stops


@pytest.mark.parametrize("status", [404, 500])
def test_a_redirect_to_an_error_is_an_error_naming_the_redirect(http, sleeps, status):
    http.get(ORDERS, status=302, headers={"Location": "/v2/gone"})
    http.get(f"{API}/v2/gone", status=status, json={"data": rows(2)})
    session = make_session(sleeps, RetryPolicy(frozenset({503}), max_retries=0))
    with pytest.raises(
        HttpError,
        match=rf"resource 'orders': GET https://api\.example\.com/v2/gone after 1 redirect "
        rf"answered HTTP {status}",
    ):
        fetch(session)


def test_a_3xx_that_cannot_be_followed_is_an_error(http, sleeps):
    http.get(ORDERS, status=300, json={"data": rows(2)})  # no Location
    with pytest.raises(HttpError, match=r"GET https://api\.example\.com/v1/orders answered HTTP 300"):
        fetch(make_session(sleeps))


def test_a_redirect_gets_the_credentials_once_not_twice(http, sleeps):
    http.get(ORDERS, status=307, headers={"Location": "/v2/orders?page=1"})
    http.get(f"{API}/v2/orders", json={"data": rows(1)})
    fetch(make_session(sleeps), auth=ApiKeyAuth("key", SECRET_KEY, "query"))
    assert parse_qsl(urlsplit(http.calls[1].request.url).query) == [("page", "1"), ("key", SECRET_KEY)]


@pytest.mark.parametrize(
    ("config", "body", "message"),
    [
        ({"type": "offset", "limit": 2}, {"data": rows(1, 2), "total": {"value": 9}}, "total at 'total' is not an integer"),
        ({"type": "offset", "limit": 2, "has_more_path": "more"}, {"data": rows(1, 2)}, "has-more flag at 'more' is not in"),
        ({"type": "offset", "limit": 2, "has_more_path": "more"}, {"data": rows(1, 2), "more": 1}, "not a boolean"),
        ({"type": "offset", "limit": 2, "has_more_path": "more"}, {"data": rows(1, 2), "more": "maybe"}, "not a boolean"),
    ],
)
def test_an_unreadable_total_or_has_more_flag_is_a_pagination_error(http, sleeps, config, body, message):
    http.get(ORDERS, json=body)
    with pytest.raises(PaginationError, match=message):
        fetch(make_session(sleeps), build_paginator(config))


def test_concurrent_waits_count_once_in_seconds_waited_sequential_ones_add_up():
    stats = TransportStats()
    for _ in range(16):  # 16 requests in flight wait out one Retry-After of 3 s
        stats.add_wait("orders", 3.0, started=100.0)
    assert stats.seconds_waited["orders"] == 3.0
    stats.add_wait("orders", 2.0, started=101.0)  # inside the wait already counted
    stats.add_wait("orders", 4.0, started=103.0)  # after it: counted whole
    stats.add_wait("customers", 3.0, started=100.0)  # another resource keeps its own figure
    assert stats.seconds_waited == {"orders": 7.0, "customers": 3.0}


def test_proxies_and_the_ca_bundle_come_from_the_environment_credentials_from_netrc_never(monkeypatch, tmp_path, sleeps):
    """As requests reads them where it trusts the environment, bar ~/.netrc (its credentials would go to any host)."""
    (tmp_path / ".netrc").write_text("machine api.example.com login user password netrc-secret\n", encoding="utf-8")
    monkeypatch.setenv("HOME", str(tmp_path))
    monkeypatch.setenv("HTTPS_PROXY", "http://puser:proxy%2Dsecret-7@proxy.internal:3128")
    monkeypatch.setenv("NO_PROXY", "direct.example.com")
    monkeypatch.setenv("REQUESTS_CA_BUNDLE", str(tmp_path / "corporate-ca.pem"))
    sent = []

    def send(adapter, request, **kwargs):
        sent.append((request, kwargs))
        response = requests.Response()
        response.status_code, response._content, response.request, response.url = 200, b'{"data": []}', request, request.url
        return response

    monkeypatch.setattr(requests.adapters.HTTPAdapter, "send", send)
    session = make_session(sleeps, hosts=("api.example.com", "direct.example.com"))
    session.get(f"{API}/v1/orders")
    session.get("https://direct.example.com/v1/orders")
    (first, first_kwargs), (second, second_kwargs) = sent
    assert first_kwargs["proxies"]["https"] == "http://puser:proxy%2Dsecret-7@proxy.internal:3128"
    proxy_authorization = "Basic " + b64encode(b"puser:proxy-secret-7").decode()  # what a proxy could echo
    assert redact(f"Proxy-Authorization: {proxy_authorization}; pw proxy-secret-7") == "Proxy-Authorization: Basic ***; pw ***"
    assert not second_kwargs["proxies"].get("https")  # NO_PROXY honoured
    assert first_kwargs["verify"] == second_kwargs["verify"] == str(tmp_path / "corporate-ca.pem")
    assert "Authorization" not in first.headers
