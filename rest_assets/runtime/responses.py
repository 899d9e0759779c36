"""Checks on every successful response before dlt extracts records from it.

A 200 with an HTML or truncated body, or a body without the `data_selector`
path, must never become a silent empty load: it raises ResponseFormatError,
which the transport retries like any transient fault and finally reports
with the resource, the (redacted) URL and the missing path.

The parsed body is cached on the response so a page is decoded once, not
once per reader (extractor, paginator, stop condition).
"""

from __future__ import annotations

from typing import Any, Callable

from dlt.common import jsonpath
from requests import Response

from rest_assets.errors import ResponseFormatError
from rest_assets.runtime.redaction import redact


def json_body_once(response: Response) -> Any:
    """Parse the body once and make later `response.json()` calls free."""
    body = response.json()
    response.json = lambda **_: body  # type: ignore[method-assign]
    return body


def response_validator(source: str, resource: str, data_selector: str | None) -> Callable[..., None]:
    """A requests response hook for one resource (use as a dlt response action)."""
    selector = jsonpath.compile_path(data_selector) if data_selector else None

    def validate(response: Response, *args: Any, **kwargs: Any) -> None:
        if not 200 <= response.status_code < 300 or response.status_code == 204:
            return
        where = f"source '{source}', resource '{resource}': {redact(response.url)}"
        try:
            body = json_body_once(response)
        except ValueError:
            kind = response.headers.get("Content-Type", "unknown content type")
            snippet = redact(response.text[:80]).replace("\n", " ")
            raise ResponseFormatError(f"{where} returned a body that is not valid JSON ({kind}): {snippet!r}") from None
        if selector is not None and not jsonpath.find_values(selector, body):
            keys = sorted(body)[:10] if isinstance(body, dict) else type(body).__name__
            raise ResponseFormatError(f"{where} has no '{data_selector}' in the body (top-level keys: {keys})")

    return validate
