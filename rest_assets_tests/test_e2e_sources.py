"""End to end, per bundled source: emulator over HTTP → dlt → DuckDB, through Dagster.

Every table must equal exactly what the emulator serves (its `truth`), child
rows must point at their parent, and a second run must change nothing.
"""

from __future__ import annotations

import pytest
from conftest import (CHILDREN, SOURCES, assert_table_equals_truth, expected_row, materialization_metadata,
                      materialize_source, read_table, table_names)

from rest_assets.emulator.schema import SPECS

pytestmark = pytest.mark.e2e


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
