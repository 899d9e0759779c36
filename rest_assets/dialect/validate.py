"""Turn one parsed YAML document into a validated :class:`SourceSpec`.

Two passes, as in the best declarative tools: structure (types, unknown keys
with a "did you mean"), then meaning (parents exist, placeholders bound,
unique names, no cycles, durations and cron parse). Every error names file,
line, resource and dotted key; values under secret-looking keys are masked.
"""

from __future__ import annotations

import copy
import difflib
import re
from collections.abc import Iterable
from datetime import timedelta
from typing import Any

from dlt.common.normalizers.naming.snake_case import NamingConvention
from dlt.common.schema.utils import merge_columns

from rest_assets.dialect import vocabulary as vocab
from rest_assets.dialect.cron import is_valid_cron
from rest_assets.dialect.dlt_check import check_with_dlt
from rest_assets.dialect.durations import parse_duration
from rest_assets.dialect.model import CONFIG_TEMPLATE, ConfigRef, Freshness, ResourceSpec, SecretRef, SourceSpec
from rest_assets.dialect.parents import bind_parents, check_no_cycles
from rest_assets.dialect.processing_steps import ProcessingStepError, build_processing_steps
from rest_assets.dialect.stop_condition import StopConditionSyntaxError, parse_stop_condition
from rest_assets.dialect.yaml_source import Path, YamlDocument
from rest_assets.dlt_internals import ensure_table_schema_columns
from rest_assets.errors import SpecError, StopConditionError

IDENTIFIER = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
SNAKE_CASE = re.compile(r"^[a-z_][a-z0-9_]*$")
PLACEHOLDER = re.compile(r"\{([A-Za-z_][A-Za-z0-9_]*)\.([^{}]*)\}")
PLACEHOLDER_ROOTS = ("config", "incremental", "resources")
_NAMING = NamingConvention()
MAX_SOURCE_NAME_LENGTH = 63  # a Dagster tag value holds it (dlt takes 64 for a source's, and its schema's, name)


class _Checker:
    """Holds the document so every failure can point at a file and line."""

    def __init__(self, doc: YamlDocument) -> None:
        self.doc = doc

    def fail(self, path: Path, message: str, resource: str | None = None) -> SpecError:
        resource = resource or self._resource_at(path)
        key = _dotted(path, resource)
        return SpecError(message, file=self.doc.file, line=self.doc.line_of(path), resource=resource, key=key or None)

    def _resource_at(self, path: Path) -> str | None:
        """The name of the resource `path` is in (`resources.<i>...`), where the spec gives one."""
        if len(path) < 3 or path[0] != "resources" or not isinstance(path[1], int):
            return None
        resources = self.doc.data.get("resources") if isinstance(self.doc.data, dict) else None
        raw = resources[path[1]] if isinstance(resources, list) and path[1] < len(resources) else None
        name = raw.get("name") if isinstance(raw, dict) else raw
        return name if isinstance(name, str) and IDENTIFIER.match(name) else None

    def mapping(self, value: Any, path: Path, resource: str | None = None) -> dict[str, Any]:
        if not isinstance(value, dict):
            raise self.fail(path, f"must be a mapping, got {_type_name(value)}", resource)
        return value

    def keys(self, mapping: dict[str, Any], allowed: Iterable[str], path: Path, resource: str | None = None) -> None:
        allowed = sorted(allowed)
        for key in mapping:
            if key not in allowed:
                hint = difflib.get_close_matches(str(key), allowed, n=1)
                suggestion = f" Did you mean '{hint[0]}'?" if hint else ""
                raise self.fail((*path, key), f"unknown key '{key}'.{suggestion} Allowed here: {', '.join(allowed)}", resource)


def _dotted(path: Path, resource: str | None) -> str:
    parts = list(path)
    if resource is not None and len(parts) >= 2 and parts[0] == "resources":
        parts = parts[2:]
    return ".".join(str(p) for p in parts)


def _type_name(value: Any) -> str:
    return {dict: "a mapping", list: "a list", str: "a string", type(None): "nothing"}.get(type(value), type(value).__name__)


def build_source_spec(doc: YamlDocument, default_name: str) -> SourceSpec:
    """Validate `doc` and return the normalised SourceSpec (raises SpecError)."""
    check = _Checker(doc)
    data = check.mapping(doc.data, ())
    data = _resolve_secret_markers(data, (), check)
    check.keys(data, vocab.TOP_LEVEL_KEYS, ())
    name = data.get("name", default_name)
    if not isinstance(name, str) or not SNAKE_CASE.match(name):
        raise check.fail(("name",), f"'{name}' is not a snake_case identifier (letters, digits, underscores)")
    if len(name) > MAX_SOURCE_NAME_LENGTH:
        raise check.fail(
            ("name",),
            f"'{name}' is {len(name)} characters long; a source name has {MAX_SOURCE_NAME_LENGTH} at most (Dagster "
            "tags runs with it, and takes no longer value)",
        )
    if _NAMING.normalize_identifier(name) != name:  # the source's dataset, as dlt names it
        raise check.fail(
            ("name",), f"'{name}' is not a name dlt keeps: its dataset would be '{_NAMING.normalize_identifier(name)}'"
        )
    if "description" in data and not isinstance(data["description"], str):
        raise check.fail(("description",), "must be text")
    client = _check_client(check, data.get("client"))
    defaults = _check_resource_body(
        check, data.get("resource_defaults", {}), ("resource_defaults",), None, vocab.RESOURCE_DEFAULT_KEYS
    )
    if isinstance(check.mapping(data.get("resource_defaults", {}), ("resource_defaults",)).get("endpoint"), str):
        raise check.fail(("resource_defaults", "endpoint"), "must be a mapping (dlt takes a path alone only in a resource)")
    raw_resources = data.get("resources")
    if not isinstance(raw_resources, list) or not raw_resources:
        raise check.fail(("resources",), "must be a non-empty list of resources")
    resources = [_build_resource(check, raw, i, defaults) for i, raw in enumerate(raw_resources)]
    _check_unique_names(check, resources)
    bind_parents(check, resources)
    check_no_cycles(check, resources)
    check_with_dlt(client, defaults, resources, check.fail)
    schedule = data.get("schedule")
    if schedule is not None and (not isinstance(schedule, str) or not is_valid_cron(schedule)):
        raise check.fail(
            ("schedule",),
            f"'{schedule}' is not a valid cron expression (five fields, e.g. '0 * * * *', or @hourly/@daily/@weekly/@monthly)",
        )
    return SourceSpec(
        name=name,
        file=doc.file,
        client=client,
        resources=resources,
        schedule=schedule,
        description=data.get("description"),
        lines=dict(doc.lines),
    )


def _resolve_secret_markers(value: Any, path: Path, check: _Checker) -> Any:
    """Replace every `{secret: KEY}` mapping with a SecretRef and every `{config: KEY}` with a ConfigRef."""
    if isinstance(value, dict):
        for marker, ref in (("secret", SecretRef), ("config", ConfigRef)):
            if marker in value:
                key = value[marker]
                if len(value) != 1 or not isinstance(key, str) or not IDENTIFIER.match(key):
                    raise check.fail(
                        path, f"a {marker} is written {{{marker}: KEY}} with KEY an identifier and nothing else beside it"
                    )
                return ref(key)
        _refuse_misspelt_marker(value, path, check)
        return {k: _resolve_secret_markers(v, (*path, k), check) for k, v in value.items()}
    if isinstance(value, list):
        return [_resolve_secret_markers(v, (*path, i), check) for i, v in enumerate(value)]
    if isinstance(value, str):
        _check_placeholders(check, value, path)
    return value


def _refuse_misspelt_marker(value: dict[Any, Any], path: Path, check: _Checker) -> None:
    """`{secrett: KEY}`, `{Secret: KEY}`: a marker written wrong would be sent as a literal mapping.

    Request bodies (`json`, `data`) are free-form and left alone.
    """
    if len(value) != 1 or any(part in ("json", "data") for part in path):
        return
    ((key, item),) = value.items()
    if not isinstance(key, str) or not isinstance(item, str):
        return
    hint = difflib.get_close_matches(key.lower(), ["secret", "config"], n=1, cutoff=0.7)
    if hint:
        raise check.fail((*path, key), f"unknown key '{key}': did you mean '{hint[0]}'? (written {{{hint[0]}: KEY}})")


_PARTITION_LIKE = re.compile(r"\{\{\s*([A-Za-z_]\w*)\s*[\[.]")  # `{{ name[...] }}`, `{{ name.field }}`


def _check_placeholders(check: _Checker, text: str, path: Path) -> None:
    """`{<root>.<...>}` placeholders must be dlt's (`resources`, `incremental`) or a setting (`config.KEY`)."""
    for root, rest in PLACEHOLDER.findall(text):
        if root == "config" and not IDENTIFIER.match(rest):
            raise check.fail(path, f"'{{config.{rest}}}': a setting is written {{config.KEY}} with KEY an identifier")
        if root not in PLACEHOLDER_ROOTS:
            hint = difflib.get_close_matches(root, PLACEHOLDER_ROOTS, n=1)
            suggestion = f" Did you mean '{{{hint[0]}.{rest}}}'?" if hint else ""
            raise check.fail(
                path,
                f"unknown placeholder '{{{root}.{rest}}}'.{suggestion} Allowed: {{config.KEY}} "
                "(a setting), {resources.<parent>.<field>}, {incremental.start_value}, "
                "{incremental.end_value}",
            )
    for name in _PARTITION_LIKE.findall(text):
        if name != "stream_partition" and difflib.get_close_matches(name, ["stream_partition"], n=1, cutoff=0.8):
            raise check.fail(path, f"unknown placeholder '{{{{ {name}[...] }}}}'. Did you mean 'stream_partition'?")
    if (
        path
        and path[-1] == "base_url"
        and set(PLACEHOLDER.findall(text)) - {("config", k) for k in CONFIG_TEMPLATE.findall(text)}
    ):
        raise check.fail(path, "only {config.KEY} settings may be placed in base_url")


def _check_client(check: _Checker, client: Any) -> dict[str, Any]:
    client = check.mapping(client, ("client",))
    check.keys(client, vocab.CLIENT_KEYS, ("client",))
    base_url = client.get("base_url")
    if not isinstance(base_url, (str, SecretRef, ConfigRef)) or (
        isinstance(base_url, str) and not re.match(r"^(https?://|\{config\.)", base_url)
    ):
        raise check.fail(
            ("client", "base_url"), "is required: an http(s) URL such as https://api.example.com (or a {config.KEY} setting)"
        )
    if "auth" in client:
        _check_auth(check, client["auth"], ("client", "auth"), None)
    if "paginator" in client:
        _check_paginator(check, client["paginator"], ("client", "paginator"), None)
    for key in ("timeout", "max_pages", "child_concurrency", "max_response_mib"):
        if key in client and (not isinstance(client[key], (int, float)) or isinstance(client[key], bool) or client[key] <= 0):
            raise check.fail(("client", key), "must be a positive number")
    if "allow_insecure_http" in client and not isinstance(client["allow_insecure_http"], bool):
        raise check.fail(("client", "allow_insecure_http"), "must be true or false (true lets credentials go over plain http://)")
    checked: dict[str, Any] = client
    return checked


def _typed_mapping(
    check: _Checker,
    value: Any,
    path: Path,
    resource: str | None,
    what: str,
    keys_by_type: dict[str, frozenset[str]],
    default: str,
) -> tuple[dict[str, Any], str]:
    """A mapping whose `type` picks its allowed keys from a registry; returns it and the type."""
    value = check.mapping(value, path, resource)
    kind = value.get("type", default)
    if not isinstance(kind, str) or kind not in keys_by_type:
        raise check.fail((*path, "type"), f"unknown {what} type '{kind}'; allowed: {', '.join(sorted(keys_by_type))}", resource)
    check.keys(value, keys_by_type[kind], path, resource)
    return value, kind


def _check_auth(check: _Checker, auth: Any, path: Path, resource: str | None) -> None:
    if isinstance(auth, str):
        if auth not in vocab.AUTH_KEYS:  # never echo it: a token written as `auth: <token>` must not leak
            raise check.fail(
                path,
                f"a plain-string auth must be one of {', '.join(sorted(vocab.AUTH_KEYS))}; "
                "put a token under auth.token as {secret: KEY}",
                resource,
            )
        auth = {"type": auth}
    auth, auth_type = _typed_mapping(check, auth, path, resource, "auth", vocab.AUTH_KEYS, default="bearer")
    required = {
        "oauth2": ("client_id", "client_secret", "token_url"),
        "oauth2_client_credentials": ("access_token_url",),
        "api_key": ("api_key",),
        "http_basic": ("username", "password"),
    }.get(auth_type, ())
    for key in required:
        if key not in auth:
            raise check.fail(path, f"auth type '{auth_type}' needs '{key}'", resource)
    if auth_type == "bearer" and not ({"token", "api_key"} & set(auth)):
        raise check.fail(path, "auth type 'bearer' needs 'token' (or its alias 'api_key')", resource)
    store = auth.get("refresh_token_store")
    if store is not None and (not isinstance(store, str) or not store.strip()):
        raise check.fail(
            (*path, "refresh_token_store"),
            "must be a file path outside the project, e.g. ~/.config/rest_assets/<source>.refresh_token",
            resource,
        )
    if auth.get("location", "header") not in ("header", "query", "param", "cookie"):
        raise check.fail((*path, "location"), "must be one of header, query, cookie", resource)


def _check_paginator(check: _Checker, paginator: Any, path: Path, resource: str | None) -> None:
    if isinstance(paginator, str):
        paginator = {"type": paginator}
    paginator, kind = _typed_mapping(check, paginator, path, resource, "paginator", vocab.PAGINATOR_KEYS, default="auto")
    if "stop_condition" in paginator:
        try:
            parse_stop_condition(paginator["stop_condition"])
        except StopConditionSyntaxError as exc:
            err = check.fail(
                (*path, "stop_condition"),
                f"{exc}; allowed: a dotted path or response['k'] / response.get('k', default) with not/and/or, "
                "'is none', '==', '!='",
                resource,
            )
            raise StopConditionError(err.detail, file=err.file, line=err.line, resource=err.resource, key=err.key) from None
    for key in ("limit", "maximum_offset", "maximum_page", "base_page", "page", "offset"):
        if key in paginator and (not isinstance(paginator[key], int) or isinstance(paginator[key], bool) or paginator[key] < 0):
            raise check.fail((*path, key), "must be a non-negative integer", resource)


def _check_error_handler(check: _Checker, handler: Any, path: Path, resource: str | None) -> None:
    handler = check.mapping(handler, path, resource)
    check.keys(handler, vocab.ERROR_HANDLER_KEYS, path, resource)
    codes = handler.get("retry_on_status_codes", [])
    if not isinstance(codes, list) or not all(isinstance(c, int) and 100 <= c <= 599 for c in codes):
        raise check.fail((*path, "retry_on_status_codes"), "must be a list of HTTP status codes (100-599)", resource)
    retries = handler.get("max_retries", 3)
    if not isinstance(retries, int) or isinstance(retries, bool) or not 0 <= retries <= 50:
        raise check.fail((*path, "max_retries"), "must be an integer from 0 to 50", resource)
    for key in ("backoff_factor", "max_backoff"):
        value = handler.get(key, 1)
        if not isinstance(value, (int, float)) or isinstance(value, bool) or value < 0:
            raise check.fail((*path, key), "must be a non-negative number of seconds", resource)


def _check_freshness(check: _Checker, value: Any, path: Path, resource: str | None) -> None:
    """Each window given is a duration of a minute or more (whether both are there is checked once
    `resource_defaults` are merged: a resource may set one window and take the other from the defaults)."""
    value = check.mapping(value, path, resource)
    check.keys(value, vocab.FRESHNESS_KEYS, path, resource)
    for key in ("fail_window", "warn_window"):
        if key in value:
            try:
                window = parse_duration(value[key])
            except ValueError as exc:
                raise check.fail((*path, key), str(exc), resource) from None
            if window < timedelta(minutes=1):
                raise check.fail((*path, key), f"'{value[key]}' is under a minute, the least Dagster's freshness takes", resource)


def _merged_freshness(check: _Checker, value: dict[str, Any], path: Path, resource: str) -> Freshness:
    """A resource's freshness once merged with the defaults' window by window: a fail window, and a shorter warn window."""
    if "fail_window" not in value:
        raise check.fail(path, "needs 'fail_window' (e.g. 6h), here or in resource_defaults", resource)
    fail, warn = parse_duration(value["fail_window"]), parse_duration(value["warn_window"]) if "warn_window" in value else None
    if warn is not None and warn >= fail:
        raise check.fail(
            (*path, "warn_window"),
            f"must be shorter than fail_window ({value['fail_window']}): an asset warns before it fails",
            resource,
        )
    return Freshness(fail, warn)


def _check_resource_body(check: _Checker, body: Any, path: Path, resource: str | None, allowed: Iterable[str]) -> dict[str, Any]:
    body = check.mapping(body, path, resource)
    check.keys(body, allowed, path, resource)
    endpoint = body.get("endpoint")
    if isinstance(endpoint, str):
        body = {**body, "endpoint": {"path": endpoint}}
    elif "endpoint" in body:  # `endpoint:` left empty is an error too, not a crash later
        _check_endpoint(check, endpoint, (*path, "endpoint"), resource)
    wd = body.get("write_disposition")
    if wd is not None and not (isinstance(wd, dict) or (isinstance(wd, str) and wd in vocab.WRITE_DISPOSITIONS)):
        raise check.fail(
            (*path, "write_disposition"),
            f"must be one of {', '.join(sorted(vocab.WRITE_DISPOSITIONS))} (or dlt's mapping form)",
            resource,
        )
    if "freshness" in body:
        _check_freshness(check, body["freshness"], (*path, "freshness"), resource)
    if "columns" in body:
        _check_columns(check, body["columns"], (*path, "columns"), resource)
    checked: dict[str, Any] = body
    return checked


def _check_columns(check: _Checker, columns: Any, path: Path, resource: str | None) -> None:
    """dlt's `columns`: a mapping of column name to hints, or a list of hints each with its `name`."""
    allowed = "a mapping of column name to dlt column hints, or a list of hints each with a 'name'"
    if isinstance(columns, dict):
        entries = [((*path, name), name, hints) for name, hints in columns.items()]
    elif isinstance(columns, list):
        entries = [((*path, i), hints.get("name") if isinstance(hints, dict) else None, hints) for i, hints in enumerate(columns)]
    else:
        raise check.fail(path, f"must be {allowed}", resource)
    for where, name, hints in entries:
        if not isinstance(name, str) or not name or not isinstance(hints, dict):
            raise check.fail(where, f"must be {allowed} (a column name is a non-empty string, its hints a mapping)", resource)


def _check_endpoint(check: _Checker, endpoint: Any, path: Path, resource: str | None) -> None:
    endpoint = check.mapping(endpoint, path, resource)
    check.keys(endpoint, vocab.ENDPOINT_KEYS, path, resource)
    if "path" in endpoint and not isinstance(endpoint["path"], str):
        raise check.fail((*path, "path"), "must be a string", resource)
    for key in ("params", "headers", "json"):
        if key in endpoint and not isinstance(endpoint[key], dict):
            raise check.fail((*path, key), "must be a mapping", resource)
    if endpoint.get("paginator") is not None:  # null is dlt's "no override": the client's paginator applies
        _check_paginator(check, endpoint["paginator"], (*path, "paginator"), resource)
    if "auth" in endpoint:
        _check_auth(check, endpoint["auth"], (*path, "auth"), resource)
    if "error_handler" in endpoint:
        _check_error_handler(check, endpoint["error_handler"], (*path, "error_handler"), resource)
    if "incremental" in endpoint:
        inc = check.mapping(endpoint["incremental"], (*path, "incremental"), resource)
        check.keys(inc, vocab.INCREMENTAL_KEYS, (*path, "incremental"), resource)
        if "cursor_path" not in inc:
            raise check.fail(
                (*path, "incremental"), "needs 'cursor_path' (the record field that grows, e.g. updated_at)", resource
            )
    if "partition_router" in endpoint:
        router = check.mapping(endpoint["partition_router"], (*path, "partition_router"), resource)
        check.keys(router, vocab.PARTITION_ROUTER_KEYS, (*path, "partition_router"), resource)
        if "parent" not in router:
            raise check.fail((*path, "partition_router"), "needs 'parent' (the name of the parent resource)", resource)


def _build_resource(check: _Checker, raw: Any, index: int, defaults: dict[str, Any]) -> ResourceSpec:
    path: Path = ("resources", index)
    if isinstance(raw, str):
        raw = {"name": raw, "endpoint": {"path": raw}}
    raw = check.mapping(raw, path)
    name = raw.get("name")
    if not isinstance(name, str) or not IDENTIFIER.match(name):
        raise check.fail(
            (*path, "name"), f"each resource needs a 'name' that is an identifier (letters, digits, underscores), got {name!r}"
        )
    body = _check_resource_body(check, raw, path, name, vocab.RESOURCE_KEYS)
    if "path" not in body.get("endpoint", {}):  # as dlt does, before the defaults: a default path never applies
        body = {**body, "endpoint": {**body.get("endpoint", {}), "path": name}}
    merged = _merge_defaults(defaults, body)
    _check_names_are_written_out(check, merged, path, name)
    if isinstance(merged.get("columns"), list):  # dlt's list form, as the mapping dlt makes of it
        merged["columns"] = ensure_table_schema_columns(merged["columns"])
    if "processing_steps" in merged:
        merged["processing_steps"] = _processing_steps(check, merged["processing_steps"], path, name)
    freshness = _merged_freshness(check, merged["freshness"], (*path, "freshness"), name) if "freshness" in merged else None
    return ResourceSpec(name=name, config=merged, freshness=freshness, line=check.doc.line_of(path))


def _check_names_are_written_out(check: _Checker, resource: dict[str, Any], path: Path, name: str) -> None:
    """A description is text; table and key names are written in the spec, never settings or secrets
    (they name the table and columns at definition time, before any setting is read)."""
    if "description" in resource and not isinstance(resource["description"], str):
        raise check.fail((*path, "description"), "must be text", name)
    for key in ("table_name", "primary_key", "merge_key"):
        value = resource.get(key)
        values = value if isinstance(value, list) else [value]
        if any(isinstance(v, (SecretRef, ConfigRef)) for v in values):
            raise check.fail((*path, key), "must be written out in the spec, not a {secret: ...} or {config: ...}", name)


def _processing_steps(check: _Checker, steps: Any, path: Path, resource: str) -> list[dict[str, Any]]:
    """dlt's processing steps, each declarative body made into its callable once."""
    try:
        return build_processing_steps(steps)
    except ProcessingStepError as exc:
        raise check.fail((*path, "processing_steps", *exc.key), f"{exc}", resource) from None


def _merge_defaults(defaults: dict[str, Any], resource: dict[str, Any]) -> dict[str, Any]:
    """`resource_defaults` under a resource, merged exactly as dlt's rest_api merges them.

    Resource keys replace the default's wholesale (a `write_disposition` or
    `schema_contract` mapping included); endpoint keys too, except `params`
    and `json`, merged one level; `columns` merged per column, hint by hint.
    Our own `freshness` is merged window by window.
    """
    defaults, resource = copy.deepcopy(defaults), copy.deepcopy(resource)
    endpoint = {
        **defaults.get("endpoint", {}),
        **{k: v for k, v in resource.get("endpoint", {}).items() if k not in _MERGED_ENDPOINT_KEYS},
    }
    for key in _MERGED_ENDPOINT_KEYS:
        if key in resource.get("endpoint", {}):
            endpoint[key] = {**endpoint.get(key, {}), **resource["endpoint"][key]}
    default_columns, columns = defaults.get("columns"), resource.get("columns")
    if default_columns and columns:
        resource["columns"] = merge_columns(ensure_table_schema_columns(default_columns), ensure_table_schema_columns(columns))
    merged = {**defaults, **resource, "endpoint": endpoint}
    if isinstance(defaults.get("freshness"), dict) and isinstance(resource.get("freshness"), dict):
        merged["freshness"] = {**defaults["freshness"], **resource["freshness"]}  # ours: window by window
    return merged


_MERGED_ENDPOINT_KEYS = ("params", "json")


def _check_unique_names(check: _Checker, resources: list[ResourceSpec]) -> None:
    """Resource names, and the column names each resource declares, must stay apart in the destination.

    dlt normalizes names before it makes tables and columns (`Users` and
    `users` are both table `users`, `userId` and `user_id` both column
    `user_id`): two names that normalize alike would silently share one.
    """
    seen: dict[str, tuple[int, str]] = {}
    for index, resource in enumerate(resources):
        _check_name_is_kept(check, resource.name, index)
        # an unselected resource loads no table: only its name must stay apart from the others'
        table = normalized_identifier(resource.table_name if resource.is_asset else resource.name)
        if table in seen:
            first, first_name = seen[table]
            if first_name == resource.name:
                same = "duplicate resource name"
            elif normalized_identifier(first_name) == normalized_identifier(resource.name):
                same = f"resource name collides with '{first_name}' (resources[{first}]): both would load into table '{table}'"
            else:
                same = (
                    f"resource '{resource.name}' would load into table '{table}', as '{first_name}' (resources[{first}]) "
                    "does: each resource is an asset with a table of its own; give it another table_name"
                )
            raise check.fail(("resources", index, "name"), f"{same} (first defined as resources[{first}])", resource.name)
        seen[table] = (index, resource.name)
        _check_unique_columns(check, resource, index)
    if not any(resource.is_asset for resource in resources):
        raise check.fail(
            ("resources",), "every resource is `selected: false`: the source would have no asset (select one at least)"
        )


def _check_name_is_kept(check: _Checker, name: str, index: int) -> None:
    """A resource name that dlt would not keep as its table's name (`a__b`: a nested table's separator;
    `shops_`: table `shopsx`) is refused: the asset and its table would not match."""
    if "__" in name or name.endswith("_"):
        raise check.fail(
            ("resources", index, "name"),
            f"'{name}' is not a name dlt keeps for a table (it would be '{_NAMING.normalize_table_identifier(name)}'): "
            "avoid '__' (dlt's separator of nested tables) and a trailing '_'",
            name,
        )


def _check_unique_columns(check: _Checker, resource: ResourceSpec, index: int) -> None:
    columns = resource.config.get("columns")
    names = [c.get("name") for c in columns if isinstance(c, dict)] if isinstance(columns, list) else list(columns or {})
    seen: dict[str, str] = {}
    for name in (n for n in names if isinstance(n, str)):
        column = normalized_identifier(name)
        if column in seen and seen[column] != name:
            raise check.fail(
                ("resources", index, "columns", name),
                f"column '{name}' collides with '{seen[column]}': both would load into column '{column}'",
                resource.name,
            )
        seen[column] = name


def normalized_identifier(name: str, max_length: int | None = None) -> str:
    """`name` as dlt's default naming convention (snake_case) writes it in the destination, as a table
    or column name (a path: `order__items` keeps its `__`, which dlt reads as a nesting separator);
    with the destination's `max_length`, shortened as dlt shortens it there (PostgreSQL: 63)."""
    naming = _NAMING if max_length is None else NamingConvention(max_length=max_length)
    return naming.normalize_path(name)
