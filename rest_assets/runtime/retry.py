"""How a request is retried: the retry policy of each endpoint and `Retry-After`.

An `error_handler` in the spec becomes a :class:`RetryPolicy` (status codes,
`max_retries` after the first try, exponential `backoff_factor`); an
:class:`EndpointRoute` maps a request's URL path to its resource and policy.
"""

from __future__ import annotations

import email.utils
import re
import time
from dataclasses import dataclass
from typing import Any

MAX_RETRY_AFTER_SECONDS = 600.0


@dataclass(frozen=True)
class RetryPolicy:
    """How one endpoint retries: up to `max_retries` retries after the first try."""

    retry_on_status_codes: frozenset[int] = frozenset({429, 500, 502, 503, 504})
    max_retries: int = 3
    backoff_factor: float = 1.0
    max_backoff: float = 60.0

    @classmethod
    def from_spec(cls, handler: dict[str, Any] | None) -> RetryPolicy:
        """Build from an `error_handler` mapping (None gives the default policy)."""
        if not handler:
            return cls()
        return cls(
            retry_on_status_codes=frozenset(handler.get("retry_on_status_codes", cls.retry_on_status_codes)),
            max_retries=int(handler.get("max_retries", cls.max_retries)),
            backoff_factor=float(handler.get("backoff_factor", cls.backoff_factor)),
            max_backoff=float(handler.get("max_backoff", cls.max_backoff)),
        )

    def backoff(self, retry_number: int) -> float:
        """Delay before retry `retry_number` (1-based): backoff_factor * 2**(k-1), capped."""
        return float(min(self.backoff_factor * 2 ** (retry_number - 1), self.max_backoff))


@dataclass
class EndpointRoute:
    """Maps request URL paths of one resource to its name and retry policy."""

    resource: str
    pattern: re.Pattern[str]
    policy: RetryPolicy

    @classmethod
    def for_path(cls, resource: str, base_path: str, path: str, policy: RetryPolicy) -> EndpointRoute:
        full = base_path.rstrip("/") + "/" + path.lstrip("/")
        parts = re.split(r"(\{[^}]*\})", full)
        regex = "".join("[^/]+" if p.startswith("{") else re.escape(p) for p in parts)
        return cls(resource, re.compile(f"^{regex}/?$"), policy)


def parse_retry_after(value: str | None, now: float | None = None) -> float | None:
    """Seconds to wait from a Retry-After header (delta-seconds or HTTP date)."""
    if not value:
        return None
    value = value.strip()
    if re.fullmatch(r"\d+(\.\d+)?", value):
        return min(float(value), MAX_RETRY_AFTER_SECONDS)
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if when is None:
        return None
    delta = when.timestamp() - (now if now is not None else time.time())
    return min(max(delta, 0.0), MAX_RETRY_AFTER_SECONDS)
