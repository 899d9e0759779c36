"""Counters of one run's transport, per resource, read into Dagster metadata."""

from __future__ import annotations

import threading
from dataclasses import dataclass, field


@dataclass
class TransportStats:
    """Counters for one run, per resource; read into Dagster metadata."""

    requests: dict[str, int] = field(default_factory=dict)
    pages: dict[str, int] = field(default_factory=dict)
    retries: dict[str, int] = field(default_factory=dict)
    throttled: dict[str, int] = field(default_factory=dict)
    seconds_waited: dict[str, float] = field(default_factory=dict)
    secrets_masked: dict[str, int] = field(default_factory=dict)  # record values echoing a secret
    batches_as_rows: dict[str, int] = field(default_factory=dict)  # batches dlt normalized row by row (not Arrow)
    rotated_refresh_tokens: int = 0  # refresh tokens the token endpoint replaced during the run
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)
    _waited_until: dict[str, float] = field(default_factory=dict, repr=False)

    def add(self, counter: str, resource: str, amount: float = 1) -> None:
        with self._lock:
            table = getattr(self, counter)
            table[resource] = table.get(resource, 0) + amount

    def add_wait(self, resource: str, seconds: float, started: float) -> None:
        """Count a wait of `seconds` from `started` (time.monotonic) into `seconds_waited`, as wall-clock time.

        Concurrent requests of a resource that wait out the same Retry-After
        count it once: `seconds_waited` is how long the resource was held up,
        not a sum over its requests (16 of them waiting 3 s made 48).
        """
        end = started + seconds
        with self._lock:
            until = self._waited_until.get(resource, 0.0)
            self.seconds_waited[resource] = self.seconds_waited.get(resource, 0.0) + max(0.0, end - max(started, until))
            self._waited_until[resource] = max(until, end)
