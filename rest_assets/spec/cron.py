"""A dependency-free check that a string is a five-field cron expression."""

from __future__ import annotations

import re

_MACROS = {"@hourly", "@daily", "@midnight", "@weekly", "@monthly", "@yearly", "@annually"}
_RANGES = [(0, 59), (0, 23), (1, 31), (1, 12), (0, 7)]
_NAMES = [
    {},
    {},
    {},
    {m: i + 1 for i, m in enumerate("jan feb mar apr may jun jul aug sep oct nov dec".split())},
    {d: i for i, d in enumerate("sun mon tue wed thu fri sat".split())},
]
_ITEM = re.compile(r"^(\*|[a-z0-9]+(-[a-z0-9]+)?)(/\d+)?$")


def is_valid_cron(expression: str) -> bool:
    """True for @macros and five-field expressions with in-range values."""
    text = expression.strip().lower()
    if text in _MACROS:
        return True
    fields = text.split()
    if len(fields) != 5:
        return False
    return all(_valid_field(f, lo, hi, names) for f, (lo, hi), names in zip(fields, _RANGES, _NAMES))


def _valid_field(field: str, low: int, high: int, names: dict[str, int]) -> bool:
    for item in field.split(","):
        match = _ITEM.match(item)
        if not match:
            return False
        base = match.group(1)
        if base == "*":
            continue
        for bound in base.split("-"):
            value = names.get(bound, int(bound) if bound.isdigit() else None)
            if value is None or not low <= value <= high:
                return False
    return True
