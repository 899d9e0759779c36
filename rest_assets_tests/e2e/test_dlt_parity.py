"""Parity with plain dlt: one YAML config, loaded by rest_assets and by dlt's own `rest_api_source`.

Each case is a config that plain dlt accepts as written. Both loads read the
same mocked API (`responses`) into their own DuckDB file; the selected
resources, the tables, columns and rows must be equal, and so must the SETS of requests each side sent
(method, URL with its query sorted, JSON/form body, headers minus
Authorization, User-Agent, Accept-Encoding, Connection and Content-Length;
auth is checked by the mock, which answers 401 to a wrong credential).
Sets, not lists: a child in rest_assets reads a private copy of its parent
stream, so a parent's pages may be requested more than once (a known,
documented difference, README "dlt compatibility"). A case with a second set
of routes is run twice on each side (merge, incremental, schema contracts),
the data changed between the runs, and compared after each run.

The compatibility suite of issue 13: one case per documented key of dlt's
rest_api configuration (dlt/sources/rest_api/typing.py and its docs), grouped
a few keys per case.
"""

from __future__ import annotations

import base64
import json
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

import dlt
import duckdb
import pytest
import responses
import yaml
from dlt.sources.rest_api import rest_api_source

from rest_assets.compile.source import compile_source
from rest_assets.dialect import load_spec_file

BASE = "https://api.example.com"
DLT_COLUMNS = ("_dlt_load_id", "_dlt_id", "_dlt_parent_id")  # load ids and random row ids differ per load
VALIDITY_COLUMNS = ("_dlt_valid_from", "_dlt_valid_to", "since", "until")  # scd2's defaults, and the case's own names


Handler = Callable[[Any], Any]  # a request -> the JSON body to answer (or a Reply)


@dataclass
class Reply:
    """A mocked answer with a status and headers, for what a plain JSON body cannot say."""

    body: Any
    status: int = 200
    headers: dict[str, str] = field(default_factory=dict)


def _pages(items: list[dict[str, Any]], size: int) -> Handler:
    """A page_number API (`?page=N`, from 1) serving `items`."""
    pages = {f"page={n // size + 1}": {"data": items[n : n + size]} for n in range(0, len(items) + 1, size)}
    return lambda request: next((body for key, body in pages.items() if key in _query(request)), {"data": []})


def _query(request: Any) -> list[str]:
    return request.url.partition("?")[2].split("&")


def _param(request: Any, name: str, default: str) -> str:
    return dict(part.split("=", 1) for part in _query(request) if "=" in part).get(name, default)


def _cursor_page(start: int) -> dict[str, Any]:
    """Three events from `start`; the next cursor (at dlt's default `cursors.next`) until 9 events."""
    return {"data": [{"id": n} for n in range(start, start + 3)], "cursors": {"next": str(start + 3) if start < 6 else None}}


def _offset_page(offset: int) -> dict[str, Any]:
    """Always a full page: only the `total` (at dlt's default path) says where the data ends."""
    return {"total": 5, "data": [{"id": n} for n in range(offset, offset + 2)]}


POSTS = [{"id": 1, "title": "first post"}, {"id": 2, "title": "é/ü & more"}]


def _comments(request: Any) -> list[dict[str, Any]]:
    """Comments of the post in the path; each says which title header and body it was asked with."""
    body = json.loads(request.body) if request.body else {}
    post = int(body.get("post") or request.url.split("/posts/")[1].split("/")[0])
    return [{"id": post * 10 + n, "seen_title": request.headers.get("X-Post-Title"), "seen_body": body} for n in (1, 2)]


CASES = {
    "columns-as-a-list": (
        """
        client: {base_url: %s}
        resources:
          - name: orders
            columns: [{name: amount, data_type: double}, {name: id, data_type: bigint}]
            endpoint:
              path: orders
              data_selector: data
              paginator: {type: page_number, base_page: 1, total_path: null}
        """
        % BASE,
        {"GET orders": _pages([{"id": i, "amount": i * 2} for i in range(7)], 3)},
    ),
    "paginator-null-falls-back-to-the-client-paginator": (
        """
        client:
          base_url: %s
          paginator: {type: page_number, base_page: 1, total_path: null}
        resource_defaults:
          endpoint:
            paginator: {type: offset, limit: 2, total_path: null}
        resources:
          - name: orders
            endpoint: {path: orders, data_selector: data, paginator: null}
        """
        % BASE,
        {"GET orders": _pages([{"id": i} for i in range(5)], 2)},
    ),
    "processing-steps-filter-and-map": (
        """
        client: {base_url: %s}
        resources:
          - name: orders
            processing_steps:
              - filter: "status != 'deleted' and amount >= 2"
              - map: {drop: [internal], rename: {amount: total}}
            endpoint:
              path: orders
              data_selector: data
              paginator: {type: page_number, base_page: 1, total_path: null}
        """
        % BASE,
        {
            "GET orders": _pages(
                [{"id": i, "amount": i, "internal": "x", "status": ["open", "deleted"][i % 2]} for i in range(9)], 4
            )
        },
    ),
    # dlt's "headers with resource data" example: one parent, its fields in the path and in a header
    "parent-fields-in-path-and-headers": (
        """
        client: {base_url: %s, paginator: single_page}
        resources:
          - {name: posts, endpoint: {path: posts, data_selector: data}}
          - name: comments
            include_from_parent: [title]
            endpoint:
              path: "posts/{resources.posts.id}/comments"
              headers: {X-Post-Title: "{resources.posts.title}"}
        """
        % BASE,
        {"GET posts": lambda request: {"data": POSTS}, r"GET posts/\d+/comments": _comments},
    ),
    # dlt's defaults: a cursor paginator reads `cursors.next`; an offset paginator stops at `total`
    "cursor-paginator-default-path": (
        """
        client: {base_url: %s}
        resources:
          - {name: events, endpoint: {path: events, data_selector: data, paginator: {type: cursor}}}
        """
        % BASE,
        {"GET events": lambda request: _cursor_page(int(_param(request, "cursor", "0")))},
    ),
    "offset-paginator-default-total": (
        """
        client: {base_url: %s}
        resources:
          - {name: events, endpoint: {path: events, data_selector: data, paginator: {type: offset, limit: 2}}}
        """
        % BASE,
        {"GET events": lambda request: _offset_page(int(_param(request, "offset", "0")))},
    ),
    # dlt's incremental placeholders composed into a param and placed in a json body
    "incremental-start-and-end-values-in-params-and-json": (
        """
        client: {base_url: %s, paginator: single_page}
        resources:
          - name: events
            endpoint:
              path: events
              method: POST
              params: {q: "updated>{incremental.start_value} AND updated<{incremental.end_value}"}
              json: {from: "{incremental.start_value}", to: "{incremental.end_value}"}
              incremental: {cursor_path: updated, initial_value: 3, end_value: 7}
        """
        % BASE,
        {
            "POST events": lambda request: [
                {"updated": n, "q": dict(part.split("=", 1) for part in _query(request))["q"], "body": json.loads(request.body)}
                for n in range(10)
            ]
        },
    ),
    # a POST child whose parent field is only in the json body
    "parent-field-only-in-json": (
        """
        client: {base_url: %s, paginator: single_page}
        resources:
          - {name: posts, endpoint: {path: posts, data_selector: data}}
          - name: comments
            endpoint:
              path: posts/0/comments
              method: POST
              json: {post: "{resources.posts.id}", title: "{resources.posts.title}"}
        """
        % BASE,
        {"GET posts": lambda request: {"data": POSTS}, r"POST posts/\d+/comments": _comments},
    ),
}


def _guarded(handler: Handler, check: Callable[[Any], bool]) -> Handler:
    """`handler` behind a credential check: a request failing `check` gets a 401 (both sides then fail)."""
    return lambda request: handler(request) if check(request) else Reply({"error": "unauthorized"}, 401)


def _header(name: str, value: str) -> Callable[[Any], bool]:
    return lambda request: request.headers.get(name) == value


def _numbered(name: str, count: int, start: int = 1, **more: Any) -> list[dict[str, Any]]:
    return [{"id": n, "name": f"{name} {n}", **more} for n in range(start, start + count)]


def _json_link(request: Any) -> dict[str, Any]:
    page = int(_param(request, "page", "1"))
    next_page = f"{BASE}/orders?page={page + 1}" if page < 3 else None
    return {"data": _numbered("order", 2, start=page * 10), "links": {"next": next_page}}


def _header_link(request: Any) -> Reply:
    page = int(_param(request, "page", "1"))
    link = {"Link": f'<{BASE}/users?page={page + 1}>; rel="next"'} if page < 3 else {}
    return Reply(_numbered("user", 2, start=page * 10), headers=link)


def _header_cursor(request: Any) -> Reply:
    after = int(_param(request, "after", "0"))
    return Reply(_numbered("team", 2, start=after), headers={"X-Next": str(after + 2)} if after < 4 else {})


def _page_number(request: Any) -> dict[str, Any]:
    page = int(_param(request, "p", "0"))
    return {"result": {"pages": 3, "items": _numbered("item", 2, start=page * 10, status=_param(request, "status", "?"))}}


def _auto(request: Any) -> dict[str, Any]:
    page = int(_param(request, "page", "1"))
    return {"items": _numbered("order", 2, start=page * 10), "next": f"{BASE}/orders?page={page + 1}" if page < 2 else None}


def _between(rows: list[dict[str, Any]], low: str, high: str, key: str) -> Handler:
    """Rows whose `key` is within the request's `low`/`high` params (either may be missing)."""

    def handler(request: Any) -> dict[str, Any]:
        since, until = float(_param(request, low, "-1e9")), float(_param(request, high, "1e9"))
        return {"data": [row for row in rows if since <= row[key] <= until]}

    return handler


def _form(request: Any) -> list[dict[str, Any]]:
    return [{"id": 1, "asked": dict(parse_qsl(request.body or ""))}, {"id": 2}]


def _body(request: Any) -> dict[str, Any]:
    return json.loads(request.body) if request.body else {}


def _offset_in_body(request: Any) -> dict[str, Any]:
    paging = _body(request).get("paging", {})
    start, size = paging.get("offset", 0), paging.get("limit", 0)
    return {"data": _numbered("a", size, start=start + 1), "has_more": start + size < 5}


def _max_page(request: Any) -> dict[str, Any]:
    """Never ends by itself: only `maximum_page` stops it."""
    page = int(_param(request, "page", "1"))
    return {"data": _numbered("b", 2, start=page * 10)}


def _cursor_has_more(request: Any) -> dict[str, Any]:
    at = int(_param(request, "c", "0"))
    return {"data": _numbered("c", 2, start=at), "next": str(at + 2), "more": at < 4}


def _cursor_in_body(request: Any) -> dict[str, Any]:
    at = int(_body(request).get("cursor") or 0)
    return {"data": _numbered("d", 2, start=at), "cursors": {"next": str(at + 2) if at < 4 else None}}


def _custom_link(request: Any) -> Reply:
    page = int(_param(request, "page", "1"))
    link = {"Link": f'<{BASE}/e?page={page + 1}>; rel="next_page"'} if page < 3 else {}
    return Reply(_numbered("e", 2, start=page * 10), headers=link)


def _default_json_link(request: Any) -> dict[str, Any]:
    page = int(_param(request, "page", "1"))
    return {"data": _numbered("f", 2, start=page * 10), "next": f"{BASE}/f?page={page + 1}" if page < 3 else None}


def _page_in_body(request: Any) -> dict[str, Any]:
    page = int(_body(request).get("page") or 0)
    return {"data": _numbered("g", 2, start=page * 10) if page < 3 else []}


def _child_since(count: int) -> Handler:
    """`count` comments per post, post p's updated at p*10+1..; only those at or after `since`."""

    def handler(request: Any) -> list[dict[str, Any]]:
        post, since = int(request.url.split("/posts/")[1].split("/")[0]), int(_param(request, "since", "0"))
        rows = [{"id": post * 100 + n, "updated": post * 10 + n} for n in range(1, count + 1)]
        return [row for row in rows if row["updated"] >= since]

    return handler


FAST_PATH_POSTS = [
    {
        "id": n,
        "userId": f"u{n}",
        "owner": {"id": n * 7, "name": f"owner {n}"},
        "created": f"2024-01-0{n}T10:00:00Z",
        "tags": [f"t{n}", "x"] if n >= 5 else None,
    }
    for n in range(1, 7)
]


def _owner_comments(request: Any) -> list[dict[str, Any]]:
    """Three comments naming the user, owner and `after` the request carried."""
    parts = urlsplit(request.url).path.split("/")
    user, owner, after = parts[2], int(parts[4]), _param(request, "after", "")
    return [{"id": owner * 10 + n, "user": user, "asked_after": after} for n in range(3)]


def _below(kind: str, count: int) -> Handler:
    """`count` rows of `kind` under the parent whose id is in the path, on one page (page 1, then empty)."""

    def handler(request: Any) -> dict[str, Any]:
        parent = int(urlsplit(request.url).path.split("/")[-2])
        rows = [{"id": parent * 10 + n, "kind": kind} for n in range(1, count + 1)]
        return {"data": rows if _param(request, "page", "1") == "1" else []}

    return handler


def _updated(ids: range, **more: Any) -> list[dict[str, Any]]:
    """Rows whose cursor `updated` is their id."""
    return [{"id": n, "updated": n, **more} for n in ids]


def _details(request: Any) -> list[dict[str, Any]]:
    """One detail row of the parent whose id is in the path."""
    return [{"id": int(request.url.split("/")[-2]) * 100}]


# Rows without a cursor value (`updated` missing, then null) around two with one: on_cursor_value_missing decides.
SPARSE = [{"id": 1, "updated": 1}, {"id": 2}, {"id": 3, "updated": None}, {"id": 4, "updated": 5}]


BEARER = "Bearer t0ken-abc"
BASIC = "Basic " + base64.b64encode(b"ann:s3cret-pw").decode()
NESTED = {"meta": {"a": 1, "b": {"c": "x"}}, "tags": ["t1", "t2"]}

KEY_CASES: dict[str, tuple[Any, ...]] = {
    "client-headers-bearer-auth-json-link-paginator": (
        """
        client:
          base_url: %s
          headers: {X-Client: parity}
          auth: {type: bearer, token: t0ken-abc}
        resources:
          - name: orders
            endpoint: {path: orders, data_selector: data, paginator: {type: json_link, next_url_path: links.next}}
        """
        % BASE,
        {
            "GET orders": _guarded(
                _json_link, lambda r: _header("Authorization", "Bearer t0ken-abc")(r) and _header("X-Client", "parity")(r)
            )
        },
    ),
    # api_key at client level (header) and endpoint level (query; `cookie` is our extension, dlt has none);
    # header_link, header_cursor, auto on a plain list; a resource given as a bare name
    "api-key-header-and-query-endpoint-auth-header-paginators-bare-resource": (
        """
        client:
          base_url: %s
          auth: {type: api_key, name: X-Api-Key, api_key: k3y-header, location: header}
        resources:
          - {name: users, endpoint: {path: users, paginator: header_link}}
          - name: teams
            endpoint:
              path: teams
              auth: {type: api_key, name: key, api_key: k3y-query, location: query}
              paginator: {type: header_cursor, cursor_key: X-Next, cursor_param: after}
          - tags
        """
        % BASE,
        {
            "GET users": _guarded(_header_link, _header("X-Api-Key", "k3y-header")),
            "GET teams": _guarded(_header_cursor, lambda r: _param(r, "key", "") == "k3y-query"),
            "GET tags": _guarded(lambda r: _numbered("tag", 3), _header("X-Api-Key", "k3y-header")),
        },
    ),
    "http-basic-page-number-params-endpoint-headers-deep-data-selector": (
        """
        client:
          base_url: %s
          auth: {type: http_basic, username: ann, password: s3cret-pw}
        resources:
          - name: items
            endpoint:
              path: items
              params: {status: open, sort: id}
              headers: {X-Trace: parity}
              data_selector: result.items
              paginator: {type: page_number, page_param: p, base_page: 0, total_path: result.pages}
        """
        % BASE,
        {"GET items": _guarded(_page_number, lambda r: _header("Authorization", BASIC)(r) and _header("X-Trace", "parity")(r))},
    ),
    "oauth2-client-credentials-auto-paginator": (
        """
        client:
          base_url: %s
          auth:
            type: oauth2_client_credentials
            access_token_url: %s/oauth/token
            client_id: c1d
            client_secret: cs3cret-xyz
            access_token_request_data: {audience: parity}
        resources:
          - {name: orders, endpoint: orders}
        """
        % (BASE, BASE),
        {
            "POST oauth/token": lambda r: {"access_token": "tok-123", "expires_in": 3600},
            "GET orders": _guarded(_auto, _header("Authorization", "Bearer tok-123")),
        },
    ),
    # the paginators' less common keys: body paths (POST), has_more_path, maximum_page, links_next_key, defaults
    "paginator-body-paths-has-more-maximum-page-link-key": (
        """
        client: {base_url: %s}
        resources:
          - name: a
            endpoint:
              path: a
              method: POST
              json: {filter: open}
              data_selector: data
              paginator: {type: offset, limit: 2, offset_body_path: paging.offset, limit_body_path: paging.limit,
                          total_path: null, has_more_path: has_more}
          - name: b
            endpoint:
              path: b
              data_selector: data
              paginator: {type: page_number, base_page: 1, total_path: null, maximum_page: 3}
          - name: c
            endpoint:
              path: c
              data_selector: data
              paginator: {type: cursor, cursor_path: next, cursor_param: c, has_more_path: more}
          - name: d
            endpoint:
              path: d
              method: POST
              json: {}
              data_selector: data
              paginator: {type: cursor, cursor_body_path: cursor}
          - {name: e, endpoint: {path: e, paginator: {type: header_link, links_next_key: next_page}}}
          - {name: f, endpoint: {path: f, data_selector: data, paginator: json_link}}
          - name: g
            endpoint:
              path: g
              method: POST
              json: {}
              data_selector: data
              paginator: {type: page_number, page_body_path: page, total_path: null, stop_after_empty_page: true}
        """
        % BASE,
        {
            "POST a": _offset_in_body,
            "GET b": _max_page,
            "GET c": _cursor_has_more,
            "POST d": _cursor_in_body,
            "GET e": _custom_link,
            "GET f": _default_json_link,
            "POST g": _page_in_body,
        },
    ),
    # bearer's shorthand (no `type`); oauth2 at endpoint level with `default_token_expiration` (no expires_in)
    "bearer-shorthand-and-endpoint-oauth2-token-expiration": (
        """
        client:
          base_url: %s
          paginator: single_page
          auth: {token: t0ken-abc}
        resources:
          - orders
          - name: invoices
            endpoint:
              path: invoices
              auth:
                type: oauth2_client_credentials
                access_token_url: %s/oauth/token
                client_id: c1d
                client_secret: cs3cret-xyz
                default_token_expiration: 60
        """
        % (BASE, BASE),
        {
            "GET orders": _guarded(lambda r: _numbered("order", 2), _header("Authorization", BEARER)),
            "POST oauth/token": lambda r: {"access_token": "tok-456"},
            "GET invoices": _guarded(lambda r: _numbered("invoice", 2), _header("Authorization", "Bearer tok-456")),
        },
    ),
    # two runs: merge on primary_key (table_name, schema_contract), merge_key with delete-insert (columns,
    # max_table_nesting: 0), replace, a deselected resource
    "write-dispositions-keys-table-name-columns-nesting-selected-contract": (
        """
        client: {base_url: %s, paginator: single_page}
        resources:
          - name: users
            table_name: people
            primary_key: id
            write_disposition: merge
            schema_contract: {columns: discard_value}
            endpoint: users
          - name: events
            write_disposition: {disposition: merge, strategy: delete-insert}
            merge_key: day
            max_table_nesting: 0
            columns: {day: {data_type: text}, score: {data_type: double}}
            endpoint: events
          - {name: audit, write_disposition: replace, endpoint: audit}
          - {name: hidden, selected: false, endpoint: hidden}
        """
        % BASE,
        {
            "GET users": lambda r: _numbered("user", 2),
            "GET hidden": lambda r: _numbered("hidden", 2),
            "GET events": lambda r: [
                {"id": 1, "day": "d1", "score": 1, **NESTED},
                {"id": 2, "day": "d1", "score": 2},
                {"id": 3, "day": "d2", "score": 3},
            ],
            "GET audit": lambda r: _numbered("audit", 3),
        },
        {
            "GET users": lambda r: [{"id": 2, "name": "renamed", "extra": "dropped"}, *_numbered("user", 1, start=3)],
            "GET hidden": lambda r: _numbered("hidden", 2),
            "GET events": lambda r: [{"id": 4, "day": "d2", "score": 4, **NESTED}],
            "GET audit": lambda r: _numbered("audit", 2, start=7),
        },
    ),
    # two runs: merge strategy scd2, given on a resource and in resource_defaults (dlt's `_dlt_id` is a
    # hash of the row there: an unchanged row keeps its version, a changed one gets a new one)
    "merge-scd2": (
        """
        client: {base_url: %s, paginator: single_page}
        resource_defaults:
          write_disposition: {disposition: merge, strategy: scd2}
        resources:
          - name: customers
            write_disposition: {disposition: merge, strategy: scd2, validity_column_names: [since, until]}
            endpoint: customers
          - {name: plans, endpoint: plans}
        """
        % BASE,
        {
            "GET customers": lambda r: [{"id": 1, "name": "a"}, {"id": 2, "name": "b"}],
            "GET plans": lambda r: [{"id": 1, "tier": "x"}, {"id": 2, "tier": "y"}],
        },
        {
            "GET customers": lambda r: [{"id": 1, "name": "a"}, {"id": 2, "name": "B"}, {"id": 3, "name": "c"}],
            "GET plans": lambda r: [{"id": 1, "tier": "x"}, {"id": 2, "tier": "z"}],
        },
    ),
    # two runs: the other merge strategies and merge column hints (upsert, insert-only, cdc, delete-insert
    # with a hard_delete column and a dedup_sort column)
    "merge-upsert-insert-only-cdc-hard-delete-dedup-sort": (
        """
        client: {base_url: %s, paginator: single_page}
        resources:
          - name: accounts
            primary_key: id
            write_disposition: {disposition: merge, strategy: upsert}
            endpoint: accounts
          - name: signups
            primary_key: id
            write_disposition: {disposition: merge, strategy: insert-only}
            endpoint: signups
          - name: members
            primary_key: id
            write_disposition: {disposition: merge, strategy: cdc}
            endpoint: members
          - name: tickets
            primary_key: id
            write_disposition: merge
            columns: {deleted: {hard_delete: true}, version: {dedup_sort: desc}}
            endpoint: tickets
        """
        % BASE,
        {
            "GET accounts": lambda r: [{"id": 1, "plan": "a"}, {"id": 2, "plan": "b"}],
            "GET signups": lambda r: [{"id": 1, "via": "web"}, {"id": 2, "via": "app"}],
            "GET members": lambda r: [{"id": 1, "role": "a"}, {"id": 2, "role": "b"}],
            "GET tickets": lambda r: [
                {"id": 1, "state": "open", "version": 1, "deleted": False},
                {"id": 1, "state": "closed", "version": 2, "deleted": False},
                {"id": 2, "state": "open", "version": 1, "deleted": False},
            ],
        },
        {
            "GET accounts": lambda r: [{"id": 2, "plan": "B"}, {"id": 3, "plan": "c"}],
            "GET signups": lambda r: [{"id": 2, "via": "changed"}, {"id": 3, "via": "web"}],
            "GET members": lambda r: [{"id": 2, "role": "B"}, {"id": 3, "role": "c"}],  # cdc deletes the absent 1
            "GET tickets": lambda r: [
                {"id": 2, "state": "gone", "version": 2, "deleted": True},
                {"id": 3, "state": "open", "version": 1, "deleted": False},
            ],
        },
    ),
    # column data types given as hints, on values the API sends as strings, numbers and objects (payments:
    # mixed, dlt's row path; refunds: one type a column, the Arrow path with the hints cast after it)
    "columns-data-type-hints": (
        """
        client: {base_url: %s, paginator: single_page}
        resources:
          - name: payments
            primary_key: id
            columns:
              <<: &dates_and_amounts
                amount: {data_type: decimal, precision: 10, scale: 2}
                day: {data_type: date}
                clock: {data_type: time}
                paid_at: {data_type: timestamp}
              payload: {data_type: json}
              ratio: {data_type: double}
              count: {data_type: bigint}
              flag: {data_type: bool}
              note: {data_type: text}
            endpoint: payments
          - name: refunds
            primary_key: id
            columns: *dates_and_amounts
            endpoint: refunds
        """
        % BASE,
        {
            "GET payments": lambda r: [
                {
                    "id": 1,
                    "amount": "12.50",
                    "day": "2024-03-01",
                    "clock": "10:11:12",
                    "paid_at": "2024-03-01T10:11:12Z",
                    "payload": {"a": [1, 2]},
                    "ratio": 1,
                    "count": 3,
                    "flag": True,
                    "note": 5,
                },
                {
                    "id": 2,
                    "amount": 3.25,
                    "day": "2024-03-02",
                    "clock": "23:00:00",
                    "paid_at": "2024-03-02T00:00:00+02:00",
                    "payload": {"b": None},
                    "ratio": 0.5,
                    "count": 4,
                    "flag": False,
                    "note": "x",
                },
                {
                    "id": 3,
                    "amount": "7",
                    "day": "2024-03-03",
                    "clock": "00:00:01",
                    "paid_at": "2024-03-03T00:00:00Z",
                    "payload": [1],
                    "ratio": 2.5,
                    "count": 5,
                    "flag": True,
                    "note": "y",
                },
            ],
            "GET refunds": lambda r: [
                {"id": 1, "amount": "12.50", "day": "2024-03-01", "clock": "10:11:12", "paid_at": "2024-03-01T10:11:12Z"},
                {"id": 2, "amount": "0.05", "day": "2024-12-31", "clock": "23:59:59", "paid_at": "2024-03-02T00:00:00+02:00"},
            ],
        },
    ),
    # two runs: incremental with start_param/end_param/initial_value/end_value, and an incremental param
    "incremental-config-and-incremental-param": (
        """
        client: {base_url: %s, paginator: single_page}
        resources:
          - name: events
            primary_key: id
            write_disposition: merge
            endpoint:
              path: events
              data_selector: data
              incremental: {start_param: since, end_param: until, cursor_path: updated, initial_value: 10, end_value: 100}
          - name: logs
            endpoint:
              path: logs
              data_selector: data
              params: {since: {type: incremental, cursor_path: seq, initial_value: 0}}
        """
        % BASE,
        {
            "GET events": _between([{"id": n, "updated": n * 5} for n in range(1, 7)], "since", "until", "updated"),
            "GET logs": _between([{"seq": n, "id": n} for n in range(1, 4)], "since", "until", "seq"),
        },
        {
            "GET events": _between([{"id": n, "updated": n * 5 + 1} for n in range(1, 9)], "since", "until", "updated"),
            "GET logs": _between([{"seq": n, "id": n} for n in range(1, 6)], "since", "until", "seq"),
        },
    ),
    # an ISO timestamp cursor with a string initial_value and no column hint, over two runs: the Arrow path must
    # leave the cursor as dlt's incremental step sees it in plain dlt (a string), or the comparison fails
    "incremental-on-an-unhinted-iso-timestamp-cursor": (
        """
        client: {base_url: %s, paginator: single_page}
        resources:
          - name: events
            primary_key: id
            write_disposition: merge
            endpoint:
              path: events
              data_selector: data
              incremental: {start_param: since, cursor_path: updated_at, initial_value: "2024-01-01T00:00:00Z"}
        """
        % BASE,
        {"GET events": lambda request: {"data": [{"id": n, "updated_at": f"2024-01-0{n}T00:00:00Z"} for n in range(1, 5)]}},
        {"GET events": lambda request: {"data": [{"id": n, "updated_at": f"2024-01-0{n}T12:00:00Z"} for n in range(3, 7)]}},
    ),
    # two runs: dlt's incremental options that decide what a later run takes again. `lag` steps the start back
    # (since=3, not 5: rows 3-5 are appended again); `range_start: open` drops rows at the start value (id 2 in
    # run 1, the new id 5 at the stored cursor in run 2); the incremental's own `primary_key` is its dedup key
    # (id 2 comes back changed at the cursor: deduplicated by id, not by the whole row); `range_end: closed`
    # keeps the end value's row (6); `last_value_func: min` (dlt's name for its built-in) follows a cursor
    # that falls (run 1: 8 down to 6 of 10-6; run 2: 5-3 below the stored 6)
    "incremental-lag-range-start-range-end-dedup-primary-key-min": (
        """
        client: {base_url: %s, paginator: single_page}
        resources:
          - name: lagged
            endpoint:
              path: lagged
              data_selector: data
              incremental: {start_param: since, cursor_path: updated, initial_value: 0, lag: 2}
          - name: open_start
            endpoint:
              path: open_start
              data_selector: data
              incremental: {start_param: since, cursor_path: updated, initial_value: 2, range_start: open}
          - name: deduped
            endpoint:
              path: deduped
              data_selector: data
              incremental: {start_param: since, cursor_path: updated, initial_value: 0, primary_key: id}
          - name: closed_end
            endpoint:
              path: closed_end
              data_selector: data
              incremental: {cursor_path: updated, initial_value: 3, end_value: 6, range_end: closed}
          - name: countdown
            endpoint:
              path: countdown
              data_selector: data
              incremental: {cursor_path: updated, initial_value: 8, last_value_func: min}
        """
        % BASE,
        {
            "GET lagged": _between(_updated(range(1, 6)), "since", "until", "updated"),
            "GET open_start": _between(_updated(range(1, 5)), "since", "until", "updated"),
            "GET deduped": _between(
                [{"id": 1, "updated": 1, "v": "a"}, {"id": 2, "updated": 5, "v": "a"}], "since", "until", "updated"
            ),
            "GET closed_end": _between(_updated(range(1, 9)), "since", "until", "updated"),
            "GET countdown": lambda r: {"data": _updated(range(10, 5, -1))},
        },
        {
            "GET lagged": _between(_updated(range(1, 8)), "since", "until", "updated"),
            "GET open_start": _between(
                [*_updated(range(1, 5)), {"id": 5, "updated": 4}, {"id": 6, "updated": 5}], "since", "until", "updated"
            ),
            "GET deduped": _between(
                [{"id": 2, "updated": 5, "v": "b"}, {"id": 3, "updated": 6, "v": "a"}], "since", "until", "updated"
            ),
            "GET closed_end": _between(_updated(range(1, 9)), "since", "until", "updated"),
            "GET countdown": lambda r: {"data": _updated(range(10, 2, -1))},
        },
    ),
    # two runs: rows without a cursor value are loaded (`include`) or dropped (`exclude`; dlt's default
    # `raise` fails the load), also where no row of a page has the cursor field (`unstamped`: dlt's Arrow
    # incremental would fail on the missing column); `row_order` lets dlt stop paging at the first row out
    # of range: `desc` at the start value (run 1: initial_value 5, page 3 of 4; run 2: the stored 10,
    # page 2; also as an incremental param, and for a child's parent), `asc` at the end value
    "incremental-on-cursor-value-missing-and-row-order": (
        """
        client: {base_url: %s}
        resources:
          - name: included
            endpoint:
              path: included
              data_selector: data
              paginator: single_page
              incremental: {cursor_path: updated, initial_value: 0, on_cursor_value_missing: include}
          - name: excluded
            endpoint:
              path: excluded
              data_selector: data
              paginator: single_page
              incremental: {cursor_path: updated, initial_value: 0, on_cursor_value_missing: exclude}
          - name: unstamped
            endpoint:
              path: unstamped
              data_selector: data
              paginator: single_page
              incremental: {cursor_path: updated, initial_value: 0, on_cursor_value_missing: include}
          - name: newest_first
            endpoint:
              path: newest_first
              data_selector: data
              paginator: {type: page_number, base_page: 1, total_path: null}
              incremental: {cursor_path: updated, initial_value: 5, row_order: desc}
          - name: details
            endpoint: {path: "newest_first/{resources.newest_first.id}/details", paginator: single_page}
          - name: newest_by_param
            endpoint:
              path: newest_by_param
              data_selector: data
              paginator: {type: page_number, base_page: 1, total_path: null}
              params: {since: {type: incremental, cursor_path: updated, initial_value: 5, row_order: desc}}
          - name: oldest_first
            endpoint:
              path: oldest_first
              data_selector: data
              paginator: {type: page_number, base_page: 1, total_path: null}
              incremental: {cursor_path: updated, initial_value: 0, end_value: 5, row_order: asc}
        """
        % BASE,
        {
            "GET included": lambda r: {"data": SPARSE},
            "GET excluded": lambda r: {"data": SPARSE},
            "GET unstamped": lambda r: {"data": _numbered("unstamped", 2)},
            "GET newest_first": _pages(_updated(range(10, 0, -1)), 3),
            "GET newest_by_param": _pages(_updated(range(10, 0, -1)), 3),
            r"GET newest_first/\d+/details": _details,
            "GET oldest_first": _pages(_updated(range(1, 11)), 3),
        },
        {
            "GET included": lambda r: {"data": [*SPARSE, {"id": 5, "updated": 6}]},
            "GET excluded": lambda r: {"data": [*SPARSE, {"id": 5, "updated": 6}]},
            "GET unstamped": lambda r: {"data": _numbered("unstamped", 2)},
            "GET newest_first": _pages(_updated(range(13, 0, -1)), 3),
            "GET newest_by_param": _pages(_updated(range(13, 0, -1)), 3),
            r"GET newest_first/\d+/details": _details,
            "GET oldest_first": _pages(_updated(range(1, 11)), 3),
        },
    ),
    "resolve-param-include-from-parent-parallelized": (
        """
        client: {base_url: %s, paginator: single_page}
        resources:
          - {name: posts, endpoint: {path: posts, data_selector: data}}
          - name: comments
            parallelized: true
            include_from_parent: [title]
            endpoint:
              path: "posts/{post_id}/comments"
              params:
                post_id: {type: resolve, resource: posts, field: id}
        """
        % BASE,
        {"GET posts": lambda request: {"data": POSTS}, r"GET posts/\d+/comments": _comments},
    ),
    # two runs: an incremental child (one cursor for the resource, whichever parent a row came from)
    "incremental-child": (
        """
        client: {base_url: %s, paginator: single_page}
        resources:
          - {name: posts, endpoint: {path: posts, data_selector: data}}
          - name: comments
            primary_key: id
            write_disposition: merge
            endpoint:
              path: "posts/{resources.posts.id}/comments"
              params: {since: "{incremental.start_value}"}
              incremental: {cursor_path: updated, initial_value: 0}
        """
        % BASE,
        {"GET posts": lambda r: {"data": POSTS}, r"GET posts/\d+/comments": _child_since(3)},
        {"GET posts": lambda r: {"data": POSTS}, r"GET posts/\d+/comments": _child_since(5)},
    ),
    # The parent goes the fast path (Arrow: `owner` flattened, `created` cast, the rows with `tags` lists
    # split off as rows): the child must still be handed the API's records.
    "parent-fields-the-fast-path-renames-flattens-and-casts": (
        """
        client: {base_url: %s, paginator: single_page}
        resources:
          - name: posts
            columns: {created: {data_type: timestamp}}
            endpoint: {path: posts, data_selector: data}
          - name: comments
            include_from_parent: [userId, created]
            endpoint:
              path: "users/{resources.posts.userId}/owners/{resources.posts.owner.id}/comments"
              params: {after: "{resources.posts.created}"}
        """
        % BASE,
        {"GET posts": lambda r: {"data": FAST_PATH_POSTS}, r"GET users/[^/]+/owners/\d+/comments": _owner_comments},
    ),
    # Two children read one parent, a grandchild reads a child (listed before it): each page once.
    "two-children-and-a-grandchild-listed-first": (
        """
        client:
          base_url: %s
          paginator: {type: page_number, base_page: 1, total_path: null}
        resources:
          - name: replies
            endpoint: {path: "comments/{resources.comments.id}/replies", data_selector: data}
          - {name: posts, endpoint: {path: posts, data_selector: data}}
          - name: comments
            endpoint: {path: "posts/{resources.posts.id}/comments", data_selector: data}
          - name: likes
            endpoint: {path: "posts/{resources.posts.id}/likes", data_selector: data}
        """
        % BASE,
        {
            "GET posts": _pages(_numbered("post", 5), 2),
            r"GET posts/\d+/comments": _below("comments", 2),
            r"GET posts/\d+/likes": _below("likes", 1),
            r"GET comments/\d+/replies": _below("replies", 2),
        },
    ),
    # The parent's processing steps run before dlt hands its records on: the child sees only what they keep.
    "parent-processing-steps-decide-its-children": (
        """
        client: {base_url: %s, paginator: single_page}
        resources:
          - name: posts
            processing_steps:
              - filter: "status != 'draft'"
              - map: {rename: {title: headline}}
            endpoint: {path: posts, data_selector: data}
          - name: comments
            include_from_parent: [headline]
            endpoint: {path: "posts/{resources.posts.id}/comments", data_selector: data}
        """
        % BASE,
        {
            "GET posts": lambda r: {
                "data": [{"id": n, "title": f"post {n}", "status": ["draft", "live"][n % 2]} for n in range(1, 7)]
            },
            r"GET posts/\d+/comments": _below("comments", 2),
        },
    ),
    "post-form-data-and-response-actions": (
        """
        client: {base_url: %s, paginator: single_page}
        resources:
          - name: search
            endpoint: {path: search, method: POST, data: {q: "open items", page_size: 5}}
          - name: missing
            endpoint:
              path: missing
              response_actions: [{status_code: 404, action: ignore}]
          - name: flaky
            endpoint:
              path: flaky
              response_actions: [{content: "not available", action: ignore}]
        """
        % BASE,
        {
            "POST search": _form,
            "GET missing": lambda r: Reply({"error": "gone"}, 404),
            "GET flaky": lambda r: {"message": "not available"},
        },
    ),
}
CASES.update(KEY_CASES)


def _mock(api: responses.RequestsMock, routes: dict[str, Handler]) -> None:
    """Serve each `"<METHOD> <path regex>"` route with its handler."""
    for route, handler in routes.items():
        method, path = route.split(" ", 1)

        def answer(request: Any, handler: Handler = handler) -> tuple[int, dict[str, str], str]:
            reply = handler(request)
            reply = reply if isinstance(reply, Reply) else Reply(reply)
            return reply.status, {"Content-Type": "application/json", **reply.headers}, json.dumps(reply.body)

        api.add_callback(method, re.compile(f"{re.escape(BASE)}/{path}(\\?.*)?$"), callback=answer)


def _drop_and_rename(record: dict[str, Any]) -> dict[str, Any]:
    record.pop("internal", None)
    record["total"] = record.pop("amount")
    return record


# What a dlt user writes in Python for the declarative steps of a case (resource -> steps).
PYTHON_STEPS = {
    "parent-processing-steps-decide-its-children": {
        "posts": [
            {"filter": lambda record: record["status"] != "draft"},
            {"map": lambda record: {**{k: v for k, v in record.items() if k != "title"}, "headline": record["title"]}},
        ]
    },
    "processing-steps-filter-and-map": {
        "orders": [
            {"filter": lambda record: record["status"] != "deleted" and record["amount"] >= 2},
            {"map": _drop_and_rename},
        ]
    },
}


def _as_plain_dlt(case: str, config: dict[str, Any]) -> dict[str, Any]:
    """The same config for plain dlt: declarative processing steps as the Python callables dlt takes."""
    for resource in config["resources"]:
        if "processing_steps" in resource:
            resource["processing_steps"] = PYTHON_STEPS[case][resource["name"]]
    return config


def _load(source: Any, folder: Path, fmt: str | None) -> Path:
    database = folder / "out.duckdb"
    pipeline = dlt.pipeline(
        pipeline_name="parity",
        pipelines_dir=str(folder / "dlt"),
        destination=dlt.destinations.duckdb(str(database)),
        dataset_name="parity",
    )
    pipeline.run(source, **({"loader_file_format": fmt} if fmt else {}))
    return database


def _tables(database: Path) -> dict[str, list[tuple[Any, ...]]]:
    """Every data table of the dataset: its column names in table order, then its rows sorted (dlt's own columns left out)."""
    with duckdb.connect(str(database), read_only=True) as connection:
        names = [
            row[0]
            for row in connection.execute(
                "select table_name from information_schema.tables where table_schema = 'parity' "
                "and table_name not like '_dlt%' order by 1"
            ).fetchall()
        ]
        tables = {}
        for name in names:
            columns = [
                row[0]
                for row in connection.execute(
                    "select column_name from information_schema.columns where table_schema = 'parity' and table_name = ? "
                    "order by ordinal_position",
                    [name],
                ).fetchall()
                if row[0] not in DLT_COLUMNS
            ]
            types = connection.execute(
                "select column_name, data_type from information_schema.columns where table_schema = 'parity' "
                "and table_name = ? order by 1",
                [name],
            ).fetchall()
            # validity columns hold load times: compare whether a row version is still current, not when
            selected = [f"{c} is null as {c}" if c in VALIDITY_COLUMNS else c for c in columns]
            rows = connection.execute(f'select {", ".join(selected)} from parity."{name}"').fetchall()
            tables[name] = [tuple(columns), tuple(t for t in types if t[0] not in DLT_COLUMNS), *sorted(rows, key=repr)]
        return tables


TOKEN_PATH = "/oauth/token"  # our token request asks for JSON (`Accept: application/json`), dlt's for `*/*`
IGNORED_HEADERS = {"authorization", "user-agent", "accept-encoding", "connection", "content-length"}


def _request(request: Any) -> tuple[Any, ...]:
    """One sent request, comparable across clients: query and form fields sorted, JSON parsed, auth left out."""
    url = urlsplit(request.url)
    url = urlunsplit(url._replace(query=urlencode(sorted(parse_qsl(url.query, keep_blank_values=True)))))
    body = request.body.decode() if isinstance(request.body, bytes) else request.body
    if body and "json" in (request.headers.get("Content-Type") or ""):
        body = json.dumps(json.loads(body), sort_keys=True)
    elif body:
        body = tuple(sorted(parse_qsl(body, keep_blank_values=True)))
    ignored = IGNORED_HEADERS | ({"accept"} if url.endswith(TOKEN_PATH) else set())  # README "dlt compatibility"
    headers = tuple(sorted((k.lower(), v) for k, v in request.headers.items() if k.lower() not in ignored))
    return request.method, url, body, headers


def _sent(api: responses.RequestsMock) -> list[tuple[Any, ...]]:
    sent = sorted((_request(call.request) for call in api.calls if call.request.url.startswith(BASE)), key=repr)
    api.calls.reset()
    return sent


def _assert_same_resources(plain: Any, ours: Any) -> None:
    """Same selected resources; ours may add only the private parent copies (`<parent>__for__<child>`), unselected."""
    assert sorted(ours.selected_resources) == sorted(plain.selected_resources)
    extra = set(ours.resources) - set(plain.resources)
    assert set(plain.resources) <= set(ours.resources)
    assert all("__for__" in name and name not in ours.selected_resources for name in extra), extra


# Cases with a child of an incremental parent: the child reads its own copy of the parent stream (its own
# cursor), so the parent's pages are requested once more than plain dlt requests them (README "dlt compatibility").
PRIVATE_PARENT_CASES = {"incremental-on-cursor-value-missing-and-row-order"}


@pytest.mark.parametrize("case", sorted(CASES))
def test_rest_assets_loads_what_plain_dlt_loads(case, tmp_path, monkeypatch):
    """Same tables, same requests as often, per run (the same SET of requests for PRIVATE_PARENT_CASES)."""
    text, *runs = CASES[case]
    spec_file = tmp_path / "parity.yaml"
    spec_file.write_text("\n".join(line[8:] for line in text.splitlines()), encoding="utf-8")
    monkeypatch.chdir(tmp_path)
    for run, routes in enumerate(runs):
        with responses.RequestsMock(assert_all_requests_are_fired=False) as api:
            _mock(api, routes)
            plain_source = rest_api_source(_as_plain_dlt(case, yaml.safe_load(spec_file.read_text())))
            ours_source = compile_source(load_spec_file(spec_file)).source
            _assert_same_resources(plain_source, ours_source)
            plain = _load(plain_source, tmp_path / "plain", None)
            plain_sent = _sent(api)
            ours = _load(ours_source, tmp_path / "ours", "parquet")
            ours_sent = _sent(api)
        expected = _tables(plain)
        assert expected and all(len(rows) > 2 for rows in expected.values()), expected  # the case loads something
        assert _tables(ours) == expected, f"run {run + 1}"
        if case in PRIVATE_PARENT_CASES:
            assert set(ours_sent) == set(plain_sent) and len(ours_sent) > len(plain_sent), f"run {run + 1}"
        else:
            assert ours_sent == plain_sent, f"run {run + 1}"


# Configs plain dlt refuses (dlt's own tests and docs): the spec must be refused when it loads, not at run time.
DLT_REJECTS = {
    "resolve-names-a-missing-resource": """
        resources:
          - issues
          - name: comments
            endpoint:
              path: "issues/{id}/comments"
              params: {id: {type: resolve, resource: issuess, field: id}}
        """,
    "path-placeholder-bound-to-nothing": """
        resources:
          - {name: issues, endpoint: {path: "{org}/{repo}/issues/"}}
        """,
    "data-selector-not-a-string": """
        resources:
          - {name: issues, endpoint: {path: issues, data_selector: 5}}
        """,
    "write-disposition-unknown-strategy": """
        resources:
          - {name: issues, write_disposition: {disposition: merge, strategy: sideways}}
        """,
    "method-not-http": """
        resources:
          - {name: issues, endpoint: {path: issues, method: FETCH}}
        """,
    "primary-key-not-a-name": """
        resources:
          - {name: issues, primary_key: {a: 1}}
        """,
    "include-from-parent-without-parent": """
        resources:
          - {name: issues, include_from_parent: [id]}
        """,
    "resolve-param-not-in-path": """
        resources:
          - issues
          - name: comments
            endpoint:
              path: "issues/comments"
              params: {id: {type: resolve, resource: issues, field: id}}
        """,
    "two-parents": """
        resources:
          - issues
          - users
          - {name: comments, endpoint: {path: "issues/{resources.issues.id}/{resources.users.id}"}}
        """,
    "last-value-func-not-min-or-max": """
        resources:
          - {name: issues, endpoint: {path: issues, incremental: {cursor_path: updated, last_value_func: avg}}}
        """,
    "max-table-nesting-not-a-number": """
        resources:
          - {name: issues, max_table_nesting: deep}
        """,
    "offset-without-limit": """
        resources:
          - {name: issues, endpoint: {path: issues, paginator: {type: offset}}}
        """,
    "offset-with-no-way-to-stop": """
        resources:
          - name: issues
            endpoint: {path: issues, paginator: {type: offset, limit: 5, total_path: null, stop_after_empty_page: false}}
        """,
    "two-incremental-params": """
        resources:
          - name: issues
            endpoint:
              path: issues
              params:
                since: {type: incremental, cursor_path: updated_at, initial_value: "2024-01-01"}
                after: {type: incremental, cursor_path: id, initial_value: 0}
        """,
    "end-value-in-an-incremental-param": """
        resources:
          - name: issues
            endpoint:
              path: issues
              params:
                since: {type: incremental, cursor_path: updated_at, initial_value: "2024-01-01", end_value: "2025-01-01"}
        """,
    "param-type-misspelt": """
        resources:
          - issues
          - name: comments
            endpoint:
              path: "issues/{id}/comments"
              params: {id: {type: resolv, resource: issues, field: id}}
        """,
    "cursor-both-in-a-param-and-in-the-body": """
        resources:
          - name: issues
            endpoint:
              path: issues
              method: POST
              paginator: {type: cursor, cursor_path: next, cursor_param: after, cursor_body_path: after}
        """,
    "resolve-param-without-field": """
        resources:
          - issues
          - name: comments
            endpoint:
              path: "issues/{id}/comments"
              params: {id: {type: resolve, resource: issues}}
        """,
}


@pytest.mark.parametrize("case", sorted(DLT_REJECTS))
def test_a_config_plain_dlt_rejects_is_refused_when_the_spec_loads(case, tmp_path):
    from dlt.sources.rest_api import rest_api_resources

    from rest_assets.errors import SpecError

    text = "client: {base_url: %s}\n" % BASE + "\n".join(line[8:] for line in DLT_REJECTS[case].splitlines())
    with pytest.raises(Exception):  # noqa: B017 - the oracle: plain dlt refuses it, whatever its error type
        rest_api_resources(yaml.safe_load(text))
    spec_file = tmp_path / "rejected.yaml"
    spec_file.write_text(text, encoding="utf-8")
    with pytest.raises(SpecError, match=r"rejected\.yaml:\d+ - resource '(issues|comments)'"):
        load_spec_file(spec_file)


@pytest.mark.parametrize("case", ["parent-fields-in-path-and-headers", "parent-field-only-in-json"])
def test_a_child_whose_parent_fields_sit_in_headers_or_json_has_lineage_and_loads_alone(case, tmp_path, monkeypatch):
    text, routes = CASES[case]
    spec_file = tmp_path / "parity.yaml"
    spec_file.write_text("\n".join(line[8:] for line in text.splitlines()), encoding="utf-8")
    monkeypatch.chdir(tmp_path)
    spec = load_spec_file(spec_file)
    assert spec.resource("comments").parent.parent == "posts"
    with responses.RequestsMock(assert_all_requests_are_fired=False) as api:
        _mock(api, routes)
        compiled = compile_source(spec, extracted=["comments"], arrow_pages=False)
        rows = list(compiled.source.with_resources("comments"))
    assert sorted(row["id"] for row in rows) == [11, 12, 21, 22]
    asked = {row["seen_title"] or row["seen_body"].get("title") for row in rows}
    assert asked == {post["title"] for post in POSTS}


def test_a_parent_loaded_with_its_child_is_requested_as_often_as_plain_dlt_requests_it(tmp_path, monkeypatch):
    text, routes, _ = CASES["incremental-child"]
    spec_file = tmp_path / "parity.yaml"
    spec_file.write_text("\n".join(line[8:] for line in text.splitlines()), encoding="utf-8")
    monkeypatch.chdir(tmp_path)
    sent: dict[str, list[str]] = {}
    for side, make_source in (
        ("plain", lambda: rest_api_source(yaml.safe_load(spec_file.read_text()))),
        ("ours", lambda: compile_source(load_spec_file(spec_file)).source),
    ):
        with responses.RequestsMock(assert_all_requests_are_fired=False) as api:
            _mock(api, routes)
            _load(make_source(), tmp_path / side, "parquet" if side == "ours" else None)
            sent[side] = sorted(call.request.url for call in api.calls if call.request.url.startswith(BASE))
    assert sent["plain"], "plain dlt sent nothing: the test proves nothing"
    assert sent["ours"] == sent["plain"]
