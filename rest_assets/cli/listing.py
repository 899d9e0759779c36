"""`rest-assets list`: what the code location defines, without opening the UI.

`dagster definitions validate` only says whether the definitions load; this
prints every asset with its parents, freshness window and checks, then the
schedules and sensors and whether they start running.
"""

from __future__ import annotations

from collections import defaultdict
from datetime import timedelta
from typing import Any

from dagster import Definitions


def describe_definitions(defs: Definitions) -> str:
    """A plain-text table of assets, checks, freshness, schedules and sensors."""
    graph = defs.resolve_asset_graph()
    checks = defaultdict(list)
    for check_key in graph.asset_check_keys:
        checks[check_key.asset_key].append(check_key.name)
    lines = [f"{'asset':<34} {'parents':<26} {'fail/warn window':<18} checks"]
    for key in sorted(graph.get_all_asset_keys(), key=lambda k: k.to_user_string()):
        node = graph.get(key)
        parents = ", ".join(p.path[-1] for p in sorted(node.parent_keys, key=lambda k: k.to_user_string())) or "-"
        lines.append(f"{key.to_user_string():<34} {parents:<26} {_freshness(node):<18} {', '.join(sorted(checks[key]))}")
    lines.append(f"{len(graph.get_all_asset_keys())} assets, {len(graph.asset_check_keys)} checks")
    for schedule in sorted(defs.schedules or [], key=lambda s: s.name):
        cron = getattr(schedule, "cron_schedule", "?")
        lines.append(f"schedule {schedule.name}: '{cron}', starts {schedule.default_status.value.lower()}")
    for sensor in sorted(defs.sensors or [], key=lambda s: s.name):
        lines.append(f"sensor {sensor.name}: starts {sensor.default_status.value.lower()}")
    return "\n".join(lines)


def _freshness(node: object) -> str:
    policy = getattr(node, "freshness_policy", None)
    if policy is None:
        return "-"
    windows: list[Any] = [getattr(policy, "fail_window", None), getattr(policy, "warn_window", None)]
    return " / ".join(_short(w.to_timedelta() if hasattr(w, "to_timedelta") else w) for w in windows)


def _short(window: timedelta | None) -> str:
    if window is None:
        return "-"
    seconds = int(window.total_seconds())
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if seconds % size == 0:
            return f"{seconds // size}{unit}"
    return f"{seconds}s"
