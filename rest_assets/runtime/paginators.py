"""Paginators of the spec dialect, and the registry that builds them by type.

dlt's own paginators are used as they are where the dialect means what dlt
means; `offset`, `page_number` and `cursor` are extended:

* offset / page_number stop on a short or empty page, use `total` only when
  the API returns one, and never stop early while a full page came back;
  page_number also sends the page size as `limit_param` (e.g. `page[size]`);
* cursor follows the value at `cursor_path` as the next URL when it is a URL,
  else sends it as `cursor_param`; `stop_condition` (a safe expression) ends
  the paging; a cursor seen twice is an error instead of an endless loop.

Every paginator (but `single_page`) is wrapped in a PageGuard: a page that
repeats the one before is an error, and so is a page beyond `max_pages`,
when set.
"""

from __future__ import annotations

import copy
import json
from collections.abc import Callable, Sequence
from typing import Any, cast
from urllib.parse import parse_qsl, urljoin, urlsplit

from dlt.common import jsonpath
from dlt.sources.helpers.rest_client.paginators import (
    BasePaginator,
    OffsetPaginator,
    PageNumberPaginator,
    SinglePagePaginator,
)
from requests import Request, Response

from rest_assets.dialect.stop_condition import StopCondition, parse_stop_condition
from rest_assets.dlt_internals import create_paginator
from rest_assets.errors import PaginationError
from rest_assets.runtime.redaction import redact


def _page_length(data: Any) -> int:
    if isinstance(data, list):
        return len(data)
    return 1 if data else 0


def _first_value(path: Any, body: Any) -> Any:
    values = jsonpath.find_values(path, body) if path else []
    return values[0] if values else None


# dlt's defaults: where a range paginator finds the total, and a cursor paginator the cursor.
DLT_TOTAL_PATH = "total"
DLT_CURSOR_PATH = "cursors.next"


def _with_param(request: Request, name: str, value: Any) -> dict[str, Any]:
    """The request's query params plus `name=value` (the request's own mapping left as it was)."""
    return {**cast(dict[str, Any], request.params or {}), name: value}


class _ShortPageMixin:
    """Range paginators that page to the API's total when it gives one, else to a short page.

    A total the pages contradict (records on a page that starts at or after it:
    `0`, `-1`) is ignored for the rest of the paging, which then ends on a short page:
    paging never stops early while a full page came back. With a total, a short
    page does not end the paging (as in dlt: an API may leave out records it
    hides from the caller, and the pages after them still hold data).
    """

    limit: Any  # int on dlt's offset paginator, optional on ours
    total_path: Any
    has_more_path: Any
    maximum_value: int | None
    current_value: int
    value_step: int
    base_index: int
    stop_after_empty_page: Any
    _has_next_page: bool
    _total_contradicted: bool = False

    def init_request(self, request: Request) -> None:
        self._total_contradicted = False
        super().init_request(request)  # type: ignore[misc]  # dlt's range paginator, after this mixin

    def update_state(self, response: Response, data: list[Any] | None = None) -> None:
        count = _page_length(data)
        if count == 0 and self.stop_after_empty_page:
            self._has_next_page = False
            return
        body = response.json() if (self.total_path or self.has_more_path) else None
        total = self._total(body, count)
        if total is None and self.limit and count < self.limit:
            self._has_next_page = False
            return
        self.current_value += self.value_step
        if total is not None and self.current_value >= total + self.base_index:
            self._has_next_page = False
        if self.maximum_value is not None and self.current_value >= self.maximum_value:
            self._has_next_page = False
        if self.has_more_path and not _has_more(self.has_more_path, body):
            self._has_next_page = False

    def _total(self, body: Any, count: int) -> int | None:
        """The API's total as an int, or None when it gives none or the pages contradict it."""
        value = _first_value(self.total_path, body)
        if value is None or self._total_contradicted:
            return None
        try:
            total = int(value)
        except (TypeError, ValueError):
            raise PaginationError(
                f"the total at '{self.total_path}' is not an integer ({redact(repr(value))[:60]}); set the "
                "paginator's `total_path` to where the API gives it, or `total_path: null` to page to a short page"
            ) from None
        self._total_contradicted = self._beyond_total(total, count)
        return None if self._total_contradicted else total

    def _beyond_total(self, total: int, count: int) -> bool:
        """Whether this page holds records though it starts at or after the `total` (so the total is wrong).

        A page that starts before the total and reaches past it is the last page, as in dlt.
        """
        return count > 0 and self.current_value >= total + self.base_index


# the strings dlt reads as a has-more flag (its `str2bool`), case aside
_FLAG_STRINGS = {"yes": True, "true": True, "t": True, "y": True, "1": True}
_FLAG_STRINGS.update({"no": False, "false": False, "f": False, "n": False, "0": False})


def _has_more(path: Any, body: Any) -> bool:
    """The body's has-more flag at `path`: a boolean or a string dlt reads as one (`"yes"`, `"0"`, ...);
    a missing or unreadable flag is an error, as in dlt."""
    value = _first_value(path, body)
    if isinstance(value, str) and value.lower() in _FLAG_STRINGS:
        return _FLAG_STRINGS[value.lower()]
    if not isinstance(value, bool):
        what = "not in the response" if value is None else f"not a boolean ({redact(repr(value))[:40]})"
        raise PaginationError(f"the has-more flag at '{path}' is {what}; check the paginator's `has_more_path`")
    return value


class ShortPageOffsetPaginator(_ShortPageMixin, OffsetPaginator):
    """dlt's offset paginator (total at `total` by default); without a total, it stops on a short page."""

    def __init__(self, limit: int, total_path: Any = DLT_TOTAL_PATH, **kwargs: Any) -> None:
        super().__init__(limit=limit, total_path=total_path, **kwargs)


class LimitedPageNumberPaginator(_ShortPageMixin, PageNumberPaginator):
    """dlt's page-number paginator plus a page size sent as `limit_param`."""

    def __init__(
        self, limit: int | None = None, limit_param: str = "limit", total_path: Any = DLT_TOTAL_PATH, **kwargs: Any
    ) -> None:
        super().__init__(total_path=total_path, **kwargs)
        self.limit = limit
        self.limit_param = limit_param

    def init_request(self, request: Request) -> None:
        super().init_request(request)
        if self.limit:
            request.params = _with_param(request, self.limit_param, self.limit)


class CursorPaginator(BasePaginator):
    """Follows a cursor (URL or opaque token) found in the body until a stop condition holds."""

    def __init__(
        self,
        cursor_path: str | None = None,
        cursor_param: str = "cursor",
        stop_condition: str | None = None,
        limit: int | None = None,
        limit_param: str = "limit",
        stop_after_empty_page: bool = False,
        has_more_path: str | None = None,
        cursor_body_path: str | None = None,
    ) -> None:
        super().__init__()
        self.stop: StopCondition | None = parse_stop_condition(stop_condition) if stop_condition else None
        derived = self.stop.single_path if self.stop else None
        self.cursor_path = jsonpath.compile_path(cursor_path or derived or DLT_CURSOR_PATH)
        self.cursor_param = cursor_param
        self.cursor_body_path = cursor_body_path
        self.limit, self.limit_param = limit, limit_param
        self.stop_after_empty_page = stop_after_empty_page
        self.has_more_path = jsonpath.compile_path(has_more_path) if has_more_path else None
        self._cursor: Any = None
        self._seen: set[str] = set()

    def __deepcopy__(self, memo: dict[int, Any]) -> CursorPaginator:
        # dlt copies the paginator for every parent record of a child resource; the
        # compiled path and stop condition are immutable, so share them and reset state.
        clone = copy.copy(self)
        clone._cursor, clone._seen = None, set()
        return clone

    def init_request(self, request: Request) -> None:
        self._seen = set()
        self._has_next_page = True
        if self.limit:
            request.params = _with_param(request, self.limit_param, self.limit)

    def update_state(self, response: Response, data: list[Any] | None = None) -> None:
        body = response.json()
        self._cursor = _first_value(self.cursor_path, body)
        no_cursor = not self._cursor  # as in dlt: a cursor of 0 or false ends the paging too
        stopped = (
            (self.stop is not None and self.stop.should_stop(body))
            or (self.stop_after_empty_page and _page_length(data) == 0)
            or (self.has_more_path is not None and not _has_more(self.has_more_path, body))
        )
        done = stopped or no_cursor
        self._has_next_page = not done
        if done:
            if not stopped and self.stop is not None:  # the stop condition says more, but there is no cursor
                raise PaginationError(
                    f"the stop condition says there is another page, but the body has no cursor at "
                    f"'{self.cursor_path}' ({redact(response.url)}); check the paginator's `cursor_path`"
                )
            return
        key = str(self._cursor)
        if key in self._seen:
            raise PaginationError(
                f"the API returned the same cursor twice ({self.cursor_path}); stopping instead of looping forever"
            )
        self._seen.add(key)

    def update_request(self, request: Request) -> None:
        if _is_next_url(self._cursor):
            request.url = urljoin(str(request.url), self._cursor)
            request.params = None  # the next URL carries its own query
        elif self.cursor_body_path:  # the value as the API gave it: a number or a list stays one (as in dlt)
            request.json = dict(cast(dict[str, Any], request.json or {}))
            jsonpath.set_value_at_path(request.json, self.cursor_body_path, self._cursor)
        else:
            request.params = _with_param(request, self.cursor_param, self._cursor)


def _is_next_url(cursor: Any) -> bool:
    """Whether a cursor is a next-page URL: absolute, or a path with a query (`/v1/items?page=2`).

    An opaque token may start with `/` (base64 does), but never holds a `?`.
    """
    if not isinstance(cursor, str):
        return False
    return cursor.startswith(("http://", "https://")) or (cursor.startswith("/") and "?" in cursor)


# A page may repeat the one before when the API honours the offset but records were inserted before it, as
# many as a page holds (plain dlt loads it); an API that ignores the parameter repeats it on every page.
REPEATED_PAGES_TOLERATED = 2


class PageGuard(BasePaginator):
    """Wraps a paginator: a repeated page or request, or more than `max_pages` pages, is an error.

    A repeated page means the API ignores the paginator's parameter (an offset
    API that always returns its first page, a cursor that changes only a
    nonce), so paging would never end or load the same records again and
    again: that ends the paging at the third page in a row that repeats the
    one before (an offset API whose records shifted by a page while it was
    read repeats one page, which is loaded, as plain dlt does). Consecutive pages are compared by their body bytes and by their
    first and last records: by the resource's primary key (`record_key`) where
    it has one, else by their `id` when they have one, else whole. Identical
    empty pages at the end of the paging are a normal stop. A next request
    that repeats one already sent (next links that point back: page 2 links
    to page 1) is an error too.
    """

    def __init__(self, inner: BasePaginator, max_pages: int | None = None, record_key: Sequence[str] = ()) -> None:
        super().__init__()
        self.inner, self.max_pages, self.pages = inner, max_pages, 0
        self.record_key = tuple(record_key)
        self._last_page: tuple[bytes, Any] | None = None  # the last page's body and records' identity
        self._repeats = 0  # how many pages in a row repeated the one before
        self._requests: dict[str, int] = {}  # each request of this paging -> the page it fetched

    def __deepcopy__(self, memo: dict[int, Any]) -> PageGuard:
        # dlt copies the paginator for every parent record of a child resource. The page count and the last
        # page are immutable values, shared as they are; only the inner paginator's state needs a copy.
        clone = copy.copy(self)
        clone.inner = copy.deepcopy(self.inner, memo)
        return clone

    @property
    def has_next_page(self) -> bool:
        return self.inner.has_next_page

    def init_request(self, request: Request) -> None:
        self.pages, self._last_page, self._requests, self._repeats = 0, None, {}, 0
        self.inner.init_request(request)
        self._requests[_request_key(request)] = 1

    def update_state(self, response: Response, data: list[Any] | None = None) -> None:
        self.pages += 1
        self.inner.update_state(response, data)
        self._refuse_repeated_page(response, data)
        if self.max_pages and self.inner.has_next_page and self.pages >= self.max_pages:
            raise PaginationError(f"more than max_pages={self.max_pages} pages; raise client.max_pages if that is expected")

    def update_request(self, request: Request) -> None:
        self.inner.update_request(request)
        if not self.inner.has_next_page:  # dlt calls this after the last page too
            return
        key = _request_key(request)
        earlier = self._requests.setdefault(key, self.pages + 1)
        if earlier != self.pages + 1:
            raise PaginationError(
                f"page {self.pages + 1} would be requested exactly as page {earlier} was ({redact(str(request.url))}): "
                "the API's next-page links go round in a circle, so paging would never end"
            )

    def _refuse_repeated_page(self, response: Response, data: Any) -> None:
        records = data if isinstance(data, list) else ([data] if data else [])
        page = (  # the body itself, not a hash of it: bodies of different lengths compare unequal at once
            response.content or b"",
            _page_identity(records, self.record_key) if records else None,
        )
        previous, self._last_page = self._last_page, page
        if previous is None:
            return
        same_body = page[0] == previous[0] and (records or self.inner.has_next_page)
        same_records = page[1] is not None and page[1] == previous[1]
        self._repeats = self._repeats + 1 if same_body or same_records else 0
        if self._repeats > REPEATED_PAGES_TOLERATED:
            what = (
                "the same body"
                if same_body
                else "the same records"
                if isinstance(page[1], list)
                else "the same first and last records"
            )
            raise PaginationError(
                f"page {self.pages} ({redact(response.url)}) has {what} as pages {self.pages - self._repeats} to "
                f"{self.pages - 1}: the API ignores the paginator's parameter, so paging would never end; check the "
                "endpoint's paginator settings"
            )

    def __str__(self) -> str:
        return str(self.inner)


def _page_identity(records: list[Any], key: tuple[str, ...] = ()) -> Any:
    """What a page's records are compared by: the keys of its first and last records when both have one
    and they differ, else all its records as they are.

    The key is the resource's primary key, else `id`. By key, a per-request
    field (a fetch time) does not hide a repeated page; whole, a page of one
    entity's versions (an audit log, where every record has the same id), or
    of records without a key that begin and end alike (an event log's login
    and logout), is not taken for a repeat of the page before; by the primary
    key, a page of readings of the same sensors at another time neither.
    """
    first_id, last_id = _record_id(records[0], key or ("id",)), _record_id(records[-1], key or ("id",))
    if first_id is not None and last_id is not None and first_id != last_id:
        return json.dumps([first_id, last_id], default=str)
    return records


def _record_id(record: Any, key: tuple[str, ...]) -> Any:
    """The record's values of the `key` fields (None where it lacks one)."""
    if not isinstance(record, dict) or any(field not in record for field in key):
        return None
    return [record[field] for field in key]


def _request_key(request: Request) -> str:
    """What tells one page's request from another's: URL and query (in the URL or as params), JSON and form bodies."""
    url = urlsplit(str(request.url))
    params = cast(dict[str, Any], request.params or {})
    query = sorted([*parse_qsl(url.query, keep_blank_values=True), *((str(k), str(v)) for k, v in params.items())])
    where = url._replace(query="", fragment="").geturl()
    return json.dumps([where, query, request.json or None, request.data or None], sort_keys=True, default=str)


PaginatorBuilder = Callable[..., BasePaginator]
PAGINATORS: dict[str, PaginatorBuilder] = {
    "offset": ShortPageOffsetPaginator,
    "page_number": LimitedPageNumberPaginator,
    "cursor": CursorPaginator,
}


def build_paginator(config: Any, max_pages: int | None = None, record_key: Sequence[str] = ()) -> Any:
    """A paginator object for a spec `paginator` value (dlt's own types pass through), guarded (see PageGuard;
    `record_key`: the resource's primary key, by which its pages' records are told apart)."""
    if config is None:
        return None
    if isinstance(config, str):
        config = {"type": config}
    kind = config.get("type", "auto")
    builder = PAGINATORS.get(kind)
    params = {k: v for k, v in config.items() if k != "type"}
    paginator = builder(**params) if builder else create_paginator(config)
    if paginator is None or isinstance(paginator, SinglePagePaginator):
        return paginator
    return PageGuard(paginator, max_pages or None, record_key)
