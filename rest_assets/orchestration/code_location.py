"""Everything the code location holds: assets, checks, schedules and sensors of every spec (see rest_assets.definitions)."""

from datetime import timedelta
from pathlib import Path

from dagster import Definitions, ExecutorDefinition, in_process_executor, multiprocess_executor
from dagster_dlt import DagsterDltResource

from rest_assets.dialect import load_spec_dirs, spec_dirs_from_env
from rest_assets.dialect.model import Freshness
from rest_assets.dlt_internals import no_config_providers
from rest_assets.orchestration.assets import build_source_assets
from rest_assets.orchestration.checks import build_freshness_checks, build_primary_key_checks
from rest_assets.orchestration.schedules import build_schedule
from rest_assets.orchestration.sensors import build_freshness_sensor, build_parent_child_sensors
from rest_assets.warehouse.destination import destination_name

# Project-wide policy, applied here once: a resource without `freshness` must be
# loaded at least daily.
DEFAULT_FRESHNESS = Freshness(fail_window=timedelta(days=1), warn_window=timedelta(hours=12))


def build_definitions(spec_dirs: list[Path] | None = None, executor: ExecutorDefinition | None = None) -> Definitions:
    """Load every spec and wire assets, checks, schedules and sensors into one Definitions.

    `executor` replaces the default one (e.g. dagster-k8s's `k8s_job_executor` in deploy/k8s_definitions.py).
    """
    specs = load_spec_dirs(spec_dirs if spec_dirs is not None else spec_dirs_from_env())
    # The assets' skeleton dlt objects need no setting and no secret: dlt reads no provider while they are made,
    # so a malformed .dlt/secrets.toml fails the run that reads it, not the loading of the code location.
    with no_config_providers():
        assets = [build_source_assets(spec, DEFAULT_FRESHNESS) for spec in specs]
    checks = [c for c in (build_primary_key_checks(spec) for spec in specs) if c is not None]
    checks += build_freshness_checks(specs, DEFAULT_FRESHNESS)
    schedules = [s for s in (build_schedule(spec) for spec in specs) if s is not None]
    sensors = [build_freshness_sensor(specs, DEFAULT_FRESHNESS), *build_parent_child_sensors(specs)]
    # DuckDB is one file that one process may write at a time: run steps in-process.
    if executor is None:
        executor = in_process_executor if destination_name() == "duckdb" else multiprocess_executor
    return Definitions(
        assets=assets,
        asset_checks=checks,
        schedules=schedules,
        sensors=sensors,
        resources={"dlt": DagsterDltResource()},
        executor=executor,
    )
