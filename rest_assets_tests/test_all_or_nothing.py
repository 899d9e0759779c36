"""All-or-nothing per run: a run whose load step fails changes no table, and the next run loads what it would have.

A tiny real API (RecordingServer) serves three resources of one source, one
per write disposition: `activity` (append, incremental on `seq`), `catalog`
(replace) and `items` (merge on `id`). After the first run the warehouse gets
a constraint dlt does not know of (`items.score` NOT NULL, as a warehouse
owner might set), and the second run's `items` page lacks `score`: extract
and normalize pass, and DuckDB refuses the merge into `items` in the load
step, after dlt has loaded `activity` and `catalog` (the merge runs after the
package's copy jobs). Without one transaction around the load, `activity` and
`catalog` keep the failed run's rows and the rerun appends `activity`'s again.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import duckdb
import pytest
from conftest import failure_errors, failure_messages, read_table
from reliability_support import Recorded, RecordingServer, Reply, json_reply, run_source, snapshot

pytestmark = pytest.mark.e2e

TABLES = ["activity", "catalog", "items"]


class ShopApi:
    """The API's data (changed by the test between runs) and the `since` each activity request sent."""

    def __init__(self) -> None:
        self.activity = [{"seq": 1, "what": "created"}]
        self.catalog = [{"sku": "a", "price": 1}]
        self.items: list[dict[str, Any]] = [{"id": 1, "score": 5}]
        self.since: list[str] = []

    def __call__(self, request: Recorded) -> Reply:
        url = urlsplit(request.path)
        if url.path == "/activity":
            since = parse_qs(url.query).get("since", ["0"])[0]
            self.since.append(since)
            return json_reply({"data": [r for r in self.activity if r["seq"] > int(since)]})
        if url.path == "/catalog":
            return json_reply({"data": self.catalog})
        if url.path == "/items":
            return json_reply({"data": self.items})
        return json_reply({"error": "not_found"}, status=404)


def _write_spec(folder: Path, base_url: str) -> Path:
    page = {"data_selector": "data", "paginator": {"type": "single_page"}}
    spec = {
        "client": {"base_url": base_url},
        "resources": [
            {"name": "activity", "write_disposition": "append", "endpoint": {
                "path": "/activity", **page,
                "incremental": {"cursor_path": "seq", "start_param": "since", "initial_value": 0}}},
            {"name": "catalog", "write_disposition": "replace", "endpoint": {"path": "/catalog", **page}},
            {"name": "items", "primary_key": "id", "write_disposition": "merge", "endpoint": {"path": "/items", **page}},
        ],
    }
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "shop.yaml").write_text(json.dumps(spec))
    return folder


def _require_score(db: Path) -> None:
    with duckdb.connect(str(db)) as connection:
        connection.execute("ALTER TABLE shop.items ALTER COLUMN score SET NOT NULL")


def _completed_loads(db: Path) -> int:
    with duckdb.connect(str(db), read_only=True) as connection:
        return connection.sql("SELECT count(*) FROM shop._dlt_loads").fetchall()[0][0]


def test_a_failing_load_step_changes_no_table_and_the_rerun_loads_it_once(workdir, tmp_path):
    api = ShopApi()
    with RecordingServer(handler=api) as server:
        workdir.use_specs(_write_spec(tmp_path / "specs", server.url))
        first = run_source("shop")
        assert first.success, failure_messages(first)
        before = snapshot("shop", TABLES)

        api.activity.append({"seq": 2, "what": "renamed"})
        api.catalog = [{"sku": "b", "price": 2}]
        _require_score(workdir.duckdb_file)
        api.items = [{"id": 1, "score": 6}, {"id": 2}]
        failed = run_source("shop")
        assert not failed.success
        assert any("NOT NULL constraint" in message for _, message in failure_errors(failed)), failure_errors(failed)
        assert snapshot("shop", TABLES) == before, "a failed run must leave every table as the last good run left it"
        assert _completed_loads(workdir.duckdb_file) == 1

        api.items = [{"id": 1, "score": 6}, {"id": 2, "score": 7}]
        api.since.clear()
        rerun = run_source("shop")
        assert rerun.success, failure_messages(rerun)

    assert api.since == ["1"], "the failed run must not have advanced the cursor"
    assert sorted((r["seq"], r["what"]) for r in read_table("shop", "activity")) == [(1, "created"), (2, "renamed")]
    assert [(r["sku"], r["price"]) for r in read_table("shop", "catalog")] == [("b", 2)]
    assert sorted((r["id"], r["score"]) for r in read_table("shop", "items")) == [(1, 6), (2, 7)]
    assert _completed_loads(workdir.duckdb_file) == 2
