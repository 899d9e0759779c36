"""`rest-assets demo`: every bundled source loaded from the local emulator into DuckDB.

The demo is the one place that knows both sides: it starts the emulator and
points each source at it through the public contract (SOURCES__<SOURCE>__*
environment variables), exactly as a user would point it at a real API.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from rest_assets.dialect.loader import BUNDLED_SOURCES_DIR, SOURCES_DIR_ENV
from rest_assets.emulator import DEMO_CREDENTIALS, Emulator, EmulatorConfig
from rest_assets.warehouse.destination import DEFAULT_DUCKDB_PATH, DESTINATION_ENV, DUCKDB_CREDENTIALS_ENV

# Where the emulator serves each OAuth2 token endpoint, relative to its source prefix.
EMULATOR_TOKEN_PATHS = {"client_portal": "/oauth2/token", "help_desk": "/v2/oauth2/token"}
QUIET_RUN_CONFIG = {"loggers": {"console": {"config": {"log_level": "ERROR"}}}}


@dataclass
class AssetFigures:
    """What the demo prints for one asset."""

    asset: str
    rows: int
    requests: int
    retries: int
    seconds: float


def emulator_environment(emulator_url: str, credentials: dict[str, dict[str, str]] | None = None) -> dict[str, str]:
    """The env vars that point every bundled source at an emulator, with its demo secrets."""
    env: dict[str, str] = {}
    for source, secrets in (credentials or DEMO_CREDENTIALS).items():
        prefix = f"SOURCES__{source.upper()}__"
        env[prefix + "BASE_URL"] = f"{emulator_url}/{source}"
        if source in EMULATOR_TOKEN_PATHS:
            env[prefix + "TOKEN_URL"] = f"{emulator_url}/{source}{EMULATOR_TOKEN_PATHS[source]}"
        env.update({prefix + key.upper(): value for key, value in secrets.items()})
    return env


def run_demo(size: int = 120, ui: bool = False, port: int = 3000, out: Callable[[str], None] = print) -> int:
    """Start the emulator, point the sources at it, then load everything (or open the UI)."""
    emulator = Emulator(EmulatorConfig(default_size=size))
    url = emulator.start()
    out(f"emulator serving the bundled APIs at {url}")
    # never the user's own specs, destination or DuckDB file: the demo loads emulator data
    for name, value, why in (
        (SOURCES_DIR_ENV, str(BUNDLED_SOURCES_DIR), "the demo loads the bundled specs, from the emulator"),
        (DESTINATION_ENV, "duckdb", "the demo loads into DuckDB"),
        (DUCKDB_CREDENTIALS_ENV, str(Path.cwd() / DEFAULT_DUCKDB_PATH), f"the demo's DuckDB file is {DEFAULT_DUCKDB_PATH}"),
    ):
        if os.environ.get(name, "").strip() not in ("", value):
            out(f"{name} is ignored: {why}")
        os.environ[name] = value
    os.environ.update(emulator_environment(url))
    try:
        return _open_ui(port, out) if ui else _load_everything(out)
    finally:
        emulator.stop()


def multi_assets(defs: Any) -> list[Any]:
    """The code location's multi-assets (one per source)."""
    from dagster import AssetsDefinition

    return [assets for assets in defs.assets or [] if isinstance(assets, AssetsDefinition)]


def _load_everything(out: Callable[[str], None]) -> int:
    from dagster import DagsterInstance, materialize

    from rest_assets.definitions import build_definitions
    from rest_assets.warehouse.destination import duckdb_path

    defs = build_definitions()
    figures: list[AssetFigures] = []
    failed = False
    with DagsterInstance.ephemeral() as instance:
        for assets_def in multi_assets(defs):
            name = assets_def.node_def.name
            out(f"loading {name}: {len(assets_def.keys)} resources ...")
            started = time.monotonic()
            result = materialize(
                [assets_def], instance=instance, resources=defs.resources, run_config=QUIET_RUN_CONFIG, raise_on_error=False
            )
            seconds = time.monotonic() - started
            if not result.success:
                failed = True
                out(f"  FAILED: {_failure_message(result)}")
                continue
            batch = _figures(result, seconds)
            figures.extend(batch)
            out(f"  done: {sum(f.rows for f in batch)} rows in {seconds:.1f}s")
    out(_table(figures))
    out(f"DuckDB file: {duckdb_path()}")
    return 1 if failed else 0


def _figures(result: Any, seconds: float) -> list[AssetFigures]:
    rows = []
    for event in result.get_asset_materialization_events():
        materialization = event.step_materialization_data.materialization
        meta = {k: getattr(v, "value", v) for k, v in materialization.metadata.items()}
        rows.append(
            AssetFigures(
                asset=materialization.asset_key.to_user_string(),
                rows=int(meta.get("rows_loaded", 0) or 0),
                requests=int(meta.get("requests", 0) or 0),
                retries=int(meta.get("retries", 0) or 0),
                seconds=seconds,
            )
        )
    return rows


def _failure_message(result: Any) -> str:
    """The root cause of the first failed step (Dagster wraps it in a generic step-execution error)."""
    for event in result.all_events:
        if event.is_step_failure:
            error = event.step_failure_data.error
            while error.cause is not None:
                error = error.cause
            return str(error.message).strip()
    return "the run failed"


def _table(figures: list[AssetFigures]) -> str:
    header = f"{'asset':<36} {'rows':>7} {'requests':>9} {'retries':>8} {'seconds':>8}"
    lines = [header, "-" * len(header)]
    lines += [f"{f.asset:<36} {f.rows:>7} {f.requests:>9} {f.retries:>8} {f.seconds:>8.1f}" for f in figures]
    lines.append("-" * len(header))
    lines.append(
        f"{'total: ' + str(len(figures)) + ' assets':<36} {sum(f.rows for f in figures):>7} "
        f"{sum(f.requests for f in figures):>9} {sum(f.retries for f in figures):>8}"
    )
    return "\n".join(lines)


def _open_ui(port: int, out: Callable[[str], None]) -> int:
    home = Path.cwd() / ".rest_assets" / "dagster_home"
    home.mkdir(parents=True, exist_ok=True)
    env = {**os.environ, "DAGSTER_HOME": str(home)}
    out(f"starting dagster dev: open http://127.0.0.1:{port} and click Materialize all (Ctrl-C stops)")
    command = [sys.executable, "-m", "dagster", "dev", "-m", "rest_assets.definitions", "-h", "127.0.0.1", "-p", str(port)]
    process = subprocess.Popen(command, env=env)
    try:
        return process.wait()
    except KeyboardInterrupt:
        process.terminate()
        return process.wait()
