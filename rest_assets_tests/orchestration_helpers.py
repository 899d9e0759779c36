"""Helpers for the orchestration tests (incremental loads, sensors, schedules, checks, browser).

They sit beside conftest.py (whose fixtures they reuse) and add what those
tests need on top: materializing a *subset* of a source (optionally with its
asset checks) on a caller's instance, the emulator's request log per
resource, and a few DuckDB readers.
"""

from __future__ import annotations

import os
import socket
from collections import defaultdict
from collections.abc import Iterable
from datetime import datetime
from typing import Any

import duckdb
from dagster import AssetKey, DagsterInstance, materialize

from rest_assets.cli.demo import QUIET_RUN_CONFIG


def key(source: str, resource: str) -> AssetKey:
    return AssetKey([source, resource])


def source_definitions(source: str) -> tuple[Any, Any, Any]:
    """(Definitions, the source's multi-asset, its primary-key multi-check or None), built from the env now."""
    from rest_assets.definitions import build_definitions

    defs = build_definitions()
    assets = [a for a in defs.assets or [] if a.node_def.name == source]
    assert len(assets) == 1, f"no single multi-asset named {source!r}"
    checks = [c for c in defs.asset_checks or [] if c.node_def.name == f"{source}_primary_key_checks"]
    return defs, assets[0], (checks[0] if checks else None)


def materialize_resources(
    source: str,
    resources: Iterable[str] | None = None,
    *,
    instance: DagsterInstance | None = None,
    with_checks: bool = False,
    only_checks: bool = False,
) -> Any:
    """Materialize `resources` (default: all) of `source`, never raising on a failed run.

    `with_checks` also runs the source's primary-key checks for those assets;
    `only_checks` runs just those checks (no materialization).
    """
    from dagster import AssetSelection

    defs, assets_def, checks_def = source_definitions(source)
    keys = [key(source, r) for r in resources] if resources is not None else list(assets_def.keys)
    to_run = [assets_def] + ([checks_def] if (with_checks or only_checks) and checks_def is not None else [])
    selection = AssetSelection.checks_for_assets(*keys) if only_checks else AssetSelection.assets(*keys)
    if with_checks and not only_checks:
        selection = selection | AssetSelection.checks_for_assets(*keys)
    own = instance is None
    instance = instance or DagsterInstance.ephemeral()
    try:
        return materialize(
            to_run,
            selection=selection,
            instance=instance,
            resources=defs.resources,
            run_config=QUIET_RUN_CONFIG,
            raise_on_error=False,
        )
    finally:
        if own:
            instance.dispose()


def requests_by_resource(log: list[dict[str, Any]], source: str) -> dict[str, list[dict[str, Any]]]:
    """The emulator's request log of one source, grouped by the resource each request served."""
    grouped: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for entry in log:
        if entry.get("source") == source:
            grouped[entry.get("resource") or "?"].append(entry)
    return dict(grouped)


def query(sql: str, params: list[Any] | None = None, db: str | None = None) -> list[tuple[Any, ...]]:
    """Run one read-only query on the test's DuckDB file (connection closed right after)."""
    connection = duckdb.connect(db or os.environ["DESTINATION__DUCKDB__CREDENTIALS"], read_only=True)
    try:
        return connection.execute(sql, params or []).fetchall()
    finally:
        connection.close()


def as_timestamp(value: str) -> datetime:
    """An emulator timestamp (`...Z`) as an aware datetime, as DuckDB returns it."""
    return datetime.fromisoformat(value.replace("Z", "+00:00"))


def check_results(result: Any) -> dict[tuple[str, str], Any]:
    """(asset user string, check name) -> AssetCheckEvaluation of a run."""
    out = {}
    for event in result.get_asset_check_evaluations():
        out[(event.asset_key.to_user_string(), event.check_name)] = event
    return out


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]
