"""The keys a spec may use: dlt's own rest_api vocabulary plus our extensions.

dlt's keys are read from dlt's TypedDicts, so a key dlt accepts is accepted
here unchanged; the extensions are listed explicitly beside them.
"""

from __future__ import annotations

from typing import Any

from dlt.sources.rest_api import typing as dlt_typing


def _keys(typed_dict: Any) -> frozenset[str]:
    return frozenset(typed_dict.__required_keys__ | typed_dict.__optional_keys__)


# Python-only values (sessions, callables) cannot come from YAML.
_PYTHON_ONLY = frozenset({"session", "processing_steps", "convert", "last_value_func"})

TOP_LEVEL_KEYS = (_keys(dlt_typing.RESTAPIConfig) | {"name", "description", "schedule"}) - _PYTHON_ONLY
CLIENT_KEYS = (_keys(dlt_typing.ClientConfig) | {"timeout", "max_pages", "child_concurrency", "allow_insecure_http"}) - _PYTHON_ONLY
RESOURCE_KEYS = (_keys(dlt_typing.EndpointResource) | {"freshness", "description"}) - _PYTHON_ONLY
RESOURCE_DEFAULT_KEYS = RESOURCE_KEYS - {"name"}
ENDPOINT_KEYS = _keys(dlt_typing.Endpoint) | {"error_handler", "partition_router"}
INCREMENTAL_KEYS = _keys(dlt_typing.IncrementalConfig) - _PYTHON_ONLY
ERROR_HANDLER_KEYS = frozenset({"retry_on_status_codes", "max_retries", "backoff_factor", "max_backoff"})
PARTITION_ROUTER_KEYS = frozenset({"parent", "parent_key", "partition_field"})
FRESHNESS_KEYS = frozenset({"fail_window", "warn_window"})

PAGINATOR_KEYS: dict[str, frozenset[str]] = {
    "single_page": frozenset({"type"}),
    "auto": frozenset({"type"}),
    "offset": _keys(dlt_typing.OffsetPaginatorConfig),
    "page_number": _keys(dlt_typing.PageNumberPaginatorConfig) | {"limit", "limit_param"},
    "cursor": _keys(dlt_typing.JSONResponseCursorPaginatorConfig) | {"stop_condition", "limit", "limit_param"},
    "json_link": _keys(dlt_typing.JSONLinkPaginatorConfig),
    "json_response": _keys(dlt_typing.JSONLinkPaginatorConfig),
    "header_link": _keys(dlt_typing.HeaderLinkPaginatorConfig),
    "header_cursor": _keys(dlt_typing.HeaderCursorPaginatorConfig),
}

AUTH_KEYS: dict[str, frozenset[str]] = {
    "bearer": _keys(dlt_typing.BearerTokenAuthConfig) | {"api_key", "location"},
    "api_key": _keys(dlt_typing.ApiKeyAuthConfig),
    "http_basic": _keys(dlt_typing.HttpBasicAuthConfig),
    "oauth2": frozenset({"type", "client_id", "client_secret", "token_url", "refresh_token", "scopes",
                         "access_token_request_data", "default_token_expiration"}),
    "oauth2_client_credentials": _keys(dlt_typing.OAuth2ClientCredentialsConfig) - _PYTHON_ONLY,
}

WRITE_DISPOSITIONS = frozenset({"append", "replace", "merge", "skip"})
