"""Each run's dlt working folder under `state_root()`: made and locked by its run, swept once its run is dead.

A run removes its folder when it succeeds and scrubs it to an error report
when it fails, but a run that is killed (SIGKILL, out of memory, a lost pod)
cleans up nothing: its folder keeps the rows it extracted and possibly dlt's
`trace.pickle` with an exception's raw text. So every run holds an exclusive
`flock` on `<folder>/.run.lock` for as long as it uses the folder (the kernel
releases it when the process ends, however it ends), and every run first
sweeps the folders whose lock it can take: their run is dead.

What the sweep leaves alone: a folder whose lock is held (a live run, in this
process or another: flock locks belong to an open file, so a second open in
one process conflicts too); a folder without a lock file (a failed run's
report once its run ended, or a folder an older version made); a folder whose
only other entry is the run's report (`report`, the error.txt a failed run
leaves for its user). Nothing here depends on timing: a run takes its lock
before dlt writes anything, and checks afterwards that the lock file it holds
is still the folder's (a sweep may have taken the folder between its open and
its lock, while the folder was still empty).
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from pathlib import Path
from typing import IO

try:
    import fcntl
except ImportError:  # not POSIX: no cross-process lock, no sweep
    fcntl = None  # type: ignore[assignment]

from rest_assets.errors import LoadError
from rest_assets.warehouse.destination import state_root

LOCK_FILE = ".run.lock"


@contextmanager
def run_folder(name: str, report: str | None = None) -> Iterator[Path]:
    """Sweep dead runs' folders, then make `<state_root>/<name>`, held by this run for the block.

    `report` names the file a failed run leaves as its only content (kept by
    every sweep). At the end the lock is released; a folder left empty is
    removed, the lock file of one holding just the report too, and a folder
    left with anything else keeps its (free) lock file: the next run sweeps it.
    """
    root = state_root()
    try:
        root.mkdir(parents=True, exist_ok=True)
    except OSError as exc:  # a file in the way, no such disk, no permission
        raise LoadError(
            f"cannot make dlt's working folder {root}: {exc.strerror or exc}; set DLT_DATA_DIR to a folder this "
            "process can write (default: .rest_assets/dlt under the working directory)"
        ) from None
    sweep_dead_folders(root, report)
    folder = root / name
    if fcntl is None:
        folder.mkdir(parents=True, exist_ok=True)
        yield folder
        return
    handle = _make_and_lock(folder)
    try:
        yield folder
    finally:
        if _only_report(folder, report):
            (folder / LOCK_FILE).unlink(missing_ok=True)
        elif _entries(folder) == set():
            remove_run_folder(folder)
        handle.close()


def sweep_dead_folders(root: Path, report: str | None = None) -> list[Path]:
    """Remove every folder under `root` whose run is dead (its lock file exists and is free); returns them."""
    if fcntl is None or not root.is_dir():
        return []
    swept = []
    for folder in sorted(root.iterdir()):
        if folder.is_dir() and not folder.is_symlink() and _sweep(folder, report):
            swept.append(folder)
    return swept


def remove_run_folder(folder: Path) -> None:
    """Remove a run's folder, its lock file last: a removal cut short is still swept by the next run."""
    if not folder.is_dir():
        return
    for child in folder.iterdir():
        if child.name == LOCK_FILE:
            continue
        if child.is_dir() and not child.is_symlink():
            shutil.rmtree(child, ignore_errors=True)
        else:
            child.unlink(missing_ok=True)
    (folder / LOCK_FILE).unlink(missing_ok=True)
    with suppress(OSError):
        folder.rmdir()


def _sweep(folder: Path, report: str | None) -> bool:
    """Remove `folder` if its run is dead and it is not a failed run's report."""
    try:
        handle = open(folder / LOCK_FILE, "rb")  # noqa: SIM115 - held while the folder is removed
    except OSError:  # no lock file: a report, or an older version's folder
        return False
    with handle:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:  # held: its run is alive
            return False
        if not _is_current(handle, folder / LOCK_FILE):
            return False
        if _only_report(folder, report):  # a failed run's report, its run ended before dropping the lock file
            (folder / LOCK_FILE).unlink(missing_ok=True)
            return False
        remove_run_folder(folder)
        return True


def _make_and_lock(folder: Path) -> IO[bytes]:
    """Make `folder` and lock its lock file (again, if a sweep took the still empty folder meanwhile)."""
    while True:
        folder.mkdir(parents=True, exist_ok=True)
        handle = open(folder / LOCK_FILE, "ab")  # noqa: SIM115 - held for the run's lifetime
        fcntl.flock(handle, fcntl.LOCK_EX)
        if _is_current(handle, folder / LOCK_FILE):
            return handle
        handle.close()


def _is_current(handle: IO[bytes], path: Path) -> bool:
    """Whether the open `handle` is still the file at `path` (not one a sweep has removed)."""
    try:
        on_disk = path.stat()
    except OSError:
        return False
    held = os.fstat(handle.fileno())
    return (on_disk.st_dev, on_disk.st_ino) == (held.st_dev, held.st_ino)


def _only_report(folder: Path, report: str | None) -> bool:
    """Whether `folder` holds nothing but its run's report (and the lock file); also true when it is gone."""
    names = _entries(folder)
    return names is None or (report is not None and names == {report})


def _entries(folder: Path) -> set[str] | None:
    """The names in `folder` besides its lock file (None when it is gone)."""
    try:
        return {child.name for child in folder.iterdir()} - {LOCK_FILE}
    except OSError:
        return None
