"""Shared fixtures for the end-to-end tests (real HTTP, real DuckDB, real Dagster).

* ``emulator`` — one emulator for the whole session (small data); tests that
  change emulator state (faults, token expiry, advancing data) use
  ``own_emulator`` instead so they never disturb the others.
* ``workdir`` — a fresh working directory per test whose environment points
  every bundled source at the session emulator, with its own DuckDB file and
  dlt state folder. ``e2e_env(emulator)`` re-points it at another emulator.
* ``materialize_source(name)`` and ``read_table(dataset, table)`` — the two
  helpers the tests use to load and look at data.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterator

import duckdb
import pytest

from rest_assets.demo import QUIET_RUN_CONFIG, emulator_environment
from rest_assets.emulator import Emulator, EmulatorConfig

E2E_SIZE = 40
BUNDLED_SOURCES_DIR = Path(__file__).resolve().parents[1] / "rest_assets" / "sources"
SOURCES = ("chat_analytics", "client_portal", "contact_book", "help_desk", "sales_crm")


@pytest.fixture(scope="session")
def emulator() -> Iterator[Emulator]:
    """One emulator on a free port for the session, never given faults or data changes."""
    emu = Emulator(EmulatorConfig(seed=0, default_size=E2E_SIZE))
    emu.start()
    yield emu
    emu.stop()


@pytest.fixture()
def own_emulator() -> Iterator[Emulator]:
    """A private emulator for a test that injects faults or changes emulator state."""
    emu = Emulator(EmulatorConfig(seed=3, default_size=20))
    emu.start()
    yield emu
    emu.stop()


@dataclass
class E2EEnv:
    """The per-test working directory and the environment that goes with it."""

    path: Path
    monkeypatch: pytest.MonkeyPatch

    @property
    def duckdb_file(self) -> Path:
        return self.path / "db.duckdb"

    def point_at(self, emu: Emulator) -> None:
        """Point every bundled source at `emu` (base URL, token URL, demo secrets)."""
        for key in [k for k in os.environ if k.startswith("SOURCES__")]:
            self.monkeypatch.delenv(key)
        for key, value in emulator_environment(emu.url).items():
            self.monkeypatch.setenv(key, value)

    def use_specs(self, specs_dir: Path) -> None:
        """Load specs from `specs_dir` instead of the bundled folder."""
        self.monkeypatch.setenv("REST_ASSETS_SOURCES_DIR", str(specs_dir))


@pytest.fixture()
def workdir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, emulator: Emulator) -> E2EEnv:
    """A fresh cwd, DuckDB file and dlt folder per test, sources pointed at the session emulator."""
    env = E2EEnv(tmp_path, monkeypatch)
    env.point_at(emulator)
    monkeypatch.delenv("REST_ASSETS_SOURCES_DIR", raising=False)
    monkeypatch.delenv("REST_ASSETS_DESTINATION", raising=False)
    monkeypatch.setenv("DESTINATION__DUCKDB__CREDENTIALS", str(env.duckdb_file))
    monkeypatch.setenv("DLT_DATA_DIR", str(tmp_path / "dlt"))
    monkeypatch.chdir(tmp_path)
    return env


def materialize_source(name: str) -> Any:
    """Build the definitions from the current environment and materialize every asset of source `name`.

    Returns dagster's ExecuteInProcessResult (never raises on a failed run).
    """
    from dagster import DagsterInstance, materialize

    from rest_assets.definitions import build_definitions

    defs = build_definitions()
    matching = [a for a in defs.assets or [] if a.node_def.name == name]
    assert len(matching) == 1, f"expected one multi-asset named {name!r}, got {[a.node_def.name for a in defs.assets or []]}"
    with DagsterInstance.ephemeral() as instance:
        return materialize(matching, instance=instance, resources=defs.resources,
                           run_config=QUIET_RUN_CONFIG, raise_on_error=False)


def _duckdb_file() -> str:
    return os.environ["DESTINATION__DUCKDB__CREDENTIALS"]


def read_table(dataset: str, table: str, columns: str = "*", db: str | Path | None = None) -> list[dict[str, Any]]:
    """All rows of `dataset.table` as dicts (read-only connection, closed right after)."""
    connection = duckdb.connect(str(db or _duckdb_file()), read_only=True)
    try:
        cursor = connection.execute(f'SELECT {columns} FROM "{dataset}"."{table}"')
        names = [d[0] for d in cursor.description]
        return [dict(zip(names, row)) for row in cursor.fetchall()]
    finally:
        connection.close()


def table_names(dataset: str, db: str | Path | None = None) -> set[str]:
    """Data tables (dlt's own `_dlt_*` tables left out) of a dataset."""
    connection = duckdb.connect(str(db or _duckdb_file()), read_only=True)
    try:
        rows = connection.execute(
            "SELECT table_name FROM information_schema.tables WHERE table_schema = ?", [dataset]).fetchall()
        return {r[0] for r in rows if not r[0].startswith("_dlt_")}
    finally:
        connection.close()


def materialization_metadata(result: Any) -> dict[str, dict[str, Any]]:
    """Per asset (`source/resource`), the raw values of its materialization metadata."""
    out: dict[str, dict[str, Any]] = {}
    for event in result.get_asset_materialization_events():
        materialization = event.step_materialization_data.materialization
        out[materialization.asset_key.to_user_string()] = {
            k: getattr(v, "value", v) for k, v in materialization.metadata.items()}
    return out


def failure_messages(result: Any) -> list[str]:
    """The error messages (with causes) of every failed step of a run."""
    messages = []
    for event in result.all_events:
        if event.is_step_failure:
            error = event.step_failure_data.error
            while error is not None:
                messages.append(error.message)
                error = error.cause
    return messages


def write_fast_retry_specs(target: Path, sources: tuple[str, ...] = SOURCES, backoff_factor: float = 0.01) -> Path:
    """Copies of the bundled specs with `backoff_factor` made tiny so retry tests stay fast."""
    target.mkdir(parents=True, exist_ok=True)
    for source in sources:
        text = (BUNDLED_SOURCES_DIR / f"{source}.yaml").read_text()
        fast, replaced = re.subn(r"backoff_factor:\s*[0-9.]+", f"backoff_factor: {backoff_factor}", text)
        assert replaced, f"{source}.yaml has no backoff_factor to rewrite"
        (target / f"{source}.yaml").write_text(fast)
    return target
