"""Deterministic fault injection rules for API requests.

Rules are checked in the order they were added; the first rule that matches
a request (``source``/``path_contains`` filters, and for ``every=N`` rules
only every Nth matching request) fires and consumes one of its ``count``.
``count=None`` means the rule never runs out.
"""

from __future__ import annotations

import json
import threading
import time
from dataclasses import dataclass
from email.utils import formatdate
from typing import Any

from .messages import Response, dumps, json_response

KINDS = {"status", "slow", "hang", "reset", "html", "truncated", "drop_selector", "echo"}


@dataclass
class FaultRule:
    """One fault rule; see ``Emulator.add_fault`` for the meaning of fields."""

    kind: str
    count: int | None = 1
    status: int = 500
    path_contains: str | None = None
    source: str | None = None
    every: int | None = None
    retry_after: float = 1
    retry_after_http_date: bool = False
    delay: float = 1.0
    seen: int = 0

    def __post_init__(self) -> None:
        if self.kind not in KINDS:
            raise ValueError(f"unknown fault kind {self.kind!r}; expected one of {sorted(KINDS)}")
        if self.every is not None and self.every < 1:
            raise ValueError("every must be >= 1")

    def matches(self, path: str, source: str | None) -> bool:
        """Whether the filters of this rule select the request."""
        if self.source is not None and self.source != source:
            return False
        return self.path_contains is None or self.path_contains in path

    def describe(self) -> dict[str, Any]:
        """JSON-friendly view of the rule."""
        return {k: v for k, v in self.__dict__.items()}


class FaultSet:
    """Thread-safe ordered collection of fault rules."""

    def __init__(self) -> None:
        self._rules: list[FaultRule] = []
        self._lock = threading.Lock()

    def add(self, **kwargs: Any) -> FaultRule:
        """Append a rule built from keyword arguments."""
        rule = FaultRule(**kwargs)
        with self._lock:
            self._rules.append(rule)
        return rule

    def clear(self) -> None:
        """Remove all rules."""
        with self._lock:
            self._rules.clear()

    def rules(self) -> list[dict[str, Any]]:
        """Snapshot of the active rules."""
        with self._lock:
            return [r.describe() for r in self._rules]

    def pick(self, path: str, source: str | None) -> FaultRule | None:
        """Return the rule that fires for this request (consuming it), if any."""
        with self._lock:
            for rule in self._rules:
                if not rule.matches(path, source):
                    continue
                if rule.every is not None:
                    rule.seen += 1
                    if rule.seen % rule.every:
                        continue
                if rule.count is not None:
                    rule.count -= 1
                    if rule.count <= 0:
                        self._rules.remove(rule)
                return rule
        return None


def status_response(rule: FaultRule) -> Response:
    """The error response of a ``status`` fault (with Retry-After for 429)."""
    response = json_response(rule.status, {"error": "injected_fault", "status": rule.status})
    if rule.status == 429:
        if rule.retry_after_http_date:
            value = formatdate(time.time() + rule.retry_after, usegmt=True)
        else:
            value = str(int(rule.retry_after)) if float(rule.retry_after).is_integer() else str(rule.retry_after)
        response.headers.append(("Retry-After", value))
    return response


def echo_response(rule: FaultRule, request: Any) -> Response:
    """An ``echo`` fault: status ``rule.status`` with the request (query, headers, form body) in the body.

    What careless APIs do in their error pages; secret-leak tests use it to see
    that credentials echoed back never reach logs, errors or disk.
    """
    return json_response(
        rule.status,
        {
            "error": "echo",
            "body": request.body.decode("utf-8", "replace"),
            "target": request.target,
            "headers": request.headers,
            "method": request.method,
        },
    )


def corrupt(rule: FaultRule, response: Response) -> Response:
    """Apply a post-handler fault (html, truncated, drop_selector, reset)."""
    if rule.kind == "html":
        body = b"<!DOCTYPE html><html><body><h1>Maintenance</h1><p>Try again later.</p></body></html>"
        return Response(200, body, content_type="text/html; charset=utf-8", resource=response.resource)
    if rule.kind == "truncated":
        return Response(200, response.body[: max(1, len(response.body) // 2)], resource=response.resource)
    if rule.kind == "drop_selector":
        try:
            obj = json.loads(response.body)
        except ValueError:
            obj = {}
        if isinstance(obj, dict):
            obj.pop(response.data_key or "data", None)
        return Response(200, dumps(obj), resource=response.resource)
    if rule.kind == "reset":
        response.action = "reset"
    return response
