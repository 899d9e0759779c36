"""What happens when a source's assets are materialized.

The dlt source is compiled here, at run time (secrets resolved now, never at
definition load), run in a pipeline with its own working folder (two runs
never share local state; dlt restores state from the destination; the folder
is locked by its run, see warehouse.working_folders), and the
results get transport figures as metadata. Errors leave as one clean,
secret-free LoadError.
"""

from __future__ import annotations

import traceback
import uuid
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

from dagster import AssetExecutionContext, MaterializeResult, MetadataValue
from dagster_dlt import DagsterDltResource

from rest_assets.dialect.model import SourceSpec
from rest_assets.errors import LoadError, RestAssetsError
from rest_assets.orchestration.heap import freeze_before_first_load
from rest_assets.runtime.redaction import redact
from rest_assets.runtime.request_log import RequestLog
from rest_assets.runtime.scrub import ERROR_FILE, scrub_failed_run
from rest_assets.warehouse.destination import loader_file_format, pipeline_with_held_destination
from rest_assets.warehouse.working_folders import LOCK_FILE, remove_run_folder, run_folder

if TYPE_CHECKING:
    from rest_assets.runtime.transport_stats import TransportStats


def materialize_source(
    context: AssetExecutionContext, dlt: DagsterDltResource, spec: SourceSpec
) -> Iterator[MaterializeResult[Any]]:
    """Extract and load the selected resources of `spec`, yielding one result per asset.

    A failed run's folder is scrubbed (no secret left on disk) and its error is
    raised redacted, without the original chain.
    """
    freeze_before_first_load()
    # Held for the whole run (a later run sweeps the folder only once this process is gone).
    with run_folder(f"{spec.name}-{context.run_id}-{uuid.uuid4().hex[:8]}", report=ERROR_FILE) as folder:
        request_log = RequestLog()
        failure: LoadError | None = None
        try:
            yield from _extract_and_load(context, dlt, spec, folder.name, request_log)
        except Exception as exc:
            failure = _clean_error(spec.name, exc)
            scrub_failed_run(folder, str(failure), request_log.lines(), keep=(LOCK_FILE,))  # no secret left on disk
            _release_frames(exc)
        if failure is not None:
            # Raised here, not in the `except` block, where it would keep the original error as its context.
            raise failure
        remove_run_folder(folder)


def _extract_and_load(
    context: AssetExecutionContext, dlt: DagsterDltResource, spec: SourceSpec, folder: str, request_log: RequestLog
) -> Iterator[MaterializeResult[Any]]:
    """The run itself: compile, extract, normalize, load; one result per asset."""
    from rest_assets.compile.source import compile_source

    fmt = loader_file_format()
    # Arrow pages only where the destination loads parquet: elsewhere (postgres: insert
    # statements) dlt cannot write their nested struct columns, while plain rows load.
    compiled = compile_source(spec, arrow_pages=fmt == "parquet", extracted=[key.path[-1] for key in context.selected_asset_keys])
    request_log.attach(compiled.session)
    with pipeline_with_held_destination(spec.name, folder, context.log.info) as (pipeline, destination):
        results = dlt.run(
            context=context, dlt_source=compiled.source, dlt_pipeline=pipeline, destination=destination, **_file_format(fmt)
        )
        for result in results:
            _warn_if_masked(context, _resource_of(result), compiled.session.stats)
            yield _with_run_figures(result, compiled.session.stats, _cursor_values(pipeline, spec.name), _child_tables(pipeline))


def _file_format(fmt: str | None) -> dict[str, Any]:
    """dlt's `loader_file_format` argument where one is chosen (else dlt's default for the destination)."""
    return {"loader_file_format": fmt} if fmt else {}


def _resource_of(result: Any) -> str:
    """The resource a dagster-dlt result is for (the last part of its asset key)."""
    return str(result.asset_key.path[-1])


def _with_run_figures(
    result: Any, stats: TransportStats, cursors: dict[str, Any], child_tables: dict[str, list[str]] | None = None
) -> MaterializeResult[Any]:
    resource = result.asset_key.path[-1]
    metadata = dict(result.metadata or {})
    metadata.setdefault("rows_loaded", MetadataValue.int(0))
    metadata.update(
        {
            "requests": MetadataValue.int(int(stats.requests.get(resource, 0))),
            "pages": MetadataValue.int(int(stats.pages.get(resource, 0))),
            "retries": MetadataValue.int(int(stats.retries.get(resource, 0))),
            "throttled_429": MetadataValue.int(int(stats.throttled.get(resource, 0))),
            "seconds_waited": MetadataValue.float(float(stats.seconds_waited.get(resource, 0.0))),
            "batches_as_rows": MetadataValue.int(int(stats.batches_as_rows.get(resource, 0))),
            "secrets_masked_in_rows": MetadataValue.int(int(stats.secrets_masked.get(resource, 0))),
        }
    )
    metadata["child_tables"] = MetadataValue.json((child_tables or {}).get(resource, []))
    if resource in cursors:
        metadata["cursor_value"] = MetadataValue.text(str(cursors[resource]))
    if stats.rotated_refresh_tokens:  # the configured refresh token is dead: the run log names the secret
        metadata["refresh_token_rotated"] = MetadataValue.bool(True)
    return MaterializeResult(asset_key=result.asset_key, metadata=metadata)


def _warn_if_masked(context: AssetExecutionContext, resource: str, stats: TransportStats) -> None:
    masked = int(stats.secrets_masked.get(resource, 0))
    if masked:
        context.log.warning(
            f"resource '{resource}': {masked} record value(s) held a secret of this source "
            "(the API echoed a credential); they were stored as *** (secrets_masked_in_rows)"
        )


def _cursor_values(pipeline: Any, source: str) -> dict[str, Any]:
    """The incremental cursor (last_value) of each resource after the run."""
    resources = pipeline.state.get("sources", {}).get(source, {}).get("resources", {})
    cursors: dict[str, Any] = {}
    for name, state in resources.items():
        for cursor in (state.get("incremental") or {}).values():
            if isinstance(cursor, dict) and cursor.get("last_value") is not None:
                cursors[name] = cursor["last_value"]
    return cursors


def _child_tables(pipeline: Any) -> dict[str, list[str]]:
    """Per resource, the child tables dlt made of its lists (`<table>__<field>`, deeper ones too), read
    from the pipeline's schema after the run (it holds the tables restored from the destination)."""
    from dlt.common.schema.utils import get_nested_tables, is_nested_table

    schema = pipeline.default_schema
    return {
        table["resource"]: sorted(
            str(nested["name"])
            for nested in get_nested_tables(schema.tables, table["name"], include_self=False)
            if nested.get("columns")
        )
        for table in schema.data_tables(include_incomplete=True)
        if table.get("resource") and not is_nested_table(table)
    }


def _release_frames(exc: BaseException) -> None:
    """Clear the locals of the failed run's finished frames, along the whole exception chain.

    Dagster keeps a step's error to the end of the process; through its frames
    it would keep the run's objects, DuckDB's connection among them, which then
    outlives the interpreter (DuckDB's bindings print "leaked ... instances" at
    exit). The compile import stays inside the run (loading the code location stays cheap, issue 6).
    """
    for error in _chain(exc):
        traceback.clear_frames(error.__traceback__)


def _chain(exc: BaseException) -> Iterator[BaseException]:
    """`exc`, then its cause (or context), and so on; each once, however the chain loops."""
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        yield current
        current = current.__cause__ or current.__context__


def _naming_source_and_resource(message: str, source: str, resource: str | None) -> str:
    """`message` starting with its source and (where known) resource, each named once."""
    named = f"source '{source}': "
    if message.startswith(named):
        message = message[len(named) :]  # named again below, with the resource
    if message.startswith(f"source '{source}'"):  # `source 's', resource 'r': ...`
        return message
    if resource and not message.startswith("resource '"):
        return f"source '{source}', resource '{resource}': {message}"
    return f"source '{source}', {message}" if message.startswith("resource '") else f"source '{source}': {message}"


def _clean_error(source: str, exc: BaseException) -> LoadError:
    """The first rest_assets error in the chain, else the outer one, redacted, with no chain.

    An error raised where the resource is unknown (a paginator's) is prefixed
    with the source and the resource dlt was extracting when it happened; one
    that names its resource but not the source, with the source.
    """
    resource: str | None = None
    chain = list(_chain(exc))
    for error in chain:
        resource = getattr(error, "pipe_name", None) or getattr(error, "resource_name", None) or resource
        if isinstance(error, RestAssetsError):
            return LoadError(_naming_source_and_resource(redact(error), source, resource))
    message = f"source '{source}' failed: {type(exc).__name__}: {redact(exc)}"
    root = chain[-1]
    # e.g. dlt's "... caused an exception: " and a MemoryError, which prints empty
    if root is not exc and (not str(root) or redact(root) not in message):
        message += f" (caused by {type(root).__name__}{': ' + redact(root) if str(root) else ''})"
    return LoadError(message)
