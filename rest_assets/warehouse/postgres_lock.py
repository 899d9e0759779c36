"""One run at a time per source on PostgreSQL: an advisory lock held for the whole run.

Two runs of one source that overlap both start from the same stored
incremental cursor and extract the same new records: an append table would
get them twice (a merge table would not). On DuckDB the file lock makes runs
take turns (`destination.destination_lock`); on PostgreSQL each run holds
`pg_advisory_lock` on its source's dataset, on a connection of its own, from
before it reads the stored state until its load step has committed. A run
that dies loses its connection, and PostgreSQL releases the lock with it.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

from dlt.common.destination.reference import Destination

_NAMESPACE = "rest_assets"  # the lock's first key: the second is the dataset's name


@contextmanager
def source_lock(dataset: str, log: Callable[[str], None] | None = None) -> Iterator[None]:
    """Hold the source's lock on the PostgreSQL database dlt's settings name, waiting for a run that holds it."""
    import psycopg2

    connection = psycopg2.connect(_connection_url(dataset))
    try:
        connection.autocommit = True
        with connection.cursor() as cursor:
            cursor.execute("SELECT pg_try_advisory_lock(hashtext(%s), hashtext(%s))", (_NAMESPACE, dataset))
            if not _first(cursor):
                if log is not None:
                    log(f"waiting for source '{dataset}' on PostgreSQL: another run of it is loading")
                cursor.execute("SELECT pg_advisory_lock(hashtext(%s), hashtext(%s))", (_NAMESPACE, dataset))
        yield
    finally:
        connection.close()  # releases the lock


def _connection_url(dataset: str) -> str:
    """The PostgreSQL URL of dlt's postgres destination settings (as the run's load resolves them)."""
    destination: Any = Destination.from_reference("postgres")
    initial = destination.spec()
    initial.dataset_name = dataset
    credentials: Any = destination.configuration(initial).credentials
    return str(credentials.to_native_representation())


def _first(cursor: Any) -> Any:
    row = cursor.fetchone()
    return row[0] if row else None
