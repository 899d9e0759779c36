"""Durations written like `30m`, `6h`, `1d`, `1h30m` or a number of seconds."""

from __future__ import annotations

import re
from datetime import timedelta

_PART = re.compile(r"(\d+(?:\.\d+)?)\s*(w|d|h|m|s)")
_UNITS = {"w": 604800, "d": 86400, "h": 3600, "m": 60, "s": 1}


def parse_duration(value: object) -> timedelta:
    """Parse a duration; raise ValueError saying what is allowed."""
    if isinstance(value, (int, float)) and not isinstance(value, bool) and value > 0:
        return timedelta(seconds=value)
    text = str(value).strip().replace(" ", "")
    if text and _PART.sub("", text) == "":
        seconds = sum(float(n) * _UNITS[u] for n, u in _PART.findall(text))
        if seconds > 0:
            return timedelta(seconds=seconds)
    raise ValueError(f"'{value}' is not a duration; write e.g. 30m, 6h, 1d or 1h30m")
