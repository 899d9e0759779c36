"""Sensors that keep assets fresh.

* The freshness sensor requests, per source, one incremental run of exactly
  the assets whose last materialization is older than their freshness window
  allows (or will be by the next tick). It keeps a cursor and a stable
  run_key so the same work is never requested twice (a run that failed, or
  vanished before it started, is asked again after a pause that doubles up
  to an hour), never stacks a run on a
  source while one is in flight (a schedule's included), and says why it skipped. It never requests
  a run that cannot start: a source whose secrets, base URL or token URL do
  not resolve is skipped with a reason naming what to set
  (see runtime.readiness).
* Parent → child: children carry `AutomationCondition.eager()` anded with
  `RunCanStart` (set by the translator); the automation sensors here evaluate
  it in the code location, so a child is refreshed whenever its parent was
  materialized without it, once its run could start.
"""

import hashlib
import json
import time
import warnings
from collections.abc import Callable
from dataclasses import dataclass
from datetime import timedelta

from dagster import (
    AssetKey,
    AssetSelection,
    AutomationConditionSensorDefinition,
    BetaWarning,
    DagsterRunStatus,
    DefaultSensorStatus,
    EventLogRecord,
    RunRequest,
    RunsFilter,
    SensorDefinition,
    SensorEvaluationContext,
    SensorResult,
    SkipReason,
    sensor,
)

from rest_assets.dialect.model import Freshness, SourceSpec
from rest_assets.orchestration.readiness_condition import run_blockers
from rest_assets.orchestration.translator import asset_key

FRESHNESS_SENSOR = "rest_assets_freshness_sensor"
PARENT_CHILD_SENSOR = "rest_assets_parent_child_sensor"
SENSOR_INTERVAL_SECONDS = 60
# A source's run also takes its assets due within this fraction of their fail window after the next tick
JOIN_EARLY_FRACTION = 0.1
SOURCE_TAG = "rest_assets/source"
RUN_KEY_TAG = "dagster/run_key"
CHILDREN_PER_SENSOR = 150  # Dagster evaluates at most 500 per code-location sensor; fewer keeps each tick short
RETRY_AFTER_SECONDS = 300
RETRY_AFTER_MAX_SECONDS = 3600
IN_FLIGHT = [DagsterRunStatus.QUEUED, DagsterRunStatus.NOT_STARTED, DagsterRunStatus.STARTING, DagsterRunStatus.STARTED]


@dataclass(frozen=True)
class WatchedAsset:
    """An asset the freshness sensor watches, with the age it may reach."""

    key: AssetKey
    source: str
    fail_window: timedelta


def watched_assets(specs: list[SourceSpec], default: Freshness | None) -> list[WatchedAsset]:
    """Every asset with a freshness window (its own, else the project default)."""
    watched = []
    for spec in specs:
        for resource in spec.asset_resources:
            freshness = resource.freshness or default
            if freshness:
                watched.append(WatchedAsset(asset_key(spec.name, resource.name), spec.name, freshness.fail_window))
    return watched


# What to set before a run of `source` refreshing `stale` can start ([] when nothing): never values.
MissingCheck = Callable[[str, list["WatchedAsset"]], list[str]]


def build_freshness_sensor(specs: list[SourceSpec], default: Freshness | None) -> SensorDefinition:
    """The freshness sensor over all spec'd assets (starts running)."""
    watched = watched_assets(specs, default)
    missing = missing_check(specs)

    @sensor(
        name=FRESHNESS_SENSOR,
        minimum_interval_seconds=SENSOR_INTERVAL_SECONDS,
        default_status=DefaultSensorStatus.RUNNING,
        target=AssetSelection.assets(*[w.key for w in watched]),
        description="Requests an incremental run per source for the assets that are (or are about to be) stale.",
    )
    def _freshness_sensor(context: SensorEvaluationContext) -> SensorResult | SkipReason:
        return evaluate_freshness(context, watched, now=time.time(), missing=missing)

    return _freshness_sensor


def missing_check(specs: list[SourceSpec]) -> MissingCheck:
    """What each source's run of its stale assets needs set, looked up as a run would (runtime.readiness)."""
    by_name = {spec.name: spec for spec in specs}

    def missing(source: str, stale: list[WatchedAsset]) -> list[str]:
        return run_blockers(by_name[source], [w.key.path[-1] for w in stale])

    return missing


def evaluate_freshness(
    context: SensorEvaluationContext, watched: list[WatchedAsset], now: float, missing: MissingCheck | None = None
) -> SensorResult | SkipReason:
    """One tick of the freshness sensor (a plain function so it is easy to test).

    With `missing`, a source whose run could not start is skipped, the reason naming what to set.
    """
    cursor = json.loads(context.cursor) if context.cursor else {}
    busy = _sources_in_flight(context, watched)
    latest = {w.key: _latest_materialization(context, w.key) for w in watched}
    requests, reasons = [], []
    for source in sorted({w.source for w in watched}):
        ours = [w for w in watched if w.source == source]
        if any(_is_stale(latest[w.key], w, now) for w in ours):
            # the run also takes what would be stale soon after: assets one run loaded a second apart go
            # together again, not as a run of the parents now and one of their children (fetching them again) next
            stale = [w for w in ours if _is_stale(latest[w.key], w, now, early=JOIN_EARLY_FRACTION)]
        else:
            stale = []
        if not stale:
            reasons.append(f"{source}: every asset is fresh")
            continue
        unset = missing(source, stale) if missing else []
        if unset:
            reasons.append(
                f"{source}: {len(stale)} stale asset(s), but a run cannot start until these are set "
                f"(environment, or [sources.{source}] in .dlt/secrets.toml): {', '.join(unset)}"
            )
            continue
        if source in busy:
            reasons.append(f"{source}: {len(stale)} stale asset(s), but a run of this source is in flight")
            continue
        previous, requested_at = _requested(cursor.get(source))
        run_key, wait = _next_run_key(context, _run_key(source, stale, latest), previous, requested_at, now)
        if run_key is None:
            reasons.append(f"{source}: already requested a run for these {len(stale)} stale asset(s){wait}")
            continue
        cursor[source] = {"run_key": run_key, "requested_at": now}
        requests.append(
            RunRequest(
                run_key=run_key,
                asset_selection=[w.key for w in stale],
                tags={SOURCE_TAG: source, "rest_assets/trigger": "freshness"},
            )
        )
    if not requests:
        return SkipReason("; ".join(reasons) or "no assets are watched")
    for reason in reasons:
        context.log.info(f"not requested: {reason}")
    return SensorResult(run_requests=requests, cursor=json.dumps(cursor, sort_keys=True))


def _latest_materialization(context: SensorEvaluationContext, key: AssetKey) -> EventLogRecord | None:
    """The asset's last materialization record (it carries both timestamp and storage id)."""
    records = context.instance.fetch_materializations(key, limit=1).records
    return records[0] if records else None


def _is_stale(record: EventLogRecord | None, watched: WatchedAsset, now: float, early: float = 0.0) -> bool:
    """Whether the asset is stale by the next tick (or within the `early` fraction of its window before that)."""
    if record is None:
        return True
    age_at_next_tick = now + SENSOR_INTERVAL_SECONDS - record.timestamp
    return age_at_next_tick >= watched.fail_window.total_seconds() * (1 - early)


def _run_key(source: str, stale: list[WatchedAsset], latest: dict[AssetKey, EventLogRecord | None]) -> str:
    """Stable for one staleness state: the stale keys and their last materialization."""
    parts = []
    for w in sorted(stale, key=lambda w: w.key.to_user_string()):
        record = latest[w.key]
        parts.append(f"{w.key.to_user_string()}@{record.storage_id if record else 'never'}")
    digest = hashlib.sha1("|".join(parts).encode()).hexdigest()[:16]
    return f"freshness:{source}:{digest}"


def _requested(entry: object) -> tuple[str | None, float]:
    """The run key a source's cursor entry last requested, and when (0: not recorded, as in older cursors)."""
    if isinstance(entry, dict):
        return entry.get("run_key"), float(entry.get("requested_at") or 0)
    return (entry if isinstance(entry, str) else None), 0.0


def _next_run_key(
    context: SensorEvaluationContext, state_key: str, previous: str | None, requested_at: float, now: float
) -> tuple[str | None, str]:
    """The run key to request for this staleness state, or None and why not.

    A state is requested once (`state_key`); when the run requested for it
    ended and left the assets stale (it failed, or was canceled), or never
    appeared (deleted while queued, or never created), it is asked again as
    `state_key#n`, after a pause that doubles from RETRY_AFTER_SECONDS up to
    RETRY_AFTER_MAX_SECONDS, counted from its end (or from the request): an API
    that is down for a while gets a run now and then, not one every tick, and
    never none again.
    """
    if previous is None or previous.split("#")[0] != state_key:
        return state_key, ""
    records = context.instance.get_run_records(filters=RunsFilter(tags={RUN_KEY_TAG: previous}), limit=1)
    if records and records[0].dagster_run.status in IN_FLIGHT:
        return None, ""
    attempt = int(previous.split("#")[1]) if "#" in previous else 0
    if records:
        ended, what = records[0].end_time or records[0].update_timestamp.timestamp(), "it ended"
        what += f" ({records[0].dagster_run.status.value.lower()})"
    else:
        ended, what = requested_at, "its run has not appeared (deleted, or never created)"
    pause = min(RETRY_AFTER_SECONDS * 2**attempt, RETRY_AFTER_MAX_SECONDS)
    if now - ended < pause:
        return None, f"; {what}, asking again {int(pause - (now - ended))} s from now"
    return f"{state_key}#{attempt + 1}", ""


def _sources_in_flight(context: SensorEvaluationContext, watched: list[WatchedAsset]) -> set[str]:
    """Sources with a run in flight: one selecting any of their assets, or tagged with the source (a schedule's)."""
    source_of = {w.key: w.source for w in watched}
    sources = set(source_of.values())
    busy = set()
    for run in context.instance.get_runs(filters=RunsFilter(statuses=IN_FLIGHT)):
        tagged = run.tags.get(SOURCE_TAG)
        if tagged in sources:
            busy.add(tagged)
        for key in run.asset_selection or []:
            if key in source_of:
                busy.add(source_of[key])
    return busy


def build_parent_child_sensors(specs: list[SourceSpec]) -> list[AutomationConditionSensorDefinition]:
    """Sensors evaluating the children's automation condition (start running): one, or one per
    CHILDREN_PER_SENSOR children (`<name>_2`, ...): Dagster evaluates at most 500 assets per sensor
    in the code location, where RunCanStart needs the runs' environment."""
    children = [asset_key(s.name, r.name) for s in specs for r in s.asset_resources if s.asset_parent(r)]
    chunks = [children[i : i + CHILDREN_PER_SENSOR] for i in range(0, len(children), CHILDREN_PER_SENSOR)]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", BetaWarning)  # use_user_code_server: chosen, see readiness_condition
        return [
            AutomationConditionSensorDefinition(
                PARENT_CHILD_SENSOR if n == 1 else f"{PARENT_CHILD_SENSOR}_{n}",
                target=AssetSelection.assets(*chunk),
                default_status=DefaultSensorStatus.RUNNING,
                description="Refreshes child assets after their parent was materialized without them, where a run could start.",
                use_user_code_server=True,
            )
            for n, chunk in enumerate(chunks, start=1)
        ]
