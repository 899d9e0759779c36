"""Asset checks: primary keys unique and not null on the destination, and freshness."""

import uuid
import warnings
from collections import defaultdict
from collections.abc import Iterator
from datetime import timedelta
from typing import Any

from dagster import (
    AssetCheckExecutionContext,
    AssetCheckResult,
    AssetChecksDefinition,
    AssetCheckSpec,
    AssetKey,
    build_last_update_freshness_checks,
    multi_asset_check,
)

from rest_assets.dialect.model import Freshness, ResourceSpec, SourceSpec
from rest_assets.dialect.validate import normalized_identifier
from rest_assets.orchestration.translator import asset_key
from rest_assets.warehouse.destination import destination_lock, make_pipeline
from rest_assets.warehouse.working_folders import remove_run_folder, run_folder

PRIMARY_KEY_CHECK = "primary_key_unique_not_null"


def _primary_key(resource: ResourceSpec) -> list[str]:
    key = resource.primary_key
    if not key:
        return []
    return [key] if isinstance(key, str) else [str(k) for k in key]


def primary_key_sql(table: str, columns: list[str]) -> str:
    """One query returning (rows, duplicated key values, rows with a null key part)."""
    cols = ", ".join(f'"{c}"' for c in columns)
    null_test = " or ".join(f'"{c}" is null' for c in columns)
    return (
        f"select (select count(*) from {table}), "
        f"(select count(*) from (select {cols} from {table} group by {cols} having count(*) > 1) d), "
        f"(select count(*) from {table} where {null_test})"
    )


def build_primary_key_checks(spec: SourceSpec) -> AssetChecksDefinition | None:
    """One multi-check per source covering every resource merged by its primary key (not scd2)."""
    resources = [r for r in spec.asset_resources if _primary_key(r) and r.keeps_one_row_per_key]
    if not resources:
        return None
    specs = [
        AssetCheckSpec(
            PRIMARY_KEY_CHECK,
            asset=asset_key(spec.name, r.name),
            description=f"primary key ({', '.join(_primary_key(r))}) is unique and never null in the destination",
        )
        for r in resources
    ]
    by_key = {asset_key(spec.name, r.name): r for r in resources}

    @multi_asset_check(specs=specs, can_subset=True, name=f"{spec.name}_primary_key_checks")
    def _checks(context: AssetCheckExecutionContext) -> Iterator[AssetCheckResult]:
        yield from run_primary_key_checks(spec, [by_key[k.asset_key] for k in context.selected_asset_check_keys])

    return _checks


def run_primary_key_checks(spec: SourceSpec, resources: list[ResourceSpec]) -> Iterator[AssetCheckResult]:
    """Query the destination for each resource's table and report duplicates and nulls."""
    with run_folder(f"checks-{spec.name}-{uuid.uuid4().hex[:8]}") as folder:
        pipeline = make_pipeline(spec.name, folder.name, query_only=True)
        try:
            with destination_lock(), pipeline.sql_client() as client:
                for resource in resources:
                    yield _check_table(client, spec, resource)
        finally:
            remove_run_folder(folder)


def _check_table(client: Any, spec: SourceSpec, resource: ResourceSpec) -> AssetCheckResult:
    key = asset_key(spec.name, resource.name)
    capabilities = client.capabilities  # names longer than the destination takes are shortened by dlt
    table = client.make_qualified_table_name(normalized_identifier(resource.table_name, capabilities.max_identifier_length))
    columns = [normalized_identifier(c, capabilities.max_column_identifier_length) for c in _primary_key(resource)]
    try:
        rows, duplicated, nulls = client.execute_sql(primary_key_sql(table, columns))[0]
    except Exception as exc:  # the table does not exist yet, or the key column is missing
        return AssetCheckResult(
            asset_key=key,
            check_name=PRIMARY_KEY_CHECK,
            passed=False,
            description=f"could not query {table}: {type(exc).__name__}",
        )
    return AssetCheckResult(
        asset_key=key,
        check_name=PRIMARY_KEY_CHECK,
        passed=duplicated == 0 and nulls == 0,
        metadata={"rows": int(rows), "duplicated_keys": int(duplicated), "null_keys": int(nulls)},
    )


def build_freshness_checks(specs: list[SourceSpec], default: Freshness | None) -> list[AssetChecksDefinition]:
    """Last-update freshness checks, one group per distinct fail window."""
    by_window: dict[timedelta, list[AssetKey]] = defaultdict(list)
    for spec in specs:
        for resource in spec.asset_resources:
            freshness = resource.freshness or default
            if freshness:
                by_window[freshness.fail_window].append(asset_key(spec.name, resource.name))
    checks: list[AssetChecksDefinition] = []
    with warnings.catch_warnings():
        # Dagster marks these checks as superseded by FreshnessPolicy, which the assets
        # also carry; the checks add a pass/fail record per asset in the checks tab.
        warnings.simplefilter("ignore")
        for window, keys in sorted(by_window.items()):
            checks.extend(build_last_update_freshness_checks(assets=keys, lower_bound_delta=window))
    return checks
