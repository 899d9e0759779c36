"""Whether the destination keeps its data off the pod (deploy/k8s_definitions.py refuses it otherwise).

On Kubernetes every run and every step is its own pod, and pods share no
disk: a destination that writes to the pod's local disk (a DuckDB file, a
filesystem bucket on a local path, SQLite through sqlalchemy, a local LanceDB
or Qdrant) would put each run's rows in a different, short-lived file. Only
destinations known to keep their data on a server or in object storage pass;
dlt's settings are read the way dlt reads them (environment, then .dlt/*.toml).
"""

from __future__ import annotations

from urllib.parse import urlsplit

import dlt

from rest_assets.warehouse.destination import destination_name

# Destinations whose data always lives on a server or a cloud service.
SERVER_DESTINATIONS = frozenset(
    {
        "athena",
        "bigquery",
        "clickhouse",
        "databricks",
        "dremio",
        "fabric",
        "motherduck",
        "mssql",
        "postgres",
        "redshift",
        "snowflake",
        "synapse",
        "weaviate",
    }
)
# URL schemes of object stores and remote filesystems (fsspec names, as dlt's filesystem takes them).
REMOTE_SCHEMES = frozenset({"s3", "s3a", "gs", "gcs", "az", "abfs", "abfss", "adl", "gdrive", "sftp", "hf", "r2", "db"})
SERVER_HINT = "a server destination, e.g. REST_ASSETS_DESTINATION=postgres with DESTINATION__POSTGRES__CREDENTIALS"


def _setting(key: str) -> str:
    """A dlt setting as text ('' when unset), from dlt's config or secrets providers."""
    for accessor in (dlt.config, dlt.secrets):
        value: object = accessor.get(key)
        if isinstance(value, str) and value.strip():
            return value.strip()
    return ""


def _is_remote_url(url: str, schemes: frozenset[str] = REMOTE_SCHEMES) -> bool:
    return urlsplit(url).scheme.lower() in schemes


def local_disk_problem(name: str | None = None) -> str | None:
    """None if the destination keeps its data off the pod, else why not and what to set instead."""
    name = (name or destination_name()).rsplit(".", 1)[-1].lower()
    if name in SERVER_DESTINATIONS:
        return None
    if name == "filesystem":
        bucket = _setting("destination.filesystem.bucket_url")
        if bucket and _is_remote_url(bucket):
            return None
        where = f"bucket_url {bucket!r} is on the pod's disk" if bucket else "no bucket_url is set"
        return (
            f"destination filesystem: {where}; set DESTINATION__FILESYSTEM__BUCKET_URL to object "
            f"storage (s3://, gs://, az://...) or use {SERVER_HINT}"
        )
    if name == "sqlalchemy":
        url = _setting("destination.sqlalchemy.credentials")
        driver = urlsplit(url).scheme if url else _setting("destination.sqlalchemy.credentials.drivername")
        if driver and not driver.lower().startswith("sqlite"):
            return None
        what = "a SQLite file" if driver else "no credentials are set"
        return (
            f"destination sqlalchemy: {what}; set DESTINATION__SQLALCHEMY__CREDENTIALS to a database "
            f"server URL (e.g. mysql://...) or use {SERVER_HINT}"
        )
    if name == "lancedb":
        uri = _setting("destination.lancedb.lance_uri") or _setting("destination.lancedb.credentials.uri")
        if uri and _is_remote_url(uri):
            return None
        return (
            "destination lancedb: its database is a local folder; set DESTINATION__LANCEDB__LANCE_URI "
            f"to LanceDB Cloud (db://...) or object storage, or use {SERVER_HINT}"
        )
    if name == "qdrant":
        location = _setting("destination.qdrant.credentials.location")
        if (
            location
            and _is_remote_url(location, frozenset({"http", "https"}))
            and not _setting("destination.qdrant.qdrant_local_path")
        ):
            return None
        return (
            "destination qdrant: without a server it keeps its data on local disk; set "
            f"DESTINATION__QDRANT__CREDENTIALS__LOCATION to the server's URL, or use {SERVER_HINT}"
        )
    if name in ("duckdb", "ducklake"):
        return f"destination {name} writes a file on the pod's disk; use {SERVER_HINT}"
    return (
        f"destination {name}: not known to keep its data off the pod's disk (pods share no disk); use "
        f"{SERVER_HINT}, or one of: {', '.join(sorted(SERVER_DESTINATIONS))}, filesystem on object "
        "storage, sqlalchemy on a server"
    )
