"""One run of one implementation of one workload, as a whole process (started by run.py).

    python benchmarks/run_one.py IMPL --base-url URL --duckdb FILE --out RESULT.json [--profile FILE]

Settings come from the environment that run.py sets (emulator URL, demo
secrets, DESTINATION__DUCKDB__CREDENTIALS, DLT_DATA_DIR). Writes a JSON result
with the in-process seconds (after interpreter start) and the loader's own figures.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from benchlib.impls import IMPLEMENTATIONS  # noqa: E402


def main() -> int:
    """Run the implementation named on the command line and write its result file."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("impl", choices=sorted(IMPLEMENTATIONS))
    parser.add_argument("--out", required=True)
    parser.add_argument("--profile", help="write a cProfile stats file of the run")
    args = parser.parse_args()
    started = time.perf_counter()
    function: Callable[[], dict[str, Any]] = IMPLEMENTATIONS[args.impl]
    if args.profile:
        import cProfile

        profiler = cProfile.Profile()
        result = profiler.runcall(function)
        profiler.dump_stats(args.profile)
    else:
        result = function()
    result["in_process_s"] = time.perf_counter() - started
    result["pid"] = os.getpid()
    Path(args.out).write_text(json.dumps(result, default=str))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
