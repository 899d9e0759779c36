"""Keep CPython's cyclic garbage collector off the heap a process builds once and keeps.

A code-location process imports Dagster, dlt and their dependencies and builds
its definitions: a few hundred thousand objects that live as long as the
process. The collector cannot know that. It runs full collections over them
while they are created (about a quarter of the import time), again and again
during a load, and once more at shutdown (0.5–0.7 s). Following the pattern
the `gc.freeze` documentation describes (collector off while the long-lived
part is built, then freeze it), those objects are set aside: collections only
look at what a load creates, and the process exits at once (issue 6).

One exception: DuckDB. Its module objects (types, enums, functions), held in
frozen cycles, would outlive the interpreter's last collection, and DuckDB's
bindings (nanobind) then print "leaked ... instances" at exit, which reads as
a crash. A process that imported DuckDB drops DuckDB's modules at exit, as
finalization would, and collects what that frees: the frozen heap stays set
aside (giving it back to the collector instead costs ~1.5 s per process).
"""

from __future__ import annotations

import atexit
import functools
import gc
import sys
from collections.abc import Iterator
from contextlib import contextmanager


@contextmanager
def long_lived_objects() -> Iterator[None]:
    """Run the block with the collector paused, then freeze what exists; the collector's state is restored."""
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        gc.freeze()
        if enabled:
            gc.enable()


@functools.cache
def freeze_before_first_load() -> None:
    """Collect, then freeze what the process holds before its first load (once per process).

    Only live objects are frozen: what the process built before the load
    (Dagster's run machinery, the instance) stays set aside with the rest.
    """
    gc.collect()
    gc.freeze()


def _release_duckdb_at_exit() -> None:
    """Where DuckDB was imported into a frozen heap, free its objects before its bindings check for leaks.

    Runs after every exit handler registered later (Dagster's, dlt's destination clients'), so no
    DuckDB call follows; DuckDB's files were closed by the runs themselves.
    """
    if "duckdb" not in sys.modules or not gc.get_freeze_count():
        return
    for name in [name for name in sys.modules if name.split(".")[0] in ("duckdb", "_duckdb")]:
        namespace = getattr(sys.modules.pop(name), "__dict__", None)  # None: a failed import's placeholder
        if namespace is not None:
            namespace.clear()
    gc.collect()


atexit.register(_release_duckdb_at_exit)
