"""A fresh PostgreSQL database per test, on the test server (shared by the Postgres tests of every kind).

The server is `REST_ASSETS_TEST_POSTGRES_URL` (default
postgresql://postgres@127.0.0.1:5432/postgres). When it cannot be reached the
tests skip, unless `REST_ASSETS_REQUIRE_POSTGRES=1` (set in CI), in which case
they fail.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import quote, urlsplit

import psycopg2
import pytest

ADMIN_URL = os.environ.get("REST_ASSETS_TEST_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/postgres")
REQUIRE_ENV = "REST_ASSETS_REQUIRE_POSTGRES"


def _admin_connection() -> Any:
    try:
        connection = psycopg2.connect(ADMIN_URL, connect_timeout=5)
    except psycopg2.OperationalError as exc:
        reason = f"PostgreSQL server unreachable at {_without_password(ADMIN_URL)}: {str(exc).strip()}"
        if os.environ.get(REQUIRE_ENV) == "1":
            pytest.fail(f"{reason} ({REQUIRE_ENV}=1 makes this a failure)")
        pytest.skip(reason)
    connection.autocommit = True
    return connection


def _without_password(url: str) -> str:
    parts = urlsplit(url)
    host = f"{parts.hostname}:{parts.port or 5432}"
    return f"{parts.scheme}://{parts.username or ''}@{host}{parts.path}"


@dataclass
class PgDatabase:
    """A fresh database on the test server."""

    name: str
    user: str
    password: str
    host: str
    port: int

    def dagster_instance_env(self, home: Path) -> dict[str, str]:
        """What deploy/dagster.yaml reads from the environment, pointed at this database, and DAGSTER_HOME."""
        return {
            "DAGSTER_HOME": str(home),
            "DAGSTER_PG_HOST": self.host,
            "DAGSTER_PG_PORT": str(self.port),
            "DAGSTER_PG_USERNAME": self.user,
            "DAGSTER_PG_PASSWORD": self.password,
            "DAGSTER_PG_DB": self.name,
        }

    @property
    def dlt_url(self) -> str:
        # dlt insists on a password field; an empty one (`user:@host`) is accepted and
        # means "none" to a trust-authenticated server.
        return f"postgresql://{quote(self.user)}:{quote(self.password)}@{self.host}:{self.port}/{self.name}"

    def connect(self) -> Any:
        connection = psycopg2.connect(
            dbname=self.name, user=self.user, password=self.password or None, host=self.host, port=self.port, connect_timeout=5
        )
        connection.autocommit = True
        return connection

    def query(self, sql: str, args: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
        connection = self.connect()
        try:
            with connection.cursor() as cursor:
                cursor.execute(sql, args)
                return cursor.fetchall() if cursor.description else []
        finally:
            connection.close()

    def rows(self, schema: str, table: str) -> list[dict[str, Any]]:
        connection = self.connect()
        try:
            with connection.cursor() as cursor:
                cursor.execute(f'SELECT * FROM "{schema}"."{table}"')
                names = [d[0] for d in cursor.description]
                return [dict(zip(names, row, strict=True)) for row in cursor.fetchall()]
        finally:
            connection.close()

    def tables(self, schema: str) -> set[str]:
        found = self.query("SELECT table_name FROM information_schema.tables WHERE table_schema = %s", (schema,))
        return {name for (name,) in found if not name.startswith("_dlt_")}


@pytest.fixture()
def pg() -> Iterator[PgDatabase]:
    """A new database with a random name, dropped (connections and all) at the end."""
    admin = _admin_connection()
    parts = urlsplit(ADMIN_URL)
    database = PgDatabase(
        name=f"rest_assets_test_{uuid.uuid4().hex[:12]}",
        user=parts.username or "postgres",
        password=parts.password or "",
        host=parts.hostname or "127.0.0.1",
        port=parts.port or 5432,
    )
    with admin.cursor() as cursor:
        cursor.execute(f'CREATE DATABASE "{database.name}"')
    try:
        yield database
    finally:
        with admin.cursor() as cursor:
            cursor.execute(f'DROP DATABASE IF EXISTS "{database.name}" WITH (FORCE)')
        admin.close()


@pytest.fixture()
def pg_destination(pg: PgDatabase, workdir: Any) -> PgDatabase:
    """The e2e working directory (conftest's `workdir`) with Postgres as the destination."""
    workdir.monkeypatch.setenv("REST_ASSETS_DESTINATION", "postgres")
    workdir.monkeypatch.setenv("DESTINATION__POSTGRES__CREDENTIALS", pg.dlt_url)
    workdir.monkeypatch.delenv("DESTINATION__DUCKDB__CREDENTIALS", raising=False)
    return pg
