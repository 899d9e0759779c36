"""How each child resource reads its parent: the parent itself, or a private copy of its stream.

Part of compilation (dlt config in, dlt config out). dlt feeds a child from
its parent's stream. Here a child reads its parent itself when the run loads
the parent too and the parent is not incremental: each parent page is
requested once, as plain dlt requests it. Otherwise the child reads its own,
unselected copy of the parent stream, which has its own incremental cursor
(see `link_children`). Either way the child's wrapper (`reading_parent`)
hands it the API's records, with every parent field its path uses
percent-encoded.
"""

from __future__ import annotations

import copy
import functools
import re
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote

import pyarrow as pa
from dlt.common import jsonpath

from rest_assets.dialect.model import ResourceSpec, SourceSpec
from rest_assets.dialect.parents import map_strings
from rest_assets.errors import LoadError
from rest_assets.runtime.parent_records import ParentRecords


@dataclass(frozen=True)
class ParentLink:
    """A dlt transformer fed by a parent: which resource it reads, and which parent fields its path encodes."""

    parent: str
    child: str
    reads: str
    path_fields: tuple[str, ...]


def link_children(
    spec: SourceSpec, compiled: dict[str, dict[str, Any]], shared: Mapping[str, ParentRecords]
) -> tuple[list[dict[str, Any]], dict[str, ParentLink]]:
    """Point each child at the stream it reads; return every resource's config and each transformer's link.

    A child of a parent in `shared` (with the records behind its Arrow batches) reads the parent's own stream. Any other
    child gets its own, unselected copy of its parent stream: dlt feeds a
    child from its parent's stream, so they would share one incremental
    cursor, and after a parent-only run a child-only run would see no changed
    parents and miss their children. A private copy has its own cursor, so
    every selection (parent, child, or both) fetches exactly what changed.

    The links are keyed by dlt resource name: the children, and the private
    copies of children that are parents themselves (they read what the child reads).
    """
    resources = list(compiled.values())
    links: dict[str, ParentLink] = {}
    for resource in sorted(spec.resources, key=lambda r: _depth(spec, r)):  # a child's own parent is linked first
        link = resource.parent
        if not link:
            continue
        child = compiled[resource.name]
        reads = link.parent if link.parent in shared else private_parent_name(link.parent, resource.name)
        fields = _point_at_parent(child["endpoint"], link.parent, reads)
        links[resource.name] = ParentLink(link.parent, resource.name, reads, tuple(fields))
        if reads == link.parent:
            continue
        resources.append({**copy.deepcopy(compiled[link.parent]), "name": reads, "selected": False})
        if link.parent in links:
            links[reads] = links[link.parent]
        renames = {f"_{reads}_{key}": f"_{link.parent}_{key}" for key in child.get("include_from_parent", [])}
        if renames:
            rename = _renamer(renames, shared.get(resource.name))
            child["processing_steps"] = [*child.get("processing_steps", []), {"map": rename}]
    return resources, links


def _depth(spec: SourceSpec, resource: ResourceSpec) -> int:
    return len(spec.with_ancestors([resource.name]))


def private_parent_name(parent: str, child: str) -> str:
    """The name of `child`'s private, unselected copy of `parent`."""
    return f"{parent}__for__{child}"


def reading_parent(
    link: ParentLink, records: ParentRecords | None
) -> Callable[[Callable[..., Iterator[Any]]], Callable[..., Iterator[Any]]]:
    """Wrap a child's dlt function `f(items, ...)` to get the parent's records with its path fields encoded.

    `records` (the parent's, when it reads the parent on the Arrow path) turns
    the parent's Arrow batches back into the API's records, as plain dlt hands them on.
    """
    encode = _path_encoder(list(link.path_fields), link.parent, link.child)
    known = records if records is not None else ParentRecords(link.parent)  # none kept: rows pass, a table fails

    def wrap(generator_function: Callable[..., Iterator[Any]]) -> Callable[..., Iterator[Any]]:
        @functools.wraps(generator_function)
        def fed(items: Any, *args: Any, **kwargs: Any) -> Iterator[Any]:
            parents = known.records_for_child(items, link.child)
            if link.path_fields:
                parents = [encode(dict(parent)) for parent in parents]
            yield from generator_function(parents, *args, **kwargs)

        return fed

    return wrap


_ENCODED_PREFIX = "_rest_assets_path_"
# Any field, not only identifiers: `user-key` or `owner.id` must be encoded as well (dlt reads them as JSON paths).
_PATH_FIELD = re.compile(r"\{resources\.([A-Za-z0-9_]+)\.([^{}]+)\}")


def _point_at_parent(endpoint: dict[str, Any], parent: str, reads: str) -> list[str]:
    """Make the child read `reads` (the parent or its private copy); return the parent fields its path encodes.

    The i-th returned field is read from the field `_rest_assets_path_<i>` the
    child's wrapper adds (see `_path_encoder`), whatever characters its name has.
    Query params keep the raw value: requests percent-encodes them itself.
    """
    encoded: list[str] = []

    def column(field: str) -> str:
        if field not in encoded:
            encoded.append(field)
        return f"{_ENCODED_PREFIX}{encoded.index(field)}"

    def to_encoded(match: re.Match[str]) -> str:
        if match.group(1) != parent:
            return match.group(0)
        return "{resources.%s.%s}" % (reads, column(match.group(2)))

    endpoint["path"] = _PATH_FIELD.sub(to_encoded, endpoint["path"])
    old, new = "{resources.%s." % parent, "{resources.%s." % reads
    for key in ("json", "data", "headers"):  # dlt formats parent fields into these as they are
        if key in endpoint:
            endpoint[key] = map_strings(endpoint[key], lambda text: text.replace(old, new))
    for key, value in (endpoint.get("params") or {}).items():
        if isinstance(value, str):
            endpoint["params"][key] = value.replace(old, new)
        elif isinstance(value, dict) and value.get("type") == "resolve" and value.get("resource") == parent:
            # dlt binds a `resolve` param only into the path (it refuses one the path does not use)
            endpoint["params"][key] = {**value, "resource": reads, "field": column(str(value.get("field")))}
    return encoded


def _path_encoder(fields: list[str], parent: str, child: str) -> Callable[[dict[str, Any]], dict[str, Any]]:
    """A function adding `_rest_assets_path_<i>` to a record: `fields[i]`'s value percent-encoded as one path segment.

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
        value = record[name]
    else:
        values = jsonpath.find_values(path, record) if path is not None else []
        if not values:
            raise LoadError(
                f"resource '{parent}': a record has no field '{name}', which the path of child resource "
                f"'{child}' needs (fields: {', '.join(sorted(map(str, record))[:10])})"
            )
        value = values[0]
    if value is None or value == "":
        raise LoadError(
            f"resource '{parent}': a record's '{name}' is {'null' if value is None else 'empty'}, so there is no "
            f"path for child resource '{child}' (it would request '.../None/...' or '...//...'); filter such records "
            "out of the parent with `processing_steps`"
        )
    return str(value)


def _renamer(renames: dict[str, str], records: ParentRecords | None) -> Callable[[Any], Any]:
    """Renames columns of a record (dict) or of a batch (Arrow table); a renamed batch keeps its records
    in `records` (renamed too), for the children that read this resource."""

    def rename_record(record: dict[str, Any]) -> dict[str, Any]:
        for old, new in renames.items():
            if old in record:
                record[new] = record.pop(old)
        return record

    def rename(item: Any) -> Any:
        if not isinstance(item, pa.Table):
            return rename_record(item)
        renamed = item.rename_columns([renames.get(name, name) for name in item.column_names])
        if item.schema.metadata:  # what the batch says of its columns' order (rename_columns drops it)
            renamed = renamed.replace_schema_metadata(item.schema.metadata)
        kept = records.records_of(item) if records is not None else None
        if records is not None and kept is not None:
            records.keep(renamed, [rename_record(record) for record in kept])
        return renamed

    return rename
