"""Check a spec's dlt part with dlt's own validator, when the spec loads.

The dialect is dlt's `rest_api_source` config plus extensions. Everything in
it that is dlt's (client, resources, endpoints, incremental, processing hints,
parent references) is handed to dlt's own checks (`validate_dict` against
`RESTAPIConfig`, then dlt's dependency graph of resources), so a config that
plain dlt rejects is rejected here too, at `dagster definitions validate`,
not in the middle of a run. Extension keys are taken out first, and values
dlt cannot see yet (secrets, our own auth and paginator types, which our
validator has already checked) stand in as objects dlt accepts as they are.
"""

from __future__ import annotations

import difflib
import functools
import re
import typing
from collections.abc import Callable
from typing import Any

import dlt
from dlt.common.exceptions import DictValidationException
from dlt.common.schema.typing import TColumnSchema
from dlt.common.validation import validate_dict
from dlt.sources.helpers.rest_client.auth import AuthConfigBase
from dlt.sources.helpers.rest_client.paginators import SinglePagePaginator
from dlt.sources.rest_api.typing import RESTAPIConfig

from rest_assets.dialect import vocabulary as vocab
from rest_assets.dialect.model import CONFIG_TEMPLATE, ConfigRef, ResourceSpec, SecretRef
from rest_assets.dlt_internals import (
    build_resource_dependency_graph,
    cached_type_hints_in_validation,
    create_paginator,
    setup_incremental_object,
)

# Raised as `fail(path, message, resource)`; the validator's own error factory.
Fail = Callable[[tuple[Any, ...], str, "str | None"], Exception]
_SECRET_STAND_IN = "***"
_DLT_PATH_PART = re.compile(r"([^/\[\]]+)|\[(\d+)\]")


class _CheckedAuth(AuthConfigBase):
    """Stands in for an auth of our dialect (already checked by our validator)."""


def check_with_dlt(client: dict[str, Any], defaults: dict[str, Any], resources: list[ResourceSpec], fail: Fail) -> None:
    """Raise `fail(...)` where dlt's own validation rejects the dlt part of the spec.

    `resource_defaults` are checked as they are too, as dlt does, whether or not a resource overrides them.
    """
    resource_views: list[Any] = [_resource_view(r.config) for r in resources]
    client_view = _client_view(client)
    view = {"client": client_view, "resources": resource_views}
    if defaults:  # their declarative processing steps are checked as each resource's, once built
        view["resource_defaults"] = _resource_view({k: v for k, v in defaults.items() if k != "processing_steps"})
    try:
        with cached_type_hints_in_validation():
            validate_dict(RESTAPIConfig, view, path=".")
    except DictValidationException as exc:
        innermost = _innermost(exc)
        path, resource = _spec_path(innermost.path, innermost.field, resources)
        raise fail(path, f"dlt rejects this: {_dlt_message(innermost)}{_did_you_mean(innermost)}", resource) from None
    if isinstance(client_view.get("paginator"), dict):
        _check_builds(lambda: create_paginator(client_view["paginator"]), ("client", "paginator"), None, fail)
    for index, (spec, resource_view) in enumerate(zip(resources, resource_views, strict=True)):
        _check_endpoint_builds(index, spec.name, resource_view["endpoint"], fail)
        if spec.config.get("columns"):
            _check_columns(index, spec.name, spec.config["columns"], fail)
    try:
        _, _, parents = build_resource_dependency_graph({}, resource_views)
    except ValueError as exc:
        raise _graph_error(str(exc), resources, fail) from None
    for index, spec in enumerate(resources):
        if spec.config.get("include_from_parent") and not parents.get(spec.name):
            raise fail(
                ("resources", index, "include_from_parent"),
                "dlt rejects this: `include_from_parent` needs a parent resource (a {resources.<parent>.<field>} "
                "placeholder or a resolve param)",
                spec.name,
            )


def _check_endpoint_builds(index: int, resource: str, endpoint: dict[str, Any], fail: Fail) -> None:
    """What dlt checks only when it builds an endpoint: its param types, incremental params and paginator."""
    at = ("resources", index, "endpoint")
    params = endpoint.get("params") or {}
    for name, param in params.items():
        kind = param.get("type") if isinstance(param, dict) else None
        if isinstance(param, dict) and kind not in ("resolve", "incremental"):
            raise fail(
                (*at, "params", name, *(("type",) if "type" in param else ())),
                f"dlt rejects this: a param that is a mapping has the type 'resolve' or 'incremental', not {kind!r} "
                "(a param's value is text, a number or a list)",
                resource,
            )
        if kind == "resolve" and not {"resource", "field"} <= set(param):
            raise fail((*at, "params", name), "dlt rejects this: a `resolve` param needs `resource` and `field`", resource)
    _check_builds(lambda: setup_incremental_object(params, endpoint.get("incremental")), (*at, "params"), resource, fail)
    if isinstance(endpoint.get("paginator"), dict):
        _check_builds(lambda: create_paginator(endpoint["paginator"]), (*at, "paginator"), resource, fail)


_COLUMN_HINTS = sorted({*TColumnSchema.__required_keys__, *TColumnSchema.__optional_keys__})


def _check_columns(index: int, resource: str, columns: Any, fail: Fail) -> None:
    """dlt checks column hints when it makes a resource: an unknown hint or data type is refused."""
    try:
        dlt.resource([], name=resource, columns=columns).compute_table_schema()
    except DictValidationException as exc:
        unknown = re.search(r"unexpected fields `\{'([^']+)'", str(exc))
        close = difflib.get_close_matches(unknown.group(1), _COLUMN_HINTS, n=1) if unknown else []
        hint = f" Did you mean '{close[0]}'?" if close else ""
        raise fail(("resources", index, "columns"), f"dlt rejects this: {exc}.{hint}", resource) from None


def _check_builds(build: Callable[[], Any], path: tuple[Any, ...], resource: str | None, fail: Fail) -> None:
    """Raise `fail(path, ...)` when dlt refuses to build the object `build` makes."""
    try:
        build()
    except Exception as exc:  # whatever dlt (or the JSON path parser under it) raises: the config is refused
        raise fail(path, f"dlt rejects this: {exc}", resource) from None


def _graph_error(message: str, resources: list[ResourceSpec], fail: Fail) -> Exception:
    resource = _resource_named_in(message, resources)
    index = [r.name for r in resources].index(resource) if resource else None
    path: tuple[Any, ...] = ("resources", index, "endpoint") if index is not None else ("resources",)
    expression = _EXPRESSION_IN.search(message)
    if resource is None and expression:  # dlt names the expression (and the part), not the resource
        parts = [expression.group(2)] if expression.group(2) else ["path", "params", "json", "data", "headers"]
        found = next(
            (
                (index, candidate, part)
                for index, candidate in enumerate(resources)
                for part in parts
                if "{" + expression.group(1) in str(candidate.endpoint.get(part, ""))
            ),
            None,
        )
        if found:
            index, candidate, part = found
            resource, path = candidate.name, ("resources", index, "endpoint", part)
    return fail(path, f"dlt rejects this: {message}", resource)


_EXPRESSION_IN = re.compile(r"(?:Expression|Invalid definition of) `([^`]+)`(?: defined in `(\w+)`)?")


def _innermost(exc: DictValidationException) -> DictValidationException:
    """Of a union's nested errors, the one that went deepest into the config: the real cause."""
    while exc.nested_exceptions:
        exc = max(exc.nested_exceptions, key=lambda nested: (nested.path.count("/"), bool(nested.nested_exceptions)))
    return exc


def _client_view(client: dict[str, Any]) -> dict[str, Any]:
    view = {k: _stand_ins(v) for k, v in client.items() if k not in vocab.CLIENT_EXTENSION_KEYS}
    if view.get("auth") is not None:
        view["auth"] = _auth_view(view["auth"])
    if view.get("paginator") is not None:
        view["paginator"] = _paginator_view(view["paginator"])
    return view


def _resource_view(config: dict[str, Any]) -> dict[str, Any]:
    view = {k: _stand_ins(v) for k, v in config.items() if k not in vocab.RESOURCE_EXTENSION_KEYS}
    if "endpoint" not in view:  # resource defaults without one
        return view
    endpoint = {k: v for k, v in view["endpoint"].items() if k not in vocab.ENDPOINT_EXTENSION_KEYS}
    if endpoint.get("auth") is not None:
        endpoint["auth"] = _auth_view(endpoint["auth"])
    if endpoint.get("paginator") is not None:
        endpoint["paginator"] = _paginator_view(endpoint["paginator"])
    view["endpoint"] = endpoint
    return view


def _stand_ins(value: Any) -> Any:
    """`value` with every secret and setting replaced by a placeholder string (dlt only checks its type)."""
    if isinstance(value, (SecretRef, ConfigRef)):
        return _SECRET_STAND_IN
    if isinstance(value, str):
        return CONFIG_TEMPLATE.sub(lambda match: f"config_{match.group(1)}", value)
    if isinstance(value, dict):
        return {k: _stand_ins(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_stand_ins(v) for v in value]
    return value


def _auth_view(auth: Any) -> Any:
    """dlt's own auth configs as written; ours (oauth2 with refresh tokens, bearer aliases) as a checked object."""
    if isinstance(auth, str):
        return auth
    kind = auth.get("type", "bearer")
    native = vocab.DLT_AUTH_KEYS.get(kind)
    if native is None or set(auth) - native:
        return _CheckedAuth()
    return auth


def _paginator_view(paginator: Any) -> Any:
    """dlt's own paginator configs as written; ours (stop_condition, page sizes) as a checked object."""
    if isinstance(paginator, str):
        return paginator
    native = vocab.DLT_PAGINATOR_KEYS.get(paginator.get("type", "auto"))
    if native is None or set(paginator) - native:
        return SinglePagePaginator()
    return paginator


def _did_you_mean(exc: DictValidationException) -> str:
    """For a key dlt does not know, the closest key its rest_api config has anywhere ("; did you mean ...?")."""
    unknown = re.search(r"unexpected fields `\{'([^']+)'", exc.msg)
    close = difflib.get_close_matches(unknown.group(1), _dlt_keys(), n=1) if unknown else []
    return f"; did you mean '{close[0]}'?" if close else ""


@functools.cache
def _dlt_keys() -> list[str]:
    """Every key of dlt's rest_api config types (RESTAPIConfig and the TypedDicts under it)."""
    keys: set[str] = set()
    seen: set[int] = set()

    def walk(hint: Any) -> None:
        if id(hint) in seen:
            return
        seen.add(id(hint))
        if isinstance(hint, type) and hasattr(hint, "__required_keys__"):  # a TypedDict
            hints = typing.get_type_hints(hint)
            keys.update(hints)
            for value in hints.values():
                walk(value)
        for argument in typing.get_args(hint):
            walk(argument)

    walk(RESTAPIConfig)
    return sorted(keys)


def _dlt_message(exc: DictValidationException) -> str:
    """dlt's message without its `./a/b` path prefix (the error already points at the key)."""
    return re.sub(r"^(For `?\w+`?: )?(In path|Path) `?\S+?`?: ", "", exc.msg)


def _spec_path(dlt_path: str, field: str | None, resources: list[ResourceSpec]) -> tuple[tuple[Any, ...], str | None]:
    """dlt's `./resources[1]/endpoint` (+ field) as our key path, and the resource it is in."""
    parts: list[Any] = [int(i) if i else name for name, i in _DLT_PATH_PART.findall(dlt_path) if name != "." or i]
    parts = [p for p in parts if p != "."]
    if field:
        parts.append(field)
    resource = None
    if len(parts) >= 2 and parts[0] == "resources" and isinstance(parts[1], int) and parts[1] < len(resources):
        resource = resources[parts[1]].name
    return tuple(parts), resource


def _resource_named_in(message: str, resources: list[ResourceSpec]) -> str | None:
    for resource in resources:
        if f"`{resource.name}`" in message or f"'{resource.name}'" in message:
            return resource.name
    return None
