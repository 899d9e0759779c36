"""The keys a spec may use: dlt's own rest_api vocabulary plus our extensions.

dlt's keys are read from dlt's TypedDicts, so a key dlt accepts is accepted
here unchanged; the extensions are listed explicitly beside them.
"""

from __future__ import annotations

from typing import Any

from dlt.sources.rest_api import typing as dlt_typing


def _keys(typed_dict: Any) -> frozenset[str]:
    return frozenset(typed_dict.__required_keys__ | typed_dict.__optional_keys__)


# Python-only values (sessions, callables) cannot come from YAML (`processing_steps` has a YAML form;
# `last_value_func` is taken as dlt's names for its built-ins, "min" or "max").
_PYTHON_ONLY = frozenset({"session", "convert"})

# Our extensions at each level: the compiler turns them into runtime objects, dlt never sees them.
TOP_LEVEL_EXTENSION_KEYS = frozenset({"name", "description", "schedule"})
CLIENT_EXTENSION_KEYS = frozenset({"timeout", "max_pages", "child_concurrency", "allow_insecure_http", "max_response_mib"})
RESOURCE_EXTENSION_KEYS = frozenset({"freshness", "description"})
ENDPOINT_EXTENSION_KEYS = frozenset({"error_handler", "partition_router"})

TOP_LEVEL_KEYS = (_keys(dlt_typing.RESTAPIConfig) | TOP_LEVEL_EXTENSION_KEYS) - _PYTHON_ONLY
CLIENT_KEYS = (_keys(dlt_typing.ClientConfig) | CLIENT_EXTENSION_KEYS) - _PYTHON_ONLY
RESOURCE_KEYS = (_keys(dlt_typing.EndpointResource) | RESOURCE_EXTENSION_KEYS) - _PYTHON_ONLY
RESOURCE_DEFAULT_KEYS = RESOURCE_KEYS - {"name"}
ENDPOINT_KEYS = _keys(dlt_typing.Endpoint) | ENDPOINT_EXTENSION_KEYS
INCREMENTAL_KEYS = _keys(dlt_typing.IncrementalConfig) - _PYTHON_ONLY
ERROR_HANDLER_KEYS = frozenset({"retry_on_status_codes", "max_retries", "backoff_factor", "max_backoff"})
PARTITION_ROUTER_KEYS = frozenset({"parent", "parent_key", "partition_field"})
FRESHNESS_KEYS = frozenset({"fail_window", "warn_window"})

# Paginator and auth types as dlt knows them (its own configs, checked by dlt too) ...
DLT_PAGINATOR_KEYS: dict[str, frozenset[str]] = {
    "single_page": frozenset({"type"}),
    "auto": frozenset({"type"}),
    "offset": _keys(dlt_typing.OffsetPaginatorConfig),
    "page_number": _keys(dlt_typing.PageNumberPaginatorConfig),
    "cursor": _keys(dlt_typing.JSONResponseCursorPaginatorConfig),
    "json_link": _keys(dlt_typing.JSONLinkPaginatorConfig),
    "json_response": _keys(dlt_typing.JSONLinkPaginatorConfig),
    "header_link": _keys(dlt_typing.HeaderLinkPaginatorConfig),
    "header_cursor": _keys(dlt_typing.HeaderCursorPaginatorConfig),
}
# ... and with the keys our dialect adds.
PAGINATOR_KEYS: dict[str, frozenset[str]] = {
    **DLT_PAGINATOR_KEYS,
    "page_number": DLT_PAGINATOR_KEYS["page_number"] | {"limit", "limit_param"},
    "cursor": DLT_PAGINATOR_KEYS["cursor"] | {"stop_condition", "limit", "limit_param"},
}

DLT_AUTH_KEYS: dict[str, frozenset[str]] = {
    "bearer": _keys(dlt_typing.BearerTokenAuthConfig),
    "api_key": _keys(dlt_typing.ApiKeyAuthConfig),
    "http_basic": _keys(dlt_typing.HttpBasicAuthConfig),
    "oauth2_client_credentials": _keys(dlt_typing.OAuth2ClientCredentialsConfig) - _PYTHON_ONLY,
}
AUTH_KEYS: dict[str, frozenset[str]] = {
    **DLT_AUTH_KEYS,
    "bearer": DLT_AUTH_KEYS["bearer"] | {"api_key", "location"},
    "oauth2": frozenset(
        {
            "type",
            "client_id",
            "client_secret",
            "token_url",
            "refresh_token",
            "scopes",
            "access_token_request_data",
            "default_token_expiration",
            "refresh_token_store",
        }
    ),  # ours: see runtime/token_store.py
}

WRITE_DISPOSITIONS = frozenset({"append", "replace", "merge", "skip"})
