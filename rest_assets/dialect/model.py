"""The normalised spec model the compiler and the Dagster layer read."""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any


@dataclass(frozen=True)
class SecretRef:
    """`{secret: KEY}` in a spec: resolved at run time, never at load time."""

    key: str

    def __repr__(self) -> str:
        return f"{{secret: {self.key}}}"


@dataclass(frozen=True)
class ConfigRef:
    """`{config: KEY}` in a spec: a non-secret setting resolved at run time (never redacted)."""

    key: str

    def __repr__(self) -> str:
        return f"{{config: {self.key}}}"


# `{config.KEY}` inside a string: the same setting, formatted into the string at run time.
CONFIG_TEMPLATE = re.compile(r"\{config\.([A-Za-z_][A-Za-z0-9_]*)\}")


@dataclass(frozen=True)
class Freshness:
    """How old a resource's table may get before it is late (warn) or failing."""

    fail_window: timedelta
    warn_window: timedelta | None = None


@dataclass(frozen=True)
class ParentLink:
    """A child resource is requested once per record of `parent`.

    `parent_key` is the parent field whose value fills the placeholder; child
    rows carry it as the column ``_<parent>_<parent_key>``.
    """

    parent: str
    parent_key: str

    @property
    def child_column(self) -> str:
        return f"_{self.parent}_{self.parent_key}"


@dataclass
class ResourceSpec:
    """One REST resource with `resource_defaults` already merged in.

    `config` is the resource in dlt's vocabulary plus our extension keys
    (`error_handler`, `partition_router`, `freshness`); the compiler turns the
    extensions into runtime objects. `{{ stream_partition[...] }}` placeholders
    are already rewritten into dlt's `{resources.<parent>.<key>}` form.
    """

    name: str
    config: dict[str, Any]
    parent: ParentLink | None = None
    freshness: Freshness | None = None
    line: int | None = None
    spec_path: str | None = None  # the path as the spec wrote it, before placeholders were rewritten

    @property
    def endpoint(self) -> dict[str, Any]:
        endpoint: dict[str, Any] = self.config.get("endpoint", {})
        return endpoint

    @property
    def path(self) -> str:
        return str(self.endpoint.get("path", self.name))

    @property
    def display_path(self) -> str:
        """The endpoint path as written in the spec (for people: UI metadata, descriptions)."""
        return self.spec_path or self.path

    @property
    def table_name(self) -> str:
        """The table as the spec names it (`table_name`, else the resource name), before dlt normalizes it."""
        return str(self.config.get("table_name") or self.name)

    @property
    def primary_key(self) -> Any:
        return self.config.get("primary_key")

    @property
    def write_disposition(self) -> Any:
        return self.config.get("write_disposition", "append")

    @property
    def keeps_one_row_per_key(self) -> bool:
        """Whether the table holds one row per primary key: a merge, given as a string or as dlt's
        mapping, whose strategy (delete-insert, the default, or upsert) replaces rows by key; scd2
        keeps a row per version."""
        disposition = self.write_disposition
        if isinstance(disposition, dict):
            return disposition.get("disposition") == "merge" and disposition.get("strategy") in (None, "delete-insert", "upsert")
        return bool(disposition == "merge")

    @property
    def is_asset(self) -> bool:
        """Whether the resource loads a table of its own (dlt's `selected: false` only feeds its children)."""
        return self.config.get("selected") is not False

    @property
    def description(self) -> str:
        return self.config.get("description") or f"GET {self.display_path}"

    @property
    def incrementals(self) -> list[dict[str, Any]]:
        """The endpoint's incrementals (see `endpoint_incrementals`)."""
        return endpoint_incrementals(self.endpoint)

    @property
    def paginator_type(self) -> str:
        paginator = self.endpoint.get("paginator")
        if isinstance(paginator, dict):
            return str(paginator.get("type", "auto"))
        return str(paginator or "auto")


@dataclass
class SourceSpec:
    """One API: its client settings, its resources, and its orchestration keys."""

    name: str
    file: str
    client: dict[str, Any]
    resources: list[ResourceSpec]
    schedule: str | None = None
    description: str | None = None
    lines: dict[tuple[Any, ...], int] = field(default_factory=dict, repr=False)

    def resource(self, name: str) -> ResourceSpec:
        """The resource called `name` (KeyError when there is none)."""
        for resource in self.resources:
            if resource.name == name:
                return resource
        raise KeyError(name)

    def with_ancestors(self, names: Iterable[str]) -> list[ResourceSpec]:
        """The resources `names` and the parents they are fetched through, in spec order."""
        needed: set[str] = set()
        for start in names:
            name: str | None = start
            while name is not None and name not in needed:
                needed.add(name)
                link = self.resource(name).parent
                name = link.parent if link else None
        return [r for r in self.resources if r.name in needed]

    @property
    def asset_resources(self) -> list[ResourceSpec]:
        """The resources that are assets: each loads a table (see `ResourceSpec.is_asset`)."""
        return [r for r in self.resources if r.is_asset]

    def asset_parent(self, resource: ResourceSpec) -> ResourceSpec | None:
        """`resource`'s nearest ancestor that is an asset (a `selected: false` parent only feeds its children)."""
        while resource.parent:
            resource = self.resource(resource.parent.parent)
            if resource.is_asset:
                return resource
        return None

    def children_of(self, name: str) -> list[ResourceSpec]:
        """Resources requested once per record of resource `name`."""
        return [r for r in self.resources if r.parent and r.parent.parent == name]

    @property
    def secret_keys(self) -> list[str]:
        """Every secret KEY the source needs, in order of first use."""
        return _collect_keys([self.client, *[r.config for r in self.resources]], _secret_keys_of)

    @property
    def config_keys(self) -> list[str]:
        """Every setting KEY the source needs (`{config: KEY}`, `{config.KEY}`), in order of first use."""
        return _collect_keys([self.client, *[r.config for r in self.resources]], _config_keys_of)


def primary_key_fields(config: dict[str, Any]) -> list[str]:
    """A resource config's `primary_key` as a list of field names (empty where it has none)."""
    key = config.get("primary_key")
    return [key] if isinstance(key, str) else [str(k) for k in key or []]


def endpoint_incrementals(endpoint: dict[str, Any]) -> list[dict[str, Any]]:
    """An endpoint's incrementals: its `incremental` and any param of `type: incremental` (dlt allows one)."""
    params = [p for p in (endpoint.get("params") or {}).values() if isinstance(p, dict) and p.get("type") == "incremental"]
    return [i for i in (endpoint.get("incremental"), *params) if isinstance(i, dict)]


def _secret_keys_of(value: Any) -> list[str]:
    return [value.key] if isinstance(value, SecretRef) else []


def _config_keys_of(value: Any) -> list[str]:
    if isinstance(value, ConfigRef):
        return [value.key]
    return CONFIG_TEMPLATE.findall(value) if isinstance(value, str) else []


def _collect_keys(value: Any, keys_of: Any, found: list[str] | None = None) -> list[str]:
    """The keys `keys_of` finds in every leaf of `value`, each once, in order of first use."""
    found = [] if found is None else found
    if isinstance(value, dict):
        for item in value.values():
            _collect_keys(item, keys_of, found)
    elif isinstance(value, list):
        for item in value:
            _collect_keys(item, keys_of, found)
    else:
        found.extend(key for key in keys_of(value) if key not in found)
    return found
