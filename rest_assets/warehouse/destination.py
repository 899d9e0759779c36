"""Where data lands and where dlt keeps its working state (the environment, read in one place)."""

from __future__ import annotations

import functools
import os
from collections.abc import Callable, Iterator, Mapping
from contextlib import ExitStack, contextmanager
from pathlib import Path
from typing import Any

try:
    import fcntl
except ImportError:  # not POSIX: no cross-process lock
    fcntl = None  # type: ignore[assignment]

import dlt
from dlt.common.configuration.exceptions import ConfigFieldMissingException
from dlt.common.destination import Destination
from dlt.common.destination.exceptions import UnknownDestinationModule
from dlt.destinations.impl.duckdb.configuration import DuckDbCredentials

from rest_assets.dlt_internals import cached_capabilities, set_config_default
from rest_assets.errors import LoadError
from rest_assets.warehouse.duckdb_transaction import RunConnection, duckdb_destination, load_in_one_transaction

DESTINATION_ENV = "REST_ASSETS_DESTINATION"
DUCKDB_CREDENTIALS_ENV = "DESTINATION__DUCKDB__CREDENTIALS"
DUCKDB_CREDENTIALS_KEY = "destination.duckdb.credentials"
DEFAULT_DUCKDB_PATH = Path("data") / "rest_assets.duckdb"
TRUNCATE_STAGING = "load.truncate_staging_dataset"


# DuckDB's own memory_limit is 80% of the machine's memory, and a merge keeps what it can of the
# load in memory: a 1M-row load peaked at 730 MiB against 280 MiB before its load step. Capped,
# DuckDB spills the rest to `<file>.tmp` in the same time: the 1M-row bulk load peaks at 415 MiB
# with 128 MB, 355 MiB with 64 MB (100k rows: 350 and 330 MiB; a 1M-into-1M merge still passes).
# 64 MB is the floor: each load raises it for wide tables and large row groups
# (duckdb_transaction.memory_limit_for).
DEFAULT_MEMORY_FLOOR = 64 * 1024 * 1024
DEFAULT_DUCKDB_SETTINGS: dict[str, Any] = {"memory_limit": "64MB"}
DUCKDB_SETTINGS_KEY = "destination.duckdb.credentials.global_config"


def destination_name() -> str:
    """The dlt destination name (`REST_ASSETS_DESTINATION`, default duckdb)."""
    return os.environ.get(DESTINATION_ENV, "").strip() or "duckdb"


def destination_problems() -> list[str]:
    """What to set before any run can load into the destination its settings name; [] when they resolve.

    An unknown destination name, a DuckDB database that is no file, credentials
    dlt cannot find: every run would fail on them. Looked up as a run resolves
    them (dlt's providers); no value is shown.
    """
    name = destination_name()
    try:
        if name == "duckdb":
            duckdb_path()
            return []
        destination: Any = Destination.from_reference(make_destination())
        initial = destination.spec()
        initial.dataset_name = "rest_assets"  # any: only the credentials are looked up
        destination.configuration(initial)
    except ConfigFieldMissingException as error:
        return [f"DESTINATION__{name.upper()}__{field.upper()} (destination '{name}' needs it)" for field in error.fields]
    except (LoadError, UnknownDestinationModule) as error:  # their messages name settings, never a value
        return [f"{DESTINATION_ENV} or the destination's settings ({' '.join(str(error).split())[:300]})"]
    except Exception as error:  # whatever else dlt raises: its type only (a message might quote a credential)
        return [f"the settings of destination '{name}' (dlt raised {type(error).__name__} on them)"]
    return []


def duckdb_path() -> Path:
    """The DuckDB file, from the duckdb credentials as dlt reads them, else data/rest_assets.duckdb under the cwd.

    dlt's forms are accepted wherever dlt takes them (`DESTINATION__DUCKDB__CREDENTIALS`,
    `[destination.duckdb] credentials` in .dlt/secrets.toml or config.toml, a table with `database`):
    a path or a `duckdb:///` URL. A database that is not a file (`:memory:`, `:pipeline:`) is refused:
    a source's tables and its incremental state live in one file across runs.
    """
    configured: Any = dlt.config.get(DUCKDB_CREDENTIALS_KEY)
    if isinstance(configured, Mapping):
        configured = configured.get("database")
    if configured is None or not str(configured).strip():
        return (Path.cwd() / DEFAULT_DUCKDB_PATH).resolve()
    credentials = DuckDbCredentials()
    credentials.parse_native_representation(str(configured).strip())
    database = str(credentials.database)
    if database.startswith(":"):
        raise LoadError(
            f"the duckdb credentials ({DUCKDB_CREDENTIALS_ENV} or [destination.duckdb] credentials) name "
            f"{database!r}, which is not a file: rest_assets keeps a source's tables and incremental state in one "
            "DuckDB file across runs; give a file path"
        )
    return Path(database).expanduser().resolve()


def duckdb_settings() -> dict[str, Any]:
    """DuckDB settings of a run's connection: dlt's `global_config` of the duckdb credentials, over ours.

    Set as dlt reads it (`[destination.duckdb.credentials] global_config = {memory_limit = "1GB"}`
    in .dlt/config.toml, or `DESTINATION__DUCKDB__CREDENTIALS__GLOBAL_CONFIG` as JSON): the run
    opens the connection itself, so dlt would not apply it.
    """
    configured = dlt.config.get(DUCKDB_SETTINGS_KEY, dict) or {}
    return {**DEFAULT_DUCKDB_SETTINGS, **configured}


def _memory_floor() -> int | None:
    """Our DuckDB memory limit's floor in bytes, or None when the user set `memory_limit` (theirs holds)."""
    configured = dlt.config.get(DUCKDB_SETTINGS_KEY, dict) or {}
    return None if "memory_limit" in configured else DEFAULT_MEMORY_FLOOR


def make_destination() -> Any:
    """A dlt destination object; credentials for others come from dlt's own settings."""
    name = destination_name()
    if name == "duckdb":
        path = duckdb_path()
        path.parent.mkdir(parents=True, exist_ok=True)
        return dlt.destinations.duckdb(credentials=str(path))
    return name


@contextmanager
def held_destination(log: Callable[[str], None] | None = None) -> Iterator[tuple[Any, RunConnection | None]]:
    """The destination, held by this process until the block ends, and its DuckDB connection (else None).

    DuckDB's file is locked (see `destination_lock`) and opened once for the
    whole block: left to itself, dlt opens and closes it around every load
    job, and every last close checkpoints the file (compresses and writes
    every table it touched), a third of a 100k-row load's time (issue 6).
    Every statement of the block goes through that one connection
    (`RunConnection`), so a run's load can be one transaction.
    """
    with destination_lock(log):
        if destination_name() != "duckdb":
            yield cached_capabilities(Destination.from_reference(make_destination())), None
            return
        import duckdb

        path = duckdb_path()
        path.parent.mkdir(parents=True, exist_ok=True)
        connection = RunConnection(duckdb.connect(str(path), config=duckdb_settings()))
        try:
            yield cached_capabilities(duckdb_destination(connection)), connection
        finally:
            connection.connection.close()


@contextmanager
def destination_lock(log: Callable[[str], None] | None = None) -> Iterator[None]:
    """Hold the DuckDB file for this process (a no-op for other destinations).

    DuckDB lets one process at a time open a file for writing, and separate
    runs are separate processes (the freshness sensor starts one per source at
    once): without this, all but one fail with "Could not set lock on file".
    The lock file sits beside the DuckDB file and is released when the holder
    exits, crashed or not.
    """
    if destination_name() != "duckdb" or fcntl is None:
        yield
        return
    path = duckdb_path()
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(f"{path}.lock", "a") as handle:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            if log is not None:
                log(f"waiting for {path.name}: another run is using it")
            fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def loader_file_format() -> str | None:
    """Parquet where the destination loads it natively (much faster than SQL inserts)."""
    return "parquet" if destination_name() in ("duckdb", "motherduck", "filesystem") else None


def state_root() -> Path:
    """dlt's working folders: `DLT_DATA_DIR`, else .rest_assets/dlt under the cwd."""
    configured = os.environ.get("DLT_DATA_DIR", "").strip()
    return Path(configured).expanduser().resolve() if configured else (Path.cwd() / ".rest_assets" / "dlt").resolve()


def pipeline_name(source: str) -> str:
    """One dlt pipeline name per source; its state is kept in the destination."""
    return f"rest_assets_{source}"


@contextmanager
def pipeline_with_held_destination(
    source: str, working_folder: str, log: Callable[[str], None] | None = None
) -> Iterator[tuple[dlt.Pipeline, Any]]:
    """A run's pipeline (its working folder made at once) and the destination held for the block.

    The pipeline is made without a destination (the run brings the held one:
    `pipeline.run(destination=...)`) and deactivated at the end: dlt keeps the
    active pipeline in a process-wide context, where it would keep DuckDB's
    objects alive to the end. On DuckDB and PostgreSQL the pipeline's load
    step is one transaction (duckdb_transaction.py, postgres_transaction.py): a
    failed run changes no table. Runs of one source take turns: DuckDB's file
    lock, PostgreSQL's advisory lock on the source (postgres_lock.py).
    """
    _empty_staging_after_loads()
    pipeline = make_pipeline(source, working_folder, with_destination=False)
    try:
        with held_destination(log) as (destination, connection), ExitStack() as held:
            if connection is not None:
                load_in_one_transaction(pipeline, connection, memory_floor=_memory_floor(), log=log)
            elif destination_name() == "postgres":
                from rest_assets.warehouse.postgres_lock import source_lock
                from rest_assets.warehouse.postgres_transaction import load_in_one_pg_transaction

                held.enter_context(source_lock(pipeline.dataset_name, log))
                load_in_one_pg_transaction(pipeline)
            yield pipeline, destination
    finally:
        if pipeline.is_active:
            pipeline.deactivate()


@functools.cache
def _empty_staging_after_loads() -> None:
    """Have dlt empty its staging tables once a merge is done, unless the user configured it.

    dlt otherwise keeps a second copy of every merged batch; in DuckDB that copy
    is written to the file again at every checkpoint (issue 6).
    """
    set_config_default(TRUNCATE_STAGING, True)


def make_pipeline(source: str, working_folder: str, *, with_destination: bool = True, query_only: bool = False) -> dlt.Pipeline:
    """A dlt pipeline for `source` whose local state lives in its own working folder.

    Without `with_destination`, each `pipeline.run` names the destination. A
    `query_only` pipeline reads the source's dataset and never its state: it
    has a short name of its own, which dlt also gives the schema it queries with
    (`rest_assets_<source>` is beyond dlt's 64 characters for a long source name).
    """
    return dlt.pipeline(
        pipeline_name="rest_assets_query" if query_only else pipeline_name(source),
        pipelines_dir=str(state_root() / working_folder),
        destination=make_destination() if with_destination else None,
        dataset_name=source,
        progress="log",
    )
