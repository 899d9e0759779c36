"""Schedules, freshness policies and primary-key checks of the code location.

Schedules and policies are compared with the YAML specs read independently
(plain yaml, not the project's loader); the checks run for real against a
source loaded from the emulator into a temporary DuckDB.
"""

from __future__ import annotations

import re
from datetime import timedelta

import duckdb
import pytest
import yaml
from conftest import BUNDLED_SOURCES_DIR, write_spec_copies
from orchestration_helpers import check_results, key, materialize_resources, query

from rest_assets.definitions import build_definitions
from rest_assets.orchestration.checks import PRIMARY_KEY_CHECK

UNITS = {"m": "minutes", "h": "hours", "d": "days"}


def _duration(text: str) -> timedelta:
    number, unit = re.fullmatch(r"(\d+)([mhd])", text).groups()
    return timedelta(**{UNITS[unit]: int(number)})


def _raw_specs() -> dict[str, dict]:
    return {path.stem: yaml.safe_load(path.read_text()) for path in sorted(BUNDLED_SOURCES_DIR.glob("*.yaml"))}


def _as_timedelta(value) -> timedelta:
    return timedelta(days=value.days, seconds=value.seconds, microseconds=value.microseconds)


def test_one_schedule_per_source_with_the_spec_cron_targeting_exactly_its_assets(workdir):
    defs = build_definitions()
    graph = defs.resolve_asset_graph()
    raw = _raw_specs()
    schedules = {s.name: s for s in defs.schedules}
    assert set(schedules) == {f"{source}_schedule" for source in raw}
    for source, spec in raw.items():
        schedule = schedules[f"{source}_schedule"]
        assert schedule.cron_schedule == spec["schedule"]
        targeted = schedule.target.job_def.selection.resolve(graph)
        assert targeted == {key(source, r["name"]) for r in spec["resources"]}
        assert schedule.tags == {"rest_assets/source": source, "rest_assets/trigger": "schedule"}


def test_every_asset_carries_the_freshness_policy_of_its_spec(workdir):
    raw = _raw_specs()
    expected = {}
    for source, spec in raw.items():
        default = spec.get("resource_defaults", {}).get("freshness")
        for resource in spec["resources"]:
            freshness = resource.get("freshness") or default
            assert freshness, f"{source}.{resource['name']}: every bundled spec declares freshness"
            expected[key(source, resource["name"])] = (_duration(freshness["fail_window"]), _duration(freshness["warn_window"]))
    assert len(expected) == 32

    specs = build_definitions().resolve_all_asset_specs()
    actual = {
        s.key: (_as_timedelta(s.freshness_policy.fail_window), _as_timedelta(s.freshness_policy.warn_window)) for s in specs
    }
    assert actual == expected
    assert actual[key("help_desk", "conversations")] == (timedelta(days=1), timedelta(hours=6))
    assert actual[key("chat_analytics", "teams")] == (timedelta(days=1), timedelta(hours=12))


@pytest.mark.e2e
def test_primary_key_checks_pass_on_a_fresh_load_and_catch_a_duplicated_row(workdir, emulator):
    source = "client_portal"
    resources = [r["name"] for r in _raw_specs()[source]["resources"]]
    loaded = materialize_resources(source, with_checks=True)
    assert loaded.success
    results = check_results(loaded)
    assert {(k, c) for k, c in results if c == PRIMARY_KEY_CHECK} == {(f"{source}/{r}", PRIMARY_KEY_CHECK) for r in resources}
    for resource in resources:
        evaluation = results[(f"{source}/{resource}", PRIMARY_KEY_CHECK)]
        assert evaluation.passed, f"{resource}: {evaluation.metadata}"
        assert evaluation.metadata["duplicated_keys"].value == 0
        assert evaluation.metadata["null_keys"].value == 0
        assert evaluation.metadata["rows"].value == len(emulator.truth(source, resource))

    connection = duckdb.connect(str(workdir.duckdb_file))
    try:
        connection.execute(f'insert into "{source}"."clients" select * from "{source}"."clients" order by id limit 1')
    finally:
        connection.close()
    assert query(f'select count(*) - count(distinct id) from "{source}"."clients"')[0][0] == 1

    checked = materialize_resources(source, only_checks=True)
    assert checked.success, "a failed check is a result, not a failed run"
    assert checked.get_asset_materialization_events() == [], "running the checks alone loads nothing"
    results = check_results(checked)
    assert {k for k, _ in results} == {f"{source}/{r}" for r in resources}
    broken = results[(f"{source}/clients", PRIMARY_KEY_CHECK)]
    assert not broken.passed
    assert broken.metadata["duplicated_keys"].value == 1
    assert broken.metadata["rows"].value == len(emulator.truth(source, "clients")) + 1
    assert all(results[(f"{source}/{r}", PRIMARY_KEY_CHECK)].passed for r in resources if r != "clients")


@pytest.mark.e2e
@pytest.mark.parametrize(("table_name", "in_destination"), [("ClientTable", "client_table"), ("client__table", "client__table")])
def test_primary_key_check_queries_the_table_as_dlt_names_it(workdir, emulator, tmp_path, table_name, in_destination):
    specs = write_spec_copies(tmp_path / "specs", ("client_portal",))
    text = (specs / "client_portal.yaml").read_text()
    text = text.replace("  - name: clients\n", f"  - name: clients\n    table_name: {table_name}\n", 1)
    (specs / "client_portal.yaml").write_text(text)
    workdir.use_specs(specs)
    loaded = materialize_resources("client_portal", ["clients"], with_checks=True)
    assert loaded.success
    truth = len(emulator.truth("client_portal", "clients"))
    assert query(f'select count(*) from "client_portal"."{in_destination}"')[0][0] == truth
    evaluation = check_results(loaded)[("client_portal/clients", PRIMARY_KEY_CHECK)]
    assert evaluation.passed, evaluation.description
    assert evaluation.metadata["rows"].value == len(emulator.truth("client_portal", "clients"))
