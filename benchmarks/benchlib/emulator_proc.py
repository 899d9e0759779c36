"""The emulator as a separate process, and a small client of its ``/_admin`` API."""

from __future__ import annotations

import json
import subprocess
import sys
import time
import urllib.request
from pathlib import Path
from typing import Any

LAUNCHER = Path(__file__).with_name("launch_emulator.py")


class EmulatorProcess:
    """One emulator process (started with per-resource sizes); stopped by ``close``."""

    def __init__(
        self,
        sizes: dict[str, int],
        latency_ms: float = 0,
        default_size: int = 120,
        profile: str = "plain",
        mixed_every: int = 100,
        page_cache_pages: int | None = None,
    ):
        args = [
            sys.executable,
            str(LAUNCHER),
            "--default-size",
            str(default_size),
            "--latency-ms",
            str(latency_ms),
            "--profile",
            profile,
            "--mixed-every",
            str(mixed_every),
            "--sizes",
            *[f"{k}={v}" for k, v in sizes.items()],
        ]
        if page_cache_pages is not None:
            args += ["--page-cache-pages", str(page_cache_pages)]
        self.sizes = dict(sizes)
        self.process = subprocess.Popen(args, stdout=subprocess.PIPE, text=True)
        assert self.process.stdout is not None
        line = self.process.stdout.readline().strip()
        if not line.startswith("emulator listening on "):
            self.close()
            raise RuntimeError(f"emulator did not start: {line!r}")
        self.url = line.rsplit(" ", 1)[1]

    def __enter__(self) -> EmulatorProcess:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        """Terminate the emulator process (only this one)."""
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()

    # -- admin API ---------------------------------------------------------
    def _call(self, method: str, path: str, body: dict[str, Any] | None = None) -> Any:
        data = json.dumps(body).encode() if body is not None else None
        request = urllib.request.Request(
            f"{self.url}/_admin/{path}", data=data, method=method, headers={"Content-Type": "application/json"}
        )
        with urllib.request.urlopen(request, timeout=120) as response:
            return json.loads(response.read())

    def requests(self) -> list[dict[str, Any]]:
        """The request log (API requests only)."""
        return self._call("GET", "requests")

    def clear_requests(self) -> None:
        """Empty the request log."""
        self._call("DELETE", "requests")

    def configure(self, **settings: Any) -> dict[str, Any]:
        """Change runtime settings, e.g. ``latency_ms`` (the latency switch)."""
        return self._call("POST", "config", settings)

    def advance(self, update_fraction: float, add: int, hours: float = 1.0) -> dict[str, Any]:
        """Move the emulator's clock and change data."""
        return self._call("POST", "advance", {"update_fraction": update_fraction, "add": add, "hours": hours})

    def truth(self, source: str, resource: str) -> list[dict[str, Any]]:
        """Every record the emulator currently serves for a resource."""
        return self._call("GET", f"truth/{source}/{resource}")

    def wait_ready(self, timeout: float = 30) -> None:
        """Wait until the admin API answers."""
        deadline = time.monotonic() + timeout
        while True:
            try:
                self._call("GET", "config")
                return
            except OSError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.1)
