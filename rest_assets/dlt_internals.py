"""Every use of a private or undocumented dlt behaviour, behind one door.

rest_assets builds on dlt's public API where it can. Where dlt offers no
public way to do what the dialect promises, the dlt internal it relies on is
reached through one function (or class) here, with the reason beside it, and
`rest_assets_tests/test_dlt_internals.py` holds one canary test per hook
that fails with a clear message when a dlt upgrade changes the behaviour.
Nothing else in the package touches dlt's private attributes; the
destination-specific transaction hooks (`warehouse/duckdb_transaction.py`,
`warehouse/postgres_transaction.py`) name theirs here too.

Re-exported as they are, each for the reason given: `ItemTransform` (the
base of a step that sees every item, Arrow tables included: the column
caster), `create_paginator` (dlt's paginator for a dlt-typed config, so our
registry falls back to dlt's own), `build_resource_dependency_graph` (dlt's
check of parents and placeholders, run when a spec loads), `setup_incremental_object`
(dlt's check of an endpoint's incremental params, run when a spec loads) and
`ensure_table_schema_columns` (dlt's list-or-mapping `columns` as the mapping
dlt makes of it).

This module imports only dlt: every layer may use it.
"""

from __future__ import annotations

import functools
import inspect
import os
import shutil
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import dlt
from dlt.common import validation
from dlt.common.configuration.container import Container
from dlt.common.configuration.providers.provider import ConfigProvider
from dlt.common.configuration.resolve import resolve_configuration
from dlt.common.configuration.specs import RuntimeConfiguration
from dlt.common.configuration.specs.pluggable_run_context import PluggableRunContext
from dlt.common.normalizers.utils import DLT_ID_LENGTH_BYTES
from dlt.common.runtime.run_context import RunContext
from dlt.common.schema.typing import TColumnSchema
from dlt.common.schema.utils import dlt_id_column, dlt_load_id_column
from dlt.common.typing import is_optional_type
from dlt.extract.hints import HintsMeta
from dlt.extract.incremental import Incremental, IncrementalResourceWrapper
from dlt.extract.items_transform import ItemTransform
from dlt.extract.utils import ensure_table_schema_columns
from dlt.sources.rest_api.config_setup import build_resource_dependency_graph, create_paginator, setup_incremental_object

__all__ = [
    "ItemTransform",
    "SharedOnDeepCopy",
    "build_resource_dependency_graph",
    "cached_capabilities",
    "cached_type_hints_in_validation",
    "create_paginator",
    "setup_incremental_object",
    "ensure_table_schema_columns",
    "current_source_schema",
    "is_hints_meta",
    "kept_load_packages",
    "direct_transformer_call",
    "extraction_thread_prefix",
    "mark_resolved",
    "no_config_providers",
    "replace_generator",
    "response_actions_of",
    "row_id_column",
    "row_id_length_bytes",
    "set_config_default",
    "set_duckdb_external_connection",
]


def replace_generator(resource: Any, wrap: Callable[[Any], Any]) -> None:
    """Replace a dlt resource's page generator `gen` with `wrap(gen)` (`_pipe.replace_gen`).

    Why: read-ahead, child fan-out and Arrow batching wrap the generator dlt's
    rest_api built for a resource (its paginate loop); dlt has no public hook
    between that generator and the resource's first step.
    """
    pipe = resource._pipe
    pipe.replace_gen(wrap(pipe.gen))


def direct_transformer_call(transformer: Callable[..., Any]) -> Callable[..., Any]:
    """A rest_api child's per-parent call, minus the config resolution dlt repeats on every call.

    Why: dlt wraps a child's function in `with_config` and, for every parent
    item, binds its signature and resolves it against every config provider
    (the `_tx_partial` closure calling the `with_config` wrapper): 0.27 ms per
    parent, 0.55 s of a 2,000-parent fan-out. rest_api passes every argument
    explicitly, and explicit values win over config, so that resolution can
    only hand back what was passed. Where that holds (every parameter after the
    item is bound), the function is called directly with those arguments;
    anything else (a `meta` argument, a new dlt shape) keeps dlt's own call.
    dlt's incremental wrapper in between is skipped as well while it would
    only pass the `None` given (see `_past_unused_incremental`).
    """
    try:
        captured = inspect.getclosurevars(transformer).nonlocals
    except TypeError:  # not a Python function
        return transformer
    wrapped, args, kwargs = captured.get("f"), captured.get("args"), captured.get("kwargs")
    function = getattr(wrapped, "__wrapped__", None)
    if not hasattr(wrapped, "__RESOLVED_PARTIAL_FUNC__") or function is None or not isinstance(kwargs, dict):
        return transformer
    if not isinstance(args, tuple) or "meta" in kwargs or not _binds_every_parameter(function, args, kwargs):
        return transformer

    call = _past_unused_incremental(function, kwargs)

    @functools.wraps(transformer)
    def direct(item: Any, meta: Any = None) -> Any:
        return call(item, *args, **kwargs)

    return direct


def _past_unused_incremental(function: Callable[..., Any], kwargs: dict[str, Any]) -> Callable[..., Any]:
    """`function`, or, when it is dlt's incremental wrapper given `None`, a call past it while it has no incremental.

    Why: dlt wraps every function with an `Incremental` parameter (rest_api's
    page functions all have one) and binds its signature on every call: for a
    child, once per parent. Given an explicit `None`, no incremental in the
    parameter's default and none set on the wrapper (by hints), it calls the
    function with `None` unchanged; that is checked on every call, so an
    incremental set later still goes through dlt.
    """
    try:
        captured = inspect.getclosurevars(function).nonlocals
    except TypeError:
        return function
    wrapper, inner, param = captured.get("self"), captured.get("func"), captured.get("incremental_param")
    if not isinstance(wrapper, IncrementalResourceWrapper) or not callable(inner) or not isinstance(param, inspect.Parameter):
        return function
    if kwargs.get(param.name, Incremental.EMPTY) is not None or isinstance(param.default, Incremental):
        return function
    if not is_optional_type(param.annotation):
        return function

    def call(*args: Any, **kwargs: Any) -> Any:
        return inner(*args, **kwargs) if wrapper.incremental is None else function(*args, **kwargs)

    return call


def _binds_every_parameter(function: Callable[..., Any], args: tuple[Any, ...], kwargs: dict[str, Any]) -> bool:
    signature = inspect.signature(function)
    try:
        bound = signature.bind(None, *args, **kwargs)
    except TypeError:
        return False
    return set(signature.parameters) - set(bound.arguments) <= {"meta"}  # dlt's own, passed only when asked for


class SharedOnDeepCopy:
    """Objects that dlt must share, not copy, when it deep-copies a source's config.

    Why: dlt's rest_api deep-copies the client config (auth, session) and
    paginators per resource and per parent record; an authenticator's token
    cache and single-flight lock, and the session's counters and Retry-After
    gate, must be one object for the whole run.
    """

    def __deepcopy__(self, memo: dict[int, Any]) -> Any:
        return self


def mark_resolved(config: Any) -> None:
    """Tell dlt a configspec object (our authenticators) is resolved (`__is_resolved__`).

    Why: our authenticators are built with secrets already resolved through
    dlt's providers; left unmarked, dlt resolves them again from its own
    config sections and fails on fields it does not know.
    """
    config.__is_resolved__ = True


@contextmanager
def cached_type_hints_in_validation() -> Iterator[None]:
    """Within the block, dlt's `validate_dict` computes each TypedDict's type hints once, not per dict.

    Why: `dlt.common.validation` calls `get_type_hints` for every dict it
    checks (its own TODO says to cache it): for five specs that is 270 calls
    and ~0.15 s of every process that loads the code location. The module's
    `get_type_hints` is swapped for a memoized one (kept for the process:
    TypedDicts do not change) for the block only.
    """
    original = validation.get_type_hints  # type: ignore[attr-defined]
    validation.get_type_hints = _memoized_type_hints(original)  # type: ignore[attr-defined]
    try:
        yield
    finally:
        validation.get_type_hints = original  # type: ignore[attr-defined]


@functools.cache
def _memoized_type_hints(get_type_hints: Callable[..., Any]) -> Callable[..., Any]:
    """`get_type_hints` remembering its answer per (TypedDict, namespace): dlt passes the module's dict."""
    answers: dict[tuple[Any, int], Any] = {}

    def memoized(spec: Any, globalns: Any = None, **kwargs: Any) -> Any:
        if kwargs:  # not dlt's call: no memo
            return get_type_hints(spec, globalns=globalns, **kwargs)
        key = (spec, id(globalns))
        if key not in answers:
            answers[key] = get_type_hints(spec, globalns=globalns)
        return answers[key]

    return memoized


def set_config_default(key: str, value: Any) -> None:
    """Set dlt config `key` to `value` unless the user configured it (writes `dlt.config`).

    Why: defaults such as `load.truncate_staging_dataset` have no
    per-pipeline argument; writing dlt's in-memory config provider is the
    only way short of environment variables. A run context without a
    writable provider keeps dlt's default.
    """
    try:
        if dlt.config.get(key) is None:
            dlt.config[key] = value
    except StopIteration:  # no writable config provider in this run context
        pass


def row_id_length_bytes() -> int:
    """How many random bytes dlt encodes into a `_dlt_id` (`DLT_DLT_ID_LENGTH_BYTES`, default 10).

    Why: Arrow batches get their `_dlt_id` here (see runtime.arrow_pages), and
    they must look like the ids dlt's normalizer makes for the rows of the
    same table; dlt reads the length from its environment once, into this constant.
    """
    return int(DLT_ID_LENGTH_BYTES)


def row_id_column() -> TColumnSchema:
    """dlt's column schema of `_dlt_id` (`dlt_id_column`): text, not null, unique, the row key.

    Why: dlt's normalizer sets it on a table when it adds the ids; where
    they come with the Arrow batch, the resource declares it.
    """
    return dlt_id_column()


def load_id_column() -> TColumnSchema:
    """dlt's column schema of `_dlt_load_id` (`dlt_load_id_column`): text, not null, 64 characters.

    Why: as `row_id_column`, declared where the column comes with an Arrow
    batch (dlt fills in its values where it is).
    """
    return dlt_load_id_column()


def extraction_thread_prefix() -> str:
    """The thread-name prefix under which dlt resolves its extraction context (`Container.thread_pool_prefix`).

    Why: children fetched on our thread pool read dlt's resource state
    (incremental cursors) as dlt's own extraction threads do only when their
    threads carry this prefix.
    """
    return str(Container.thread_pool_prefix())


def is_hints_meta(meta: Any) -> bool:
    """Whether an item's meta declares table hints (`dlt.mark.with_hints` wraps an item in a `HintsMeta`).

    Why: dlt hands a parent's item meta on with the items its child
    transformer makes of it, and applies hints in it to the child's table too:
    the `_dlt_id` a parent's first Arrow batch declares would come first in
    its children's tables. A child's caster replaces such meta.
    """
    return isinstance(meta, HintsMeta)


def current_source_schema() -> Any:
    """The schema of the source dlt is extracting (`dlt.current.source_schema`), or None outside one.

    Why: an Arrow batch may take the columnar path only where its types agree
    with the table's types as dlt already knows them (restored from the
    destination).
    """
    try:
        return dlt.current.source_schema()
    except Exception:  # dlt raises a context error outside an extraction
        return None


def set_duckdb_external_connection(credentials: Any, connection: Any) -> None:
    """Give dlt's DuckDB credentials the connection every load job gets (`_external_conn`).

    Why: dlt keeps an open DuckDB connection passed as credentials in the
    private `_external_conn` and duplicates it per load job; one connection
    for every job is the only way to one transaction for the whole load.
    """
    credentials._external_conn = connection


@contextmanager
def kept_load_packages(pipeline: Any) -> Iterator[Callable[[], None]]:
    """Within the block, a call that puts `pipeline`'s normalized load packages back as they were at its start.

    Why: a load that dlt ran and that was rolled back (the DuckDB run
    transaction) has moved the packages' jobs to completed or failed, and dlt
    offers no way to load a package again from the start. A package is its
    folder (jobs by state, package state, schema): a copy kept at the start,
    its job files hard-linked (dlt moves them between state folders and never
    rewrites them), is put back in place. Removed when the block ends.
    """
    kept = Path(pipeline.working_dir) / "packages_before_load"
    packages = {
        Path(pipeline.get_load_package_info(load_id).package_path): kept / load_id
        for load_id in pipeline.list_normalized_load_packages()
    }
    for package, copy in packages.items():
        shutil.copytree(package, copy, copy_function=_link_job_files)

    def put_back() -> None:
        for package, copy in packages.items():
            shutil.rmtree(package)
            shutil.copytree(copy, package, copy_function=_link_job_files)

    try:
        yield put_back
    finally:
        shutil.rmtree(kept, ignore_errors=True)


def _link_job_files(source: str, destination: str) -> None:
    if Path(source).parent.name.endswith("_jobs"):
        try:
            os.link(source, destination)
            return
        except OSError:  # a file system without hard links: copied
            pass
    shutil.copy2(source, destination)


def response_actions_of(hooks: Any) -> list[Any]:
    """The response actions behind a prepared request's response hooks (dlt's `create_response_hooks`).

    Why: dlt wraps each of an endpoint's `response_actions` in a closure of its
    own and hands the request only those; the action (our per-resource
    response validator) is the one thing on a request that says which
    resource sent it, where two resources share a path.
    """
    actions: list[Any] = []
    for hook in (hooks or {}).get("response", []):
        for cell in getattr(hook, "__closure__", None) or ():
            try:
                actions.append(cell.cell_contents)
            except ValueError:  # an empty cell
                continue
    return actions


def postgres_client_class() -> Any:
    """dlt's psycopg2 SQL client, whose `open_connection` the Postgres load transaction wraps.

    Why: dlt opens one connection per load job and commits each; sharing one
    connection and one transaction across a run's jobs needs the client's
    connection factory.
    """
    from dlt.destinations.impl.postgres.sql_client import Psycopg2SqlClient

    return Psycopg2SqlClient


@contextmanager
def no_config_providers() -> Iterator[None]:
    """Within the block, dlt reads no config provider: every setting is its default or the value passed.

    Why: building the definitions makes dlt objects (a skeleton source's
    `Schema`, the placeholder pipeline), and dlt resolves their configuration
    through the providers of the process's run context, which it creates on
    first use by reading `.dlt/secrets.toml` and `.dlt/config.toml`; a
    malformed file then stops the code location from loading, although loading
    needs no setting and no secret. dlt has no public way to resolve without
    providers: a run context with none (`PluggableRunContext`) is put in dlt's
    `Container` for the block (`injectable_context`) and the one before it,
    or none, is back afterwards, so a run still reads the files (and fails
    on a malformed one with dlt's message naming it). The block leaves dlt's
    runtime (logger, telemetry, requests defaults) as it was: that is set up
    from the real settings, by the real run context.
    """
    with Container().injectable_context(PluggableRunContext(_NoProvidersRunContext(None))):
        yield


class _NoProvidersRunContext(RunContext):
    """dlt's default run context, without providers and without initializing dlt's runtime."""

    def initial_providers(self) -> list[ConfigProvider]:
        return []

    def initialize_runtime(self, runtime_config: RuntimeConfiguration | None = None) -> None:
        self._runtime_config = runtime_config or resolve_configuration(RuntimeConfiguration())


def cached_capabilities(destination: Any) -> Any:
    """`destination` (a dlt destination factory) with its config-less `capabilities()` computed once per naming.

    Why: dlt asks the factory for its capabilities some 30 times in one run
    (each pipeline step, the load's storage, every job client), and each call
    without a config resolves the destination's whole configuration against
    every config provider: 9 ms for DuckDB, 0.3 s of a run. Within a run the
    answer cannot change (the same factory, settings and naming). Callers
    change the object they get (the pipeline sets its file formats on it), so
    each call gets its own copy (`BaseConfiguration.copy`). A call with a
    config is dlt's own.
    """
    compute = destination.capabilities
    computed: list[tuple[Any, Any]] = []  # (naming, capabilities): a few namings a run, held so identity stays valid
    lock = threading.Lock()

    def capabilities(config: Any = None, naming: Any = None) -> Any:
        if config is not None:
            return compute(config, naming)
        with lock:
            caps = next((caps for known, caps in computed if known is naming), None)
            if caps is None:
                caps = compute(None, naming)
                computed.append((naming, caps))
        return caps.copy()

    destination.capabilities = capabilities
    return destination
