"""A `dagster asset materialize` of this code location ends quietly: nothing on stderr reads as a crash.

DuckDB's bindings print `nanobind: leaked ... instances` at exit when DuckDB
objects outlive the interpreter's last collection (rest_assets.orchestration.heap freezes
the long-lived heap, which would keep them): a user reads that as a crash.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import read_table

DAGSTER = str(Path(sys.executable).with_name("dagster"))


def _cli_materialize(selection: str, tmp_path: Path) -> subprocess.CompletedProcess[str]:
    """`dagster asset materialize` of `selection` in its own process, with a fresh DAGSTER_HOME."""
    home = tmp_path / "dagster_home"
    home.mkdir()
    return subprocess.run(
        [DAGSTER, "asset", "materialize", "-m", "rest_assets.definitions", "--select", selection],
        env={**os.environ, "DAGSTER_HOME": str(home)},
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=300,
    )


def _leak_lines(stderr: str) -> list[str]:
    return [line for line in stderr.splitlines() if "nanobind" in line or "leaked" in line]


@pytest.mark.e2e
def test_cli_materialize_loads_and_prints_no_leak_warning(workdir, tmp_path):
    run = _cli_materialize("group:contact_book", tmp_path)
    assert run.returncode == 0, run.stderr[-3000:]
    assert "RUN_SUCCESS" in run.stderr or "Finished execution of run" in run.stderr, run.stderr[-3000:]
    assert read_table("contact_book", "contacts", db=workdir.duckdb_file)  # it really loaded
    assert _leak_lines(run.stderr) == []


@pytest.mark.e2e
def test_a_failed_cli_materialize_prints_its_error_and_no_leak_warning(workdir, tmp_path):
    specs = tmp_path / "specs"
    specs.mkdir()
    (specs / "down.yaml").write_text(  # an API that is not there: the run fails once DuckDB is open
        "client: {base_url: 'http://127.0.0.1:9'}\n"
        "resource_defaults: {endpoint: {error_handler: {max_retries: 0}}}\n"
        "resources: [things]\n"
    )
    workdir.use_specs(specs)
    run = _cli_materialize("down/things", tmp_path)
    assert run.returncode != 0
    assert "LoadError: source 'down', resource 'things': GET http://127.0.0.1:9/things failed" in run.stderr
    assert _leak_lines(run.stderr) == []
