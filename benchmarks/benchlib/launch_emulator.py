"""Start one emulator in this process with per-resource sizes (the CLI only has ``--size``).

Usage: ``python benchlib/launch_emulator.py --sizes chat_analytics.contacts=100000 --latency-ms 0``.
Prints ``emulator listening on URL`` and serves until SIGTERM/SIGINT.

``--profile typed|mixed`` changes chat_analytics ``contacts`` before the first
request (the emulator's own data stays untouched otherwise): ``typed`` adds an
integer ``score`` to every row; ``mixed`` is the same rows, but in one row of
every ``--mixed-every`` the ``score`` is the string ``"n/a"`` and, in another,
``location.postal_code`` is an integer instead of a string (fields that change
type across rows, as real APIs do).
"""

from __future__ import annotations

import argparse
import signal
import threading
from typing import Any

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


def apply_profile(emulator: Emulator, profile: str, every: int) -> None:
    """Rewrite chat_analytics contacts in place for the ``typed`` / ``mixed`` profiles (no-op for ``plain``)."""
    if profile == "plain":
        return
    with emulator.store.lock:
        records: list[dict[str, Any]] = emulator.store.table("chat_analytics", "contacts").records
        for record in records:
            rid = record["id"]
            record["score"] = rid % 1000
            if profile == "mixed" and rid % every == 0:
                record["score"] = "n/a"
            if profile == "mixed" and rid % every == every // 2:
                record["location"]["postal_code"] = int(record["location"]["postal_code"])


def main() -> int:
    """Run the emulator until a termination signal."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--default-size", type=int, default=120)
    parser.add_argument("--sizes", nargs="*", default=[], help="source.resource=N ...")
    parser.add_argument("--latency-ms", type=float, default=0)
    parser.add_argument("--profile", choices=("plain", "typed", "mixed"), default="plain")
    parser.add_argument("--mixed-every", type=int, default=100)
    parser.add_argument("--page-cache-pages", type=int, default=EmulatorConfig.page_cache_pages)
    args = parser.parse_args()
    config = EmulatorConfig(
        default_size=args.default_size,
        sizes=parse_sizes(args.sizes),
        latency_ms=args.latency_ms,
        page_cache_pages=args.page_cache_pages,
    )
    emulator = Emulator(config)
    apply_profile(emulator, args.profile, args.mixed_every)
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
