"""One dagster-dlt multi-asset per source spec.

At definition load we only need names, deps and metadata, which the spec
already has; building the real rest_api source (≈0.2 s each, and it needs
secrets) waits until a run. `@dlt_assets` is therefore given a skeleton
source: one empty dlt resource per spec resource.
"""

import atexit
import shutil
import tempfile
from collections.abc import Iterator
from functools import lru_cache
from typing import Any

import dlt
from dagster import AssetExecutionContext, AssetsDefinition, DagsterInvalidDefinitionError, MaterializeResult
from dagster_dlt import DagsterDltResource, dlt_assets
from dlt.common.schema import Schema
from dlt.extract.source import DltSource

from rest_assets.dialect.model import Freshness, SourceSpec
from rest_assets.errors import SpecError
from rest_assets.orchestration.execution import materialize_source
from rest_assets.orchestration.translator import RestAssetsTranslator
from rest_assets.warehouse.destination import destination_name


def skeleton_source(spec: SourceSpec) -> DltSource:
    """A dlt source with one empty resource per spec resource (no config, no secrets)."""
    resources = [dlt.resource([], name=r.name) for r in spec.asset_resources]
    return DltSource.from_data(Schema(spec.name), spec.name, resources)


@lru_cache(maxsize=1)
def placeholder_pipeline() -> dlt.Pipeline:
    """The pipeline object `@dlt_assets` wants at definition time.

    Runs never use it (each run builds its own pipeline with its own working
    folder), so one shared instance without a destination is enough, and it
    skips resolving destination capabilities five times at import. Its folder
    is this process's own, in the system's temporary folder (removed at exit):
    processes that load the code location at the same moment (code server,
    run workers) would otherwise race to create one shared folder, and it
    never depends on the working directory (nothing is written into a
    checkout that merely loads the definitions).
    """
    folder = tempfile.mkdtemp(prefix="rest_assets-definitions-")
    atexit.register(shutil.rmtree, folder, True)
    return dlt.pipeline(pipeline_name="rest_assets_definitions", pipelines_dir=folder)


def build_source_assets(spec: SourceSpec, default_freshness: Freshness | None = None) -> AssetsDefinition:
    """The multi-asset (one asset per resource, subsettable) for one source."""
    translator = RestAssetsTranslator(spec=spec, destination=destination_name(), default_freshness=default_freshness)

    def _source_assets(context: AssetExecutionContext, dlt: DagsterDltResource) -> Iterator[MaterializeResult[Any]]:
        yield from materialize_source(context, dlt, spec)

    try:
        return dlt_assets(
            dlt_source=skeleton_source(spec),
            dlt_pipeline=placeholder_pipeline(),
            name=spec.name,
            dagster_dlt_translator=translator,
            pool=f"rest_assets/{spec.name}",
        )(_source_assets)
    except DagsterInvalidDefinitionError as exc:  # e.g. a name Dagster reserves (`meta`, `config`, `input`)
        raise SpecError(f"source name '{spec.name}' cannot name a Dagster op: {exc}", file=spec.file, key="name") from None
