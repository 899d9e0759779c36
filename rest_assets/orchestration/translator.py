"""Map a dlt resource of a spec'd source to its Dagster AssetSpec."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from dagster import AssetKey, AssetSpec, AutomationCondition, FreshnessPolicy, TableColumn, TableColumnConstraints, TableSchema
from dagster._core.definitions.metadata.metadata_set import TableMetadataSet
from dagster_dlt import DagsterDltTranslator
from dagster_dlt.translator import DltResourceTranslatorData

from rest_assets.dialect.model import Freshness, ResourceSpec, SourceSpec
from rest_assets.orchestration.readiness_condition import RunCanStart


def asset_key(source: str, resource: str) -> AssetKey:
    """The asset key of a resource: `[<source>, <resource>]`."""
    return AssetKey([source, resource])


@dataclass
class RestAssetsTranslator(DagsterDltTranslator):
    """Keys `[source, resource]`, group `source`, child → parent deps, spec metadata."""

    spec: SourceSpec = None  # type: ignore[assignment]
    destination: str = "duckdb"
    default_freshness: Freshness | None = None

    def get_asset_spec(self, data: DltResourceTranslatorData) -> AssetSpec:
        resource = self.spec.resource(data.resource.name)
        freshness = resource.freshness or self.default_freshness
        parent = self.spec.asset_parent(resource)  # a `selected: false` parent is no asset: its own parent, if any
        return AssetSpec(
            key=asset_key(self.spec.name, resource.name),
            deps=[asset_key(self.spec.name, parent.name)] if parent else [],
            group_name=self.spec.name,
            description=resource.description,
            kinds={"dlt", self.destination},
            metadata=_static_metadata(self.spec, resource, self.destination),
            freshness_policy=(
                FreshnessPolicy.time_window(fail_window=freshness.fail_window, warn_window=freshness.warn_window)
                if freshness
                else None
            ),
            tags={"rest_assets/source": self.spec.name},
            # a child is refreshed whenever its parent was materialized without it, where its run could start
            automation_condition=(AutomationCondition.eager() & RunCanStart(self.spec, resource.name) if parent else None),
        )


def _static_metadata(spec: SourceSpec, resource: ResourceSpec, destination: str) -> dict[str, Any]:
    metadata: dict[str, Any] = {
        "endpoint": resource.display_path,
        "paginator": resource.paginator_type,
        "primary_key": str(resource.primary_key or ""),
        "write_disposition": str(resource.write_disposition),
        "spec_file": spec.file,
    }
    if resource.parent:
        metadata["parent"] = resource.parent.parent
    incremental = resource.endpoint.get("incremental")
    if incremental:
        metadata["incremental_cursor"] = str(incremental.get("cursor_path"))
    return {
        **metadata,
        **TableMetadataSet(
            column_schema=_column_schema(resource),
            table_name=f"{spec.name}.{resource.name}",
            storage_kind=destination,
        ),
    }


def _column_schema(resource: ResourceSpec) -> TableSchema:
    columns = resource.config.get("columns") or {}
    if isinstance(columns, list):
        columns = {c.get("name"): c for c in columns if isinstance(c, dict)}
    return TableSchema(
        columns=[
            TableColumn(
                name=str(name),
                type=str(hints.get("data_type", "unknown")),
                constraints=TableColumnConstraints(nullable=bool(hints.get("nullable", True))),
            )
            for name, hints in columns.items()
            if isinstance(hints, dict)
        ]
    )
