"""Parent/child links between resources, found once when the spec loads.

A child is requested once per record of its parent. The link comes from
`{{ stream_partition['<field>'] }}` (with `endpoint.partition_router`, or
inferred from `<stem>_id`) or from dlt's own `{resources.<parent>.<field>}`
placeholders and `resolve` params, wherever dlt formats parent fields: the
path, params, json, data and headers. `{{ stream_partition }}` is rewritten
into dlt's form here, once; everything after reads the ParentLink.
"""

from __future__ import annotations

import re
from typing import Any, Protocol

from rest_assets.dialect.model import ParentLink, ResourceSpec

Path = tuple[str | int, ...]
STREAM_PARTITION = re.compile(r"\{\{\s*stream_partition\s*(?:\[\s*['\"]([^'\"]+)['\"]\s*\]|\.([A-Za-z_][A-Za-z0-9_]*))\s*\}\}")
DLT_RESOURCE_PLACEHOLDER = re.compile(r"\{resources\.([A-Za-z0-9_]+)\.([^}]+)\}")


class Checker(Protocol):
    """What the validator's checker offers: an error pointing at file, line, resource and key."""

    def fail(self, path: Path, message: str, resource: str | None = None) -> Exception: ...


def bind_parents(check: Checker, resources: list[ResourceSpec]) -> None:
    """Rewrite stream_partition placeholders into dlt's form and record parent links."""
    names = [r.name for r in resources]
    for index, resource in enumerate(resources):
        endpoint = resource.config["endpoint"]
        path: Path = ("resources", index, "endpoint")
        fields = _stream_partition_fields(endpoint)
        router = endpoint.pop("partition_router", None)
        if fields:
            resource.spec_path = endpoint.get("path")
            resource.parent = _partition_parent(check, resource, fields, router, names, path)
            _rewrite_stream_partition(endpoint, resource.parent)
            include = resource.config.setdefault("include_from_parent", [])
            if resource.parent.parent_key not in include:
                include.append(resource.parent.parent_key)
        elif router:
            raise check.fail(
                (*path, "partition_router"),
                "is set but neither the path nor the params use {{ stream_partition['...'] }}",
                resource.name,
            )
        else:
            resource.parent = _native_parent(check, resource, names, path)


# Where dlt formats parent fields into a child's request: its path, params, json, data and headers.
_PARENT_FIELD_KEYS = ("params", "json", "data", "headers")


def _request_texts(endpoint: dict[str, Any]) -> list[str]:
    """Every string of the endpoint dlt formats with parent fields (the path first)."""
    texts = [endpoint.get("path", "")]
    for key in _PARENT_FIELD_KEYS:
        _strings_in(endpoint.get(key), texts)
    return texts


def _key_naming(endpoint: dict[str, Any], parent: str) -> str:
    """The endpoint key that refers to `parent` (a placeholder, or a `resolve` param), where an error points."""
    for key in ("path", *_PARENT_FIELD_KEYS):
        texts: list[str] = []
        _strings_in(endpoint.get(key), texts)
        if any(m.group(1) == parent for text in texts for m in DLT_RESOURCE_PLACEHOLDER.finditer(text)):
            return key
    return "params"  # a `resolve` param


def _strings_in(value: Any, found: list[str]) -> None:
    if isinstance(value, str):
        found.append(value)
    elif isinstance(value, dict):
        for item in value.values():
            _strings_in(item, found)
    elif isinstance(value, list):
        for item in value:
            _strings_in(item, found)


def _stream_partition_fields(endpoint: dict[str, Any]) -> list[str]:
    texts = _request_texts(endpoint)
    found: list[str] = []
    for text in texts:
        for match in STREAM_PARTITION.finditer(text):
            field = match.group(1) or match.group(2)
            if field not in found:
                found.append(field)
    return found


def _partition_parent(
    check: Checker, resource: ResourceSpec, fields: list[str], router: dict[str, Any] | None, names: list[str], path: Path
) -> ParentLink:
    if len(fields) > 1:
        raise check.fail(
            (*path, "path"),
            f"uses several stream_partition fields ({', '.join(fields)}); one parent field per resource is supported",
            resource.name,
        )
    field = fields[0]
    if router:
        parent = router["parent"]
        if parent not in names:
            raise check.fail(
                (*path, "partition_router", "parent"),
                f"parent resource '{parent}' does not exist; resources: {', '.join(names)}",
                resource.name,
            )
        wanted = router.get("partition_field", field)
        if wanted != field:
            raise check.fail(
                (*path, "partition_router", "partition_field"),
                f"is '{wanted}' but the path uses stream_partition['{field}']",
                resource.name,
            )
        return ParentLink(parent, str(router.get("parent_key", "id")))
    candidates = _infer_parent_names(field, names, resource.name)
    if len(candidates) != 1:
        found = "none" if not candidates else "several (" + ", ".join(candidates) + ")"
        raise check.fail(
            (*path, "path"),
            f"cannot infer the parent of stream_partition['{field}']: {found} of the resources match; "
            f"set endpoint.partition_router: {{parent: <resource>, parent_key: id}}",
            resource.name,
        )
    return ParentLink(candidates[0], "id")


def _infer_parent_names(field: str, names: list[str], own: str) -> list[str]:
    if not field.endswith("_id"):
        return []
    stem = field[: -len("_id")]
    forms = {stem, stem + "s", stem + "es"}
    if stem.endswith("y"):
        forms.add(stem[:-1] + "ies")
    return [name for name in names if name in forms and name != own]


def _rewrite_stream_partition(endpoint: dict[str, Any], link: ParentLink) -> None:
    """`{{ stream_partition[...] }}` as dlt's `{resources.<parent>.<key>}`, wherever dlt reads parent fields."""
    replacement = "{resources.%s.%s}" % (link.parent, link.parent_key)
    endpoint["path"] = STREAM_PARTITION.sub(replacement, endpoint.get("path", ""))
    for key in _PARENT_FIELD_KEYS:
        if key in endpoint:
            endpoint[key] = map_strings(endpoint[key], lambda text: STREAM_PARTITION.sub(replacement, text))


def map_strings(value: Any, change: Any) -> Any:
    """`value` with `change` applied to every string in it (mappings and lists walked)."""
    if isinstance(value, str):
        return change(value)
    if isinstance(value, dict):
        return {key: map_strings(item, change) for key, item in value.items()}
    if isinstance(value, list):
        return [map_strings(item, change) for item in value]
    return value


def _native_parent(check: Checker, resource: ResourceSpec, names: list[str], path: Path) -> ParentLink | None:
    endpoint = resource.config["endpoint"]
    links = {(m.group(1), m.group(2)) for text in _request_texts(endpoint) for m in DLT_RESOURCE_PLACEHOLDER.finditer(text)}
    for value in (endpoint.get("params") or {}).values():
        if isinstance(value, dict) and value.get("type") == "resolve":
            links.add((str(value.get("resource")), str(value.get("field"))))
    if not links:
        return None
    parents = {parent for parent, _ in links}
    if len(parents) > 1:
        raise check.fail(
            (*path, "path"), f"refers to several parents ({', '.join(sorted(parents))}); one is supported", resource.name
        )
    parent, field = sorted(links)[0]
    if parent not in names:
        raise check.fail(
            (*path, _key_naming(endpoint, parent)),
            f"refers to resource '{parent}', which does not exist; resources: {', '.join(names)}",
            resource.name,
        )
    return ParentLink(parent, field)


def check_no_cycles(check: Checker, resources: list[ResourceSpec]) -> None:
    parent_of = {r.name: r.parent.parent for r in resources if r.parent}
    for index, resource in enumerate(resources):
        seen = [resource.name]
        current = parent_of.get(resource.name)
        while current is not None:
            if current in seen:
                chain = " -> ".join([*seen, current])
                raise check.fail(("resources", index, "endpoint", "path"), f"parent/child cycle: {chain}", resource.name)
            seen.append(current)
            current = parent_of.get(current)
