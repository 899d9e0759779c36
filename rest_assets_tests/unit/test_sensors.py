"""The freshness sensor and the parent -> child automation, on a real (ephemeral) Dagster instance.

Materializations are recorded with `report_runless_asset_event`; time is
controlled by the `now` the freshness sensor's tick function takes (the
recorded events keep their real timestamps, ticks are evaluated later).
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from types import SimpleNamespace

import pytest
from conftest import BUNDLED_SOURCES_DIR, SOURCES
from dagster import (
    AssetMaterialization,
    DagsterInstance,
    DagsterRunStatus,
    SensorResult,
    SkipReason,
    build_schedule_context,
    build_sensor_context,
    evaluate_automation_conditions,
)
from dagster._core.definitions.automation_condition_sensor_definition import _evaluate as tick_automation_sensor
from dagster._core.storage.dagster_run import DagsterRun
from orchestration_helpers import key

from rest_assets.cli.demo import emulator_environment
from rest_assets.definitions import DEFAULT_FRESHNESS, build_definitions
from rest_assets.dialect import load_spec_dirs
from rest_assets.dialect.validate import build_source_spec
from rest_assets.dialect.yaml_source import parse_yaml
from rest_assets.emulator import DEMO_CREDENTIALS
from rest_assets.orchestration.sensors import (
    CHILDREN_PER_SENSOR,
    FRESHNESS_SENSOR,
    PARENT_CHILD_SENSOR,
    RETRY_AFTER_SECONDS,
    SENSOR_INTERVAL_SECONDS,
    build_parent_child_sensors,
    evaluate_freshness,
    watched_assets,
)
from rest_assets.runtime.readiness import missing_to_run

HOUR = 3600.0
DAY = 24 * HOUR
SHORT = key("client_portal", "company")  # given a 2h fail window below; everything else has 1d
CHILDREN = {key("help_desk", c) for c in ("conversation_threads", "inbox_custom_fields", "inbox_folders", "team_members")}


@pytest.fixture()
def specs_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """The bundled specs, with client_portal.company given its own 2h fail window."""
    target = tmp_path / "specs"
    target.mkdir()
    for spec in BUNDLED_SOURCES_DIR.glob("*.yaml"):
        text = spec.read_text()
        if spec.stem == "client_portal":
            text, n = re.subn(r"(\n  - name: company\n)", r"\1    freshness: {fail_window: 2h, warn_window: 1h}\n", text)
            assert n == 1
        (target / spec.name).write_text(text)
    monkeypatch.setenv("REST_ASSETS_SOURCES_DIR", str(target))
    return target


@pytest.fixture()
def watched(specs_dir: Path):
    return watched_assets(load_spec_dirs([specs_dir]), DEFAULT_FRESHNESS)


@pytest.fixture()
def instance() -> Iterator[DagsterInstance]:
    with DagsterInstance.ephemeral() as inst:
        yield inst


def _materialize(instance: DagsterInstance, *keys) -> None:
    for k in keys:
        instance.report_runless_asset_event(AssetMaterialization(k))


def _tick(instance: DagsterInstance, watched, now: float, cursor: str | None = None):
    context = build_sensor_context(instance=instance, cursor=cursor)
    return evaluate_freshness(context, watched, now=now)


def _requests(result) -> dict[str, tuple[set, str, dict]]:
    """source -> (asset selection, run key, tags) of a tick's run requests."""
    assert isinstance(result, SensorResult), f"expected run requests, got {result}"
    out = {}
    for request in result.run_requests:
        source = request.tags["rest_assets/source"]
        assert source not in out, "one run request per source"
        out[source] = (set(request.asset_selection), request.run_key, dict(request.tags))
    return out


def test_freshness_sensor_requests_one_run_per_source_for_missing_and_stale_assets(instance, watched):
    assert len(watched) == 32
    everything = [w.key for w in watched]
    missing = {key("client_portal", "contacts"), key("help_desk", "tags"), key("help_desk", "users")}
    _materialize(instance, *[k for k in everything if k not in missing])
    t0 = time.time()

    # 1. only the never-materialized assets, grouped per source
    first = _tick(instance, watched, now=t0 + 10)
    requests = _requests(first)
    assert set(requests) == {"client_portal", "help_desk"}
    assert requests["client_portal"][0] == {key("client_portal", "contacts")}
    assert requests["help_desk"][0] == {key("help_desk", "tags"), key("help_desk", "users")}
    for source, (_, run_key, tags) in requests.items():
        assert re.fullmatch(rf"freshness:{source}:[0-9a-f]{{16}}", run_key)
        assert tags == {"rest_assets/source": source, "rest_assets/trigger": "freshness"}
    assert {s: entry["run_key"] for s, entry in json.loads(first.cursor).items()} == {s: r[1] for s, r in requests.items()}

    # 2. the same state on the next tick: nothing new, and the reason says why
    second = _tick(instance, watched, now=t0 + 70, cursor=first.cursor)
    assert isinstance(second, SkipReason)
    assert "client_portal: already requested a run for these 1 stale asset(s)" in second.skip_message
    assert "help_desk: already requested a run for these 2 stale asset(s)" in second.skip_message
    assert "chat_analytics: every asset is fresh" in second.skip_message

    # 3. once loaded, those assets are fresh; then windows pass: the 2h asset first, all at 1d
    _materialize(instance, *missing)
    assert isinstance(_tick(instance, watched, now=t0 + 120, cursor=first.cursor), SkipReason)
    early = _requests(_tick(instance, watched, now=t0 + 2 * HOUR - SENSOR_INTERVAL_SECONDS / 2, cursor=first.cursor))
    assert {s: r[0] for s, r in early.items()} == {"client_portal": {SHORT}}, "stale by the next tick counts"
    assert isinstance(_tick(instance, watched, now=t0 + 2 * HOUR - 2 * SENSOR_INTERVAL_SECONDS), SkipReason)
    late = _tick(instance, watched, now=t0 + DAY, cursor=first.cursor)
    late_requests = _requests(late)
    assert set(late_requests) == {"chat_analytics", "client_portal", "contact_book", "help_desk", "sales_crm"}
    for source, (selection, run_key, _) in late_requests.items():
        assert selection == {k for k in everything if k.path[0] == source}
        assert run_key != requests.get(source, (None, None))[1]

    # 4. a new materialization of a (still) stale asset changes that source's run key only
    _materialize(instance, key("sales_crm", "deals"))
    again = _requests(_tick(instance, watched, now=t0 + DAY + SENSOR_INTERVAL_SECONDS, cursor=late.cursor))
    assert set(again) == {"sales_crm"}
    assert again["sales_crm"][1] != late_requests["sales_crm"][1]


def test_a_run_takes_the_assets_of_its_source_that_are_due_a_moment_later(instance, watched):
    """One run loads a source's parents and children a second or more apart: when the parents are due,
    the children go in the same run (a run of their own would fetch the parents again), not on the next tick."""
    source = [w.key for w in watched if w.source == "help_desk"]
    parents = [k for k in source if k not in CHILDREN]
    _materialize(instance, *parents)
    parents_loaded = time.time()
    time.sleep(1.5)  # the children, loaded later in the same run; the other sources then too
    _materialize(instance, *CHILDREN, *[w.key for w in watched if w.source != "help_desk"])

    due = _requests(_tick(instance, watched, now=parents_loaded + DAY - SENSOR_INTERVAL_SECONDS + 0.5))

    assert due["help_desk"][0] == set(source)
    # the sources loaded with the children are due a second later: none of their assets is due, none goes
    # (but client_portal's company, with a 2h window, is due: its source goes, every asset due soon with it)
    assert set(due) == {"help_desk", "client_portal"}
    assert "help_desk" not in _requests(_tick(instance, watched, now=parents_loaded + DAY - 2 * SENSOR_INTERVAL_SECONDS))


def test_freshness_sensor_skips_a_source_with_a_run_in_flight(instance, watched):
    help_desk = {w.key for w in watched if w.source == "help_desk"}
    instance.add_run(
        DagsterRun(
            job_name="__ASSET_JOB",
            status=DagsterRunStatus.STARTED,
            asset_selection=frozenset({key("help_desk", "conversations")}),
        )
    )
    result = _tick(instance, watched, now=time.time())
    requests = _requests(result)
    assert "help_desk" not in requests
    assert set(requests) == {"chat_analytics", "client_portal", "contact_book", "sales_crm"}
    assert len(help_desk) == 11
    # the run ends: the next tick requests help_desk (and only it: the others are already requested)
    run = instance.get_runs()[0]
    instance.report_run_canceled(run)
    assert instance.get_run_by_id(run.run_id).status == DagsterRunStatus.CANCELED
    follow = _requests(_tick(instance, watched, now=time.time(), cursor=result.cursor))
    assert set(follow) == {"help_desk"} and follow["help_desk"][0] == help_desk


def test_freshness_sensor_skip_reason_names_the_run_in_flight(instance, watched):
    _materialize(instance, *[w.key for w in watched if w.source != "client_portal"])
    instance.add_run(
        DagsterRun(
            job_name="__ASSET_JOB", status=DagsterRunStatus.STARTED, asset_selection=frozenset({key("client_portal", "clients")})
        )
    )
    result = _tick(instance, watched, now=time.time())
    assert isinstance(result, SkipReason)
    assert "client_portal: 3 stale asset(s), but a run of this source is in flight" in result.skip_message


def test_the_definitions_sensor_ticks_with_the_wall_clock(instance, specs_dir, settings, monkeypatch):
    settings.set_all()
    defs = build_definitions()
    sensor = defs.get_sensor_def(FRESHNESS_SENSOR)
    everything = [k for a in defs.assets for k in a.keys]
    _materialize(instance, *everything)
    assert isinstance(sensor(build_sensor_context(instance=instance)), SkipReason)
    later = time.time() + 3 * HOUR
    monkeypatch.setattr("rest_assets.orchestration.sensors.time", SimpleNamespace(time=lambda: later))
    result = sensor(build_sensor_context(instance=instance))
    assert {s: r[0] for s, r in _requests(result).items()} == {"client_portal": {SHORT}}


def test_parent_materialization_requests_its_children_and_only_them(instance, specs_dir, settings):
    settings.set_all()
    defs = build_definitions()
    nothing = evaluate_automation_conditions(defs=defs, instance=instance)
    assert nothing.total_requested == 0, "children of never-loaded parents are not requested"

    _materialize(instance, key("help_desk", "conversations"))
    one = evaluate_automation_conditions(defs=defs, instance=instance, cursor=nothing.cursor)
    assert _requested(one, defs) == {key("help_desk", "conversation_threads")}

    _materialize(instance, key("help_desk", "inboxes"), key("help_desk", "teams"))
    two = evaluate_automation_conditions(defs=defs, instance=instance, cursor=one.cursor)
    assert _requested(two, defs) == {key("help_desk", c) for c in ("inbox_custom_fields", "inbox_folders", "team_members")}

    # the children load after their parents: nothing more to do
    _materialize(instance, *CHILDREN)
    done = evaluate_automation_conditions(defs=defs, instance=instance, cursor=two.cursor)
    assert done.total_requested == 0

    # a parent loads again: its children (only) are requested again
    _materialize(instance, key("help_desk", "teams"))
    again = evaluate_automation_conditions(defs=defs, instance=instance, cursor=done.cursor)
    assert _requested(again, defs) == {key("help_desk", "team_members")}


def _requested(result, defs) -> set:
    """The asset keys an automation evaluation requested."""
    keys = {k for a in defs.assets for k in a.keys if result.get_num_requested(k)}
    assert result.total_requested == len(keys)
    return keys


# -- the freshness sensor never requests a run that cannot start ---------------------------------------------

UNREACHABLE_API = "http://127.0.0.1:9"  # never contacted: the sensor only reads settings


class Settings:
    """The bundled sources' secrets and URLs, set per source through the environment (none at first)."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch) -> None:
        self.monkeypatch = monkeypatch
        self.values = emulator_environment(UNREACHABLE_API)

    def set_source(self, source: str, skip: tuple[str, ...] = ()) -> None:
        for name, value in self.values.items():
            if name.startswith(f"SOURCES__{source.upper()}__") and name.split("__")[-1] not in skip:
                self.monkeypatch.setenv(name, value)

    def set_all(self) -> None:
        for source in SOURCES:
            self.set_source(source)


@pytest.fixture()
def settings(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Settings:
    """No secret or URL set anywhere: a fresh checkout (no SOURCES__* or plain-named env, no .dlt folder)."""
    for name in [n for n in os.environ if n.startswith("SOURCES__")]:
        monkeypatch.delenv(name)
    for name in {k.upper() for secrets in DEMO_CREDENTIALS.values() for k in secrets} | {"BASE_URL", "TOKEN_URL"}:
        monkeypatch.delenv(name, raising=False)
    workdir = tmp_path / "fresh_checkout"
    workdir.mkdir()
    monkeypatch.chdir(workdir)
    return Settings(monkeypatch)


def _definitions_tick(instance: DagsterInstance):
    sensor = build_definitions().get_sensor_def(FRESHNESS_SENSOR)
    return sensor(build_sensor_context(instance=instance))


def test_with_no_secrets_set_the_sensor_requests_no_run_and_names_what_to_set(instance, specs_dir, settings):
    specs = {spec.name: spec for spec in load_spec_dirs([specs_dir])}
    result = _definitions_tick(instance)  # nothing ever loaded: every asset is stale

    assert isinstance(result, SkipReason), f"no run can start, yet the sensor requested {result}"
    for source in SOURCES:
        reason = next(part for part in result.skip_message.split("; ") if part.startswith(f"{source}:"))
        assert "a run cannot start until these are set" in reason
        for secret in specs[source].secret_keys:
            assert f"SOURCES__{source.upper()}__{secret.upper()} (or {secret.upper()})" in reason
        assert f"SOURCES__{source.upper()}__BASE_URL" in reason
    assert "SOURCES__CLIENT_PORTAL__TOKEN_URL" in result.skip_message
    assert "SOURCES__CHAT_ANALYTICS__TOKEN_URL" not in result.skip_message  # api_key auth: no token host

    settings.set_all()  # once set, the next tick requests the runs (a skip is not remembered in the cursor)
    assert set(_requests(_definitions_tick(instance))) == set(SOURCES)


def test_only_sources_whose_secrets_and_urls_resolve_get_a_run(instance, specs_dir, settings):
    settings.set_source("chat_analytics")
    settings.set_source("client_portal", skip=("ACCOUNT_ID",))
    settings.set_source("help_desk", skip=("TOKEN_URL",))

    result = _definitions_tick(instance)

    assert set(_requests(result)) == {"chat_analytics"}
    values = [v for k, v in settings.values.items() if not k.endswith("_URL")]
    assert not [v for v in values if v in (result.cursor or "")], "the cursor holds no secret"


def test_the_reason_names_only_what_is_missing_and_never_a_value(instance, specs_dir, settings):
    settings.set_source("client_portal", skip=("ACCOUNT_ID",))
    settings.set_source("help_desk", skip=("TOKEN_URL",))
    _materialize(
        instance, *[k for a in build_definitions().assets for k in a.keys if k.path[0] not in ("client_portal", "help_desk")]
    )

    result = _definitions_tick(instance)

    assert isinstance(result, SkipReason)
    portal = next(p for p in result.skip_message.split("; ") if p.startswith("client_portal:"))
    assert portal.endswith("SOURCES__CLIENT_PORTAL__ACCOUNT_ID (or ACCOUNT_ID)"), portal
    desk = next(p for p in result.skip_message.split("; ") if p.startswith("help_desk:"))
    assert desk.endswith(
        "SOURCES__HELP_DESK__TOKEN_URL (the spec's token URL 'https://api.example.com/v2/oauth2/token' is a placeholder)"
    ), desk
    for value in DEMO_CREDENTIALS["client_portal"].values():
        assert value not in result.skip_message


def test_with_every_secret_and_url_set_each_stale_source_gets_its_run(instance, specs_dir, settings):
    settings.set_all()
    assert set(_requests(_definitions_tick(instance))) == set(SOURCES)


def test_a_secret_under_its_bare_name_counts_as_set_as_it_does_for_a_run(instance, specs_dir, settings):
    settings.monkeypatch.setenv("API_KEY", "bare-api-key-value")  # the run's fallback lookup (see runtime.secrets)
    settings.monkeypatch.setenv("SOURCES__CONTACT_BOOK__BASE_URL", f"{UNREACHABLE_API}/contact_book")

    assert set(_requests(_definitions_tick(instance))) == {"contact_book"}


RESOURCE_SECRET_SPEC = """
client: {base_url: "https://api.acme.io", auth: {type: bearer, api_key: {secret: token}}}
resources:
  - {name: orders, endpoint: {path: /orders}}
  - {name: audit, endpoint: {path: /audit, headers: {X-Audit-Key: {secret: audit_key}}}}
  - {name: lines, endpoint: {path: "/orders/{resources.orders.id}/lines", headers: {X-Lines: {secret: lines_key}}}}
"""


def test_a_resource_secret_is_needed_only_by_runs_that_extract_that_resource(settings):
    spec = build_source_spec(parse_yaml(RESOURCE_SECRET_SPEC, "acme.yaml"), "acme")
    settings.monkeypatch.setenv("SOURCES__ACME__TOKEN", "t0k3n-acme")

    assert missing_to_run(spec, ["orders"]) == []
    assert missing_to_run(spec, ["audit"]) == ["SOURCES__ACME__AUDIT_KEY (or AUDIT_KEY)"]
    assert missing_to_run(spec, ["lines"]) == ["SOURCES__ACME__LINES_KEY (or LINES_KEY)"]
    assert missing_to_run(spec) == ["SOURCES__ACME__AUDIT_KEY (or AUDIT_KEY)", "SOURCES__ACME__LINES_KEY (or LINES_KEY)"]
    settings.monkeypatch.setenv("SOURCES__ACME__BASE_URL", "ftp://files.acme.io")
    assert missing_to_run(spec, ["orders"]) == ["SOURCES__ACME__BASE_URL (its value is not an http(s) URL)"]


SETTING_SPEC = """
client: {base_url: "https://{config.host}/v1", auth: {type: bearer, api_key: {secret: token}}}
resources:
  - {name: orders, endpoint: {path: /orders, params: {region: {config: region}}}}
"""


def test_a_setting_a_run_needs_is_named_when_unset_and_the_url_it_builds_is_checked(settings):
    spec = build_source_spec(parse_yaml(SETTING_SPEC, "acme.yaml"), "acme")
    settings.monkeypatch.setenv("SOURCES__ACME__TOKEN", "t0k3n-acme")

    assert missing_to_run(spec) == ["SOURCES__ACME__HOST (or HOST)", "SOURCES__ACME__REGION (or REGION)"]
    settings.monkeypatch.setenv("SOURCES__ACME__REGION", "eu")
    settings.monkeypatch.setenv("SOURCES__ACME__HOST", "api.example.com")
    assert missing_to_run(spec) == ["SOURCES__ACME__BASE_URL (the spec's base URL 'https://{config.host}/v1' is a placeholder)"]
    settings.monkeypatch.setenv("SOURCES__ACME__HOST", "api.acme.io")
    assert missing_to_run(spec) == []


IMPLICIT_CLIENT_SPEC = """
client:
  base_url: https://api.acme.io
  auth: {type: oauth2_client_credentials, access_token_url: https://id.acme.io/token}
resources: [orders]
"""


def test_an_oauth2_client_left_out_of_the_spec_is_named_until_set(settings):
    """A run resolves a missing client id/secret as secrets (as dlt does): the sensor asks for them first."""
    spec = build_source_spec(parse_yaml(IMPLICIT_CLIENT_SPEC, "acme.yaml"), "acme")
    assert missing_to_run(spec) == ["SOURCES__ACME__CLIENT_ID (or CLIENT_ID)", "SOURCES__ACME__CLIENT_SECRET (or CLIENT_SECRET)"]
    settings.monkeypatch.setenv("SOURCES__ACME__CLIENT_ID", "id-1")
    settings.monkeypatch.setenv("CLIENT_SECRET", "s3cr3t-1")
    assert missing_to_run(spec) == []


def test_a_schedule_tick_without_its_secrets_is_skipped_naming_them_and_runs_once_they_are_set(instance, specs_dir, settings):
    schedule = build_definitions().get_schedule_def("help_desk_schedule")

    skipped = schedule.evaluate_tick(build_schedule_context(instance=instance))
    assert not skipped.run_requests and "a run cannot start until these are set" in (skipped.skip_message or "")
    assert "SOURCES__HELP_DESK__BASE_URL" in (skipped.skip_message or "")

    settings.set_source("help_desk")
    requested = schedule.evaluate_tick(build_schedule_context(instance=instance))
    assert len(requested.run_requests or []) == 1
    assert requested.run_requests[0].tags["rest_assets/source"] == "help_desk"


def _run_for(instance: DagsterInstance, run_key: str, status: DagsterRunStatus) -> DagsterRun:
    run = DagsterRun(job_name="__ASSET_JOB", status=status, tags={"dagster/run_key": run_key})
    instance.add_run(run)
    return run


def test_a_source_whose_requested_run_failed_is_asked_again_after_a_growing_pause(instance, watched):
    first = _tick(instance, watched, now=time.time())
    first_key = _requests(first)["sales_crm"][1]
    _run_for(instance, first_key, DagsterRunStatus.FAILURE)  # ended now, the assets still stale
    cursor = first.cursor

    soon = _tick(instance, watched, now=time.time() + 60, cursor=cursor)
    assert isinstance(soon, SkipReason) and "it ended (failure), asking again" in soon.skip_message

    later = _tick(instance, watched, now=time.time() + RETRY_AFTER_SECONDS + 1, cursor=cursor)
    second_key = _requests(later)["sales_crm"][1]
    assert second_key == f"{first_key}#1"

    _run_for(instance, second_key, DagsterRunStatus.FAILURE)
    pause_doubled = _tick(instance, watched, now=time.time() + RETRY_AFTER_SECONDS + 1, cursor=later.cursor)
    assert "sales_crm" not in (_requests(pause_doubled) if isinstance(pause_doubled, SensorResult) else {})
    third = _tick(instance, watched, now=time.time() + 2 * RETRY_AFTER_SECONDS + 1, cursor=later.cursor)
    assert _requests(third)["sales_crm"][1] == f"{first_key}#2"


def test_a_schedule_run_of_a_source_counts_as_in_flight(instance, watched):
    instance.add_run(
        DagsterRun(job_name="__ASSET_JOB", status=DagsterRunStatus.STARTED, tags={"rest_assets/source": "contact_book"})
    )
    result = _requests(_tick(instance, watched, now=time.time()))
    assert "contact_book" not in result and "sales_crm" in result


def test_a_requested_run_that_vanished_is_requested_again_after_the_pause(instance, watched):
    now = time.time()
    first = _tick(instance, watched, now=now)
    first_key = _requests(first)["sales_crm"][1]  # requested, but no run ever appears (deleted while queued)
    soon = _tick(instance, watched, now=now + 60, cursor=first.cursor)
    assert isinstance(soon, SkipReason) and "sales_crm: already requested" in soon.skip_message
    assert "its run has not appeared" in soon.skip_message
    later = _tick(instance, watched, now=now + RETRY_AFTER_SECONDS, cursor=first.cursor)
    assert _requests(later)["sales_crm"][1] == f"{first_key}#1"


def test_a_cursor_of_an_earlier_version_is_read(instance, watched):
    first = _requests(_tick(instance, watched, now=time.time()))
    older = json.dumps({source: run_key for source, (_, run_key, _) in first.items()})  # source -> run key
    _run_for(instance, first["sales_crm"][1], DagsterRunStatus.STARTED)
    result = _tick(instance, watched, now=time.time() + 60, cursor=older)
    assert "sales_crm" not in (_requests(result) if isinstance(result, SensorResult) else {})


def test_the_parent_child_automation_requests_no_run_that_cannot_start(instance, specs_dir, settings):
    defs = build_definitions()
    nothing = evaluate_automation_conditions(defs=defs, instance=instance)
    _materialize(instance, key("help_desk", "conversations"))  # loaded elsewhere, with the secrets set
    after = evaluate_automation_conditions(defs=defs, instance=instance, cursor=nothing.cursor)
    assert after.total_requested == 0
    settings.set_source("help_desk")  # once set, the child is requested
    ready = evaluate_automation_conditions(defs=defs, instance=instance, cursor=after.cursor)
    assert _requested(ready, defs) == {key("help_desk", "conversation_threads")}


def test_children_beyond_what_one_code_location_sensor_evaluates_get_further_sensors(tmp_path):
    count = CHILDREN_PER_SENSOR + 10
    resolve = "{item_id: {type: resolve, resource: items, field: id}}"
    child = "  - {{name: c{n}, primary_key: id, write_disposition: merge, "
    child += "endpoint: {{path: 'items/{{item_id}}/c{n}', params: {resolve}}}}}\n"
    children = "".join(child.format(n=n, resolve=resolve) for n in range(count))
    (tmp_path / "many.yaml").write_text(
        "client: {base_url: 'https://api.example.com'}\nresources:\n  - {name: items, endpoint: {path: items}}\n" + children
    )
    sensors = build_parent_child_sensors(load_spec_dirs([tmp_path]))
    assert [s.name for s in sensors] == [PARENT_CHILD_SENSOR, f"{PARENT_CHILD_SENSOR}_2"]
    selected = [s.asset_selection.resolve(build_definitions([tmp_path]).resolve_asset_graph()) for s in sensors]
    assert [len(keys) for keys in selected] == [CHILDREN_PER_SENSOR, 10]
    assert set.union(*map(set, selected)) == {key("many", f"c{n}") for n in range(count)}
    defs = build_definitions([tmp_path])  # the fuller sensor ticks in the code location
    with DagsterInstance.ephemeral() as instance:
        context = build_sensor_context(instance=instance, repository_def=defs.get_repository_def())
        assert tick_automation_sensor(defs.get_sensor_def(PARENT_CHILD_SENSOR), context).run_requests == []


MISSING_IN_A_FRESH_PROCESS = """
import json
from rest_assets.dialect import load_spec_dirs
from rest_assets.runtime.readiness import missing_to_run
from conftest import BUNDLED_SOURCES_DIR
(spec,) = [s for s in load_spec_dirs([BUNDLED_SOURCES_DIR]) if s.name == "contact_book"]
print(json.dumps(missing_to_run(spec)))
"""


def test_a_malformed_secrets_file_is_named_as_what_to_fix_never_its_values(tmp_path):
    """dlt reads .dlt/ once per process: a fresh one, whose secrets.toml holds a secret and a syntax error."""
    (tmp_path / ".dlt").mkdir()
    (tmp_path / ".dlt" / "secrets.toml").write_text('[sources.contact_book]\napi_key = "s3cr3t-value-XYZ\nbroken = [\n')
    tests_dir = str(Path(__file__).resolve().parents[1])
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [tests_dir, os.environ.get("PYTHONPATH")]))}
    env = {k: v for k, v in env.items() if not k.startswith("SOURCES__")}
    run = subprocess.run(
        [sys.executable, "-c", MISSING_IN_A_FRESH_PROCESS], cwd=tmp_path, env=env, capture_output=True, text=True, timeout=300
    )
    assert run.returncode == 0, run.stderr[-2000:]
    (item,) = json.loads(run.stdout.strip().splitlines()[-1])
    assert item.startswith("settings files that dlt can read") and "./.dlt/secrets.toml" in item, item
    assert "s3cr3t" not in run.stdout + run.stderr


@pytest.mark.parametrize(
    ("environment", "named"),
    [
        ({"REST_ASSETS_DESTINATION": "duckdbb"}, "REST_ASSETS_DESTINATION or the destination's settings"),
        ({"DESTINATION__DUCKDB__CREDENTIALS": ":memory:"}, "which is not a file"),
        ({"REST_ASSETS_DESTINATION": "postgres"}, "DESTINATION__POSTGRES__CREDENTIALS (destination 'postgres' needs it)"),
    ],
    ids=["unknown-destination", "duckdb-in-memory", "postgres-without-credentials"],
)
def test_a_destination_no_run_could_load_into_gets_no_run_and_is_named(
    instance, specs_dir, settings, monkeypatch, environment, named
):
    settings.set_source("chat_analytics")
    monkeypatch.delenv("DESTINATION__POSTGRES__CREDENTIALS", raising=False)
    for name, value in environment.items():
        monkeypatch.setenv(name, value)

    result = _definitions_tick(instance)

    assert isinstance(result, SkipReason), "a run that cannot load must not be requested"
    assert named in result.skip_message
