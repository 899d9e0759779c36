"""A page that repeats the one before stops the paging with a clear error; `client.max_pages` still caps.

An API that ignores the paginator's parameter (an offset API that always
returns its first page, a cursor that changes only a nonce) would otherwise be
fetched until the server gives up. Unit tests drive dlt's RESTClient against
`responses`; the end-to-end test runs a real source against a tiny real server.
"""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest
import responses
from conftest import failure_errors, table_names
from dlt.sources.helpers.rest_client import RESTClient
from reliability_support import Recorded, RecordingServer, Reply, json_reply, run_source
from requests import Request

from rest_assets.errors import PaginationError
from rest_assets.runtime.http import GuardedSession
from rest_assets.runtime.paginators import build_paginator
from rest_assets.runtime.retry import RetryPolicy

API = "https://api.example.com"
ITEMS = f"{API}/items"
ENOUGH_FOR_A_RUNAWAY = 300
SERVER_GIVES_UP_AFTER = 20


@pytest.fixture()
def http():
    with responses.RequestsMock(assert_all_requests_are_fired=False) as mock:
        yield mock


def fetch(paginator: Any) -> list[list[Any]]:
    session = GuardedSession(
        source="shop",
        allowed_hosts={"api.example.com"},
        routes=[],
        default_policy=RetryPolicy(max_retries=0),
        sleep=lambda _: None,
    )
    client = RESTClient(API, session=session)
    return [list(page) for page in client.paginate("/items", paginator=paginator, data_selector="data")]


def serve(http: responses.RequestsMock, page_for_call: Any) -> None:
    """Answer GET /items with `page_for_call(n)` (n = 1, 2, ...), and an empty last page after a runaway's worth.

    The bound keeps a test quick when the guard is broken: it then fails on the request count.
    """

    def answer(request: Any) -> tuple[int, dict[str, str], str]:
        call = len(http.calls) + 1
        body = page_for_call(call) if call <= ENOUGH_FOR_A_RUNAWAY else {"data": []}
        return 200, {"Content-Type": "application/json"}, json.dumps(body)

    http.add_callback(responses.GET, ITEMS, callback=answer)


def rows(*ids: int, **extra: Any) -> list[dict[str, Any]]:
    return [{"id": i, "name": f"row {i}", **extra} for i in ids]


def test_an_offset_api_that_ignores_offset_fails_after_four_pages(http):
    serve(http, lambda n: {"data": rows(1, 2)})  # always the first, full page

    with pytest.raises(PaginationError, match="page 4 .*has the same body as pages 1 to 3") as error:
        fetch(build_paginator({"type": "offset", "limit": 2}))

    assert len(http.calls) == 4
    assert "offset=6" in str(error.value)  # the URL of the repeated page, so the user sees what was ignored


def test_a_page_repeated_because_records_were_inserted_while_paging_is_loaded_as_in_plain_dlt(http):
    """Newest first, and a page's worth of records inserted after page 1 was served: page 2 is page 1 again."""
    newest_first = list(range(12, 0, -1))
    inserted_after_page_1 = [14, 13]

    def page(n: int) -> dict[str, Any]:
        listing = newest_first if n == 1 else inserted_after_page_1 + newest_first
        return {"data": rows(*listing[2 * (n - 1) : 2 * n])}

    serve(http, page)

    pages = fetch(build_paginator({"type": "offset", "limit": 2}))

    assert pages[0] == pages[1] == rows(12, 11)
    assert sorted({row["id"] for p in pages for row in p}) == list(range(1, 13))


def test_a_cursor_that_changes_only_a_nonce_fails_when_the_records_repeat(http):
    serve(http, lambda n: {"data": rows(1, 2), "next": f"nonce-{n}"})

    with pytest.raises(PaginationError, match="same first and last records"):
        fetch(build_paginator({"type": "cursor", "cursor_path": "next", "cursor_param": "after"}))

    assert len(http.calls) == 4


def test_records_are_compared_by_id_so_a_per_request_field_does_not_hide_a_repeat(http):
    serve(http, lambda n: {"data": rows(1, 2, fetched_at=n), "page": n + 1})

    with pytest.raises(PaginationError, match="same first and last records"):
        fetch(build_paginator({"type": "page_number", "base_page": 1, "limit": 2, "page_param": "page"}))

    assert len(http.calls) == 4


def test_distinct_pages_and_a_repeated_empty_page_at_the_end_are_a_normal_stop(http):
    # page_number without a total or an empty-page stop: pages 2 and 3 are the same empty page, then maximum_page ends it
    serve(http, lambda n: {"data": rows(n) if n == 1 else []})
    paginator = build_paginator(
        {"type": "page_number", "base_page": 1, "maximum_page": 4, "stop_after_empty_page": False, "page_param": "page"}
    )

    assert fetch(paginator) == [rows(1), [], []]
    assert len(http.calls) == 3


def test_distinct_full_pages_are_followed_to_the_end(http):
    serve(http, lambda n: {"data": rows(2 * n - 1, 2 * n) if n < 4 else rows(7)})

    pages = fetch(build_paginator({"type": "offset", "limit": 2}))

    assert pages == [rows(1, 2), rows(3, 4), rows(5, 6), rows(7)]


@pytest.mark.parametrize(("available", "max_pages", "fails"), [(10, 3, True), (2, 3, False)])
def test_max_pages_is_an_explicit_cap(http, available, max_pages, fails):
    serve(http, lambda n: {"data": rows(n) if n <= available else []})
    paginator = build_paginator({"type": "offset", "limit": 1}, max_pages=max_pages)

    if fails:
        with pytest.raises(PaginationError, match=f"more than max_pages={max_pages} pages"):
            fetch(paginator)
        assert len(http.calls) == max_pages
    else:
        assert len(fetch(paginator)) == available + 1  # the short (empty) page ends the paging
        assert len(http.calls) == available + 1


# -- end to end: a real run against a real server ---------------------------------------------------------

QUERY_KEY = "qk_repeat_5e1f0a9c"


def _ignoring_api(request: Recorded) -> Reply:
    """An offset API that ignores `offset`, until it gives up and answers an empty page (keeps a broken guard quick)."""
    if parse_qs(urlsplit(request.path).query).get("key") != [QUERY_KEY]:
        return json_reply({"error": "unauthorized"}, status=401)
    gave_up = int(parse_qs(urlsplit(request.path).query).get("offset", ["0"])[0]) >= 2 * SERVER_GIVES_UP_AFTER
    return json_reply({"items": [] if gave_up else [{"id": 1}, {"id": 2}]})


def _ignoring_spec(folder: Path, base_url: str) -> Path:
    spec = {
        "client": {
            "base_url": base_url,
            "auth": {"type": "api_key", "name": "key", "api_key": {"secret": "api_key"}, "location": "query"},
        },
        "resources": [
            {
                "name": "items",
                "primary_key": "id",
                "endpoint": {"path": "/items", "data_selector": "items", "paginator": {"type": "offset", "limit": 2}},
            }
        ],
    }
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "stubborn.yaml").write_text(json.dumps(spec))
    return folder


@pytest.mark.e2e
def test_a_run_against_an_api_that_ignores_offset_fails_fast_naming_source_resource_and_redacted_url(workdir, tmp_path):
    workdir.monkeypatch.setenv("SOURCES__STUBBORN__API_KEY", QUERY_KEY)
    with RecordingServer(handler=_ignoring_api) as api:
        workdir.use_specs(_ignoring_spec(tmp_path / "specs", api.url))
        result = run_source("stubborn")

    assert len(api.requests) == 4, [r.path for r in api.requests]
    assert not result.success
    errors = [message for cls, message in failure_errors(result) if cls == "LoadError"]
    assert len(errors) == 1, failure_errors(result)
    assert "source 'stubborn', resource 'items'" in errors[0] and "same body" in errors[0]
    assert "/items?" in errors[0] and "offset=6" in errors[0] and "key=***" in errors[0]
    assert QUERY_KEY not in errors[0]
    assert "items" not in table_names("stubborn")


def test_records_with_a_null_id_are_compared_whole(http):
    serve(http, lambda n: {"data": [{"id": None, "n": 2 * n - 1}, {"id": None, "n": 2 * n}] if n < 3 else []})

    pages = fetch(build_paginator({"type": "offset", "limit": 2}))

    assert [len(p) for p in pages] == [2, 2, 0]


def test_pages_of_one_entitys_versions_are_not_a_repeat(http):
    # an audit log of one record: every row has the same id, the versions differ
    serve(http, lambda n: {"data": [{"id": 7, "version": 2 * n - 1}, {"id": 7, "version": 2 * n}] if n < 4 else []})

    pages = fetch(build_paginator({"type": "page_number", "base_page": 1, "limit": 2, "page_param": "page"}))

    assert [row["version"] for page in pages for row in page] == [1, 2, 3, 4, 5, 6]


def test_a_copy_of_a_guard_holds_its_state_and_pages_on_its_own(http):
    # dlt deep-copies a child's paginator for every parent record; a copy must not share the inner paginator
    serve(http, lambda n: {"data": rows(2 * n - 1, 2 * n) if n <= 2 else []})
    guard = build_paginator({"type": "offset", "limit": 2, "maximum_offset": 4})
    assert [len(page) for page in fetch(guard)] == [2, 2]

    clone = copy.deepcopy(guard)

    assert (clone.pages, clone._last_page, clone.max_pages) == (guard.pages, guard._last_page, guard.max_pages) != (0, None)
    assert clone.inner is not guard.inner and clone.inner.current_value == guard.inner.current_value == 4
    clone.init_request(Request("GET", ITEMS))
    assert (clone.pages, clone.inner.current_value) == (0, 0)
    assert (guard.pages, guard.inner.current_value) == (2, 4)


def test_pages_with_the_same_ids_but_another_primary_key_are_no_repeat(http):
    """Readings of the same sensors at another time: `id` repeats, the primary key [id, ts] does not."""
    serve(http, lambda n: {"data": rows(1, 5, ts=n) if n <= 3 else []})

    pages = fetch(build_paginator({"type": "page_number", "base_page": 1, "total_path": None}, record_key=["id", "ts"]))

    assert [page[0]["ts"] for page in pages if page] == [1, 2, 3]


def test_next_links_that_go_round_in_a_circle_fail_at_the_first_repeated_request(http):
    """Page 2 links back to page 1: its body differs from page 2's, so only the request tells the cycle."""
    bodies = {"1": {"data": rows(1), "next": f"{ITEMS}?page=2"}, "2": {"data": rows(2), "next": ITEMS}}

    def answer(request: Any) -> tuple[int, dict[str, str], str]:
        page = parse_qs(urlsplit(request.url).query).get("page", ["1"])[0]
        return 200, {"Content-Type": "application/json"}, json.dumps(bodies[page] if len(http.calls) < 50 else {"data": []})

    http.add_callback(responses.GET, ITEMS, callback=answer)
    with pytest.raises(PaginationError, match=r"page 3 would be requested exactly as page 1 was"):
        fetch(build_paginator({"type": "json_link", "next_url_path": "next"}))
    assert len(http.calls) == 2


def test_pages_without_keys_that_begin_and_end_alike_are_no_repeat(http):
    """An event log without ids: each page opens with a login and closes with a logout; the middle differs."""
    serve(http, lambda n: {"data": [{"event": "login"}, {"event": "view", "item": n}, {"event": "logout"}] if n <= 3 else []})

    pages = fetch(build_paginator({"type": "page_number", "base_page": 1, "total_path": None}))

    assert [page[1]["item"] for page in pages if page] == [1, 2, 3]


def test_pages_without_keys_whose_records_all_repeat_are_a_repeat(http):
    serve(http, lambda n: {"data": [{"event": "login"}, {"event": "logout"}], "nonce": n})  # the body differs

    with pytest.raises(PaginationError, match="page 4 .*has the same records as pages 1 to 3"):
        fetch(build_paginator({"type": "page_number", "base_page": 1, "total_path": None}))
