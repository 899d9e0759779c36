"""Incremental merge loads end to end: real emulator, real DuckDB, dagster.materialize.

What is checked from the outside only: the cursor each run sends
(`updated_since` in the emulator's request log), how many pages it fetched,
and what the DuckDB tables hold afterwards compared with the API's truth.
"""

from __future__ import annotations

import math
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from conftest import materialization_metadata
from orchestration_helpers import as_timestamp, materialize_resources, query, requests_by_resource

from rest_assets.emulator import Emulator, EmulatorConfig

pytestmark = pytest.mark.e2e

CHAT = "chat_analytics"
CHAT_RESOURCES = ("conversations", "contacts", "conversation_parts", "teams", "companies")
CHAT_PAGE = 100  # offset paginator limit in chat_analytics.yaml
CHAT_SIZE = 450  # five pages per resource on a full load
HELP = "help_desk"
THREADS_PER_CONVERSATION_MAX = 4


@pytest.fixture()
def emu(workdir) -> Iterator[Emulator]:
    """A private emulator (this module advances its data) with enough records for several pages."""
    sizes = {f"{CHAT}.{r}": CHAT_SIZE for r in CHAT_RESOURCES}
    sizes[f"{HELP}.conversations"] = 120
    emulator = Emulator(EmulatorConfig(seed=11, default_size=10, sizes=sizes))
    emulator.start()
    workdir.point_at(emulator)
    yield emulator
    emulator.stop()


def _max_updated(records: list[dict[str, Any]]) -> str:
    return max(r["updated_at"] for r in records)


def _assert_table_matches_truth(emu: Emulator, source: str, resource: str) -> None:
    truth = emu.truth(source, resource)
    count, distinct = query(f'select count(*), count(distinct id) from "{source}"."{resource}"')[0]
    assert count == distinct == len(truth), f"{source}.{resource}: {count} rows, {distinct} ids, API has {len(truth)}"
    stored = {row[0]: (row[1], row[2]) for row in query(f'select id, name, updated_at from "{source}"."{resource}"')}
    expected = {r["id"]: (r["name"], as_timestamp(r["updated_at"])) for r in truth}
    assert stored == expected, f"{source}.{resource}: stored names/updated_at differ from the API's"


def _assert_sent_cursor(requests: list[dict[str, Any]], cursor: str, where: str) -> None:
    assert requests, f"{where}: no request was sent"
    sent = {r["query"].get("updated_since") for r in requests}
    assert sent == {cursor}, f"{where}: sent updated_since {sent}, the stored cursor is {cursor}"


def test_incremental_rerun_fetches_only_changes_and_survives_losing_local_state(emu, workdir):
    first = materialize_resources(CHAT)
    assert first.success
    first_log = requests_by_resource(emu.requests(), CHAT)
    cursors = {r: _max_updated(emu.truth(CHAT, r)) for r in CHAT_RESOURCES}
    meta = materialization_metadata(first)
    for resource in CHAT_RESOURCES:
        assert meta[f"{CHAT}/{resource}"]["cursor_value"] == cursors[resource]
        assert {e["query"]["updated_since"] for e in first_log[resource]} == {"1970-01-01T00:00:00Z"}
        assert len(first_log[resource]) == math.ceil(CHAT_SIZE / CHAT_PAGE)
        _assert_table_matches_truth(emu, CHAT, resource)

    before = {r: {rec["id"]: rec for rec in emu.truth(CHAT, r)} for r in CHAT_RESOURCES}
    emu.clear_requests()
    emu.advance(update_fraction=0.05, add=3)
    second = materialize_resources(CHAT)
    assert second.success
    second_log = requests_by_resource(emu.requests(), CHAT)
    for resource in CHAT_RESOURCES:
        truth = emu.truth(CHAT, resource)
        _assert_sent_cursor(second_log[resource], cursors[resource], f"{resource}, second run")
        changed_or_boundary = [r for r in truth if r["updated_at"] >= cursors[resource]]
        assert len(second_log[resource]) <= math.ceil(len(changed_or_boundary) / CHAT_PAGE) + 1
        assert len(second_log[resource]) < len(first_log[resource])
        updated = [r for r in truth if r["id"] in before[resource] and r["name"] != before[resource][r["id"]]["name"]]
        added = [r for r in truth if r["id"] not in before[resource]]
        assert len(updated) == math.ceil(CHAT_SIZE * 0.05) and len(added) == 3
        _assert_table_matches_truth(emu, CHAT, resource)

    second_meta = materialization_metadata(second)
    for resource in CHAT_RESOURCES:
        figures = second_meta[f"{CHAT}/{resource}"]
        for name in ("requests", "pages", "retries", "throttled_429", "rows_loaded"):
            assert isinstance(figures[name], int) and not isinstance(figures[name], bool), (resource, name)
        assert isinstance(figures["seconds_waited"], float)
        assert figures["requests"] == len(second_log[resource]) and figures["pages"] >= 1
        assert figures["retries"] == figures["throttled_429"] == 0
        assert figures["rows_loaded"] >= math.ceil(CHAT_SIZE * 0.05) + 3
        assert figures["cursor_value"] == _max_updated(emu.truth(CHAT, resource))

    # Lose every local dlt folder: the state comes back from the destination.
    cursors = {r: _max_updated(emu.truth(CHAT, r)) for r in CHAT_RESOURCES}
    shutil.rmtree(Path(workdir.path) / "dlt", ignore_errors=True)
    emu.clear_requests()
    emu.advance(update_fraction=0.05, add=3)
    third = materialize_resources(CHAT)
    assert third.success
    third_log = requests_by_resource(emu.requests(), CHAT)
    for resource in CHAT_RESOURCES:
        _assert_sent_cursor(third_log[resource], cursors[resource], f"{resource}, after deleting DLT_DATA_DIR")
        assert len(third_log[resource]) < len(first_log[resource])
        _assert_table_matches_truth(emu, CHAT, resource)


def _threads_by_parent(rows: list[tuple[Any, ...]]) -> dict[int, set[tuple[Any, ...]]]:
    out: dict[int, set[tuple[Any, ...]]] = {}
    for parent, *rest in rows:
        out.setdefault(parent, set()).add(tuple(rest))
    return out


def _stored_threads() -> dict[int, set[tuple[Any, ...]]]:
    return _threads_by_parent(query(f'select _conversations_id, id, name, updated_at from "{HELP}"."conversation_threads"'))


def _true_threads(emu: Emulator, parents: set[int] | None = None) -> dict[int, set[tuple[Any, ...]]]:
    rows = [
        (t["parent_id"], t["id"], t["name"], as_timestamp(t["updated_at"]))
        for t in emu.truth(HELP, "conversation_threads")
        if parents is None or t["parent_id"] in parents
    ]
    return _threads_by_parent(rows)


def test_child_only_run_after_parent_only_run_loads_children_of_changed_parents(emu, workdir):
    # 1. parent only, then child only: the child's private copy of the parent starts from scratch.
    assert materialize_resources(HELP, ["conversations"]).success
    assert (
        query(
            f"select count(*) from information_schema.tables where table_schema = '{HELP}' "
            "and table_name = 'conversation_threads'"
        )[0][0]
        == 0
    )
    emu.clear_requests()
    assert materialize_resources(HELP, ["conversation_threads"]).success
    log = requests_by_resource(emu.requests(), HELP)
    assert set(log) - {"oauth2_token"} == {"conversations", "conversation_threads"}, "a child-only run reads nothing else"
    assert _stored_threads() == _true_threads(emu)
    child_cursor = _max_updated(emu.truth(HELP, "conversations"))

    # 2. data changes; the parent alone is refreshed first (its own cursor moves on) ...
    before = {c["id"]: c for c in emu.truth(HELP, "conversations")}
    emu.advance(update_fraction=0.05, add=3)
    assert materialize_resources(HELP, ["conversations"]).success
    _assert_table_matches_truth(emu, HELP, "conversations")

    # 3. ... and the child-only run still sees every parent that changed since *its* last run.
    emu.clear_requests()
    result = materialize_resources(HELP, ["conversation_threads"])
    assert result.success
    log = requests_by_resource(emu.requests(), HELP)
    _assert_sent_cursor(log["conversations"], child_cursor, "the child's private parent stream")
    truth = emu.truth(HELP, "conversations")
    changed = {c["id"] for c in truth if c["id"] not in before or c["updated_at"] != before[c["id"]]["updated_at"]}
    new = {c["id"] for c in truth if c["id"] not in before}
    assert len(new) == 3 and len(changed) > len(new)
    fetched_for = {int(e["path"].rstrip("/").split("/")[-2]) for e in log["conversation_threads"]}
    assert changed <= fetched_for, "threads of a changed parent were not requested"
    # the parent at the cursor itself comes back from the API (updated_since is inclusive) but dlt
    # drops it as already seen, so its threads are not requested again
    assert fetched_for == {c["id"] for c in truth if c["updated_at"] > child_cursor}
    assert len(fetched_for) < len(truth) / 2, "the child-only run re-read (almost) every parent"

    stored = _stored_threads()
    expected = _true_threads(emu, changed)
    assert {p: stored.get(p, set()) for p in expected} == expected
    assert any(expected.get(p) for p in new), "the new parents have threads to load"
    count, distinct = query(f'select count(*), count(distinct (id, _conversations_id)) from "{HELP}"."conversation_threads"')[0]
    assert count == distinct
    # the child-only run never wrote the parent's table
    _assert_table_matches_truth(emu, HELP, "conversations")
    assert list(materialization_metadata(result)) == [f"{HELP}/conversation_threads"]
