"""The last requests of a run, without credentials, for a failed run's `error.txt` (see runtime.scrub)."""

from __future__ import annotations

import threading
import time
from collections import deque
from typing import Any

import requests

from rest_assets.runtime.redaction import redact

DEFAULT_SIZE = 50


class RequestLog:
    """A bounded log of `<time> <method> <redacted URL> -> <outcome>` lines (headers and bodies never kept;
    the URLs only in memory until read)."""

    def __init__(self, size: int = DEFAULT_SIZE) -> None:
        self._entries: deque[tuple[float, str, str, str]] = deque(maxlen=size)  # (time, method, URL, outcome)
        self._lock = threading.Lock()

    def attach(self, session: requests.Session) -> None:
        """Record every request `session` sends (after its retries): its final status or error type."""
        send = session.send

        def logged_send(request: requests.PreparedRequest, **kwargs: Any) -> requests.Response:
            try:
                response = send(request, **kwargs)
            except Exception as exc:
                status = getattr(getattr(exc, "response", None), "status_code", None)
                self.add(request, f"HTTP {status}" if status else type(exc).__name__)
                raise
            self.add(request, f"HTTP {response.status_code}")
            return response

        session.send = logged_send  # type: ignore[method-assign]

    def add(self, request: requests.PreparedRequest, outcome: str) -> None:
        """Log one request: only its method and URL (redacted when the lines are read, once for the few kept,
        not for every request of a run; by then every secret of the run is registered)."""
        with self._lock:
            self._entries.append((time.time(), str(request.method), str(request.url), outcome))

    def lines(self) -> list[str]:
        """The logged lines, oldest first, redacted."""
        with self._lock:
            entries = list(self._entries)
        return [
            f"{time.strftime('%H:%M:%S', time.localtime(at))} {method} {redact(url)} -> {outcome}"
            for at, method, url, outcome in entries
        ]
