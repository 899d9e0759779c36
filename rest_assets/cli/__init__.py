"""The `rest-assets` command: `emulator`, `demo` and `selftest`."""

from __future__ import annotations

import argparse
import os
import sys

from rest_assets.emulator.cli import non_negative


def build_parser() -> argparse.ArgumentParser:
    """Arguments of the `rest-assets` command."""
    parser = argparse.ArgumentParser(prog="rest-assets", description="REST APIs as Dagster assets.")
    commands = parser.add_subparsers(dest="command", required=True)
    demo = commands.add_parser("demo", help="load every bundled source from the local emulator into DuckDB")
    demo.add_argument("--ui", action="store_true", help="start `dagster dev` against the emulator instead")
    demo.add_argument("--size", type=non_negative, default=120, help="records per top-level resource (default 120)")
    demo.add_argument("--port", type=int, default=3000, help="dagster dev port for --ui (default 3000)")
    commands.add_parser("selftest", help="run a compact fault matrix against the emulator and print a reliability report")
    commands.add_parser("list", help="print every asset with its parents, freshness and checks, plus schedules and sensors")
    commands.add_parser("emulator", help="serve the bundled APIs locally (see `rest-assets emulator --help`)", add_help=False)
    return parser


def main(argv: list[str] | None = None) -> int:
    """Entry point of the console script."""
    try:
        code = _run(list(sys.argv[1:] if argv is None else argv))
        sys.stdout.flush()  # here, where a reader that went away can be told apart
        return code
    except BrokenPipeError:  # the reader went away (`rest-assets list | head -1`): nothing more to say
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())  # no second error at exit's flush
        return 0


def _run(argv: list[str]) -> int:
    if argv and argv[0] == "emulator":
        from rest_assets.emulator import main as emulator_main

        return emulator_main(argv[1:])
    args = build_parser().parse_args(argv)
    if args.command == "list":
        from rest_assets.cli.listing import describe_definitions
        from rest_assets.errors import SpecError

        try:
            from rest_assets.definitions import defs
        except SpecError as exc:
            print(f"rest-assets list: {exc}", file=sys.stderr)
            return 2
        print(describe_definitions(defs))
        return 0
    if args.command == "selftest":
        from rest_assets.cli.selftest import run_selftest

        return run_selftest()
    from rest_assets.cli.demo import run_demo

    return run_demo(size=args.size, ui=args.ui, port=args.port)
