"""A child whose parent the same Dagster run loads reads that parent's pages: each is requested once.

Through the whole stack (spec, Dagster run, emulator, DuckDB): the parent takes
the Arrow path, its child is handed the API's records, and both tables hold
exactly what the API serves. A child of an incremental parent reads its own
copy of the parent stream instead (its own cursor), so there the parent's
pages are requested twice: the second test pins that difference.
"""

from __future__ import annotations

from collections import Counter
from pathlib import Path
from typing import Any

import pytest
import yaml
from conftest import assert_table_equals_truth, failure_messages
from reliability_support import run_source, write_spec

pytestmark = pytest.mark.e2e


def _load_teams_and_members(emulator: Any, workdir: Any, tmp_path: Path, incremental_parent: bool) -> Counter[str]:
    """Materialize help_desk's `teams` and `team_members` through Dagster; how often each teams page was asked."""
    specs = write_spec(tmp_path / "specs", "help_desk", resources=["teams", "team_members"])
    spec_file = specs / "help_desk.yaml"
    spec = yaml.safe_load(spec_file.read_text())
    if not incremental_parent:
        del spec["resources"][0]["endpoint"]["incremental"]
    spec_file.write_text(yaml.safe_dump(spec, sort_keys=False))
    workdir.point_at(emulator)
    workdir.use_specs(specs)
    result = run_source("help_desk")
    assert result.success, failure_messages(result)
    assert_table_equals_truth(emulator, "help_desk", "team_members")
    pages = [e for e in emulator.requests() if e["source"] == "help_desk" and e["path"].endswith("/v2/teams")]
    return Counter(repr(sorted(e["query"].items())) for e in pages)


def test_a_run_of_a_parent_and_its_child_requests_each_parent_page_once(own_emulator, workdir, tmp_path):
    pages = _load_teams_and_members(own_emulator, workdir, tmp_path, incremental_parent=False)
    assert pages and set(pages.values()) == {1}, pages
    members = [e for e in own_emulator.requests() if e["path"].endswith("/members")]
    assert len(members) == len(own_emulator.truth("help_desk", "teams"))
    assert_table_equals_truth(own_emulator, "help_desk", "teams")


def test_a_child_of_an_incremental_parent_reads_its_own_copy_of_the_parent_pages(own_emulator, workdir, tmp_path):
    pages = _load_teams_and_members(own_emulator, workdir, tmp_path, incremental_parent=True)
    assert pages and set(pages.values()) == {2}, pages
