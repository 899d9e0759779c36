"""All-or-nothing per run on DuckDB: a run's whole load step is one DuckDB transaction.

dlt loads every table of a package with its own jobs (copy into the table,
merge from the staging dataset, then `_dlt_pipeline_state` and `_dlt_loads`)
and commits each of them on its own: a failing job, or a process killed
between two jobs, leaves some tables with the run's rows and others without,
and an append table keeps rows that the next run appends again.

Here the run's one DuckDB connection (held for the run, see destination.py)
opens a transaction before dlt's load step and commits it only when that step
returned, `_dlt_loads` and the new pipeline state included; anything else
rolls it back. DuckDB runs every statement of dlt's load (CREATE/ALTER TABLE,
COPY, the merge's temp tables and DELETE/INSERT, truncating the staging
dataset) inside one transaction, and writes nothing of it to its WAL before
COMMIT, so a process killed mid-load leaves the file as the last successful
run left it. The incremental state goes back with it: the next run (in its own
working folder) restores dlt's state from the destination and fetches again
what the failed run had fetched.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

import dlt

from rest_assets.dlt_internals import kept_load_packages, set_duckdb_external_connection
from rest_assets.errors import LoadError


class RunConnection:
    """The run's DuckDB connection, as dlt's DuckDB connection pool sees it.

    dlt's pool would hand every load job `connection.duplicate()` (a separate
    DuckDB connection, with a transaction of its own) and close it after the
    job. Here `duplicate()` and `cursor()` give back this same object and
    `close()` does nothing (the run closes the connection), so every statement
    of the run goes through one connection; while the run's transaction is
    open, dlt's own BEGIN/COMMIT/ROLLBACK are no-ops nested in it. Everything
    else is the DuckDB connection's own. dlt's load then runs with one worker:
    a DuckDB connection serves one thread.
    """

    def __init__(self, connection: Any) -> None:
        self.connection = connection
        self.in_run_transaction = False
        self.first_error: Exception | None = None  # the error that aborted the run's transaction

    def __getattr__(self, name: str) -> Any:
        return getattr(self.connection, name)

    def execute(self, query: Any, parameters: Any = None, *args: Any, **kwargs: Any) -> Any:
        """The connection's `execute`, minus the errors dlt expects inside the run's transaction.

        Any error aborts a DuckDB transaction, and dlt's load step meets two
        that it expects and ignores: the search path it sets when it borrows
        the connection names a schema that may not exist yet (that SET is
        skipped here; dlt's load statements all name their schema), and on a
        dataset's first load it reads `_dlt_version` before creating it (that
        SELECT raises the same CatalogException here without reaching DuckDB).
        """
        if self.in_run_transaction and _is_search_path(query) and not self._schema_exists(parameters):
            return self.connection
        if self.in_run_transaction and _is_select(query):
            self._raise_on_missing_table(query)
        try:
            if parameters is None:
                return self.connection.execute(query, *args, **kwargs)
            return self.connection.execute(query, parameters, *args, **kwargs)
        except Exception as exc:
            # The first error aborts the run's transaction; dlt's retries then see only "transaction aborted".
            if self.in_run_transaction and self.first_error is None:
                self.first_error = exc
            raise

    def _schema_exists(self, parameters: Any) -> bool:
        if not parameters:
            return False
        name = str(parameters[0]).split(".")[-1].strip('"')
        found = self.connection.execute("SELECT count(*) FROM duckdb_schemas() WHERE schema_name = ?", [name])
        return bool(found.fetchall()[0][0])

    def _raise_on_missing_table(self, query: str) -> None:
        # get_table_names parses without binding; it refuses `?` placeholders, which name no table
        for name in self.connection.get_table_names(query.replace("?", "NULL"), qualified=True):
            parts = name.split(" AS ")[0].split(".")
            if len(parts) < 2:
                continue
            found = self.connection.execute(
                "SELECT count(*) FROM duckdb_tables() WHERE schema_name = ? AND table_name = ?"
                " UNION ALL SELECT count(*) FROM duckdb_views() WHERE schema_name = ? AND view_name = ?",
                [parts[-2], parts[-1]] * 2,
            ).fetchall()
            if not any(count for (count,) in found):
                import duckdb

                raise duckdb.CatalogException(f"Table with name {parts[-1]} does not exist!")

    def duplicate(self) -> RunConnection:
        """This object: dlt's jobs share the run's connection (and its transaction)."""
        return self

    cursor = duplicate

    def close(self) -> None:
        """Nothing: the connection lives as long as the run holds the destination."""

    def begin(self) -> None:
        """dlt's BEGIN: nested (nothing) inside the run's transaction."""
        if not self.in_run_transaction:
            self.connection.begin()

    def commit(self) -> None:
        """dlt's COMMIT: nested (nothing) inside the run's transaction."""
        if not self.in_run_transaction:
            self.connection.commit()

    def rollback(self) -> None:
        """dlt's ROLLBACK: nothing inside the run's transaction (the run rolls all of it back)."""
        if not self.in_run_transaction:
            self.connection.rollback()


def _is_select(query: Any) -> bool:
    return isinstance(query, str) and query.lstrip().upper().startswith("SELECT")


def _is_search_path(query: Any) -> bool:
    return isinstance(query, str) and query.lstrip().upper().startswith("SET SESSION SEARCH_PATH")


def duckdb_destination(connection: RunConnection) -> Any:
    """dlt's duckdb destination on the run's connection.

    dlt accepts an open DuckDB connection as credentials and keeps it as the
    credentials' `_external_conn` (private), which its pool duplicates for
    every job; that attribute is set to the RunConnection wrapper here. This
    and the pool's calls on it (`duplicate`, `close`, `begin`/`commit`/
    `rollback`, `execute`) are the dlt internals the DuckDB transaction relies
    on: dlt offers no way to give its load jobs one connection, and without
    one connection there is no one transaction. Checked by
    test_destination.py and test_all_or_nothing.py on every dlt upgrade.
    """
    from dlt.destinations.impl.duckdb.configuration import DuckDbCredentials

    credentials = DuckDbCredentials(connection.connection)
    set_duckdb_external_connection(credentials, connection)
    return dlt.destinations.duckdb(credentials=credentials)


# DuckDB keeps a transaction's appends to a table in memory until a row group (122,880 rows) fills,
# plus buffers per column: at a fixed 64 MB, 3,000 records of 301 fields (18 MB of JSON) or 25 of
# 1,501 fields ran out of memory. The limit grows with the widest table and the largest partial row
# group; a load that still runs out is tried again at twice the limit (see `load_in_one_transaction`).
MEMORY_PER_COLUMN = 512 * 1024  # a 256 KB block per column, for the staging table and the table a merge writes
ROW_GROUP_ROWS = 122_880
# a merge holds a partial row group several times (read from parquet, in the staging table, inserted into
# the table): three copies up front, and a load that needs more is tried again at twice the limit
ROW_GROUP_COPIES = 3


def memory_limit_for(pipeline: dlt.Pipeline, floor_bytes: int) -> int:
    """A DuckDB memory limit for loading `pipeline`'s normalized packages: `floor_bytes` plus what their widest
    table takes, or more where their largest row group (as parquet says, uncompressed) needs it."""
    import pyarrow.parquet as pq

    widest = max((len(table.get("columns", {})) for table in pipeline.default_schema.data_tables()), default=0)
    largest = 0.0
    for load_id in pipeline.list_normalized_load_packages():
        for jobs in pipeline.get_load_package_info(load_id).jobs.values():
            for job in jobs:
                if job.file_path.endswith(".parquet"):
                    metadata = pq.ParquetFile(job.file_path).metadata
                    rows = max(metadata.num_rows, 1)
                    uncompressed = sum(metadata.row_group(i).total_byte_size for i in range(metadata.num_row_groups))
                    largest = max(largest, uncompressed * min(1.0, ROW_GROUP_ROWS / rows))
    return int(max(floor_bytes + widest * MEMORY_PER_COLUMN, ROW_GROUP_COPIES * largest))


def memory_ceiling() -> int:
    """The most a retried load may ask of DuckDB: its own default memory_limit (80% of the memory it
    finds, a container's limit included), as a fresh in-memory connection reports it."""
    import duckdb

    with duckdb.connect(":memory:") as probe:
        (setting,) = probe.execute("SELECT current_setting('memory_limit')").fetchone() or ("",)
    return _bytes_of(str(setting)) or 1024**3


_SIZE = re.compile(r"([0-9.]+)\s*(bytes|[KMGT]i?B)", re.IGNORECASE)
_UNITS = {"bytes": 1, "kb": 10**3, "mb": 10**6, "gb": 10**9, "tb": 10**12, "kib": 2**10, "mib": 2**20, "gib": 2**30, "tib": 2**40}


def _bytes_of(size: str) -> int:
    """Bytes in DuckDB's way of writing a size (`18.8 GiB`, `64.0 MB`); 0 when it reads otherwise."""
    match = _SIZE.fullmatch(size.strip())
    return int(float(match.group(1)) * _UNITS[match.group(2).lower()]) if match else 0


def load_in_one_transaction(
    pipeline: dlt.Pipeline,
    connection: RunConnection,
    memory_floor: int | None = None,
    log: Callable[[str], None] | None = None,
) -> None:
    """Make `pipeline.run`'s load step one transaction on `connection` (see the module docstring).

    `Pipeline.run` calls `self.load(...)`: the instance gets a `load` that
    wraps dlt's in BEGIN ... COMMIT (ROLLBACK on any error) with one worker.
    The extract and normalize steps touch no table, and dlt's state sync before
    them only reads, outside the transaction. With `memory_floor` (bytes; None: the
    user set DuckDB's memory_limit), the limit is set per load by `memory_limit_for`,
    and a load that runs out of it is rolled back and tried again at twice the
    limit, up to `memory_ceiling` (records with long values, whose size parquet's
    dictionary encoding hides); `log` says so.
    """
    original: Callable[..., Any] = pipeline.load

    def load(*args: Any, **kwargs: Any) -> Any:
        kwargs["workers"] = 1
        if memory_floor is None:
            return _load_once(original, connection, args, kwargs)
        limit = memory_limit_for(pipeline, memory_floor)
        with kept_load_packages(pipeline) as put_packages_back:
            while True:
                connection.connection.execute(f"SET memory_limit = '{limit // 1024}KiB'")
                try:
                    return _load_once(original, connection, args, kwargs)
                except LoadError as exc:
                    ceiling = memory_ceiling()
                    if not _is_out_of_memory(exc.__cause__) or limit >= ceiling:
                        raise
                put_packages_back()
                limit = min(2 * limit, ceiling)
                if log is not None:
                    log(f"the load ran out of DuckDB's memory limit and was rolled back; trying again at {limit >> 20} MB")

    pipeline.load = load  # type: ignore[method-assign]


def _load_once(original: Callable[..., Any], connection: RunConnection, args: Any, kwargs: Any) -> Any:
    """dlt's load in one transaction on `connection`: committed, or rolled back and raised."""
    connection.connection.begin()
    connection.in_run_transaction, connection.first_error = True, None
    try:
        info = original(*args, **kwargs)
    except BaseException:
        connection.in_run_transaction = False
        _rollback(connection.connection)
        cause = connection.first_error
        if _is_out_of_memory(cause):
            raise LoadError(
                f"the load ran out of DuckDB's memory_limit ({cause}); records with very long values? Raise it: "
                'DESTINATION__DUCKDB__CREDENTIALS__GLOBAL_CONFIG=\'{"memory_limit": "1GB"}\', or '
                '[destination.duckdb.credentials] global_config = {memory_limit = "1GB"} in .dlt/config.toml'
            ) from cause
        raise
    connection.in_run_transaction = False
    connection.connection.commit()  # a COMMIT that fails leaves nothing behind either
    return info


def _is_out_of_memory(error: BaseException | None) -> bool:
    return type(error).__name__ == "OutOfMemoryException"  # duckdb's, not imported to load the code location


def _rollback(connection: Any) -> None:
    import duckdb  # imported by a run only: loading the code location stays cheap

    try:
        connection.rollback()
    except duckdb.Error:  # DuckDB already ended a transaction that a fatal error invalidated
        pass
