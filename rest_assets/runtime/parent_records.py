"""The records behind a parent's Arrow batches, for the children that read the parent itself.

dlt hands a parent's items to its children after the parent's own steps. On
the Arrow path (runtime.arrow_pages) those items are tables whose names are
normalized, objects flattened and columns cast: not what plain dlt gives a
child, which is the API's records. When a child reads its parent in the same
run (see compile.parent_streams), the parent's batcher keeps the records of
each table here and the child looks them up by the table it was handed.
Entries live as long as their table: nothing accumulates over a run.
"""

from __future__ import annotations

import threading
import weakref
from typing import Any

import pyarrow as pa

from rest_assets.errors import LoadError


class ParentRecords:
    """The API records each Arrow batch of one parent resource was made from."""

    def __init__(self, parent: str) -> None:
        self.parent = parent
        self._records: dict[int, tuple[weakref.ref[pa.Table], list[dict[str, Any]]]] = {}
        self._lock = threading.Lock()

    def keep(self, table: pa.Table, records: list[dict[str, Any]]) -> None:
        """Remember that `table` holds `records` (until `table` is gone)."""
        key = id(table)

        def forget(_: object) -> None:
            with self._lock:
                self._records.pop(key, None)

        with self._lock:
            self._records[key] = (weakref.ref(table, forget), records)

    def carry(self, old: pa.Table, new: Any) -> None:
        """`old` was replaced by `new` (a cast): `new` holds the records `old` held."""
        records = self.records_of(old) if new is not old else None
        if records is not None and isinstance(new, pa.Table):
            self.keep(new, records)

    def records_of(self, item: Any) -> list[dict[str, Any]] | None:
        """The records behind `item` if it is a table kept here, else None."""
        with self._lock:
            entry = self._records.get(id(item))
        return entry[1] if entry is not None and entry[0]() is item else None

    def records_for_child(self, item: Any, child: str) -> list[dict[str, Any]]:
        """What plain dlt would hand `child` for `item`: its records (rows pass as they are)."""
        if isinstance(item, pa.Table):
            records = self.records_of(item)
            if records is None:
                raise LoadError(
                    f"resource '{self.parent}': child resource '{child}' was handed a batch whose records "
                    "are not known (a step between the parent's pages and its children changed them)"
                )
            return records
        return item if isinstance(item, list) else [item]
