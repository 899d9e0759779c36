"""Cron expressions, checked with croniter exactly as Dagster checks a schedule's.

Dagster accepts what croniter accepts and expands to five fields (no seconds),
except the 30th or 31st of February; the spec layer must agree with it to the
letter (`L`, `#`, `?`, names, macros), or a spec that validates would fail
when its schedule is built. It cannot call Dagster's check (this layer never
imports dagster), so it applies the same rules to the same library.
"""

from __future__ import annotations

from croniter import croniter

_FEBRUARY = 2


def is_valid_cron(expression: str) -> bool:
    """True where Dagster takes `expression` as a schedule's cron string."""
    if not isinstance(expression, str) or not croniter.is_valid(expression):
        return False
    fields, *_ = croniter.expand(expression)
    if len(fields) != 5:
        return False
    day_of_month, month = fields[2], fields[3]
    return not (list(month) == [_FEBRUARY] and len(day_of_month) == 1 and day_of_month[0] in (30, 31))
