"""Parity with plain dlt: one YAML config, loaded by rest_assets and by dlt's own `rest_api_source`.

Each case is a config that plain dlt accepts as written. Both loads read the
same mocked API (`responses`) into their own DuckDB file; the tables, columns
and rows must be equal. The start of the compatibility suite of issue 13.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any, Callable

import dlt
import duckdb
import pytest
import responses
import yaml
from dlt.sources.rest_api import rest_api_source

from rest_assets.compiler import compile_source
from rest_assets.spec import load_spec_file

BASE = "https://api.example.com"
DLT_COLUMNS = ("_dlt_load_id", "_dlt_id")


Handler = Callable[[Any], Any]  # a request -> the JSON body to answer


def _pages(items: list[dict[str, Any]], size: int) -> Handler:
    """A page_number API (`?page=N`, from 1) serving `items`."""
    pages = {f"page={n // size + 1}": {"data": items[n:n + size]} for n in range(0, len(items) + 1, size)}
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
    "columns-as-a-list": ("""
        client: {base_url: %s}
        resources:
          - name: orders
            columns: [{name: amount, data_type: double}, {name: id, data_type: bigint}]
            endpoint:
              path: orders
              data_selector: data
              paginator: {type: page_number, base_page: 1, total_path: null}
        """ % BASE, {"GET orders": _pages([{"id": i, "amount": i * 2} for i in range(7)], 3)}),
    "paginator-null-falls-back-to-the-client-paginator": ("""
        client:
          base_url: %s
          paginator: {type: page_number, base_page: 1, total_path: null}
        resource_defaults:
          endpoint:
            paginator: {type: offset, limit: 2, total_path: null}
        resources:
          - name: orders
            endpoint: {path: orders, data_selector: data, paginator: null}
        """ % BASE, {"GET orders": _pages([{"id": i} for i in range(5)], 2)}),
    "processing-steps-filter-and-map": ("""
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
        """ % BASE, {"GET orders": _pages([{"id": i, "amount": i, "internal": "x", "status": ["open", "deleted"][i % 2]}
                                           for i in range(9)], 4)}),
    # dlt's "headers with resource data" example: one parent, its fields in the path and in a header
    "parent-fields-in-path-and-headers": ("""
        client: {base_url: %s, paginator: single_page}
        resources:
          - {name: posts, endpoint: {path: posts, data_selector: data}}
          - name: comments
            include_from_parent: [title]
            endpoint:
              path: "posts/{resources.posts.id}/comments"
              headers: {X-Post-Title: "{resources.posts.title}"}
        """ % BASE, {"GET posts": lambda request: {"data": POSTS}, r"GET posts/\d+/comments": _comments}),
    # dlt's defaults: a cursor paginator reads `cursors.next`; an offset paginator stops at `total`
    "cursor-paginator-default-path": ("""
        client: {base_url: %s}
        resources:
          - {name: events, endpoint: {path: events, data_selector: data, paginator: {type: cursor}}}
        """ % BASE, {"GET events": lambda request: _cursor_page(int(_param(request, "cursor", "0")))}),
    "offset-paginator-default-total": ("""
        client: {base_url: %s}
        resources:
          - {name: events, endpoint: {path: events, data_selector: data, paginator: {type: offset, limit: 2}}}
        """ % BASE, {"GET events": lambda request: _offset_page(int(_param(request, "offset", "0")))}),
    # dlt's incremental placeholders composed into a param and placed in a json body
    "incremental-start-and-end-values-in-params-and-json": ("""
        client: {base_url: %s, paginator: single_page}
        resources:
          - name: events
            endpoint:
              path: events
              method: POST
              params: {q: "updated>{incremental.start_value} AND updated<{incremental.end_value}"}
              json: {from: "{incremental.start_value}", to: "{incremental.end_value}"}
              incremental: {cursor_path: updated, initial_value: 3, end_value: 7}
        """ % BASE, {"POST events": lambda request: [
        {"updated": n, "q": dict(part.split("=", 1) for part in _query(request))["q"], "body": json.loads(request.body)}
        for n in range(10)]}),
    # a POST child whose parent field is only in the json body
    "parent-field-only-in-json": ("""
        client: {base_url: %s, paginator: single_page}
        resources:
          - {name: posts, endpoint: {path: posts, data_selector: data}}
          - name: comments
            endpoint:
              path: posts/0/comments
              method: POST
              json: {post: "{resources.posts.id}", title: "{resources.posts.title}"}
        """ % BASE, {"GET posts": lambda request: {"data": POSTS}, r"POST posts/\d+/comments": _comments}),
}


def _mock(api: responses.RequestsMock, routes: dict[str, Handler]) -> None:
    """Serve each `"<METHOD> <path regex>"` route with its handler."""
    for route, handler in routes.items():
        method, path = route.split(" ", 1)

        def answer(request: Any, handler: Handler = handler) -> tuple[int, dict[str, str], str]:
            return 200, {"Content-Type": "application/json"}, json.dumps(handler(request))

        api.add_callback(method, re.compile(f"{re.escape(BASE)}/{path}(\\?.*)?$"), callback=answer)


def _drop_and_rename(record: dict[str, Any]) -> dict[str, Any]:
    record.pop("internal", None)
    record["total"] = record.pop("amount")
    return record


# What a dlt user writes in Python for the declarative steps of a case (resource -> steps).
PYTHON_STEPS = {
    "processing-steps-filter-and-map": {"orders": [
        {"filter": lambda record: record["status"] != "deleted" and record["amount"] >= 2},
        {"map": _drop_and_rename},
    ]},
}


def _as_plain_dlt(case: str, config: dict[str, Any]) -> dict[str, Any]:
    """The same config for plain dlt: declarative processing steps as the Python callables dlt takes."""
    for resource in config["resources"]:
        if "processing_steps" in resource:
            resource["processing_steps"] = PYTHON_STEPS[case][resource["name"]]
    return config


def _load(source: Any, folder: Path, fmt: str | None) -> Path:
    database = folder / "out.duckdb"
    pipeline = dlt.pipeline(pipeline_name="parity", pipelines_dir=str(folder / "dlt"),
                            destination=dlt.destinations.duckdb(str(database)), dataset_name="parity")
    pipeline.run(source, **({"loader_file_format": fmt} if fmt else {}))
    return database


def _tables(database: Path) -> dict[str, list[tuple[Any, ...]]]:
    """Every data table of the dataset: its sorted column names, then its rows sorted (dlt's own columns left out)."""
    with duckdb.connect(str(database), read_only=True) as connection:
        names = [row[0] for row in connection.execute(
            "select table_name from information_schema.tables where table_schema = 'parity' "
            "and table_name not like '_dlt%' order by 1").fetchall()]
        tables = {}
        for name in names:
            columns = [row[0] for row in connection.execute(
                "select column_name from information_schema.columns where table_schema = 'parity' and table_name = ? "
                "order by 1", [name]).fetchall() if row[0] not in DLT_COLUMNS]
            types = connection.execute(
                "select column_name, data_type from information_schema.columns where table_schema = 'parity' "
                "and table_name = ? order by 1", [name]).fetchall()
            rows = connection.execute(f'select {", ".join(columns)} from parity."{name}"').fetchall()
            tables[name] = [tuple(columns), tuple(t for t in types if t[0] not in DLT_COLUMNS), *sorted(rows)]
        return tables


@pytest.mark.parametrize("case", sorted(CASES))
def test_rest_assets_loads_what_plain_dlt_loads(case, tmp_path, monkeypatch):
    text, routes = CASES[case]
    spec_file = tmp_path / "parity.yaml"
    spec_file.write_text("\n".join(line[8:] for line in text.splitlines()), encoding="utf-8")
    monkeypatch.chdir(tmp_path)
    with responses.RequestsMock(assert_all_requests_are_fired=False) as api:
        _mock(api, routes)
        plain = _load(rest_api_source(_as_plain_dlt(case, yaml.safe_load(spec_file.read_text()))), tmp_path / "plain", None)
        ours = _load(compile_source(load_spec_file(spec_file)).source, tmp_path / "ours", "parquet")
    expected = _tables(plain)
    assert expected and all(len(rows) > 2 for rows in expected.values()), expected  # the case loads something
    assert _tables(ours) == expected


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
    "max-table-nesting-not-a-number": """
        resources:
          - {name: issues, max_table_nesting: deep}
        """,
}


@pytest.mark.parametrize("case", sorted(DLT_REJECTS))
def test_a_config_plain_dlt_rejects_is_refused_when_the_spec_loads(case, tmp_path):
    from dlt.sources.rest_api import rest_api_resources

    from rest_assets.errors import SpecError

    text = "client: {base_url: %s}\n" % BASE + "\n".join(line[8:] for line in DLT_REJECTS[case].splitlines())
    with pytest.raises(Exception):  # the oracle: plain dlt refuses the same config
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
