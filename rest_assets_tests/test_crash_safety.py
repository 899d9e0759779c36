"""Crash safety: a run killed mid-extract, and two runs of one source at once.

Runs happen in subprocesses (the real `materialize` path, nothing mocked)
against an emulator slowed down with latency so the test can act while a run
is mid-way, watching the emulator's request log. DuckDB allows one writer
process per file, so the concurrency case runs two processes against the same
DuckDB file and the same DLT_DATA_DIR: each must either succeed or fail
cleanly on the lock, their working folders must be distinct while both are
running, and a later run must leave exactly the API's data.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from datetime import datetime
from pathlib import Path
from typing import Any, Callable

import pytest
from conftest import assert_table_equals_truth, failure_messages, read_table
from reliability_support import run_source, snapshot, write_spec

pytestmark = pytest.mark.e2e

TESTS_DIR = Path(__file__).resolve().parent
RESOURCES = ["contacts", "teams"]
RUNNER = """
import json, sys
sys.path.insert(0, sys.argv[2])
from conftest import failure_messages
from reliability_support import run_source
result = run_source(sys.argv[1])
print("RESULT " + json.dumps({"success": result.success, "errors": failure_messages(result)}))
"""


def start_run(source: str, cwd: Path) -> subprocess.Popen[str]:
    """Materialize `source` in a new Python process with the test's environment."""
    return subprocess.Popen([sys.executable, "-c", RUNNER, source, str(TESTS_DIR)], cwd=cwd, env=dict(os.environ),
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def outcome(process: subprocess.Popen[str]) -> dict[str, Any]:
    """The RESULT line a finished runner printed."""
    out, err = process.communicate(timeout=120)
    lines = [line for line in out.splitlines() if line.startswith("RESULT ")]
    assert lines, f"the run printed no result (exit {process.returncode}): {err[-2000:]}"
    return json.loads(lines[-1][len("RESULT "):])


def wait_until(condition: Callable[[], bool], timeout: float = 60.0) -> None:
    """Poll `condition` every 20 ms until it holds (fails the test after `timeout` s)."""
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "timed out waiting for the run to get there"
        time.sleep(0.02)


def api_requests(emulator: Any, resource: str | None = None) -> list[dict[str, Any]]:
    return [e for e in emulator.requests() if e["source"] == "chat_analytics"
            and (resource is None or e["resource"] == resource)]


def _at(value: Any) -> datetime:
    return value if isinstance(value, datetime) else datetime.fromisoformat(str(value).replace("Z", "+00:00"))


@pytest.fixture()
def slow_source(own_emulator, workdir, tmp_path):
    """chat_analytics trimmed to two resources with pages of 2 records, pointed at a private emulator."""
    workdir.point_at(own_emulator)
    workdir.use_specs(write_spec(tmp_path / "specs", "chat_analytics", resources=RESOURCES, page_limit=2))
    return own_emulator


def test_killed_mid_extract_then_rerun_loses_nothing_and_doubles_nothing(slow_source, workdir, tmp_path):
    emulator = slow_source
    first = run_source("chat_analytics")
    assert first.success, failure_messages(first)
    before = snapshot("chat_analytics", RESOURCES)
    cursor = max(_at(r["updated_at"]) for r in read_table("chat_analytics", "contacts"))
    emulator.advance(update_fraction=0.5, add=6)
    emulator.clear_requests()
    emulator.configure(latency_ms=120)

    victim = start_run("chat_analytics", tmp_path)
    wait_until(lambda: len(api_requests(emulator)) >= 6)
    victim.send_signal(signal.SIGKILL)
    victim.wait(timeout=30)
    assert victim.returncode == -signal.SIGKILL
    killed_after = len(api_requests(emulator))

    assert snapshot("chat_analytics", RESOURCES) == before, "a killed run must not change the tables"
    leftovers = _working_folders(tmp_path / "dlt")
    assert len(leftovers) == 1, "the killed run's working folder stays behind, untouched"

    emulator.configure(latency_ms=0)
    emulator.clear_requests()
    rerun = run_source("chat_analytics")
    assert rerun.success, failure_messages(rerun)
    assert killed_after < len(api_requests(emulator)), "the killed run must have been stopped mid-way"
    since = {e["query"].get("updated_since") for e in api_requests(emulator, "contacts")}
    assert len(since) == 1 and _at(since.pop()) == cursor, "the cursor must not have moved past unloaded data"
    for resource in RESOURCES:
        assert_table_equals_truth(emulator, "chat_analytics", resource)
    assert _working_folders(tmp_path / "dlt") == leftovers


def _working_folders(root: Path) -> set[str]:
    """Per-run dlt working folders (`definitions` is the one definition loading creates, never run in)."""
    return {p.name for p in root.iterdir() if p.name != "definitions"} if root.exists() else set()


def test_two_concurrent_runs_of_one_source_use_distinct_folders_and_end_correct(slow_source, workdir, tmp_path):
    emulator = slow_source
    emulator.configure(latency_ms=40)
    seen_together: set[str] = set()

    runs = [start_run("chat_analytics", tmp_path) for _ in range(2)]

    def both_working() -> bool:
        folders = _working_folders(tmp_path / "dlt")
        if len(folders) >= 2:
            seen_together.update(folders)
        return len(seen_together) >= 2 or all(r.poll() is not None for r in runs)

    wait_until(both_working)
    results = [outcome(r) for r in runs]

    assert len(seen_together) >= 2, "the two runs never worked at the same time: the test exercised nothing"
    assert all(name.startswith("chat_analytics-") for name in seen_together)
    for result in results:
        if not result["success"]:  # DuckDB allows one writer: losing the race must be a clean lock error
            assert len(result["errors"]) >= 1 and any("lock" in e.lower() for e in result["errors"]), result
            assert all("Traceback" not in e for e in result["errors"] if "LoadError" in e), result
    assert any(r["success"] for r in results), results

    emulator.configure(latency_ms=0)
    final = run_source("chat_analytics")
    assert final.success, failure_messages(final)
    for resource in RESOURCES:
        assert_table_equals_truth(emulator, "chat_analytics", resource)
