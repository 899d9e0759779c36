"""The code location: `defs` is what `dagster dev` and `dagster definitions validate` load."""

from rest_assets.orchestration.heap import long_lived_objects

with long_lived_objects():  # Dagster, dlt and the definitions live as long as the process
    from rest_assets.orchestration.code_location import DEFAULT_FRESHNESS, build_definitions

    defs = build_definitions()

__all__ = ["DEFAULT_FRESHNESS", "build_definitions", "defs"]
