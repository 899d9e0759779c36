"""Hand-written baselines: the minimal loop a careful engineer would write without a framework.

Both fetch with ``requests.Session`` (keep-alive), turn each page into a
pyarrow table, appends it (in batches) to a staging table in DuckDB, and finally upsert the
staging rows into the target on ``id`` (``INSERT OR REPLACE`` against a
primary key), casting the timestamp strings to ``TIMESTAMPTZ`` like the
spec's column hints do.
"""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import duckdb
import pyarrow as pa
import requests

TYPED = "id::BIGINT AS id, name, created_at::TIMESTAMPTZ AS created_at, updated_at::TIMESTAMPTZ AS updated_at"


class Stager:
    """Buffers pyarrow pages, writes them to ``<schema>.<table>__staging`` in batches, merges into the target.

    Pages are flushed every ``batch_rows`` rows (one DuckDB insert per ~100
    pages, not per page: a per-page insert of a 100-row arrow table costs
    more than fetching the page).
    """

    def __init__(self, con: duckdb.DuckDBPyConnection, schema: str, table: str, batch_rows: int = 10_000):
        self.con, self.target, self.staging = con, f"{schema}.{table}", f"{schema}.{table}__staging"
        con.execute(f"CREATE SCHEMA IF NOT EXISTS {schema}")
        self.created = False
        self.batch_rows = batch_rows
        self.pending: list[pa.Table] = []
        self.pending_rows = 0

    def append(self, page: pa.Table) -> None:
        """Add one page (a pyarrow table); flushes a full batch to the staging table."""
        if page.num_rows:
            self.pending.append(page)
            self.pending_rows += page.num_rows
        if self.pending_rows >= self.batch_rows:
            self.flush()

    def flush(self) -> None:
        """Insert the buffered pages into the staging table."""
        if not self.pending:
            return
        batch = pa.concat_tables(self.pending, promote_options="permissive")
        self.pending, self.pending_rows = [], 0
        self.con.register("batch", batch)
        if self.created:
            self.con.execute(f"INSERT INTO {self.staging} BY NAME SELECT * FROM batch")
        else:
            self.con.execute(f"CREATE OR REPLACE TABLE {self.staging} AS SELECT * FROM batch")
            self.created = True
        self.con.unregister("batch")

    def merge(self) -> int:
        """Upsert staging into the target on ``id``; returns the target's row count."""
        self.flush()
        if not self.created:
            return 0
        others = [
            d[0]
            for d in self.con.execute(f"SELECT * FROM {self.staging} LIMIT 0").description
            if d[0] not in ("id", "name", "created_at", "updated_at")
        ]
        select = ", ".join([TYPED, *others])
        self.con.execute(f"CREATE TABLE IF NOT EXISTS {self.target} AS SELECT {select} FROM {self.staging} LIMIT 0")
        self.con.execute(f"ALTER TABLE {self.target} ADD PRIMARY KEY (id)")
        self.con.execute(f"INSERT OR REPLACE INTO {self.target} BY NAME SELECT {select} FROM {self.staging}")
        self.con.execute(f"DROP TABLE {self.staging}")
        return int(self.con.execute(f"SELECT count(*) FROM {self.target}").fetchall()[0][0])


def bulk_loop(base_url: str, api_key: str, duckdb_file: str, limit: int = 100) -> dict[str, Any]:
    """chat_analytics contacts: offset/limit pages until a short page, one arrow table per page."""
    session = requests.Session()
    con = duckdb.connect(duckdb_file)
    stager = Stager(con, "chat_analytics", "contacts")
    offset = 0
    while True:
        response = session.get(
            f"{base_url}/v1/contacts",
            params={"updated_since": "1970-01-01T00:00:00Z", "offset": offset, "limit": limit, "api_key": api_key},
            timeout=60,
        )
        response.raise_for_status()
        rows = response.json()["data"]
        stager.append(pa.Table.from_pylist(rows))
        if len(rows) < limit:
            break
        offset += limit
    rows_loaded = stager.merge()
    con.close()
    return {"row_counts": {"contacts": rows_loaded}}


def _token(base_url: str, client_id: str, client_secret: str) -> str:
    response = requests.post(
        f"{base_url}/v2/oauth2/token",
        timeout=60,
        data={"grant_type": "client_credentials", "client_id": client_id, "client_secret": client_secret},
    )
    response.raise_for_status()
    return str(response.json()["access_token"])


def _pages(session: requests.Session, url: str, key: str) -> list[dict[str, Any]]:
    """Every record behind a HAL list URL (follows ``_links.next.href``)."""
    rows: list[dict[str, Any]] = []
    next_url: str | None = url
    while next_url:
        response = session.get(next_url, timeout=60)
        response.raise_for_status()
        body = response.json()
        rows.extend(body["_embedded"][key])
        next_url = (body.get("_links", {}).get("next") or {}).get("href")
    return rows


def fanout_pool(base_url: str, client_id: str, client_secret: str, duckdb_file: str, workers: int = 8) -> dict[str, Any]:
    """help_desk: parent pages sequentially, then every conversation's threads on ``workers`` threads."""
    headers = {"Authorization": f"Bearer {_token(base_url, client_id, client_secret)}"}
    con = duckdb.connect(duckdb_file)
    parents, children = Stager(con, "help_desk", "conversations"), Stager(con, "help_desk", "conversation_threads")
    session = requests.Session()
    session.headers.update(headers)
    conversations = _pages(session, f"{base_url}/v2/conversations?limit=50&updated_since=1970-01-01T00:00:00Z", "conversations")
    for start in range(0, len(conversations), 50):
        parents.append(pa.Table.from_pylist(conversations[start : start + 50]))
    sessions: dict[int, requests.Session] = {}

    def threads(conversation_id: int) -> list[dict[str, Any]]:
        session = sessions.setdefault(threading.get_ident(), requests.Session())
        session.headers.update(headers)
        rows = _pages(session, f"{base_url}/v2/conversations/{conversation_id}/threads?limit=25", "threads")
        for row in rows:
            row["_conversations_id"] = conversation_id
        return rows

    with ThreadPoolExecutor(max_workers=workers) as pool:
        batch: list[dict[str, Any]] = []
        for index, rows in enumerate(pool.map(threads, [c["id"] for c in conversations]), start=1):
            batch.extend(rows)
            if index % 50 == 0:  # one arrow table per parent page's worth of children
                children.append(pa.Table.from_pylist(batch))
                batch = []
        children.append(pa.Table.from_pylist(batch))
    counts = {"conversations": parents.merge(), "conversation_threads": children.merge()}
    con.close()
    return {"row_counts": counts}
