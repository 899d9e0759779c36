"""Deterministic record tables per source/resource, with a movable clock.

Tables are generated lazily (on first access) from ``random.Random`` seeded
with ``"<seed>/<source>/<resource>"``, so the same seed always yields the same
records regardless of access order. ``Store.advance`` moves the clock forward,
updates a fraction of every resource and appends new top-level records.
Callers must hold ``Store.lock`` while reading records returned by the store.
"""

from __future__ import annotations

import math
import random
import threading
import time
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any

from .schema import BASE_EPOCH, SPECS, YEAR_SECONDS, ResourceSpec, between, fill_extras, make_name

Record = dict[str, Any]


def iso(ts: int) -> str:
    """Format an epoch second as ``YYYY-MM-DDTHH:MM:SSZ``."""
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(ts))


def parse_since(value: str) -> str:
    """Normalise an ISO-8601 ``updated_since`` value to the record format.

    Naive values are taken as UTC; fractional seconds round up (records carry
    whole seconds). A ``+`` decoded to a space by form decoding is restored.
    Raises ``ValueError`` for unparseable input.
    """
    text = value.strip()
    if len(text) > 19 and text[19:20] == " ":
        text = text[:19] + "+" + text[20:]
    if text.endswith(("Z", "z")):
        text = text[:-1] + "+00:00"
    moment = datetime.fromisoformat(text)
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=timezone.utc)
    return iso(math.ceil(moment.timestamp()))


def _copy(record: Record, **extra: Any) -> Record:
    return {**{k: list(v) if isinstance(v, list) else v for k, v in record.items()}, **extra}


@dataclass
class Table:
    """Records of one resource; children are also grouped by parent id."""

    spec: ResourceSpec
    records: list[Record] = field(default_factory=list)
    by_parent: dict[int, list[Record]] | None = None
    next_id: int = 1


class Store:
    """All resources of all sources for one emulator instance."""

    def __init__(self, seed: int = 0, default_size: int = 120, sizes: dict[str, int] | None = None):
        self.seed = seed
        self.default_size = default_size
        self.sizes = dict(sizes or {})
        self.lock = threading.RLock()
        self.clock = BASE_EPOCH
        self.step = 0
        self.version = 0
        self._tables: dict[tuple[str, str], Table] = {}
        self._views: dict[tuple[Any, ...], list[Record]] = {}

    # -- generation -------------------------------------------------------
    def _rng(self, spec: ResourceSpec, *extra: object) -> random.Random:
        return random.Random("/".join(str(p) for p in (self.seed, spec.source, spec.name, *extra)))

    def _size(self, spec: ResourceSpec) -> int:
        if spec.singleton:
            return 1
        return int(self.sizes.get(spec.key, self.default_size))

    def _new_record(self, spec: ResourceSpec, rid: int, rng: random.Random, created: int | None) -> Record:
        if created is None:
            created_ts = BASE_EPOCH - 1 - int(rng.random() * YEAR_SECONDS)
            updated_ts = created_ts + int(rng.random() * (BASE_EPOCH - created_ts))
            created_at, updated_at = iso(created_ts), iso(updated_ts)
        else:
            created_at = updated_at = iso(created)
        record: Record = {"id": rid, "name": make_name(rng), "created_at": created_at, "updated_at": updated_at}
        fill_extras(spec, record, rng)
        return record

    def table(self, source: str, resource: str) -> Table:
        """Return (generating on first use) the table of ``source``/``resource``."""
        key = (source, resource)
        found = self._tables.get(key)
        if found is not None:
            return found
        spec = SPECS[source][resource]
        table = Table(spec=spec)
        if spec.parent:
            table.by_parent = {}
            parents = self.table(source, spec.parent).records
            self._add_children(table, parents, self._rng(spec), created=None)
        else:
            rng = self._rng(spec)
            self._append(table, self._size(spec), rng, created=None)
        self._tables[key] = table
        return table

    def _append(self, table: Table, count: int, rng: random.Random, created: int | None) -> list[Record]:
        new = [self._new_record(table.spec, table.next_id + i, rng, created) for i in range(count)]
        table.next_id += count
        table.records.extend(new)
        return new

    def _add_children(self, table: Table, parents: list[Record], rng: random.Random, created: int | None) -> None:
        spec = table.spec
        assert table.by_parent is not None
        if spec.ref:
            pool = self.table(spec.source, spec.ref).records
            for parent in parents:
                picks = rng.sample(range(len(pool)), min(len(pool), between(rng, 0, 4)))
                table.by_parent[parent["id"]] = [pool[i] for i in sorted(picks)]
            return
        for parent in parents:
            table.by_parent[parent["id"]] = self._append(table, between(rng, 0, 4), rng, created)

    # -- reading ----------------------------------------------------------
    def view(self, source: str, resource: str, since: str | None = None, parent_id: int | None = None) -> list[Record]:
        """Records served for a list request (cached until the next change).

        For child resources ``parent_id`` selects one parent; raises
        ``KeyError`` when that parent does not exist.
        """
        key = (source, resource, since, parent_id, self.version)
        cached = self._views.get(key)
        if cached is not None:
            return cached
        table = self.table(source, resource)
        if table.by_parent is not None and parent_id is not None:
            rows = table.by_parent[parent_id]
        else:
            rows = table.records
        if since is not None:
            rows = [r for r in rows if r["updated_at"] >= since]
        if len(self._views) > 256:
            self._views.clear()
        self._views[key] = rows
        return rows

    def truth(self, source: str, resource: str) -> list[Record]:
        """Deep-enough copies of every record served for a resource.

        Child records get an added ``parent_id`` key; list fields are copied too.
        """
        with self.lock:
            table = self.table(source, resource)
            if table.by_parent is None:
                return [_copy(r) for r in table.records]
            out = [_copy(r, parent_id=pid) for pid, rows in table.by_parent.items() for r in rows]
            if not table.spec.ref:
                out.sort(key=lambda r: r["id"])
            return out

    # -- changing ---------------------------------------------------------
    def advance(self, update_fraction: float = 0.01, add: int = 5, hours: float = 1.0) -> None:
        """Move the clock by ``hours``, update and add records deterministically."""
        with self.lock:
            self.step += 1
            self.clock += int(hours * 3600)
            new_parents: dict[tuple[str, str], list[Record]] = {}
            for source, specs in SPECS.items():
                for spec in specs.values():
                    if spec.parent is None:
                        new_parents[(source, spec.name)] = self._advance_top(spec, update_fraction, add)
                for spec in specs.values():
                    if spec.parent is not None:
                        self._advance_child(spec, update_fraction, new_parents[(source, spec.parent)])
            self.version += 1
            self._views.clear()

    def _update(self, spec: ResourceSpec, rows: list[Record], fraction: float) -> None:
        if not rows or fraction <= 0:
            return
        rng = self._rng(spec, "advance", self.step)
        count = min(len(rows), math.ceil(len(rows) * fraction))
        for index in sorted(rng.sample(range(len(rows)), count)):
            record = rows[index]
            old = record["name"]
            record["name"] = make_name(rng)
            if record["name"] == old:
                record["name"] = f"{old} Jr"
            fill_extras(spec, record, rng)
            record["updated_at"] = iso(self.clock)

    def _advance_top(self, spec: ResourceSpec, fraction: float, add: int) -> list[Record]:
        table = self.table(spec.source, spec.name)
        self._update(spec, table.records, fraction)
        if spec.singleton or add <= 0:
            return []
        return self._append(table, add, self._rng(spec, "add", self.step), created=self.clock)

    def _advance_child(self, spec: ResourceSpec, fraction: float, new_parents: list[Record]) -> None:
        table = self.table(spec.source, spec.name)
        if not spec.ref:
            self._update(spec, table.records, fraction)
        if new_parents:
            self._add_children(table, new_parents, self._rng(spec, "add", self.step), created=self.clock)
