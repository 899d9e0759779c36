"""rest_assets: a Dagster materialization of selected assets of one source (in-process executor)."""

from __future__ import annotations

from typing import Any


def materialize_assets(source: str, resources: list[str]) -> dict[str, Any]:
    """Materialize ``[source, resource]`` for each resource through ``dagster.materialize``.

    The code location is loaded as Dagster loads it (``rest_assets.definitions.defs``);
    the source's multi-asset is subset to the selected keys. Raises on failure.
    """
    from dagster import AssetKey, DagsterInstance, materialize

    from rest_assets.definitions import defs

    assets_def = next(a for a in defs.assets or [] if a.node_def.name == source)
    selection = [AssetKey([source, r]) for r in resources]
    quiet = {"loggers": {"console": {"config": {"log_level": "ERROR"}}}}
    with DagsterInstance.ephemeral() as instance:
        result = materialize([assets_def], selection=selection, instance=instance, resources=defs.resources, run_config=quiet)
    if not result.success:
        raise RuntimeError(f"materialization of {source} failed")
    metadata: dict[str, Any] = {}
    for event in result.get_asset_materialization_events():
        mat = event.step_materialization_data.materialization
        metadata[mat.asset_key.path[-1]] = {
            k: getattr(v, "value", None)
            for k, v in mat.metadata.items()
            if k in ("rows_loaded", "requests", "pages", "retries", "batches_as_rows")
        }
    return {"assets": metadata}
