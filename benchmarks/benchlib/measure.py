"""Whole-process measurement: wall time and peak RSS of one child process, and summary statistics.

Peak memory is ``ru_maxrss`` from ``os.wait4`` on that one child: the kernel's
high-water mark of its resident set (and of any descendants it waited for), so
no polling can miss a short peak and runs never mix (unlike
``getrusage(RUSAGE_CHILDREN)``, which is a maximum over every child so far).
"""

from __future__ import annotations

import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

RUNNER = Path(__file__).resolve().parent.parent / "run_one.py"


@dataclass
class Sample:
    """One measured run."""

    wall_s: float
    peak_mib: float
    ok: bool
    detail: dict[str, Any] = field(default_factory=dict)
    error: str = ""


def run_process(args: list[str], env: dict[str, str], log_file: Path) -> tuple[int, float, float]:
    """Run ``args`` to completion; returns (exit code, wall seconds, peak RSS MiB). Output goes to ``log_file``."""
    with open(log_file, "wb") as log:
        started = time.perf_counter()
        process = subprocess.Popen(args, env=env, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
        _, status, usage = os.wait4(process.pid, 0)
        wall = time.perf_counter() - started
    process.returncode = os.waitstatus_to_exitcode(status)
    return process.returncode, wall, usage.ru_maxrss / 1024  # Linux: KiB


def run_impl(impl: str, env: dict[str, str], workdir: Path, profile: Path | None = None) -> Sample:
    """Run ``run_one.py impl`` as a whole process; the result's ``detail`` is what the runner wrote."""
    out = workdir / "result.json"
    args = [sys.executable, str(RUNNER), impl, "--out", str(out)]
    if profile is not None:
        args += ["--profile", str(profile)]
    code, wall, peak = run_process(args, env, workdir / "output.log")
    if code != 0 or not out.exists():
        tail = (workdir / "output.log").read_text(errors="replace")[-2000:]
        return Sample(wall, peak, False, error=f"exit {code}: {tail}")
    return Sample(wall, peak, True, detail=json.loads(out.read_text()))


def new_workdir(root: Path, name: str) -> Path:
    """A fresh directory for one run (DuckDB file, dlt state, logs)."""
    return Path(tempfile.mkdtemp(prefix=f"{name}-", dir=root))


@dataclass
class Summary:
    """Median, min and max of a series of samples."""

    median: float
    low: float
    high: float
    n: int

    @classmethod
    def of(cls, values: list[float]) -> Summary:
        """Summarise ``values`` (NaNs when empty)."""
        if not values:
            nan = float("nan")
            return cls(nan, nan, nan, 0)
        return cls(statistics.median(values), min(values), max(values), len(values))
