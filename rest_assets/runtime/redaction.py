"""Redact secret values by value, wherever they would be printed.

dlt's URL sanitizer knows a fixed list of parameter names; a secret sent as
`?key=...` under any other name would leak. Here every secret resolved or
obtained at run time (spec secrets, access and refresh tokens) is registered,
and text passing through :func:`redact` or a filtered logger has each value
replaced by `***` (plain and URL-encoded forms alike).
"""

from __future__ import annotations

import logging
import threading
from urllib.parse import quote, quote_plus

MASK = "***"
_MIN_LENGTH = 4
_lock = threading.Lock()
_secrets: set[str] = set()


def register_secret(value: object) -> None:
    """Remember `value` (and its URL-encoded forms) as something never to print."""
    if not isinstance(value, str) or len(value) < _MIN_LENGTH:
        return
    with _lock:
        _secrets.update({value, quote(value, safe=""), quote_plus(value)})


def redact(text: object) -> str:
    """`text` as a string with every registered secret replaced by ***."""
    result = str(text)
    with _lock:
        secrets = sorted(_secrets, key=len, reverse=True)
    for secret in secrets:
        if secret in result:
            result = result.replace(secret, MASK)
    return result


class RedactingFilter(logging.Filter):
    """A logging filter that redacts the formatted message of every record."""

    def filter(self, record: logging.LogRecord) -> bool:
        if _secrets:
            message = record.getMessage()
            cleaned = redact(message)
            if cleaned != message:
                record.msg, record.args = cleaned, None
        return True


_FILTER = RedactingFilter()
_LOGGERS = ("", "dlt", "rest_assets", "urllib3", "requests", "dagster")


def install_log_redaction() -> None:
    """Attach the redacting filter to the loggers and handlers that may see secrets."""
    for name in _LOGGERS:
        logger = logging.getLogger(name)
        if _FILTER not in logger.filters:
            logger.addFilter(_FILTER)
        for handler in logger.handlers:
            if _FILTER not in handler.filters:
                handler.addFilter(_FILTER)
