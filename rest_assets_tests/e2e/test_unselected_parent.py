"""A `selected: false` resource (dlt: it only feeds its children) is no asset, and its children load.

It was an asset that never materialized, and a run of the whole source
skipped its siblings' checks "due to skipped dependencies".
"""

from __future__ import annotations

import pytest
from conftest import read_table, table_names
from dagster import AssetKey, DagsterInstance, materialize
from reliability_support import Recorded, RecordingServer, Reply, json_reply

from rest_assets.cli.demo import QUIET_RUN_CONFIG
from rest_assets.definitions import build_definitions

pytestmark = pytest.mark.e2e

SPEC = """
client: {{base_url: '{url}', paginator: single_page}}
resource_defaults: {{primary_key: id, write_disposition: merge}}
resources:
  - name: accounts
    selected: false
    endpoint: {{path: accounts, data_selector: data}}
  - name: invoices
    endpoint: {{path: "accounts/{{resources.accounts.id}}/invoices", data_selector: data}}
  - name: plans
    endpoint: {{path: plans, data_selector: data}}
"""


def _answer(request: Recorded) -> Reply:
    if request.path.startswith("/accounts/"):
        account = int(request.path.split("/")[2])
        return json_reply({"data": [{"id": 10 * account}, {"id": 10 * account + 1}]})
    if request.path.startswith("/accounts"):
        return json_reply({"data": [{"id": 1}, {"id": 2}]})
    return json_reply({"data": [{"id": 7}]})


def test_an_unselected_parent_is_no_asset_and_its_child_and_the_checks_run(workdir, tmp_path):
    with RecordingServer(handler=_answer) as api:
        (tmp_path / "specs").mkdir()
        (tmp_path / "specs" / "billing.yaml").write_text(SPEC.format(url=api.url))
        workdir.use_specs(tmp_path / "specs")
        defs = build_definitions()
        keys = {key for assets in defs.assets for key in assets.keys}
        assert keys == {AssetKey(["billing", "invoices"]), AssetKey(["billing", "plans"])}
        spec = next(s for s in defs.resolve_all_asset_specs() if s.key == AssetKey(["billing", "invoices"]))
        assert list(spec.deps) == [] and spec.automation_condition is None  # nothing upstream to follow
        with DagsterInstance.ephemeral() as instance:
            result = materialize(
                [*defs.assets, *defs.asset_checks], instance=instance, resources=defs.resources, run_config=QUIET_RUN_CONFIG
            )
    assert result.success
    evaluations = result.get_asset_check_evaluations()
    assert {(e.asset_key.path[-1], e.check_name) for e in evaluations} >= {
        ("invoices", "primary_key_unique_not_null"),
        ("plans", "primary_key_unique_not_null"),
    }
    assert all(e.passed for e in evaluations if e.check_name == "primary_key_unique_not_null")
    assert "accounts" not in table_names("billing")
    assert sorted(row["id"] for row in read_table("billing", "invoices", columns="id")) == [10, 11, 20, 21]
