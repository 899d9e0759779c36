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
    """A bounded log of `<time> <method> <redacted URL> -> <outcome>` lines (headers and bodies never kept)."""

    def __init__(self, size: int = DEFAULT_SIZE) -> None:
        self._lines: deque[str] = deque(maxlen=size)
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
        """Log one request: only its method and URL, redacted when recorded."""
        stamp = time.strftime("%H:%M:%S")
        line = f"{stamp} {request.method} {redact(request.url)} -> {outcome}"
        with self._lock:
            self._lines.append(line)

    def lines(self) -> list[str]:
        """The logged lines, oldest first."""
        with self._lock:
            return list(self._lines)
