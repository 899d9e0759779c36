"""Durations written like `30m`, `6h`, `1d`, `1h30m` or a number of seconds."""

from __future__ import annotations

import re
from datetime import timedelta

_PART = re.compile(r"(\d+(?:\.\d+)?)\s*(w|d|h|m|s)")
_UNITS = {"w": 604800, "d": 86400, "h": 3600, "m": 60, "s": 1}
_MAX_SECONDS = 100 * 365 * 86400  # a century: beyond it a window means "never", and timedelta overflows


def parse_duration(value: object) -> timedelta:
    """Parse a duration; raise ValueError saying what is allowed."""
    seconds = _seconds(value)
    if seconds is None or not 0 < seconds <= _MAX_SECONDS:
        raise ValueError(f"'{value}' is not a duration; write e.g. 30m, 6h, 1d or 1h30m (at most 100 years)")
    return timedelta(seconds=seconds)


def _seconds(value: object) -> float | None:
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return float(value)
    text = str(value).strip().replace(" ", "")
    if text and _PART.sub("", text) == "":
        return sum(float(n) * _UNITS[u] for n, u in _PART.findall(text))
    return None
