"""Leave no secret in a failed run's dlt working folder, and keep what a user needs to debug it.

What dlt writes into a pipeline's working folder (`<state_root>/<run folder>/<pipeline>/`):

* `trace.pickle`: the run's trace, rewritten after every step, with each
  failing step's exception text and stack frames exactly as raised, e.g.
  requests' `400 Client Error ... for url: ...?api_key=<secret>`;
* `state.json`: the pipeline state (incremental cursors, source state);
* `schemas/` and each load package's `schema.json`: the inferred schema;
* `normalize/`, `load/` (`extracted`, `normalized`, `loaded` packages): the
  raw rows as extracted, in jsonl/parquet files, and their package state.

dlt's trace cannot be switched off for these runs: dagster-dlt reads the
loaded row counts from `pipeline.last_trace` (with `enable_runtime_trace`
false it fails), and dlt pickles it as soon as each step ends. So a failed
run's folder is scrubbed instead: everything in it is removed (a failed run's
packages are never reused: each run has its own folder and restores its state
from the destination) and one `error.txt` is written in its place, with the
redacted error, the redacted dlt step trace (exception chain and stack
frames) and the run's last requests (method, redacted URL, outcome).
A successful run's folder is removed whole (see orchestration.execution); a
killed run's folder is removed by the next run (warehouse.working_folders).
"""

from __future__ import annotations

import shutil
from collections.abc import Collection, Iterable
from pathlib import Path
from typing import Any

from rest_assets.runtime.redaction import redact

ERROR_FILE = "error.txt"
TRACE_FILE = "trace.pickle"


def scrub_failed_run(folder: Path, error: str, requests: Iterable[str] = (), keep: Collection[str] = ()) -> Path | None:
    """Replace the contents of a failed run's working `folder` with a redacted `error.txt`.

    `error` is the run's (already clean) error message; `requests` are lines of
    the run's request log; `keep` names entries left in place (the run's lock
    file, so a scrub cut short is still swept). Returns the path of `error.txt`
    (None when the folder was never made or holds nothing but `keep`: dlt never ran in it).
    """
    if not folder.is_dir() or all(child.name in keep for child in folder.iterdir()):
        return None
    report = [f"error: {error}", "", *_trace_lines(folder), "", "last requests:", *requests]
    try:
        for child in folder.iterdir():
            if child.name in keep:
                continue
            if child.is_dir() and not child.is_symlink():
                shutil.rmtree(child, ignore_errors=True)
            else:
                child.unlink(missing_ok=True)
        target = folder / ERROR_FILE
        target.write_text(redact("\n".join(report)) + "\n", encoding="utf-8")
    except OSError:  # the run's own error matters more; never hide it behind a cleanup error
        shutil.rmtree(folder, ignore_errors=True)
        return None
    return target


def _trace_lines(folder: Path) -> list[str]:
    """The dlt trace of each pipeline in `folder`, as redacted text (its steps and exception chain)."""
    lines: list[str] = []
    for trace_file in sorted(folder.glob(f"*/{TRACE_FILE}")):
        trace = _load_trace(trace_file.parent)
        if trace is None:
            continue
        lines.append(f"dlt trace of pipeline {trace_file.parent.name}:")
        for step in trace.steps or []:
            lines.append(redact(step.asstr(verbosity=0)))
            for exception in step.exception_traces or []:
                lines.append(f"  {exception.get('exception_type')}: {redact(exception.get('message'))}")
                lines += [f"    {redact(frame).rstrip()}" for frame in exception.get("stack_trace") or []]
    return lines


def _load_trace(pipeline_dir: Path) -> Any:
    """dlt's trace of one pipeline (a pickle dlt itself wrote in this run), or None."""
    try:
        from dlt.pipeline.trace import load_trace

        return load_trace(str(pipeline_dir))
    except Exception:  # noqa: BLE001 - a trace dlt cannot read back is dropped, not reported
        return None
