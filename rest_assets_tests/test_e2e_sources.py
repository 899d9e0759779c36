"""End to end, per bundled source: emulator over HTTP → dlt → DuckDB, through Dagster.

Every table must equal exactly what the emulator serves (its `truth`), child
rows must point at their parent, and a second run must change nothing.
"""

from __future__ import annotations

from collections import Counter
from datetime import datetime
from typing import Any

import pytest
from conftest import SOURCES, materialization_metadata, materialize_source, read_table, table_names

from rest_assets.emulator.schema import SPECS

pytestmark = pytest.mark.e2e

# Child resource → (parent resource, the column dlt adds to the child with the parent's key).
CHILDREN = {
    ("help_desk", "conversation_threads"): ("conversations", "_conversations_id"),
    ("help_desk", "inbox_custom_fields"): ("inboxes", "_inboxes_id"),
    ("help_desk", "inbox_folders"): ("inboxes", "_inboxes_id"),
    ("help_desk", "team_members"): ("teams", "_teams_id"),
}
DLT_COLUMNS = {"_dlt_load_id", "_dlt_id"}


def _timestamp(value: str) -> datetime:
    return datetime.fromisoformat(value.replace("Z", "+00:00"))


def expected_row(record: dict[str, Any]) -> dict[str, Any]:
    """A truth record as dlt stores it: nested objects flattened with `__`, `*_at` as timestamps."""
    row: dict[str, Any] = {}
    for key, value in record.items():
        if key == "parent_id":
            continue
        if isinstance(value, dict):
            row.update({f"{key}__{k}": v for k, v in value.items()})
        elif key.endswith("_at") and isinstance(value, str):
            row[key] = _timestamp(value)
        else:
            row[key] = value
    return row


def row_key(source: str, resource: str, row: dict[str, Any], truth: bool) -> tuple[Any, ...]:
    """(id,) for top-level rows, (id, parent key) for child rows."""
    child = CHILDREN.get((source, resource))
    if child is None:
        return (row["id"],)
    return (row["id"], row["parent_id"] if truth else row[child[1]])


def assert_table_equals_truth(emulator: Any, source: str, resource: str) -> None:
    truth = emulator.truth(source, resource)
    rows = read_table(source, resource)
    where = f"{source}.{resource}"
    assert len(rows) == len(truth), f"{where}: {len(rows)} rows in DuckDB, the API serves {len(truth)}"

    truth_keys = [row_key(source, resource, r, truth=True) for r in truth]
    table_keys = [row_key(source, resource, r, truth=False) for r in rows]
    assert not [k for k, n in Counter(table_keys).items() if n > 1], f"{where}: duplicate rows"
    assert set(table_keys) == set(truth_keys), f"{where}: keys differ from the API's"
    assert {r["id"] for r in rows} == {r["id"] for r in truth}

    child = CHILDREN.get((source, resource))
    if child is not None:
        parent_ids = {r["id"] for r in emulator.truth(source, child[0])}
        assert all(r[child[1]] in parent_ids for r in rows), f"{where}: a row points at no {child[0]} record"

    expected_columns = set().union(*(expected_row(r) for r in truth))
    extra = set(rows[0]) - expected_columns - DLT_COLUMNS - ({child[1]} if child else set())
    assert not extra, f"{where}: unexpected columns {sorted(extra)}"

    by_key = {k: r for k, r in zip(table_keys, rows)}
    for key, record in zip(truth_keys, truth):
        expected = expected_row(record)
        stored = by_key[key]
        # dlt creates no column for a field that is null in every record.
        actual = {name: stored.get(name) for name in expected}
        assert actual == expected, f"{where} {key}: stored {actual} != served {expected}"
        assert isinstance(stored["updated_at"], datetime) and stored["updated_at"].tzinfo is not None


@pytest.mark.parametrize("source", SOURCES)
def test_source_loads_exactly_what_the_api_serves_and_reruns_idempotently(source, emulator, workdir):
    resources = sorted(SPECS[source])

    first = materialize_source(source)
    assert first.success, f"first run of {source} failed"
    assert table_names(source) == set(resources)
    for resource in resources:
        assert_table_equals_truth(emulator, source, resource)

    meta = materialization_metadata(first)
    assert set(meta) == {f"{source}/{r}" for r in resources}
    for resource in resources:
        figures = meta[f"{source}/{resource}"]
        for name in ("rows_loaded", "requests", "retries"):
            assert type(figures.get(name)) is int, f"{source}/{resource}: metadata {name}={figures.get(name)!r}"
        assert figures["rows_loaded"] == len(emulator.truth(source, resource)), f"{source}/{resource}"
        assert figures["requests"] >= 1 and figures["retries"] == 0, f"{source}/{resource}: {figures}"
    for (child_source, child), (parent, _) in CHILDREN.items():
        if child_source == source:  # one request per parent record at least
            assert meta[f"{source}/{child}"]["requests"] >= len(emulator.truth(source, parent))

    second = materialize_source(source)
    assert second.success, f"second run of {source} failed"
    assert set(materialization_metadata(second)) == set(meta)
    for resource in resources:
        assert_table_equals_truth(emulator, source, resource)


def test_single_object_endpoint_is_one_row(emulator, workdir):
    """client_portal.company is one JSON object, not a list: one row, the object itself."""
    result = materialize_source("client_portal")
    assert result.success
    (company,) = emulator.truth("client_portal", "company")
    rows = read_table("client_portal", "company")
    assert len(rows) == 1
    assert {k: rows[0].get(k) for k in expected_row(company)} == expected_row(company)
