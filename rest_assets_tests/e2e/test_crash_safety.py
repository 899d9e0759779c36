"""Crash safety: a run SIGKILLed in extract, in normalize or in load; several runs of one DuckDB file at once.

Runs that get killed happen in subprocesses (the real `materialize` path)
against a private emulator. Where each is killed is driven by what it did, never
by timing: in extract, once the emulator's request log shows it fetching; in
normalize and in load, at a point where `park_at` stops it for good (it says so
in a marker file), after the test has checked dlt's working folder shows that
stage. The source has a merge table (`contacts`) and an append table (`teams`):
after the kill every table is as the last good run left it, and the rerun
leaves exactly the API's data, the append table holding every version the API
served once.

The load case runs on PostgreSQL too.

The concurrency case starts three runs of one source on one DuckDB file (and
on PostgreSQL) at once; each waits, inside its run, until all three are
there, so their runs overlap (their run records prove it), and each must
succeed, appending the API's records once.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Callable
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest
from conftest import assert_table_equals_truth, failure_messages, read_table
from reliability_support import run_source, snapshot, write_spec

pytestmark = pytest.mark.e2e

TESTS_DIR = Path(__file__).resolve().parents[1]  # rest_assets_tests: the shared helpers
RESOURCES = ["contacts", "teams"]
APPEND = "teams"
RUNNER = """
import json, sys
sys.path.insert(0, sys.argv[2])
from pathlib import Path
from conftest import failure_messages
from reliability_support import park_at, run_source, wait_for_peers
if sys.argv[3] == "park":
    park_at(sys.argv[4], Path(sys.argv[5]), sys.argv[6])
elif sys.argv[3] == "together":
    wait_for_peers(Path(sys.argv[4]), int(sys.argv[5]))
from dagster import DagsterInstance
with DagsterInstance.ephemeral() as instance:
    result = run_source(sys.argv[1], instance=instance)
    record = instance.get_run_record_by_id(result.run_id)
    print("RESULT " + json.dumps({"success": result.success, "errors": failure_messages(result),
                                  "start": record.start_time, "end": record.end_time}))
"""


def start_run(source: str, cwd: Path, *how: str) -> subprocess.Popen[str]:
    """Materialize `source` in a new Python process with the test's environment (`how`: RUNNER's options)."""
    return subprocess.Popen(
        [sys.executable, "-c", RUNNER, source, str(TESTS_DIR), *(how or ("plain",))],
        cwd=cwd,
        env=dict(os.environ),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def outcome(process: subprocess.Popen[str]) -> dict[str, Any]:
    """The RESULT line a finished runner printed."""
    out, err = process.communicate(timeout=180)
    lines = [line for line in out.splitlines() if line.startswith("RESULT ")]
    assert lines, f"the run printed no result (exit {process.returncode}): {err[-2000:]}"
    return json.loads(lines[-1][len("RESULT ") :])


def wait_until(condition: Callable[[], bool], process: subprocess.Popen[str] | None = None, timeout: float = 120.0) -> None:
    """Poll `condition` every 20 ms until it holds (fails the test after `timeout` s or if `process` ends)."""
    deadline = time.monotonic() + timeout
    while not condition():
        if process is not None and process.poll() is not None:
            raise AssertionError(
                f"the run ended (exit {process.returncode}) before getting there: {process.communicate()[1][-2000:]}"
            )
        assert time.monotonic() < deadline, "timed out waiting for the run to get there"
        time.sleep(0.02)


def api_requests(emulator: Any, resource: str | None = None) -> list[dict[str, Any]]:
    return [e for e in emulator.requests() if e["source"] == "chat_analytics" and (resource is None or e["resource"] == resource)]


def _at(value: Any) -> datetime:
    return value if isinstance(value, datetime) else datetime.fromisoformat(str(value).replace("Z", "+00:00"))


def _versions(rows: list[dict[str, Any]]) -> list[tuple[Any, datetime]]:
    return [(r["id"], _at(r["updated_at"])) for r in rows]


def _working_folders(root: Path) -> set[str]:
    """Per-run dlt working folders (`definitions` is the one definition loading creates, never run in)."""
    return {p.name for p in root.iterdir() if p.name != "definitions"} if root.exists() else set()


def _packages(root: Path, area: str) -> list[Path]:
    """The load packages under `area` (e.g. ``load/new``) of every run's pipeline folder."""
    return [p for p in root.glob(f"*/*/{area}/*") if p.is_dir()]


def _run_jobs(root: Path, table: str) -> list[Path]:
    """The jobs of `table` that dlt started or completed in a package not yet loaded."""
    return [p for state in ("started_jobs", "completed_jobs") for p in root.glob(f"*/*/load/normalized/*/{state}/{table}.*")]


@pytest.fixture()
def slow_source(own_emulator, workdir, tmp_path):
    """chat_analytics trimmed to `contacts` (merge) and `teams` (append), pages of 2, on a private emulator."""
    workdir.point_at(own_emulator)
    workdir.use_specs(
        write_spec(tmp_path / "specs", "chat_analytics", resources=RESOURCES, page_limit=2, write_dispositions={APPEND: "append"})
    )
    return own_emulator


@pytest.mark.parametrize("stage", ["extract", "normalize", "load"])
def test_killed_then_rerun_loses_nothing_and_doubles_nothing(stage, slow_source, workdir, tmp_path):
    emulator = slow_source
    first = run_source("chat_analytics")
    assert first.success, failure_messages(first)
    before = snapshot("chat_analytics", RESOURCES)
    served = _versions(emulator.truth("chat_analytics", APPEND))
    cursor = max(_at(r["updated_at"]) for r in read_table("chat_analytics", "contacts"))
    emulator.advance(update_fraction=0.5, add=6)
    emulator.clear_requests()
    dlt_root = tmp_path / "dlt"

    victim = _start_and_kill_at(stage, emulator, tmp_path, dlt_root)

    assert snapshot("chat_analytics", RESOURCES) == before, f"a run killed in {stage} must not change the tables"
    leftovers = _working_folders(dlt_root)
    assert len(leftovers) == 1, "the killed run's working folder stays behind, untouched"

    emulator.configure(latency_ms=0)
    killed_after = len(api_requests(emulator))
    emulator.clear_requests()
    rerun = run_source("chat_analytics")
    assert rerun.success, failure_messages(rerun)
    assert victim.returncode == -signal.SIGKILL
    if stage == "extract":
        assert killed_after < len(api_requests(emulator)), "the killed run must have been stopped mid-way"
    since = {e["query"].get("updated_since") for e in api_requests(emulator, "contacts")}
    assert len(since) == 1 and _at(since.pop()) == cursor, "the cursor must not have moved past unloaded data"
    assert_table_equals_truth(emulator, "chat_analytics", "contacts")
    appended = _versions(read_table("chat_analytics", APPEND))
    assert not [v for v, n in Counter(appended).items() if n > 1], "the append table holds a version twice"
    assert set(appended) == set(served) | set(_versions(emulator.truth("chat_analytics", APPEND)))
    assert not _working_folders(dlt_root), "the rerun removes the killed run's folder and its own"


def _start_and_kill_at(stage: str, emulator: Any, cwd: Path, dlt_root: Path) -> subprocess.Popen[str]:
    """Start a run, SIGKILL it once it is in `stage` (checked on the request log / dlt's folders), reap it."""
    marker = cwd / "parked"
    if stage == "extract":
        emulator.configure(latency_ms=120)
        victim = start_run("chat_analytics", cwd)
        wait_until(lambda: len(api_requests(emulator)) >= 6, victim)
        assert not _packages(dlt_root, "load/new") and not _packages(dlt_root, "load/normalized")
    else:
        victim = start_run("chat_analytics", cwd, "park", stage, str(marker), APPEND)
        wait_until(marker.exists, victim)
        if stage == "normalize":  # normalized files written, not yet committed: the extracted package is still there
            assert _packages(dlt_root, "load/new") and _packages(dlt_root, "normalize/extracted")
            assert not _packages(dlt_root, "load/normalized")
        else:  # the append table's job has run; the package is not loaded
            assert _run_jobs(dlt_root, APPEND) and not _packages(dlt_root, "load/loaded")
    victim.send_signal(signal.SIGKILL)
    victim.communicate(timeout=60)
    return victim


def test_runs_of_one_duckdb_file_at_once_overlap_and_all_succeed(slow_source, workdir, tmp_path):
    emulator = slow_source
    runs = [start_run("chat_analytics", tmp_path, "together", str(tmp_path / "barrier"), "3") for _ in range(3)]
    results = [outcome(r) for r in runs]

    assert all(r["success"] for r in results), [r["errors"] for r in results]
    assert max(r["start"] for r in results) < min(r["end"] for r in results), "the runs never overlapped"
    assert_table_equals_truth(emulator, "chat_analytics", "contacts")
    appended = _versions(read_table("chat_analytics", APPEND))
    assert sorted(appended) == sorted(_versions(emulator.truth("chat_analytics", APPEND))), (
        "three runs of an unchanged API append the API's records once"
    )
    assert _working_folders(tmp_path / "dlt") == set(), "every run's working folder is removed after success"


def test_runs_of_one_source_on_postgres_at_once_overlap_and_append_once(pg_destination, slow_source, workdir, tmp_path):
    """Without a lock, each run extracts from the same stored cursor and the append table gets every record thrice."""
    emulator, pg = slow_source, pg_destination
    runs = [start_run("chat_analytics", tmp_path, "together", str(tmp_path / "barrier"), "3") for _ in range(3)]
    results = [outcome(r) for r in runs]

    assert all(r["success"] for r in results), [r["errors"] for r in results]
    assert max(r["start"] for r in results) < min(r["end"] for r in results), "the runs never overlapped"
    assert sorted(_versions(pg.rows("chat_analytics", "contacts"))) == sorted(
        _versions(emulator.truth("chat_analytics", "contacts"))
    )
    assert sorted(_versions(pg.rows("chat_analytics", APPEND))) == sorted(_versions(emulator.truth("chat_analytics", APPEND))), (
        "three runs of an unchanged API append the API's records once"
    )


def test_on_postgres_killed_in_load_then_rerun_loses_nothing_and_doubles_nothing(pg_destination, slow_source, workdir, tmp_path):
    emulator, pg = slow_source, pg_destination

    def tables() -> dict[str, list[tuple[Any, datetime]]]:
        return {t: sorted(_versions(pg.rows("chat_analytics", t))) for t in RESOURCES}

    first = run_source("chat_analytics")
    assert first.success, failure_messages(first)
    before = tables()
    served = _versions(emulator.truth("chat_analytics", APPEND))
    emulator.advance(update_fraction=0.5, add=6)

    victim = _start_and_kill_at("load", emulator, tmp_path, tmp_path / "dlt")
    assert victim.returncode == -signal.SIGKILL
    assert tables() == before, "a run killed in load must not change the tables"

    rerun = run_source("chat_analytics")
    assert rerun.success, failure_messages(rerun)
    after = tables()
    assert after["contacts"] == sorted(_versions(emulator.truth("chat_analytics", "contacts")))
    assert not [v for v, n in Counter(after[APPEND]).items() if n > 1], "the append table holds a version twice"
    assert set(after[APPEND]) == set(served) | set(_versions(emulator.truth("chat_analytics", APPEND)))


def test_the_next_run_removes_a_killed_runs_working_folder(slow_source, workdir, tmp_path):
    assert run_source("chat_analytics").success
    slow_source.advance(update_fraction=0.5, add=6)
    dlt_root = tmp_path / "dlt"
    _start_and_kill_at("load", slow_source, tmp_path, dlt_root)
    assert len(_working_folders(dlt_root)) == 1  # the killed run's folder, with its load package
    slow_source.configure(latency_ms=0)
    assert run_source("chat_analytics").success
    assert not _working_folders(dlt_root), "the killed run's folder (extracted rows on disk) is still there"
