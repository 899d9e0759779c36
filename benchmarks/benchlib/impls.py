"""The implementations a runner process can run, by name; each reads its settings from the environment.

Environment (set per run by run.py): ``BENCH_EMULATOR_URL``, the demo secrets
as ``SOURCES__<SOURCE>__<KEY>`` (the same variables rest_assets reads),
``DESTINATION__DUCKDB__CREDENTIALS`` and ``DLT_DATA_DIR``.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from typing import Any

Impl = Callable[[], dict[str, Any]]


def _env(name: str) -> str:
    return os.environ[name]


def _emulator(source: str) -> str:
    return f"{_env('BENCH_EMULATOR_URL')}/{source}"


def rest_assets_bulk() -> dict[str, Any]:
    """Dagster materialization of chat_analytics/contacts."""
    from benchlib.impl_rest_assets import materialize_assets

    return materialize_assets("chat_analytics", ["contacts"])


def rest_assets_fanout() -> dict[str, Any]:
    """Dagster materialization of help_desk/conversations + help_desk/conversation_threads."""
    from benchlib.impl_rest_assets import materialize_assets

    return materialize_assets("help_desk", ["conversations", "conversation_threads"])


def rest_assets_source() -> dict[str, Any]:
    """Dagster materialization of every asset of ``BENCH_SOURCE`` (incremental workload)."""
    from benchlib.impl_rest_assets import materialize_assets
    from rest_assets.definitions import defs

    source = _env("BENCH_SOURCE")
    assets_def = next(a for a in defs.assets or [] if a.node_def.name == source)
    return materialize_assets(source, [key.path[-1] for key in assets_def.keys])


def handloop_bulk() -> dict[str, Any]:
    """The minimal hand loop (requests + pyarrow + DuckDB upsert)."""
    from benchlib.impl_hand import bulk_loop

    return bulk_loop(
        _emulator("chat_analytics"), _env("SOURCES__CHAT_ANALYTICS__API_KEY"), _env("DESTINATION__DUCKDB__CREDENTIALS")
    )


def handpool_fanout() -> dict[str, Any]:
    """ThreadPoolExecutor(8) over the children."""
    from benchlib.impl_hand import fanout_pool

    return fanout_pool(
        _emulator("help_desk"),
        _env("SOURCES__HELP_DESK__CLIENT_ID"),
        _env("SOURCES__HELP_DESK__CLIENT_SECRET"),
        _env("DESTINATION__DUCKDB__CREDENTIALS"),
    )


def _dlt(source: str, config: dict[str, Any], fmt: str | None) -> dict[str, Any]:
    from benchlib.impl_dlt import run_dlt

    return run_dlt(source, config, _env("DESTINATION__DUCKDB__CREDENTIALS"), _env("DLT_DATA_DIR"), fmt)


def _bulk_config() -> dict[str, Any]:
    from benchlib.impl_dlt import bulk_config

    return bulk_config(_emulator("chat_analytics"), _env("SOURCES__CHAT_ANALYTICS__API_KEY"))


def _fanout_config(parallelized: bool) -> dict[str, Any]:
    from benchlib.impl_dlt import fanout_config

    base = _emulator("help_desk")
    return fanout_config(
        base,
        f"{base}/v2/oauth2/token",
        _env("SOURCES__HELP_DESK__CLIENT_ID"),
        _env("SOURCES__HELP_DESK__CLIENT_SECRET"),
        parallelized,
    )


IMPLEMENTATIONS: dict[str, Impl] = {
    "rest_assets_bulk": rest_assets_bulk,
    "handloop_bulk": handloop_bulk,
    "dlt_default_bulk": lambda: _dlt("chat_analytics", _bulk_config(), None),
    "dlt_parquet_bulk": lambda: _dlt("chat_analytics", _bulk_config(), "parquet"),
    "rest_assets_fanout": rest_assets_fanout,
    "handpool_fanout": handpool_fanout,
    "dlt_sequential_fanout": lambda: _dlt("help_desk", _fanout_config(False), None),
    "dlt_parallel_fanout": lambda: _dlt("help_desk", _fanout_config(True), None),
    "rest_assets_source": rest_assets_source,
}
# The same code under another name, so a workload's samples are keyed apart (the emulator decides the data):
# the scale workload (1M rows, 20,000 children) and the typed/mixed variants of the bulk load.
ALIASES = {
    "rest_assets_scale_bulk": "rest_assets_bulk",
    "handloop_scale_bulk": "handloop_bulk",
    "rest_assets_scale_fanout": "rest_assets_fanout",
    "handpool_scale_fanout": "handpool_fanout",
    "rest_assets_bulk_typed": "rest_assets_bulk",
    "rest_assets_bulk_mixed": "rest_assets_bulk",
}
IMPLEMENTATIONS.update({alias: IMPLEMENTATIONS[impl] for alias, impl in ALIASES.items()})
