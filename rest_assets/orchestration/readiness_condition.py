"""An automation condition that holds only where a run could start (its secrets, settings and URLs resolve).

Dagster's declarative automation has no readiness check: a child whose parent
was loaded by a process that had the secrets (a scheduled run, a deployment)
is requested where they are missing, and the run fails. Anded to a child's
condition, `RunCanStart` keeps it from being requested until the run could
start, looked up as the run itself would (`run_blockers`), in the code
location's process: the parent-child sensor evaluates it there
(`use_user_code_server`).
"""

from __future__ import annotations

from collections.abc import Collection

from dagster import AssetKey, AutomationCondition, AutomationContext, AutomationResult

from rest_assets.dialect.model import SourceSpec
from rest_assets.runtime.readiness import missing_to_run
from rest_assets.warehouse.destination import destination_problems


def run_blockers(spec: SourceSpec, resources: Collection[str] | None = None) -> list[str]:
    """What to set before a run of `spec` extracting `resources` (default: all) can start: its secrets, settings
    and URLs (runtime.readiness), and the destination's settings; [] when nothing."""
    return missing_to_run(spec, resources) + destination_problems()


class RunCanStart(AutomationCondition[AssetKey]):
    """True for the asset of `resource` when a run of it could start now; never holds a value."""

    def __init__(self, spec: SourceSpec, resource: str) -> None:
        self.spec, self.resource = spec, resource

    @property
    def name(self) -> str:
        return "run_can_start"

    @property
    def description(self) -> str:
        return f"every secret, setting and URL a run of {self.spec.name}.{self.resource} needs is set"

    @property
    def requires_cursor(self) -> bool:
        return False

    def evaluate(self, context: AutomationContext[AssetKey]) -> AutomationResult[AssetKey]:
        """The candidates where nothing is missing to run; none otherwise."""
        ready = not run_blockers(self.spec, [self.resource])
        return AutomationResult(context, context.candidate_subset if ready else context.get_empty_subset())
