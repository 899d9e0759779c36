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

import gc
import os
import re
import subprocess
import sys
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

import duckdb
import pytest
import requests
from postgres_support import pg, pg_destination  # noqa: F401 - fixtures for every kind of test

from rest_assets.cli.demo import QUIET_RUN_CONFIG, emulator_environment
from rest_assets.emulator import DEMO_CREDENTIALS, Emulator, EmulatorConfig


def pytest_unconfigure(config: pytest.Config) -> None:
    """Thaw the heap the first load in this process froze (see rest_assets.orchestration.execution).

    A run process imports DuckDB after that freeze; this one imported it
    before, so without a thaw its objects outlive shutdown and DuckDB's
    bindings report them as leaked.
    """
    gc.unfreeze()
    gc.collect()


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Tests are marked by the folder of their kind: e2e/ → `e2e`, integration/ → `integration` (and `e2e`)."""
    for item in items:
        kind = item.path.parent.name
        if kind in ("e2e", "integration"):
            item.add_marker(pytest.mark.e2e)
        if kind == "integration":
            item.add_marker(pytest.mark.integration)


@pytest.fixture(autouse=True)
def _secrets_registered_by_a_test_are_forgotten_after_it() -> Iterator[None]:
    """The process-wide secret registry (runtime.redaction) leaks nothing from one test into the next."""
    from rest_assets.runtime.redaction import registered_secrets, restore_registered_secrets

    snapshot = registered_secrets()
    yield
    restore_registered_secrets(snapshot)


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
    with Emulator(EmulatorConfig(seed=3, default_size=20)) as emu:
        yield emu


@pytest.fixture()
def http() -> Iterator[requests.Session]:
    """A plain HTTP session for talking to an emulator directly."""
    with requests.Session() as session:
        yield session


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


def materialize_source(name: str, instance: Any = None) -> Any:
    """Build the definitions from the current environment and materialize every asset of source `name`.

    Runs on `instance` when given (e.g. an on-disk one whose event log the test reads), else on an
    ephemeral one. Returns dagster's ExecuteInProcessResult (never raises on a failed run).
    """
    from dagster import DagsterInstance, materialize

    from rest_assets.definitions import build_definitions

    defs = build_definitions()
    matching = [a for a in defs.assets or [] if a.node_def.name == name]
    assert len(matching) == 1, f"expected one multi-asset named {name!r}, got {[a.node_def.name for a in defs.assets or []]}"
    if instance is not None:
        return materialize(
            matching, instance=instance, resources=defs.resources, run_config=QUIET_RUN_CONFIG, raise_on_error=False
        )
    with DagsterInstance.ephemeral() as ephemeral:
        return materialize(
            matching, instance=ephemeral, resources=defs.resources, run_config=QUIET_RUN_CONFIG, raise_on_error=False
        )


# dlt reads .dlt/ once per process (when it first makes its run context): a test of what it reads there runs
# the source in a fresh process, with the working directory and environment it is given and nothing else.
RUN_CONTACT_BOOK = """
from dagster import DagsterInstance, materialize
from rest_assets.definitions import defs
assets = [a for a in defs.assets if a.node_def.name == "contact_book"]
print("definitions loaded")
with DagsterInstance.ephemeral() as instance:
    result = materialize(assets, instance=instance, resources=defs.resources, raise_on_error=False)
print("run succeeded" if result.success else "run failed")
for event in result.all_events:
    error = event.step_failure_data.error if event.is_step_failure else None
    while error is not None:
        print(error.message)
        error = error.cause
"""


def run_contact_book_in_a_fresh_process(cwd: Path, **env: str) -> subprocess.CompletedProcess[str]:
    """Materialize contact_book in a new Python process in `cwd`, with only PATH, HOME=cwd and `env` set."""
    environment = {"PATH": "/usr/bin:/bin", "HOME": str(cwd), **env}
    if "PYTHONPATH" in os.environ:  # the checkout under test, where it is not the installed one
        environment["PYTHONPATH"] = os.environ["PYTHONPATH"]
    return subprocess.run(
        [sys.executable, "-c", RUN_CONTACT_BOOK], cwd=cwd, env=environment, capture_output=True, text=True, timeout=300
    )


def _duckdb_file() -> str:
    return os.environ["DESTINATION__DUCKDB__CREDENTIALS"]


def read_table(dataset: str, table: str, columns: str = "*", db: str | Path | None = None) -> list[dict[str, Any]]:
    """All rows of `dataset.table` as dicts (read-only connection, closed right after)."""
    connection = duckdb.connect(str(db or _duckdb_file()), read_only=True)
    try:
        cursor = connection.execute(f'SELECT {columns} FROM "{dataset}"."{table}"')
        names = [d[0] for d in cursor.description]
        return [dict(zip(names, row, strict=True)) for row in cursor.fetchall()]
    finally:
        connection.close()


def table_names(dataset: str, db: str | Path | None = None) -> set[str]:
    """Data tables (dlt's own `_dlt_*` tables left out) of a dataset."""
    connection = duckdb.connect(str(db or _duckdb_file()), read_only=True)
    try:
        rows = connection.execute("SELECT table_name FROM information_schema.tables WHERE table_schema = ?", [dataset]).fetchall()
        return {r[0] for r in rows if not r[0].startswith("_dlt_")}
    finally:
        connection.close()


def materialization_metadata(result: Any) -> dict[str, dict[str, Any]]:
    """Per asset (`source/resource`), the raw values of its materialization metadata."""
    out: dict[str, dict[str, Any]] = {}
    for event in result.get_asset_materialization_events():
        materialization = event.step_materialization_data.materialization
        out[materialization.asset_key.to_user_string()] = {k: getattr(v, "value", v) for k, v in materialization.metadata.items()}
    return out


def failure_errors(result: Any) -> list[tuple[str, str]]:
    """(class name, message) of every error of every failed step, outer error first, causes after."""
    errors = []
    for event in result.all_events:
        if event.is_step_failure:
            error = event.step_failure_data.error
            while error is not None:
                errors.append((error.cls_name, error.message))
                error = error.cause
    return errors


def failure_messages(result: Any) -> list[str]:
    """The messages of `failure_errors`."""
    return [message for _, message in failure_errors(result)]


def write_spec_copies(
    target: Path, sources: tuple[str, ...] = SOURCES, *, backoff_factor: float | None = 0.01, child_concurrency: int | None = None
) -> Path:
    """Copies of bundled specs: `backoff_factor` made tiny (retry tests stay fast), optionally a
    `client.child_concurrency`."""
    target.mkdir(parents=True, exist_ok=True)
    for source in sources:
        text = (BUNDLED_SOURCES_DIR / f"{source}.yaml").read_text()
        if backoff_factor is not None:
            text, replaced = re.subn(r"backoff_factor:\s*[0-9.]+", f"backoff_factor: {backoff_factor}", text)
            assert replaced, f"{source}.yaml has no backoff_factor to rewrite"
        if child_concurrency is not None:
            text, replaced = re.subn(
                r"^client:\n", f"client:\n  child_concurrency: {child_concurrency}\n", text, flags=re.MULTILINE
            )
            assert replaced == 1, f"{source}.yaml has no top-level client block"
        (target / f"{source}.yaml").write_text(text)
    return target


def write_fast_retry_specs(target: Path, sources: tuple[str, ...] = SOURCES, backoff_factor: float = 0.01) -> Path:
    """Copies of the bundled specs with `backoff_factor` made tiny so retry tests stay fast."""
    return write_spec_copies(target, sources, backoff_factor=backoff_factor)


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
    """A truth record with `*_at` strings as timestamps and without the emulator's `parent_id`."""
    return {
        key: _timestamp(value) if key.endswith("_at") and isinstance(value, str) else value
        for key, value in record.items()
        if key != "parent_id"
    }


def stored_value(row: dict[str, Any], field: str, expected: Any, lists: dict[tuple[str, str], list[Any]] | None = None) -> Any:
    """The value of `field` in a table row, on every destination as dlt's normalizer stores it: a nested
    object flattened into `<field>__<key>` columns and a list in a child table (`lists`, see
    `stored_lists`), never one JSON column; a scalar in its own column."""
    if isinstance(expected, dict):
        assert field not in row, f"'{field}' is one column: dlt flattens objects into '{field}__*' columns"
        return {key: row.get(f"{field}__{key}") for key in expected}
    if isinstance(expected, list):
        assert field not in row, f"'{field}' is one column: dlt loads lists into a child table"
        return (lists or {}).get((row["_dlt_id"], field), [])
    return row.get(field)  # dlt creates no column for a field that is null in every record


def allowed_columns(expected: dict[str, Any]) -> set[str]:
    """The columns dlt makes of a record: objects flattened into `<field>__<key>`, scalars as they are,
    lists none (they go to child tables)."""
    columns = set()
    for field, value in expected.items():
        if isinstance(value, dict):
            columns |= {f"{field}__{key}" for key in value}
        elif not isinstance(value, list):
            columns.add(field)
    return columns


def row_key(source: str, resource: str, row: dict[str, Any], truth: bool) -> tuple[Any, ...]:
    """(id,) for top-level rows, (id, parent key) for child rows."""
    child = CHILDREN.get((source, resource))
    if child is None:
        return (row["id"],)
    return (row["id"], row["parent_id"] if truth else row[child[1]])


Reader = Callable[[str, str], list[dict[str, Any]]]  # (dataset, table) -> rows, on some destination
CHILD_TABLE_COLUMNS = {"value", "_dlt_parent_id", "_dlt_list_idx", "_dlt_id"}


def stored_lists(
    read: Reader, source: str, resource: str, rows: list[dict[str, Any]], truth: list[dict[str, Any]]
) -> dict[tuple[str, str], list[Any]]:
    """The lists of the records in `rows` as dlt stored them: child table `<resource>__<field>`, one row
    per item (`value`), linked by `_dlt_parent_id` to the parent row's `_dlt_id`, in `_dlt_list_idx`
    order (and `_dlt_root_id`, where dlt adds it for merge, the top-level row's `_dlt_id`).
    Returns (parent `_dlt_id`, field) -> items."""
    fields = {f for record in truth for f, value in record.items() if isinstance(value, list) and value}
    parents = {row["_dlt_id"] for row in rows}
    lists: dict[tuple[str, str], list[Any]] = {}
    for field in sorted(fields):
        where = f"{source}.{resource}__{field}"
        items = read(source, f"{resource}__{field}")
        assert len(items) == sum(len(r.get(field) or []) for r in truth), f"{where}: item count differs from the API's"
        extra = set(items[0]) - CHILD_TABLE_COLUMNS - {"_dlt_root_id"}
        assert not extra, f"{where}: unexpected columns {sorted(extra)}"
        by_parent: dict[str, list[dict[str, Any]]] = {}
        for item in items:
            assert item["_dlt_parent_id"] in parents, f"{where}: an item points at no {resource} row"
            assert item.get("_dlt_root_id", item["_dlt_parent_id"]) == item["_dlt_parent_id"], where
            by_parent.setdefault(item["_dlt_parent_id"], []).append(item)
        for parent, found in by_parent.items():
            found.sort(key=lambda item: item["_dlt_list_idx"])
            assert [i["_dlt_list_idx"] for i in found] == list(range(len(found))), f"{where}: list positions"
            lists[(parent, field)] = [i["value"] for i in found]
    return lists


def assert_table_equals_truth(emulator: Any, source: str, resource: str, values: bool = True, read: Reader | None = None) -> None:
    """The table holds exactly the API's records: same rows, keys, parents and (if `values`) field values,
    lists included (their child tables). `read` reads a table from the destination (default: DuckDB)."""
    read = read or read_table
    truth = emulator.truth(source, resource)
    rows = read(source, resource)
    where = f"{source}.{resource}"
    assert len(rows) == len(truth), f"{where}: {len(rows)} rows in the destination, the API serves {len(truth)}"

    truth_keys = [row_key(source, resource, r, truth=True) for r in truth]
    table_keys = [row_key(source, resource, r, truth=False) for r in rows]
    assert not [k for k, n in Counter(table_keys).items() if n > 1], f"{where}: duplicate rows"
    assert set(table_keys) == set(truth_keys), f"{where}: keys differ from the API's"
    assert {r["id"] for r in rows} == {r["id"] for r in truth}

    child = CHILDREN.get((source, resource))
    if child is not None:
        parent_ids = {r["id"] for r in emulator.truth(source, child[0])}
        assert all(r[child[1]] in parent_ids for r in rows), f"{where}: a row points at no {child[0]} record"

    expected_columns = set().union(*(allowed_columns(expected_row(r)) for r in truth))
    extra = set(rows[0]) - expected_columns - DLT_COLUMNS - ({child[1]} if child else set())
    assert not extra, f"{where}: unexpected columns {sorted(extra)}"
    if not values:
        return

    lists = stored_lists(read, source, resource, rows, truth)
    by_key = dict(zip(table_keys, rows, strict=True))
    for key, record in zip(truth_keys, truth, strict=True):
        expected = expected_row(record)
        stored = by_key[key]
        actual = {name: stored_value(stored, name, value, lists) for name, value in expected.items()}
        assert actual == expected, f"{where} {key}: stored {actual} != served {expected}"
        assert isinstance(stored["updated_at"], datetime) and stored["updated_at"].tzinfo is not None


DEMO_SECRET_VALUES = sorted({value for secrets in DEMO_CREDENTIALS.values() for value in secrets.values()})
