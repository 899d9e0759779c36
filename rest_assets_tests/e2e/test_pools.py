"""The concurrency pool of a source is enforced, not only configured.

Every source's multi-asset runs in the pool ``rest_assets/<source>`` and the
deployed instance (deploy/dagster.yaml) gives every pool a default limit of 1.
Here that same ``concurrency.pools`` block is put on a throw-away sqlite
instance (a temporary DAGSTER_HOME), and two runs of one source are launched
at once in two processes against a slowed-down emulator. Each run writes to
its own DuckDB file, so nothing but the pool can keep them apart.

What proves it, without timing anything: the run records show both runs
were under way together (the later one started before the earlier one's step
ended, and its step logged that it was blocked by the pool) while their steps
never overlapped; and the emulator's request log is exactly one whole run's
requests followed by the other's, never interleaved. With the pool limit
removed from the instance, the steps overlap and the test fails.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections import Counter
from pathlib import Path
from typing import Any

import pytest
import yaml
from dagster import DagsterEventType, DagsterInstance
from dagster._core.instance.ref import InstanceRef
from reliability_support import write_spec

pytestmark = pytest.mark.e2e

TESTS_DIR = Path(__file__).resolve().parents[1]  # rest_assets_tests: the shared helpers
DEPLOYED_INSTANCE = TESTS_DIR.parent / "deploy" / "dagster.yaml"
SOURCE = "chat_analytics"
POOL = f"rest_assets/{SOURCE}"
RESOURCES = ["contacts"]
# Builds everything first, says READY, and starts its run only when the test writes a line:
# both runs start together whatever each process's import time.
RUNNER = """
import json, sys
from dagster import DagsterInstance, materialize
from rest_assets.cli.demo import QUIET_RUN_CONFIG
from rest_assets.definitions import build_definitions

defs = build_definitions()
assets = [a for a in defs.assets if a.node_def.name == sys.argv[1]]
with DagsterInstance.get() as instance:
    print("READY", flush=True)
    sys.stdin.readline()
    result = materialize(assets, instance=instance, resources=defs.resources,
                         run_config=QUIET_RUN_CONFIG, raise_on_error=False)
    errors = [e.step_failure_data.error.to_string() for e in result.all_events if e.is_step_failure]
    print("RESULT " + json.dumps({"success": result.success, "run_id": result.run_id, "errors": errors}), flush=True)
"""


def write_instance(home: Path, *, with_pools: bool) -> Path:
    """A sqlite instance in `home` with deploy/dagster.yaml's `concurrency.pools` block (or none)."""
    deployed = yaml.safe_load(DEPLOYED_INSTANCE.read_text())
    config: dict[str, Any] = {"telemetry": {"enabled": False}}
    if with_pools:
        config["concurrency"] = {"pools": deployed["concurrency"]["pools"]}
    home.mkdir(parents=True, exist_ok=True)
    (home / "dagster.yaml").write_text(yaml.safe_dump(config))
    with DagsterInstance.from_ref(InstanceRef.from_dir(str(home))) as instance:
        instance.get_runs(limit=1)  # creates the storages now: two runs creating them at once race
        if with_pools:
            # what the first run's claim does on a deployed instance (the pool's slots from the default
            # limit), done once here: two sqlite processes doing it at the same moment can both allocate
            # a slot, a race of the test's throw-away sqlite instance, not of the pool
            instance.event_log_storage.initialize_concurrency_limit_to_default(POOL)
    return home


def launch_together(tmp_path: Path, home: Path, count: int = 2) -> list[dict[str, Any]]:
    """Start `count` runs of SOURCE in separate processes, release them at once, return their RESULTs."""
    processes = []
    for index in range(count):
        env = dict(os.environ, DAGSTER_HOME=str(home), DESTINATION__DUCKDB__CREDENTIALS=str(tmp_path / f"run{index}.duckdb"))
        processes.append(
            subprocess.Popen(
                [sys.executable, "-c", RUNNER, SOURCE],
                cwd=tmp_path,
                env=env,
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                text=True,
            )
        )
    try:
        for process in processes:
            line = process.stdout.readline()
            assert line.strip() == "READY", f"runner did not start: {line!r} {process.stderr.read()[-2000:]}"
        for process in processes:
            process.stdin.write("go\n")
            process.stdin.flush()
        return [_result(process) for process in processes]
    finally:
        for process in processes:
            if process.poll() is None:
                process.kill()
                process.wait()


def _result(process: subprocess.Popen[str]) -> dict[str, Any]:
    out, err = process.communicate(timeout=180)
    lines = [line for line in out.splitlines() if line.startswith("RESULT ")]
    assert lines, f"the run printed no result (exit {process.returncode}): {err[-2000:]}"
    return json.loads(lines[-1][len("RESULT ") :])


def run_events(instance: DagsterInstance, run_id: str) -> dict[str, list[Any]]:
    """The run's event log entries by event type name (plus ENGINE_EVENT messages)."""
    by_type: dict[str, list[Any]] = {}
    for entry in instance.all_logs(run_id):
        if entry.dagster_event is not None:
            by_type.setdefault(entry.dagster_event.event_type_value, []).append(entry)
    return by_type


def _last_work(events: dict[str, list[Any]]) -> float:
    """When a step's work ended: its last asset materialization (the pool slot is freed after it)."""
    entries = events.get(DagsterEventType.ASSET_MATERIALIZATION.value, [])
    assert entries, "the step materialized nothing"
    return max(entry.timestamp for entry in entries)


def _one(events: dict[str, list[Any]], event_type: DagsterEventType) -> float:
    entries = events.get(event_type.value, [])
    assert len(entries) == 1, f"expected one {event_type.value}, got {len(entries)}"
    return entries[0].timestamp


@pytest.fixture()
def slow_api(own_emulator, workdir, tmp_path):
    """chat_analytics trimmed to one resource with pages of 2 records, on a private emulator with latency."""
    workdir.point_at(own_emulator)
    workdir.use_specs(write_spec(tmp_path / "specs", SOURCE, resources=RESOURCES, page_limit=2))
    own_emulator.configure(latency_ms=150)
    return own_emulator


def _request_keys(entries: list[dict[str, Any]]) -> list[tuple[str, str]]:
    return [(e["path"], json.dumps(e["query"], sort_keys=True)) for e in entries]


def test_two_runs_of_one_source_launched_at_once_take_turns_in_its_pool(slow_api, tmp_path):
    home = write_instance(tmp_path / "dagster_home", with_pools=True)

    results = launch_together(tmp_path, home)

    assert all(r["success"] for r in results), results
    with DagsterInstance.from_ref(InstanceRef.from_dir(str(home))) as instance:
        events = {r["run_id"]: run_events(instance, r["run_id"]) for r in results}
        steps = sorted((_one(e, DagsterEventType.STEP_START), _last_work(e), run_id) for run_id, e in events.items())
        (first_start, first_end, _), (second_start, _, second) = steps
        second_run_start = _one(events[second], DagsterEventType.RUN_START)
        assert second_run_start < first_end, "the runs did not run at the same time: the test exercised nothing"
        # the slot is handed on once the first step's work is done (its last materialization), never before
        assert second_start >= first_end, "the two runs' steps overlapped: the pool was not enforced"
        blocked = [
            entry.user_message
            for entry in events[second].get(DagsterEventType.ENGINE_EVENT.value, [])
            if "blocked by limit for pool" in (entry.user_message or "")
        ]
        assert blocked and POOL in blocked[0], "the later run's step must have waited for the pool"
        assert {p.name: p.limit for p in instance.event_log_storage.get_pool_limits()} == {POOL: 1}

    # The API saw one whole run, then the other: never the two at once.
    log = _request_keys([e for e in slow_api.requests() if e["source"] == SOURCE])
    half = len(log) // 2
    assert len(log) == 2 * half and half >= 10
    assert not [k for k, n in Counter(log[:half]).items() if n > 1], "the first run's requests interleave with the second's"
    assert sorted(log[:half]) == sorted(log[half:])
