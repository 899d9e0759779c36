"""Benchmark harness (issue 6): rest_assets vs its baselines, side by side, in one invocation.

    python benchmarks/run.py [--quick] [--workloads bulk,fanout,incremental,imports,mixed,scale] [--json FILE]
                             [--profile DIR] [--small]

Every run is a whole process (benchmarks/run_one.py) with a fresh DuckDB and dlt
data dir, implementations alternate, the emulator runs in its own process, and
every run is checked against the emulator's truth. See benchmarks/README.md.
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from benchlib import scale, workloads  # noqa: E402
from benchlib.context import Context  # noqa: E402
from benchlib.report import figures, table  # noqa: E402

WORKLOADS = {
    "bulk": workloads.bulk,
    "fanout": workloads.fanout,
    "incremental": workloads.incremental,
    "imports": None,
    "mixed": scale.mixed,
    "scale": scale.scale,
}
ALL = tuple(WORKLOADS)
# --small: every workload at a tiny size, to check the harness itself in seconds (figures meaningless)
SMALL = {"bulk": 2_000, "fanout": 100, "scale_rows": 5_000, "scale_children": 200, "mixed_rows": 2_000}


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    """Command-line options."""
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="fewer repeats (the <~5 minute run)")
    parser.add_argument("--repeats", type=int, help="timed runs of rest_assets and the hand baselines (default: 3 quick, 5 full)")
    parser.add_argument(
        "--baseline-repeats", type=int, help="timed runs of the plain dlt baselines (default: 1 quick, same as --repeats full)"
    )
    parser.add_argument("--workloads", default=",".join(ALL), help=f"comma-separated subset of {','.join(ALL)}")
    parser.add_argument("--json", type=Path, help="write figures and raw samples to this file")
    parser.add_argument("--profile", type=Path, help="also write one cProfile of each rest_assets workload here")
    parser.add_argument(
        "--fanout-repeats",
        type=int,
        help="timed runs of rest_assets and the hand pool in the fan-out workload (default: 5, or --repeats when larger)",
    )
    parser.add_argument("--small", action="store_true", help="tiny sizes: checks the harness, not the product")
    parser.add_argument("--keep", action="store_true", help="keep the scratch folder (DuckDB files, logs)")
    args = parser.parse_args(argv)
    args.workloads = [w.strip() for w in args.workloads.split(",") if w.strip()]
    unknown = set(args.workloads) - set(ALL)
    if unknown:
        parser.error(f"unknown workloads {sorted(unknown)}; choose from {', '.join(ALL)}")
    return args


def main(argv: list[str] | None = None) -> int:
    """Run the selected workloads, print the report, write the JSON; non-zero when a run failed its check."""
    args = parse_args(argv)
    repeats = args.repeats or (3 if args.quick else 5)
    baseline_repeats = args.baseline_repeats or (1 if args.quick else repeats)
    scratch = Path(tempfile.mkdtemp(prefix="rest_assets_bench-"))
    if args.profile:
        args.profile.mkdir(parents=True, exist_ok=True)
    ctx = Context(
        repeats=repeats,
        baseline_repeats=baseline_repeats,
        scratch=scratch,
        profile_dir=args.profile,
        fanout_repeats=args.fanout_repeats or max(5, repeats),
        sizes=SMALL if args.small else {},
    )
    started = time.perf_counter()
    results: dict[str, Any] = {}
    try:
        for name in args.workloads:
            ctx.say(f"== {name} ==")
            if name == "imports":
                results[name] = workloads.imports(ctx, repeats=2 * repeats)
            else:
                results[name] = WORKLOADS[name](ctx)
    finally:
        if not args.keep:
            shutil.rmtree(scratch, ignore_errors=True)
    elapsed = time.perf_counter() - started
    print(table(results))
    print(
        f"\ntotal harness time {elapsed:.0f} s ({'quick, ' if args.quick else ''}{'SMALL sizes, ' if args.small else ''}"
        f"{repeats} repeats, {ctx.fanout_repeats} for fan-out, {baseline_repeats} for the dlt baselines)"
    )
    if args.json:
        document = {
            **figures(results),
            "repeats": repeats,
            "baseline_repeats": baseline_repeats,
            "fanout_repeats": ctx.fanout_repeats,
            "quick": args.quick,
            "small": args.small,
            "harness_seconds": elapsed,
            "peak_memory_method": "os.wait4 ru_maxrss of each run process",
            "workloads": results,
        }
        args.json.write_text(json.dumps(document, indent=1, default=str))
    return 0 if _all_ok(results) else 1


def _all_ok(results: dict[str, Any]) -> bool:
    for name, result in results.items():
        if name == "incremental":
            if not all(run["ok"] for run in result["runs"].values()):
                return False
        elif not all(s["ok"] for samples in result["samples"].values() for s in samples):
            return False
    return True


if __name__ == "__main__":
    raise SystemExit(main())
