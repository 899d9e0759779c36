"""Compile a SourceSpec into a working dlt `rest_api` source.

Runs at materialization time, not at definition load: this is where secrets
are resolved, base/token URL overrides read, and our runtime pieces (auth,
paginators, retry policy, response checks, credential scoping) are put into
dlt's config in place of the dialect's extension keys.
"""

from __future__ import annotations

import copy
import functools
import time
from collections.abc import Callable, Collection
from dataclasses import dataclass, replace
from typing import Any
from urllib.parse import urlsplit

from dlt.common import jsonpath
from dlt.extract.source import DltSource
from dlt.sources.rest_api import rest_api_source

from rest_assets.compile.parent_streams import ParentLink, link_children, reading_parent
from rest_assets.dialect.model import ResourceSpec, SecretRef, SourceSpec, primary_key_fields
from rest_assets.dlt_internals import direct_transformer_call, replace_generator
from rest_assets.errors import MissingSecretError, MissingSettingError
from rest_assets.runtime.arrow_pages import use_arrow_pages
from rest_assets.runtime.auth import build_auth
from rest_assets.runtime.bounded_body import DEFAULT_MAX_RESPONSE_MIB
from rest_assets.runtime.decimals import DecimalRounder, decimal_scales, with_decimal_defaults
from rest_assets.runtime.fanout import DEFAULT_CHILD_CONCURRENCY, fan_out, read_ahead
from rest_assets.runtime.http import DEFAULT_TIMEOUT_SECONDS, GuardedSession
from rest_assets.runtime.paginators import build_paginator
from rest_assets.runtime.parent_records import ParentRecords
from rest_assets.runtime.readiness import unset_values
from rest_assets.runtime.redaction import install_log_redaction
from rest_assets.runtime.responses import response_validator
from rest_assets.runtime.retry import EndpointRoute, RetryPolicy
from rest_assets.runtime.secrets import resolve_secrets, resolve_setting

# Keys of the dialect that dlt does not know; they are compiled into objects.
_RESOURCE_EXTENSIONS = ("freshness", "description")
_ENDPOINT_EXTENSIONS = ("error_handler", "partition_router")
# Parents handed to a child's worker pool at once: enough that the last, partly idle round is a small share.
PARENTS_PER_WORKER = 8


@dataclass
class CompiledSource:
    """A dlt source plus the transport whose counters describe the run."""

    source: DltSource
    session: GuardedSession


def compile_source(
    spec: SourceSpec,
    *,
    sleep: Callable[[float], None] = time.sleep,
    arrow_pages: bool = True,
    extracted: Collection[str] | None = None,
) -> CompiledSource:
    """Build the dlt source for `spec`, resolving secrets now (raises MissingSecretError).

    With `arrow_pages` each page reaches dlt as one Arrow table (see runtime.arrow_pages).
    `extracted` names the resources the run will extract (default: all): only
    they and the parents they are fetched through are compiled, and it decides
    whether top-level resources read ahead (see `_fetch_concurrently`).
    """
    spec = _narrowed(spec, extracted)
    install_log_redaction()
    try:
        return _compile(spec, sleep, arrow_pages, extracted)
    except (MissingSecretError, MissingSettingError):
        unset = unset_values(spec)  # looked up only when a run cannot start: name every missing value at once
        if len(unset) > 1:
            raise MissingSecretError(
                f"source '{spec.name}' needs {len(unset)} secrets or settings that are not set: {', '.join(unset)} "
                f"(the environment, or [sources.{spec.name}] in .dlt/secrets.toml or .dlt/config.toml)"
            ) from None
        raise


def _compile(
    spec: SourceSpec, sleep: Callable[[float], None], arrow_pages: bool, extracted: Collection[str] | None
) -> CompiledSource:
    client = resolve_secrets(spec.name, spec.client)
    base_url = str(resolve_setting(spec.name, "base_url", client["base_url"]))
    url = urlsplit(base_url)
    if url.scheme not in ("http", "https") or not url.hostname:
        raise MissingSettingError(
            f"source '{spec.name}': the base URL is not an http(s) URL with a host; set SOURCES__{spec.name.upper()}__BASE_URL "
            "(or the spec's client.base_url) to one, e.g. https://api.example.com"
        )
    auth_config = client.get("auth") or {}
    token_url = _token_url(spec.name, auth_config)
    session = _build_session(spec, base_url, [token_url, *_endpoint_token_urls(spec)], sleep)
    max_pages = client.get("max_pages")
    dlt_client: dict[str, Any] = {
        "base_url": base_url,
        "session": session,
        "auth": build_auth(spec.name, auth_config, session, token_url, _refresh_token_key(spec.client.get("auth"))),
    }
    if client.get("headers"):
        dlt_client["headers"] = client["headers"]
    if client.get("paginator"):
        dlt_client["paginator"] = build_paginator(client["paginator"], max_pages)
    resources = {r.name: _compile_resource(spec, r, session, max_pages, client.get("paginator")) for r in spec.resources}
    if arrow_pages:  # dlt's parquet writer, which these runs load through, reads a decimal hint its own way
        for resource_config in resources.values():
            if resource_config.get("columns"):
                resource_config["columns"] = with_decimal_defaults(resource_config["columns"])
    records = {name: ParentRecords(name) for name in _parents_read_directly(spec, extracted)}
    resource_configs, links = link_children(spec, resources, records)
    config: Any = {"client": dlt_client, "resources": resource_configs}  # dlt's RESTAPIConfig
    source = rest_api_source(config, name=spec.name)
    workers = _child_concurrency(spec)
    if workers > 1:
        several = len(extracted if extracted is not None else spec.resources) > 1
        _fetch_concurrently(spec, source, workers, links, read_ahead_top_level=several)
    for name, link in links.items():
        replace_generator(source.resources[name], reading_parent(link, records.get(link.reads)))
    if arrow_pages:
        for resource in spec.resources:
            scales = decimal_scales(resources[resource.name].get("columns") or {})
            if scales:
                source.resources[resource.name].add_step(DecimalRounder(scales, resource.name))
            if resource.config.get("processing_steps"):
                continue  # dlt applies processing steps to whatever an item is: they need records, not Arrow batches
            use_arrow_pages(
                source.resources[resource.name],
                resources[resource.name],
                functools.partial(session.stats.add, "batches_as_rows", resource.name),
                rows_per_batch=1 if _stops_early(resource) else None,  # one page a batch: dlt stops after it
                parent_records=records.get(resource.name),
            )
    return CompiledSource(source=source, session=session)


def _narrowed(spec: SourceSpec, extracted: Collection[str] | None) -> SourceSpec:
    """`spec` with only the `extracted` resources and their ancestors (all of them for None or none)."""
    return replace(spec, resources=spec.with_ancestors(extracted)) if extracted else spec


def _parents_read_directly(spec: SourceSpec, extracted: Collection[str] | None) -> list[str]:
    """The parents whose children read them, not a private copy (see compile.parent_streams).

    Those the run loads itself, unless incremental: a child must see every
    parent that changed since *its* last run, not since the parent's.
    """
    loaded = set(extracted) if extracted else {r.name for r in spec.resources}
    return [r.name for r in spec.resources if r.name in loaded and spec.children_of(r.name) and not r.incrementals]


def _fetch_concurrently(
    spec: SourceSpec, source: DltSource, workers: int, links: dict[str, ParentLink], read_ahead_top_level: bool
) -> None:
    """Overlap requests with each other and with dlt's work (see runtime.fanout).

    A child fetches `workers` parents' children at once, from parent batches
    (a private parent stream is read ahead in batches that keep the workers busy). With
    `read_ahead_top_level`, top-level resources fetch their next pages on a
    thread: dlt takes items from its resources in turn, so a resource waiting
    on the network would hold up the others. A run of one resource has nothing
    to overlap, and the thread costs there (a bulk load measured 10% slower).
    """
    for resource in spec.resources:
        compiled = source.resources[resource.name]
        if not resource.parent:
            if read_ahead_top_level and not _stops_early(resource):
                replace_generator(compiled, lambda gen: read_ahead(gen, min_records=1))
            continue
        replace_generator(compiled, lambda gen: fan_out(direct_transformer_call(gen), workers))
        parent, reads = spec.resource(resource.parent.parent), links[resource.name].reads
        # a grandchild's parent stream is itself a child; a parent read directly is read ahead as a top-level resource
        if not parent.parent and not _stops_early(parent) and reads != parent.name:
            replace_generator(source.resources[reads], lambda gen: read_ahead(gen, min_records=workers * PARENTS_PER_WORKER))


def _stops_early(resource: ResourceSpec) -> bool:
    """Whether dlt may stop the resource's paging early: an incremental (config or param) with `row_order`.

    dlt closes the page generator after the page holding the first row out of
    range; pages read ahead, or joined into one batch, would be requests plain
    dlt does not send.
    """
    return any(i.get("row_order") for i in resource.incrementals)


def _token_url(source: str, auth: dict[str, Any]) -> str | None:
    """The client-level auth's token URL; `SOURCES__<SOURCE>__TOKEN_URL` overrides it (and only it)."""
    if not isinstance(auth, dict):
        return None
    configured = auth.get("token_url") or auth.get("access_token_url")
    if not configured:
        return None
    return str(resolve_setting(source, "token_url", configured))


def _endpoint_token_urls(spec: SourceSpec) -> list[str]:
    """The token URLs of endpoint-level auths, as configured (each auth uses its own)."""
    urls = []
    for resource in spec.resources:
        auth = resource.endpoint.get("auth")
        if isinstance(auth, dict) and (auth.get("token_url") or auth.get("access_token_url")):
            urls.append(str(resolve_secrets(spec.name, auth.get("token_url") or auth.get("access_token_url"))))
    return urls


def _refresh_token_key(auth: Any) -> str | None:
    """The secret KEY an auth's refresh token comes from (named in the rotation warning)."""
    value = auth.get("refresh_token") if isinstance(auth, dict) else None
    return value.key if isinstance(value, SecretRef) else None


def _build_session(
    spec: SourceSpec, base_url: str, token_urls: list[str | None], sleep: Callable[[float], None]
) -> GuardedSession:
    base_path = urlsplit(base_url).path
    routes = [
        EndpointRoute.for_path(r.name, base_path, r.path, RetryPolicy.from_spec(r.endpoint.get("error_handler")))
        for r in spec.resources
    ]
    hosts = {urlsplit(base_url).netloc} | {urlsplit(url).netloc for url in token_urls if url}
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
        max_response_mib=float(spec.client.get("max_response_mib", DEFAULT_MAX_RESPONSE_MIB)),
    )


def _child_concurrency(spec: SourceSpec) -> int:
    return int(spec.client.get("child_concurrency", DEFAULT_CHILD_CONCURRENCY))


def _sends_credentials(spec: SourceSpec) -> bool:
    """Whether requests of `spec` carry anything secret (an auth, or any `{secret: KEY}` value)."""
    return bool(spec.secret_keys or spec.client.get("auth") or any(r.endpoint.get("auth") for r in spec.resources))


_FORMATTED_BY_DLT = ("params", "json", "data", "headers")


def _escape_braces(value: str) -> str:
    return value.replace("{", "{{").replace("}", "}}")


def _percent_encode_braces(value: str) -> str:
    return value.replace("{", "%7B").replace("}", "%7D")


def _compile_resource(
    spec: SourceSpec, resource: ResourceSpec, session: GuardedSession, max_pages: int | None, client_paginator: Any
) -> dict[str, Any]:
    config = copy.deepcopy(resource.config)
    endpoint = config["endpoint"]
    # dlt formats these strings ({resources...}, {incremental...}): a resolved value's braces are escaped,
    # in the path percent-encoded (as requests sends them; dlt parses a path twice, so `{{` would not do)
    formatted = {key: endpoint.pop(key) for key in _FORMATTED_BY_DLT if key in endpoint}
    path = endpoint.pop("path", None)
    config = resolve_secrets(spec.name, config)
    endpoint = config["endpoint"]
    endpoint.update(resolve_secrets(spec.name, formatted, escape=_escape_braces))
    if path is not None:
        endpoint["path"] = resolve_secrets(spec.name, path, escape=_percent_encode_braces)
    for key in _RESOURCE_EXTENSIONS:
        config.pop(key, None)
    for key in _ENDPOINT_EXTENSIONS:
        endpoint.pop(key, None)
    record_key = primary_key_fields(config)
    if endpoint.get("paginator") is not None:
        endpoint["paginator"] = build_paginator(endpoint["paginator"], max_pages, record_key)
    elif record_key and client_paginator:  # the client's, as dlt would copy it, knowing this resource's key
        endpoint["paginator"] = build_paginator(client_paginator, max_pages, record_key)
    if "auth" in endpoint:
        # its own token_url: the client's (and its TOKEN_URL override) never receives this auth's credentials
        endpoint["auth"] = build_auth(
            spec.name, endpoint["auth"], session, None, _refresh_token_key(resource.endpoint.get("auth"))
        )
    selector = endpoint.get("data_selector")
    if isinstance(selector, str):
        # dlt would re-parse a string selector on every page; a compiled path is parsed once
        endpoint["data_selector"] = jsonpath.compile_path(selector)
    validator = response_validator(
        spec.name,
        resource.name,
        selector,
        lambda n: session.stats.add("secrets_masked", resource.name, n),
        # records that load as they arrive: no processing step may drop or filter what plain dlt then loads
        refuse_huge_integers=resource.is_asset and not resource.config.get("processing_steps"),
    )
    endpoint["response_actions"] = [*endpoint.get("response_actions", []), validator]
    compiled: dict[str, Any] = config
    return compiled
