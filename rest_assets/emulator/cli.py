"""Command line: ``python -m rest_assets.emulator [--port N] ...``."""

from __future__ import annotations

import argparse
import signal
import sys
import threading

from .churn import CHURN_SOURCES
from .config import EmulatorConfig


def non_negative(text: str) -> int:
    """An argparse type: a whole number, 0 or more."""
    value = int(text)
    if value < 0:
        raise argparse.ArgumentTypeError(f"{value} is negative")
    return value


def _every(text: str) -> int:
    """An argparse type: every Nth request, N 1 or more."""
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"{value} is not 1 or more (every Nth request)")
    return value


def _probability(text: str) -> float:
    value = float(text)
    if not 0 <= value <= 1:
        raise argparse.ArgumentTypeError(f"{value} is no probability (0 to 1)")
    return value


def _non_negative_number(text: str) -> float:
    value = float(text)
    if not value >= 0:  # NaN too
        raise argparse.ArgumentTypeError(f"{value} is not 0 or more")
    return value


def _port(text: str) -> int:
    value = non_negative(text)
    if value > 65535:
        raise argparse.ArgumentTypeError(f"{value} is no TCP port (0 to 65535)")
    return value


def build_parser() -> argparse.ArgumentParser:
    """The argument parser of the emulator command."""
    p = argparse.ArgumentParser(prog="rest-assets emulator", description="Local REST API emulator.")
    p.add_argument("--host", default="127.0.0.1", help="bind address (default 127.0.0.1)")
    p.add_argument("--port", type=_port, default=0, help="port (0 = pick a free port)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--size", type=non_negative, default=120, help="default rows per top-level resource")
    p.add_argument("--latency-ms", type=_non_negative_number, default=0)
    p.add_argument("--rate-limit-every", type=_every, default=None, help="answer every Nth request with 429")
    p.add_argument("--retry-after", type=_non_negative_number, default=1, help="Retry-After seconds for --rate-limit-every")
    p.add_argument("--error-every", type=_every, default=None, help="answer every Nth request with 500")
    p.add_argument("--token-expiry-requests", type=_every, default=None)
    p.add_argument("--rotate-refresh-tokens", action="store_true")
    p.add_argument(
        "--churn",
        metavar="SOURCE",
        choices=CHURN_SOURCES,
        default=None,
        help="token churn for an OAuth2 source (client_portal or help_desk): revoke its access token "
        "at random (--churn-probability, seeded by --seed) and every --churn-every requests, "
        "503 every --churn-error-every requests, a burst of --churn-burst 429s from request "
        "--churn-throttle-at with Retry-After --retry-after",
    )
    p.add_argument("--churn-probability", type=_probability, default=0.05)
    p.add_argument("--churn-every", type=_every, default=None)
    p.add_argument("--churn-error-every", type=_every, default=None)
    p.add_argument("--churn-throttle-at", type=_every, default=None)
    p.add_argument("--churn-burst", type=non_negative, default=0)
    return p


def main(argv: list[str] | None = None) -> int:
    """Run an emulator until SIGINT/SIGTERM; prints its URL on one line."""
    from .emulator import Emulator

    args = build_parser().parse_args(argv)
    emu = Emulator(
        EmulatorConfig(
            seed=args.seed,
            default_size=args.size,
            latency_ms=args.latency_ms,
            token_expiry_requests=args.token_expiry_requests,
            rotate_refresh_tokens=args.rotate_refresh_tokens,
        )
    )
    if args.rate_limit_every:
        emu.add_fault("status", status=429, count=None, every=args.rate_limit_every, retry_after=args.retry_after)
    if args.churn:
        emu.set_churn(
            source=args.churn,
            seed=args.seed,
            invalidate_probability=args.churn_probability,
            invalidate_every=args.churn_every,
            error_every=args.churn_error_every,
            throttle_at=args.churn_throttle_at,
            throttle_burst=args.churn_burst,
            retry_after=args.retry_after,
        )
    if args.error_every:
        emu.add_fault("status", status=500, count=None, every=args.error_every)
    done = threading.Event()
    previous = {sig: signal.signal(sig, lambda *_: done.set()) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        url = emu.start(host=args.host, port=args.port)
    except OSError as exc:  # the port is taken, or the address is not this machine's
        print(f"rest-assets emulator: cannot listen on {args.host}:{args.port}: {exc.strerror or exc}", file=sys.stderr)
        return 2
    print(f"emulator listening on {url}", flush=True)
    try:
        while not done.wait(0.5):
            pass
    finally:
        emu.stop()
        for sig, handler in previous.items():
            signal.signal(sig, handler)
    return 0
