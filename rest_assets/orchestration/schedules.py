"""One schedule per source that declares `schedule: <cron>`."""

from dagster import AssetSelection, DefaultScheduleStatus, ScheduleDefinition

from rest_assets.dialect.model import SourceSpec
from rest_assets.orchestration.translator import asset_key


def build_schedule(spec: SourceSpec) -> ScheduleDefinition | None:
    """A schedule refreshing every asset of `spec` (stopped until enabled in the UI)."""
    if not spec.schedule:
        return None
    keys = [asset_key(spec.name, r.name) for r in spec.resources]
    return ScheduleDefinition(
        name=f"{spec.name}_schedule",
        cron_schedule=spec.schedule,
        target=AssetSelection.assets(*keys),
        default_status=DefaultScheduleStatus.STOPPED,
        tags={"rest_assets/source": spec.name, "rest_assets/trigger": "schedule"},
        description=f"Incremental refresh of {spec.name} on '{spec.schedule}' (from {spec.file})",
    )
