"""Compile a SourceSpec into a working dlt `rest_api` source.

Runs at materialization time, not at definition load: this is where secrets
are resolved, base/token URL overrides read, and our runtime pieces (auth,
paginators, retry policy, response checks, credential scoping) are put into
dlt's config in place of the dialect's extension keys.
"""

from __future__ import annotations

import copy
import re
import time
from dataclasses import dataclass
from typing import Any, Callable
from urllib.parse import quote, urlsplit

import pyarrow as pa
from dlt.common import jsonpath
from dlt.extract.source import DltSource
from dlt.sources.rest_api import rest_api_source

from rest_assets.errors import LoadError
from rest_assets.runtime.arrow_pages import use_arrow_pages
from rest_assets.runtime.auth import build_auth
from rest_assets.runtime.fanout import DEFAULT_CHILD_CONCURRENCY, fan_out
from rest_assets.runtime.http import DEFAULT_TIMEOUT_SECONDS, EndpointRoute, GuardedSession, RetryPolicy
from rest_assets.runtime.paginators import build_paginator
from rest_assets.runtime.redaction import install_log_redaction
from rest_assets.runtime.responses import response_validator
from rest_assets.runtime.secrets import resolve_secrets, resolve_setting
from rest_assets.spec.model import ResourceSpec, SourceSpec

# Keys of the dialect that dlt does not know; they are compiled into objects.
_RESOURCE_EXTENSIONS = ("freshness", "description")
_ENDPOINT_EXTENSIONS = ("error_handler", "partition_router")
_CLIENT_EXTENSIONS = ("timeout", "max_pages", "child_concurrency", "allow_insecure_http")


@dataclass
class CompiledSource:
    """A dlt source plus the transport whose counters describe the run."""

    source: DltSource
    session: GuardedSession


def compile_source(spec: SourceSpec, *, sleep: Callable[[float], None] = time.sleep,
                   arrow_pages: bool = True) -> CompiledSource:
    """Build the dlt source for `spec`, resolving secrets now (raises MissingSecretError).

    With `arrow_pages` each page reaches dlt as one Arrow table (see runtime.arrow_pages).
    """
    install_log_redaction()
    client = resolve_secrets(spec.name, spec.client)
    base_url = str(resolve_setting(spec.name, "base_url", client["base_url"]))
    auth_config = client.get("auth") or {}
    token_url = _token_url(spec.name, auth_config)
    session = _build_session(spec, base_url, token_url, sleep)
    max_pages = client.get("max_pages")
    dlt_client: dict[str, Any] = {
        "base_url": base_url,
        "session": session,
        "auth": build_auth(spec.name, auth_config, session, token_url),
    }
    if client.get("headers"):
        dlt_client["headers"] = client["headers"]
    if client.get("paginator"):
        dlt_client["paginator"] = build_paginator(client["paginator"], max_pages)
    resources = {r.name: _compile_resource(spec, r, session, token_url, max_pages) for r in spec.resources}
    source = rest_api_source({"client": dlt_client, "resources": _with_private_parents(spec, resources)}, name=spec.name)
    workers = _child_concurrency(spec)
    for resource in spec.resources:
        pipe = source.resources[resource.name]._pipe
        if resource.parent:
            pipe.replace_gen(fan_out(pipe.gen, workers))
        if arrow_pages:
            use_arrow_pages(source.resources[resource.name], resources[resource.name].get("columns"))
    return CompiledSource(source=source, session=session)


def _with_private_parents(spec: SourceSpec, compiled: dict[str, dict[str, Any]]) -> list[dict[str, Any]]:
    """Give each child its own, unselected copy of its parent stream.

    dlt feeds a child from its parent's stream, so they would share one
    incremental cursor: after a parent-only run, a child-only run would see no
    changed parents and miss their children. A private copy has its own cursor,
    so every selection (parent, child, or both) fetches exactly what changed.

    The copy also carries every parent field the child's path uses
    percent-encoded (see `_path_encoder`): dlt formats parent values into the
    path unencoded, so an id like `a/../b?c#d` would leave the intended path.
    The child's `_<parent>_<key>` column keeps the raw value.
    """
    resources = list(compiled.values())
    for resource in spec.resources:
        link = resource.parent
        if not link:
            continue
        private = f"{link.parent}__for__{resource.name}"
        child = compiled[resource.name]
        encoded = _point_at_parent(child["endpoint"], link.parent, private)
        parent_copy = {**copy.deepcopy(compiled[link.parent]), "name": private, "selected": False}
        parent_copy["processing_steps"] = [*parent_copy.get("processing_steps", []), {"map": _path_encoder(encoded, link.parent, resource.name)}]
        resources.append(parent_copy)
        renames = {f"_{private}_{key}": f"_{link.parent}_{key}" for key in child.get("include_from_parent", [])}
        child["processing_steps"] = [*child.get("processing_steps", []), {"map": _renamer(renames)}]
    return resources


_ENCODED_PREFIX = "_rest_assets_path_"
_PATH_FIELD = re.compile(r"\{resources\.([A-Za-z0-9_]+)\.([A-Za-z_][A-Za-z0-9_]*)\}")


def _point_at_parent(endpoint: dict[str, Any], parent: str, private: str) -> list[str]:
    """Make the child read `private` instead of `parent`; return the parent fields its path must get encoded."""
    encoded: list[str] = []

    def to_private(match: re.Match[str]) -> str:
        if match.group(1) != parent:
            return match.group(0)
        encoded.append(match.group(2))
        return "{resources.%s.%s%s}" % (private, _ENCODED_PREFIX, match.group(2))

    endpoint["path"] = _PATH_FIELD.sub(to_private, endpoint["path"])
    old, new = "{resources.%s." % parent, "{resources.%s." % private
    endpoint["path"] = endpoint["path"].replace(old, new)
    for key, value in (endpoint.get("params") or {}).items():
        if isinstance(value, str):
            endpoint["params"][key] = value.replace(old, new)
        elif isinstance(value, dict) and value.get("type") == "resolve" and value.get("resource") == parent:
            field = str(value.get("field"))
            in_path = "{%s}" % key in endpoint["path"] and re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", field)
            if in_path:
                encoded.append(field)
            endpoint["params"][key] = {**value, "resource": private,
                                       "field": _ENCODED_PREFIX + field if in_path else field}
    return encoded


def _path_encoder(fields: list[str], parent: str, child: str) -> Callable[[dict[str, Any]], dict[str, Any]]:
    """A map step adding `_rest_assets_path_<field>`: the field's value percent-encoded as one path segment.

    `.` and `..` are refused: in any encoding they mean "this/the parent
    folder" (RFC 3986 6.2.2.2), so no request could stay on the intended path.
    """

    def encode(record: dict[str, Any]) -> dict[str, Any]:
        for name in fields:
            if name not in record:
                continue
            value = str(record[name])
            if value.strip(".") == "" and value:
                raise LoadError(
                    f"resource '{parent}': the value {value!r} of '{name}' cannot be a URL path segment of "
                    f"child resource '{child}' ('.' and '..' would move the request to another path)")
            record[_ENCODED_PREFIX + name] = quote(value, safe="")
        return record

    return encode


def _renamer(renames: dict[str, str]) -> Callable[[Any], Any]:
    """Renames columns of a record (dict) or of a batch (Arrow table)."""

    def rename(item: Any) -> Any:
        if isinstance(item, pa.Table):
            return item.rename_columns([renames.get(name, name) for name in item.column_names])
        for old, new in renames.items():
            if old in item:
                item[new] = item.pop(old)
        return item

    return rename


def _token_url(source: str, auth: dict[str, Any]) -> str | None:
    configured = auth.get("token_url") or auth.get("access_token_url")
    if not configured:
        return None
    return str(resolve_setting(source, "token_url", configured))


def _build_session(spec: SourceSpec, base_url: str, token_url: str | None,
                   sleep: Callable[[float], None]) -> GuardedSession:
    base_path = urlsplit(base_url).path
    routes = [
        EndpointRoute.for_path(r.name, base_path, r.path, RetryPolicy.from_spec(r.endpoint.get("error_handler")))
        for r in spec.resources
    ]
    hosts = {urlsplit(base_url).netloc}
    if token_url:
        hosts.add(urlsplit(token_url).netloc)
    return GuardedSession(
        source=spec.name,
        allowed_hosts=hosts,
        routes=routes,
        default_policy=RetryPolicy(),
        timeout=float(spec.client.get("timeout", DEFAULT_TIMEOUT_SECONDS)),
        sleep=sleep,
        allow_insecure_http=bool(spec.client.get("allow_insecure_http", False)),
        sends_credentials=_sends_credentials(spec),
        connections_per_host=_child_concurrency(spec),
    )


def _child_concurrency(spec: SourceSpec) -> int:
    return int(spec.client.get("child_concurrency", DEFAULT_CHILD_CONCURRENCY))


def _sends_credentials(spec: SourceSpec) -> bool:
    """Whether requests of `spec` carry anything secret (an auth, or any `{secret: KEY}` value)."""
    return bool(spec.secret_keys or spec.client.get("auth") or any(r.endpoint.get("auth") for r in spec.resources))


def _compile_resource(spec: SourceSpec, resource: ResourceSpec, session: GuardedSession,
                      token_url: str | None, max_pages: int | None) -> dict[str, Any]:
    config = resolve_secrets(spec.name, copy.deepcopy(resource.config))
    for key in _RESOURCE_EXTENSIONS:
        config.pop(key, None)
    endpoint = config["endpoint"]
    for key in _ENDPOINT_EXTENSIONS:
        endpoint.pop(key, None)
    if "paginator" in endpoint:
        endpoint["paginator"] = build_paginator(endpoint["paginator"], max_pages)
    if "auth" in endpoint:
        endpoint["auth"] = build_auth(spec.name, endpoint["auth"], session, token_url)
    selector = endpoint.get("data_selector")
    if isinstance(selector, str):
        # dlt would re-parse a string selector on every page; a compiled path is parsed once
        endpoint["data_selector"] = jsonpath.compile_path(selector)
    validator = response_validator(spec.name, resource.name, selector)
    endpoint["response_actions"] = [*endpoint.get("response_actions", []), validator]
    return config
