"""`rest-assets demo` as a user runs it: a subprocess in an empty directory."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import read_table, table_names

from rest_assets.emulator.schema import SPECS, child_tables

pytestmark = pytest.mark.e2e

ALL_ASSETS = {f"{source}/{resource}" for source, resources in SPECS.items() for resource in resources}
SUMMARY_ROW = re.compile(r"^(?P<asset>[a-z_]+/[a-z_]+)\s+(?P<rows>\d+)\s+(?P<requests>\d+)\s+(?P<retries>\d+)\s+[\d.]+$")


def rest_assets_command() -> list[str]:
    """The installed console script (beside this interpreter, else on PATH), else the module."""
    beside = Path(sys.executable).with_name("rest-assets")
    script = str(beside) if beside.exists() else shutil.which("rest-assets")
    return [script] if script else [sys.executable, "-m", "rest_assets.cli"]


def test_demo_loads_every_asset_into_duckdb(tmp_path):
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith("SOURCES__")
        and k not in ("DESTINATION__DUCKDB__CREDENTIALS", "DLT_DATA_DIR", "REST_ASSETS_SOURCES_DIR", "REST_ASSETS_DESTINATION")
    }
    own = tmp_path / "my_specs"  # a user's own specs: the demo loads the bundled ones, never these
    own.mkdir()
    (own / "mine.yaml").write_text("client: {base_url: 'http://127.0.0.1:9'}\nresources: [things]\n")
    env["REST_ASSETS_SOURCES_DIR"] = str(own)
    # a shell set up for production: the demo's emulator data never goes to its destination or DuckDB file
    env["REST_ASSETS_DESTINATION"] = "postgres"
    env["DESTINATION__DUCKDB__CREDENTIALS"] = str(tmp_path / "production.duckdb")

    done = subprocess.run(
        [*rest_assets_command(), "demo", "--size", "10"], cwd=tmp_path, env=env, capture_output=True, text=True, timeout=300
    )

    output = done.stdout + done.stderr
    assert done.returncode == 0, output[-4000:]
    assert "REST_ASSETS_SOURCES_DIR is ignored: the demo loads the bundled specs" in done.stdout
    assert "REST_ASSETS_DESTINATION is ignored: the demo loads into DuckDB" in done.stdout
    assert "DESTINATION__DUCKDB__CREDENTIALS is ignored" in done.stdout
    assert not (tmp_path / "production.duckdb").exists()
    assert "FAILED" not in done.stdout
    summary = {m["asset"]: m for m in (SUMMARY_ROW.match(line.strip()) for line in done.stdout.splitlines()) if m}
    assert set(summary) == ALL_ASSETS and len(ALL_ASSETS) == 32
    assert re.search(r"^total: 32 assets\s+\d+\s+\d+\s+\d+\s*$", done.stdout, re.MULTILINE), done.stdout[-3000:]

    db = tmp_path / "data" / "rest_assets.duckdb"
    assert db.is_file(), f"no DuckDB file at {db}"
    for source, resources in SPECS.items():
        assert table_names(source, db=db) == set(resources) | child_tables(source), source
        for resource in resources:
            rows = read_table(source, resource, db=db)
            assert rows, f"{source}.{resource} is empty"
            assert int(summary[f"{source}/{resource}"]["rows"]) == len(rows), f"{source}/{resource}"
            assert int(summary[f"{source}/{resource}"]["requests"]) >= 1
