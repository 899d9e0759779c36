"""Plain dlt baselines: ``rest_api_source`` on a plain-dlt config equivalent to the bundled spec.

Equivalent means: the same endpoints, data selectors, page sizes, primary key,
merge disposition, column hints and incremental cursor as the spec, written in
dlt's own vocabulary (offset paginator with ``total_path: None``; HAL next
links via ``json_link``; OAuth2 client credentials via dlt's
``OAuth2ClientCredentials``). No rest_assets code is imported.
"""

from __future__ import annotations

from typing import Any

COLUMNS = {
    "id": {"data_type": "bigint", "nullable": False},
    "name": {"data_type": "text"},
    "created_at": {"data_type": "timestamp", "nullable": False},
    "updated_at": {"data_type": "timestamp", "nullable": False},
}
INCREMENTAL = {"cursor_path": "updated_at", "start_param": "updated_since", "initial_value": "1970-01-01T00:00:00Z"}
DEFAULTS = {"primary_key": "id", "write_disposition": "merge", "columns": COLUMNS}


def bulk_config(base_url: str, api_key: str) -> dict[str, Any]:
    """chat_analytics ``contacts``: offset pages of 100 under ``data``, api_key in the query."""
    return {
        "client": {"base_url": base_url, "auth": {"type": "api_key", "name": "api_key", "api_key": api_key, "location": "query"}},
        "resource_defaults": {**DEFAULTS, "endpoint": {"incremental": INCREMENTAL}},
        "resources": [
            {
                "name": "contacts",
                "endpoint": {
                    "path": "/v1/contacts",
                    "data_selector": "data",
                    "paginator": {"type": "offset", "limit": 100, "total_path": None},
                },
            }
        ],
    }


def fanout_config(base_url: str, token_url: str, client_id: str, client_secret: str, parallelized: bool) -> dict[str, Any]:
    """help_desk ``conversations`` (pages of 50) → ``conversation_threads`` (one request per conversation)."""
    from dlt.sources.helpers.rest_client.auth import OAuth2ClientCredentials

    auth = OAuth2ClientCredentials(access_token_url=token_url, client_id=client_id, client_secret=client_secret)
    link = {"type": "json_link", "next_url_path": "_links.next.href"}
    threads: dict[str, Any] = {
        "name": "conversation_threads",
        "include_from_parent": ["id"],
        "endpoint": {
            "path": "/v2/conversations/{resources.conversations.id}/threads",
            "params": {"limit": 25},
            "data_selector": "_embedded.threads",
            "paginator": link,
        },
    }
    if parallelized:
        threads["parallelized"] = True
    return {
        "client": {"base_url": base_url, "auth": auth},
        "resource_defaults": DEFAULTS,
        "resources": [
            {
                "name": "conversations",
                "endpoint": {
                    "path": "/v2/conversations",
                    "params": {"limit": 50},
                    "data_selector": "_embedded.conversations",
                    "paginator": link,
                    "incremental": INCREMENTAL,
                },
            },
            threads,
        ],
    }


def run_dlt(
    source_name: str, config: dict[str, Any], duckdb_file: str, pipelines_dir: str, loader_file_format: str | None
) -> dict[str, Any]:
    """Run ``rest_api_source(config)`` in a fresh pipeline into ``duckdb_file``; returns row counts."""
    import dlt
    from dlt.sources.rest_api import rest_api_source

    pipeline = dlt.pipeline(
        pipeline_name=f"bench_{source_name}",
        pipelines_dir=pipelines_dir,
        destination=dlt.destinations.duckdb(credentials=duckdb_file),
        dataset_name=source_name,
    )
    kwargs = {"loader_file_format": loader_file_format} if loader_file_format else {}
    info = pipeline.run(rest_api_source(config, name=source_name), **kwargs)
    info.raise_on_failed_jobs()
    counts = pipeline.last_trace.last_normalize_info.row_counts
    return {"row_counts": {k: v for k, v in counts.items() if not k.startswith("_dlt")}}
