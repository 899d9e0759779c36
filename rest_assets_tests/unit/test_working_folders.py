"""A run's working folder is swept by a later run once its run is dead, and never while its run is alive.

Runs here are processes (and one block in this process) holding
`run_folder`: one is SIGKILLed, one stays alive until the test lets it end.
Each says when its folder is made and locked; nothing waits on time.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from rest_assets.warehouse.working_folders import LOCK_FILE, run_folder, sweep_dead_folders

pytestmark = pytest.mark.skipif(sys.platform == "win32", reason="flock is POSIX")

REPORT = "error.txt"
HOLDER = """
import sys
from rest_assets.warehouse.working_folders import run_folder
with run_folder(sys.argv[1]) as folder:
    (folder / "pipeline").mkdir()
    (folder / "pipeline" / "rows.jsonl").write_text('{"id": 1}')
    print("ready", flush=True)
    sys.stdin.read()  # until the test closes our stdin
"""


def hold(name: str) -> subprocess.Popen[str]:
    """A process that makes and locks run folder `name`, writes a row into it, and holds it until its stdin closes."""
    process = subprocess.Popen(
        [sys.executable, "-c", HOLDER, name],
        env=dict(os.environ),
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    assert process.stdout is not None
    line = process.stdout.readline()
    assert line.strip() == "ready", process.communicate(timeout=60)[1][-2000:]
    return process


def names(root: Path) -> set[str]:
    return {p.name for p in root.iterdir()}


@pytest.fixture()
def root(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("DLT_DATA_DIR", str(tmp_path / "dlt"))
    return tmp_path / "dlt"


def test_the_next_run_sweeps_dead_runs_folders_and_leaves_live_ones(root):
    live, dead = hold("live-run"), hold("dead-run")
    dead.send_signal(signal.SIGKILL)
    dead.communicate(timeout=60)
    assert (root / "dead-run" / "pipeline" / "rows.jsonl").exists(), "a killed run cleans up nothing"
    with run_folder("failed-run", report=REPORT) as failed:  # a failed run: only its report is left
        (failed / REPORT).write_text("error: boom")
    (root / "older-version" / "pipeline").mkdir(parents=True)  # no lock file: made before there was one

    with run_folder("this-process", report=REPORT) as mine:  # a run in this process, still going
        (mine / "pipeline").mkdir()
        with run_folder("next-run", report=REPORT) as next_run:
            assert names(root) == {"live-run", "failed-run", "older-version", "this-process", "next-run"}
            assert (root / "live-run" / "pipeline" / "rows.jsonl").exists()
            assert (root / "this-process" / "pipeline").is_dir()
            assert names(root / "failed-run") == {REPORT}
            assert names(next_run) == {LOCK_FILE}

        live.communicate(timeout=60)  # closes its stdin: the run ends
        assert live.returncode == 0
        # The live run has ended without removing its folder: now it is a dead run's, swept; ours is not.
        assert sweep_dead_folders(root, REPORT) == [root / "live-run"]
    assert names(root) == {"failed-run", "older-version", "this-process"}
    assert [p.name for p in sweep_dead_folders(root, REPORT)] == ["this-process"]


def test_a_folder_its_run_left_empty_is_removed_and_a_report_keeps_no_lock_file(root):
    with run_folder("empty-run"):
        pass
    with run_folder("failed-run", report=REPORT) as failed:
        (failed / REPORT).write_text("error: boom")
    (root / "killed-after-its-report").mkdir()
    (root / "killed-after-its-report" / REPORT).write_text("error: boom")
    (root / "killed-after-its-report" / LOCK_FILE).touch()  # free: its run died before dropping it

    assert sweep_dead_folders(root, REPORT) == []
    assert names(root) == {"failed-run", "killed-after-its-report"}
    assert names(root / "failed-run") == names(root / "killed-after-its-report") == {REPORT}


@pytest.mark.parametrize("where", ["a-file", "under-a-file"])
def test_a_data_dir_that_cannot_be_a_folder_names_dlt_data_dir(tmp_path, monkeypatch, where):
    from rest_assets.errors import LoadError

    blocker = tmp_path / "a-file"
    blocker.write_text("not a folder")
    monkeypatch.setenv("DLT_DATA_DIR", str(blocker if where == "a-file" else blocker / "dlt"))
    with pytest.raises(LoadError, match="set DLT_DATA_DIR to a folder this process can write"):
        with run_folder("some-run"):
            pass
