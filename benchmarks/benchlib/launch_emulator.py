"""Start one emulator in this process with per-resource sizes (the CLI only has ``--size``).

Usage: ``python benchlib/launch_emulator.py --sizes chat_analytics.contacts=100000 --latency-ms 0``.
Prints ``emulator listening on URL`` and serves until SIGTERM/SIGINT.
"""

from __future__ import annotations

import argparse
import signal
import threading

from rest_assets.emulator import Emulator, EmulatorConfig


def parse_sizes(items: list[str]) -> dict[str, int]:
    """``["source.resource=N", ...]`` → ``{"source.resource": N}``."""
    sizes: dict[str, int] = {}
    for item in items:
        key, _, value = item.partition("=")
        if "." not in key or not value.isdigit():
            raise SystemExit(f"bad --sizes item {item!r}: expected source.resource=N")
        sizes[key] = int(value)
    return sizes


def main() -> int:
    """Run the emulator until a termination signal."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--default-size", type=int, default=120)
    parser.add_argument("--sizes", nargs="*", default=[], help="source.resource=N ...")
    parser.add_argument("--latency-ms", type=float, default=0)
    args = parser.parse_args()
    emulator = Emulator(EmulatorConfig(default_size=args.default_size, sizes=parse_sizes(args.sizes),
                                       latency_ms=args.latency_ms))
    done = threading.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: done.set())
    url = emulator.start(port=args.port)
    print(f"emulator listening on {url}", flush=True)
    while not done.wait(0.5):
        pass
    emulator.stop()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
