"""Token churn: an OAuth2 API that revokes access tokens mid-run while also failing and throttling.

With churn on for one source, every data request (not the token endpoint)
of that source, in order of arrival, is numbered; then:

* the source's newest access token is revoked before the request is
  checked, with probability ``invalidate_probability`` (seeded, so a run of
  the same requests revokes at the same points) and on every
  ``invalidate_every``-th request;
* every ``error_every``-th request is answered 503;
* ``throttle_burst`` requests from request number ``throttle_at`` on are
  answered 429 with ``Retry-After: <retry_after>``.

The token endpoint is left alone so grants are never retried: the log then
shows exactly one grant per attempt to refresh. The request log records, per
request, the token id used and whether it was valid (and already replaced by
a newer grant) at receipt, each revocation, and for grants which token was
issued, which one it replaced and which refresh token it used.
"""

from __future__ import annotations

import random
import threading
from dataclasses import asdict, dataclass
from typing import Any

from .auth import TokenAuthority
from .messages import Response, json_response

CHURN_SOURCES = ("client_portal", "help_desk")  # the emulated APIs whose access tokens can be revoked


@dataclass(frozen=True)
class ChurnSettings:
    """What churn does; see the module docstring."""

    source: str = "help_desk"
    seed: int = 0
    invalidate_probability: float = 0.0
    invalidate_every: int | None = None
    error_every: int | None = None
    throttle_at: int | None = None
    throttle_burst: int = 0
    retry_after: float = 0

    def __post_init__(self) -> None:
        if self.source not in CHURN_SOURCES:
            raise ValueError(f"source must be one of {', '.join(CHURN_SOURCES)} (the OAuth2 ones), not {self.source!r}")
        if not 0 <= self.invalidate_probability <= 1:
            raise ValueError("invalidate_probability must be between 0 and 1")
        for name in ("invalidate_every", "error_every", "throttle_at"):
            value = getattr(self, name)
            if value is not None and value < 1:
                raise ValueError(f"{name} must be >= 1")


class Churn:
    """Applies :class:`ChurnSettings` to the data requests of one source."""

    def __init__(self, settings: ChurnSettings, tokens: TokenAuthority) -> None:
        self.settings, self.tokens = settings, tokens
        self._random = random.Random(settings.seed)
        self._count = 0
        self._lock = threading.Lock()

    def describe(self) -> dict[str, Any]:
        """The settings and how many data requests were seen."""
        return {**asdict(self.settings), "requests_seen": self._count}

    def on_request(self, source: str | None, resource: str | None) -> tuple[dict[str, Any], Response | None]:
        """Log fields for a request and the fault response that replaces its answer, if any."""
        s = self.settings
        if source != s.source or resource in (None, "oauth2_token"):
            return {}, None
        with self._lock:
            self._count += 1
            n = self._count
            revoke = (
                s.invalidate_every is not None and n % s.invalidate_every == 0
            ) or self._random.random() < s.invalidate_probability
        audit: dict[str, Any] = {"churn_request": n}
        if revoke:
            audit["invalidated"] = self.tokens.revoke_current(source)
        if s.error_every is not None and n % s.error_every == 0:
            return audit, json_response(503, {"error": "churn", "status": 503})
        if s.throttle_at is not None and s.throttle_at <= n < s.throttle_at + s.throttle_burst:
            response = json_response(429, {"error": "churn", "status": 429})
            retry_after = str(int(s.retry_after)) if float(s.retry_after).is_integer() else str(s.retry_after)
            response.headers.append(("Retry-After", retry_after))
            return audit, response
        return audit, None
