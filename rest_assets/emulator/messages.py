"""Minimal request/response value types shared by the server and the APIs."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from http import HTTPStatus
from typing import Any
from urllib.parse import parse_qsl, urlsplit


def reason_phrase(status: int) -> str:
    """The standard reason phrase of an HTTP status (`Unknown` for a code the standard does not name)."""
    try:
        return HTTPStatus(status).phrase
    except ValueError:
        return "Unknown"


@dataclass
class Request:
    """A parsed HTTP request; header names are lower-cased."""

    method: str
    target: str
    headers: dict[str, str]
    body: bytes = b""
    path: str = ""
    params: list[tuple[str, str]] = field(default_factory=list)

    def __post_init__(self) -> None:
        parts = urlsplit(self.target)
        self.path = parts.path or "/"
        self.params = parse_qsl(parts.query, keep_blank_values=True)

    @property
    def query(self) -> dict[str, str]:
        """Query parameters as a dict (last value wins)."""
        return dict(self.params)

    def form(self) -> dict[str, str]:
        """The body decoded as ``application/x-www-form-urlencoded``."""
        return dict(parse_qsl(self.body.decode("utf-8", "replace"), keep_blank_values=True))

    def json(self) -> Any:
        """The body decoded as JSON (``{}`` when empty)."""
        return json.loads(self.body) if self.body.strip() else {}


@dataclass
class Response:
    """An HTTP response plus metadata for the log and fault injection.

    ``data_key`` names the top-level key holding the records (used by the
    ``drop_selector`` fault); ``action`` is ``"hang"`` or ``"reset"`` when
    the server must misbehave instead of answering normally.
    """

    status: int
    body: bytes = b""
    content_type: str = "application/json"
    headers: list[tuple[str, str]] = field(default_factory=list)
    data_key: str | None = None
    action: str | None = None
    resource: str | None = None
    audit: dict[str, Any] | None = None  # extra request-log fields (e.g. a token grant)


def dumps(obj: Any) -> bytes:
    """Compact JSON encoding used for every response body."""
    return json.dumps(obj, separators=(",", ":")).encode()


def json_response(status: int, obj: Any, data_key: str | None = None) -> Response:
    """Build a JSON response."""
    return Response(status=status, body=dumps(obj), data_key=data_key)


def error(status: int, code: str, **extra: Any) -> Response:
    """Build a JSON error response ``{"error": code, ...extra}``."""
    return json_response(status, {"error": code, **extra})
