"""All-or-nothing per run on PostgreSQL: a run's whole load step is one transaction (see duckdb_transaction.py).

dlt's postgres client opens a psycopg2 connection per client (per load job)
and commits each job on its own. While a run's load step is under way in this
thread, every client of it gets the run's one connection instead
(`open_connection` of dlt's `Psycopg2SqlClient` is wrapped for that, the one
use of dlt's private behaviour here), in one transaction that the run commits
once dlt's load step (`_dlt_loads` and the new state included) returned, and
rolls back otherwise. dlt's own transactions on it are nested no-ops, and each
statement runs under a savepoint: a statement dlt expects may fail (reading
`_dlt_version` before it exists) is undone alone, as it would be on its own
connection, instead of aborting the run's transaction.
"""

from __future__ import annotations

import functools
import threading
from collections.abc import Callable
from typing import Any

from rest_assets.dlt_internals import postgres_client_class

_active = threading.local()


class _RunCursor:
    """A cursor of the run's connection whose every statement runs under a savepoint."""

    def __init__(self, cursor: Any, connection: Any) -> None:
        self.cursor = cursor
        self.connection = connection

    def __getattr__(self, name: str) -> Any:
        return getattr(self.cursor, name)

    def __iter__(self) -> Any:
        return iter(self.cursor)

    def __enter__(self) -> _RunCursor:
        return self

    def __exit__(self, *exc: object) -> None:
        self.cursor.close()

    def execute(self, query: Any, args: Any = None) -> None:
        """`query` under a savepoint: if it fails, only it is undone (its result stays on this cursor)."""
        self._savepoint("SAVEPOINT rest_assets_statement")
        try:
            self.cursor.execute(query, args)
        except BaseException:
            self._savepoint("ROLLBACK TO SAVEPOINT rest_assets_statement")
            raise
        self._savepoint("RELEASE SAVEPOINT rest_assets_statement")

    def _savepoint(self, statement: str) -> None:
        with self.connection.cursor() as cursor:
            cursor.execute(statement)


class RunPgConnection:
    """The run's psycopg2 connection as dlt's clients see it: one connection, one transaction."""

    def __init__(self, connection: Any) -> None:
        self.connection = connection

    def __getattr__(self, name: str) -> Any:
        return getattr(self.connection, name)

    def __setattr__(self, name: str, value: Any) -> None:
        if name == "connection":
            object.__setattr__(self, name, value)
        # dlt's `autocommit = ...` around its own transactions: the run's transaction stays

    @property
    def autocommit(self) -> bool:
        return False

    def cursor(self, *args: Any, **kwargs: Any) -> _RunCursor:
        return _RunCursor(self.connection.cursor(*args, **kwargs), self.connection)

    def commit(self) -> None:
        """dlt's COMMIT: nested (nothing) inside the run's transaction."""

    def rollback(self) -> None:
        """dlt's ROLLBACK: nothing (a failed statement was undone to its savepoint; the run rolls back the rest)."""

    def reset(self) -> None:
        """dlt's reset after a failed statement: nothing, for the same reason."""

    def close(self) -> None:
        """Nothing: the run closes the connection."""


@functools.cache
def _install() -> None:
    client_class = postgres_client_class()
    original = client_class.open_connection

    def open_connection(self: Any) -> Any:
        run = getattr(_active, "run", None)
        if run is None:
            return original(self)
        if run.get("connection") is None:
            connection = original(self)
            connection.autocommit = False
            run["connection"] = RunPgConnection(connection)
        self._conn = run["connection"]
        return self._conn

    client_class.open_connection = open_connection


def load_in_one_pg_transaction(pipeline: Any) -> None:
    """Make `pipeline.run`'s load step one PostgreSQL transaction (see the module docstring)."""
    _install()
    original: Callable[..., Any] = pipeline.load

    def load(*args: Any, **kwargs: Any) -> Any:
        kwargs["workers"] = 1  # one connection serves one thread
        run: dict[str, Any] = {"connection": None}
        _active.run = run
        try:
            info = original(*args, **kwargs)
        except BaseException:
            _end(run, commit=False)
            raise
        finally:
            _active.run = None
        _end(run, commit=True)
        return info

    pipeline.load = load


def _end(run: dict[str, Any], *, commit: bool) -> None:
    wrapped = run.get("connection")
    if wrapped is None:
        return
    connection = wrapped.connection
    try:
        if commit:
            connection.commit()
        else:
            _rollback(connection)
    finally:
        connection.close()


def _rollback(connection: Any) -> None:
    import psycopg2

    try:
        connection.rollback()
    except psycopg2.Error:  # a broken connection: the server drops its transaction anyway
        pass
