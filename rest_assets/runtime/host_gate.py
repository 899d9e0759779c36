"""`Retry-After` for a whole host: every request to it waits, concurrent ones included."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable


class HostGate:
    """Holds back requests to a host until a Retry-After deadline has passed."""

    def __init__(self, sleep: Callable[[float], None] = time.sleep) -> None:
        self._until: dict[str, float] = {}
        self._lock = threading.Lock()
        self._sleep = sleep

    def block(self, host: str, seconds: float) -> None:
        with self._lock:
            self._until[host] = max(self._until.get(host, 0.0), time.monotonic() + seconds)

    def wait(self, host: str) -> float:
        """Sleep until `host` is open again; return the seconds slept."""
        with self._lock:
            remaining = self._until.get(host, 0.0) - time.monotonic()
        if remaining > 0:
            self._sleep(remaining)
            return remaining
        return 0.0
