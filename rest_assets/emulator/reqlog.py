"""Thread-safe request log with secret masking."""

from __future__ import annotations

import threading
from typing import Any

SECRET_PARAMS = {"api_key", "apikey", "key", "token", "access_token", "refresh_token", "client_secret", "password", "secret"}
MASK = "***"


class RequestLog:
    """Records one entry per API request; query values that are secrets are masked."""

    def __init__(self, credentials: dict[str, dict[str, str]]):
        self._secrets = {v for creds in credentials.values() for v in creds.values() if v}
        self._entries: list[dict[str, Any]] = []
        self._lock = threading.Lock()

    def mask(self, params: list[tuple[str, str]]) -> dict[str, str]:
        """Query params as a dict with secret values replaced by ``***``."""
        return {k: MASK if k.lower() in SECRET_PARAMS or v in self._secrets else v for k, v in params}

    def add(self, entry: dict[str, Any]) -> None:
        """Append an entry."""
        with self._lock:
            self._entries.append(entry)

    def entries(self) -> list[dict[str, Any]]:
        """A copy of all entries, oldest first."""
        with self._lock:
            return [dict(e) for e in self._entries]

    def clear(self) -> int:
        """Drop all entries; returns how many were dropped."""
        with self._lock:
            count = len(self._entries)
            self._entries.clear()
            return count
