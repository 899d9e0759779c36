"""Child resources read private copies of their parent's stream.

Part of compilation (dlt config in, dlt config out). dlt feeds a child from
its parent's stream; here each child gets its own unselected copy of that
parent instead, which gives it its own incremental cursor and a place to
percent-encode the parent values its path uses.
"""

from __future__ import annotations

import copy
import re
from collections.abc import Callable
from typing import Any
from urllib.parse import quote

import pyarrow as pa
from dlt.common import jsonpath

from rest_assets.dialect.model import SourceSpec
from rest_assets.dialect.parents import map_strings
from rest_assets.errors import LoadError


def with_private_parents(spec: SourceSpec, compiled: dict[str, dict[str, Any]]) -> list[dict[str, Any]]:
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
        private = private_parent_name(link.parent, resource.name)
        child = compiled[resource.name]
        encoded = _point_at_parent(child["endpoint"], link.parent, private)
        parent_copy = {**copy.deepcopy(compiled[link.parent]), "name": private, "selected": False}
        parent_copy["processing_steps"] = [
            *parent_copy.get("processing_steps", []),
            {"map": _path_encoder(encoded, link.parent, resource.name)},
        ]
        resources.append(parent_copy)
        renames = {f"_{private}_{key}": f"_{link.parent}_{key}" for key in child.get("include_from_parent", [])}
        child["processing_steps"] = [*child.get("processing_steps", []), {"map": _renamer(renames)}]
    return resources


def private_parent_name(parent: str, child: str) -> str:
    """The name of `child`'s private, unselected copy of `parent`."""
    return f"{parent}__for__{child}"


_ENCODED_PREFIX = "_rest_assets_path_"
# Any field, not only identifiers: `user-key` or `owner.id` must be encoded as well (dlt reads them as JSON paths).
_PATH_FIELD = re.compile(r"\{resources\.([A-Za-z0-9_]+)\.([^{}]+)\}")


def _point_at_parent(endpoint: dict[str, Any], parent: str, private: str) -> list[str]:
    """Make the child read `private` instead of `parent`; return the parent fields its path must get encoded.

    The i-th returned field is read from the column `_rest_assets_path_<i>` of
    the private parent (see `_path_encoder`), whatever characters its name has.
    Query params keep the raw value: requests percent-encodes them itself.
    """
    encoded: list[str] = []

    def column(field: str) -> str:
        if field not in encoded:
            encoded.append(field)
        return f"{_ENCODED_PREFIX}{encoded.index(field)}"

    def to_private(match: re.Match[str]) -> str:
        if match.group(1) != parent:
            return match.group(0)
        return "{resources.%s.%s}" % (private, column(match.group(2)))

    endpoint["path"] = _PATH_FIELD.sub(to_private, endpoint["path"])
    old, new = "{resources.%s." % parent, "{resources.%s." % private
    for key in ("json", "data", "headers"):  # dlt formats parent fields into these as they are
        if key in endpoint:
            endpoint[key] = map_strings(endpoint[key], lambda text: text.replace(old, new))
    for key, value in (endpoint.get("params") or {}).items():
        if isinstance(value, str):
            endpoint["params"][key] = value.replace(old, new)
        elif isinstance(value, dict) and value.get("type") == "resolve" and value.get("resource") == parent:
            # dlt binds a `resolve` param only into the path (it refuses one the path does not use)
            endpoint["params"][key] = {**value, "resource": private, "field": column(str(value.get("field")))}
    return encoded


def _path_encoder(fields: list[str], parent: str, child: str) -> Callable[[dict[str, Any]], dict[str, Any]]:
    """A map step adding `_rest_assets_path_<i>`: the value of `fields[i]` percent-encoded as one path segment.

    `.` and `..` are refused: in any encoding they mean "this/the parent
    folder" (RFC 3986 6.2.2.2), so no request could stay on the intended path.
    """
    paths = [_json_path(name) for name in fields]

    def encode(record: dict[str, Any]) -> dict[str, Any]:
        for index, name in enumerate(fields):
            value = _parent_value(record, name, paths[index], parent, child)
            if value.strip(".") == "" and value:
                raise LoadError(
                    f"resource '{parent}': the value {value!r} of '{name}' cannot be a URL path segment of "
                    f"child resource '{child}' ('.' and '..' would move the request to another path)"
                )
            record[f"{_ENCODED_PREFIX}{index}"] = quote(value, safe="")
        return record

    return encode


def _json_path(name: str) -> Any:
    """`name` as a JSON path, or None when it is only usable as a plain key (e.g. `user key`)."""
    try:
        return jsonpath.compile_path(name)
    except Exception:  # jsonpath_ng raises several unrelated lexer/parser error types
        return None


def _parent_value(record: dict[str, Any], name: str, path: Any, parent: str, child: str) -> str:
    """The parent record's value of field `name` (a key, else a JSON path, as dlt reads it)."""
    if name in record:
        return str(record[name])
    values = jsonpath.find_values(path, record) if path is not None else []
    if not values:
        raise LoadError(
            f"resource '{parent}': a record has no field '{name}', which the path of child resource "
            f"'{child}' needs (fields: {', '.join(sorted(map(str, record))[:10])})"
        )
    return str(values[0])


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
