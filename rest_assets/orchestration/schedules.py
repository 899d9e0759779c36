"""One schedule per source that declares `schedule: <cron>`."""

from dagster import (
    AssetSelection,
    DefaultScheduleStatus,
    RunRequest,
    ScheduleDefinition,
    ScheduleEvaluationContext,
    SkipReason,
    schedule,
)

from rest_assets.dialect.model import SourceSpec
from rest_assets.orchestration.readiness_condition import run_blockers
from rest_assets.orchestration.translator import asset_key


def build_schedule(spec: SourceSpec) -> ScheduleDefinition | None:
    """A schedule refreshing every asset of `spec` (stopped until enabled in the UI).

    A tick whose run could not start (a secret, setting, base URL or token URL
    that does not resolve) is skipped with a reason naming what to set, as the
    freshness sensor does: no run is launched only to fail.
    """
    if not spec.schedule:
        return None
    keys = [asset_key(spec.name, r.name) for r in spec.asset_resources]
    resources = [r.name for r in spec.asset_resources]
    tags = {"rest_assets/source": spec.name, "rest_assets/trigger": "schedule"}

    @schedule(
        name=f"{spec.name}_schedule",
        cron_schedule=spec.schedule,
        target=AssetSelection.assets(*keys),
        default_status=DefaultScheduleStatus.STOPPED,
        tags=tags,
        description=f"Incremental refresh of {spec.name} on '{spec.schedule}' (from {spec.file})",
    )
    def _refresh(context: ScheduleEvaluationContext) -> RunRequest | SkipReason:
        unset = run_blockers(spec, resources)
        if unset:
            return SkipReason(
                f"{spec.name}: a run cannot start until these are set "
                f"(environment, or [sources.{spec.name}] in .dlt/secrets.toml): {', '.join(unset)}"
            )
        return RunRequest(tags=tags)

    return _refresh
