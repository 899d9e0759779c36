"""The parent -> child automation sensor and the freshness checks, evaluated against real runs.

Parents and children are materialized for real (emulator -> DuckDB, on one
Dagster instance per test), then:

* the code location's own `rest_assets_parent_child_sensor` is ticked the way
  Dagster ticks an automation-condition sensor (its selection, its run tags,
  its cursor) and the run requests it returns are checked, then carried out;
* the code location's freshness checks are executed against those
  materialization records, with Dagster's clock frozen at chosen instants
  (no sleeping): fresh passes, past the fail window fails with WARN severity.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta
from typing import Any

import pytest
from dagster import (
    AssetCheckKey,
    AssetCheckSeverity,
    AssetSelection,
    DagsterInstance,
    RunRequest,
    build_sensor_context,
    materialize,
)
from dagster._core.definitions.automation_condition_sensor_definition import _evaluate as tick_automation_sensor
from dagster._core.test_utils import freeze_time
from orchestration_helpers import key, materialize_resources

from rest_assets.cli.demo import QUIET_RUN_CONFIG
from rest_assets.definitions import build_definitions
from rest_assets.orchestration.sensors import PARENT_CHILD_SENSOR

pytestmark = pytest.mark.e2e

CONVERSATIONS = key("help_desk", "conversations")
THREADS = key("help_desk", "conversation_threads")
FRESHNESS_CHECK = "freshness_check"  # the name build_last_update_freshness_checks gives its checks


@pytest.fixture()
def instance() -> Iterator[DagsterInstance]:
    with DagsterInstance.ephemeral() as inst:
        yield inst


def _tick(defs: Any, instance: DagsterInstance, cursor: str | None) -> tuple[list[RunRequest], str]:
    """One tick of the parent -> child sensor, as the daemon evaluates it: (run requests, new cursor)."""
    sensor = defs.get_sensor_def(PARENT_CHILD_SENSOR)
    context = build_sensor_context(instance=instance, cursor=cursor, repository_def=defs.get_repository_def())
    result = tick_automation_sensor(sensor, context)
    return list(result.run_requests or []), result.cursor


def _selected(requests: list[RunRequest]) -> set:
    return {k for request in requests for k in request.asset_selection or []}


def test_the_parent_child_sensor_requests_the_child_of_a_parent_loaded_alone(workdir, instance, emulator):
    defs = build_definitions()
    requests, cursor = _tick(defs, instance, None)
    assert requests == [], "nothing loaded yet: nothing to refresh"

    parent = materialize_resources("help_desk", ["conversations"], instance=instance)
    assert parent.success

    requests, cursor = _tick(defs, instance, cursor)
    assert _selected(requests) == {THREADS}, "the parent loaded alone: exactly its child is requested"

    child = materialize_resources("help_desk", ["conversation_threads"], instance=instance)
    assert child.success
    requests, cursor = _tick(defs, instance, cursor)
    assert requests == [], "the child is up to date with its parent"

    parent = materialize_resources("help_desk", ["conversations"], instance=instance)
    assert parent.success
    requests, _ = _tick(defs, instance, cursor)
    assert _selected(requests) == {THREADS}, "the parent loaded again: its child is requested again"


def _run_freshness_checks(defs: Any, instance: DagsterInstance, keys: list, at: float) -> dict[Any, Any]:
    """Execute the code location's freshness checks of `keys` with Dagster's clock at `at`."""
    check_keys = [AssetCheckKey(k, FRESHNESS_CHECK) for k in keys]
    with freeze_time(at):
        result = materialize(
            [*defs.assets, *defs.asset_checks],
            selection=AssetSelection.checks(*check_keys),
            instance=instance,
            resources=defs.resources,
            run_config=QUIET_RUN_CONFIG,
        )
    assert result.success and result.get_asset_materialization_events() == [], "checks load nothing"
    return {e.asset_key: e for e in result.get_asset_check_evaluations()}


def test_freshness_checks_pass_for_a_fresh_load_and_warn_once_the_fail_window_passed(workdir, instance, emulator):
    defs = build_definitions()
    policy = next(s for s in defs.resolve_all_asset_specs() if s.key == CONVERSATIONS).freshness_policy
    window = timedelta(days=policy.fail_window.days, seconds=policy.fail_window.seconds).total_seconds()
    assert window == timedelta(days=1).total_seconds()  # help_desk.yaml

    loaded = materialize_resources("help_desk", ["conversations"], instance=instance)
    assert loaded.success
    loaded_at = instance.fetch_materializations(CONVERSATIONS, limit=1).records[0].timestamp

    fresh = _run_freshness_checks(defs, instance, [CONVERSATIONS, THREADS], at=loaded_at + window - 60)
    assert fresh[CONVERSATIONS].passed, fresh[CONVERSATIONS].metadata
    assert not fresh[THREADS].passed, "never materialized: not fresh"

    stale = _run_freshness_checks(defs, instance, [CONVERSATIONS], at=loaded_at + window + 60)
    assert not stale[CONVERSATIONS].passed
    assert stale[CONVERSATIONS].severity == AssetCheckSeverity.WARN
    assert _metadata(stale[CONVERSATIONS])["dagster/last_updated_timestamp"] == loaded_at
    assert _metadata(stale[CONVERSATIONS])["dagster/freshness_params"]["lower_bound_delta_seconds"] == window

    reloaded = materialize_resources("help_desk", ["conversations"], instance=instance)
    assert reloaded.success
    reloaded_at = instance.fetch_materializations(CONVERSATIONS, limit=1).records[0].timestamp
    again = _run_freshness_checks(defs, instance, [CONVERSATIONS], at=reloaded_at + window - 60)
    assert again[CONVERSATIONS].passed, "a new load makes the asset fresh again"
    assert _metadata(again[CONVERSATIONS])["dagster/last_updated_timestamp"] == reloaded_at, "the check read the latest load"


def _metadata(evaluation: Any) -> dict[str, Any]:
    return {k: getattr(v, "value", v) for k, v in evaluation.metadata.items()}
