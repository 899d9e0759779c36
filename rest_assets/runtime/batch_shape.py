"""Whether a batch of records loads the same through Arrow as through dlt's row normalizer.

dlt's default (relational) normalizer types each column from the first value
it sees (ISO-8601 strings become timestamps), coerces later values to that
type or puts them in a variant column (`field__v_text`), flattens objects into
`parent__child` columns and turns lists into child tables. Arrow skips all of
that: a batch goes that way only when the result is the same, i.e. when every
column, after flattening objects the way dlt does, holds one scalar type that
agrees with the table's type for it (the spec's hint, the stored schema, the
earlier batches of this run). Where only some rows break that (a field that is
an integer in the table and `"n/a"` in one row, a list in one row), the batch
is split: the other rows go on as Arrow, those rows as plain rows; where the
odd rows cannot be told apart (a new column, a naming collision) or are most
of the batch, the whole batch goes on as plain rows. Plain rows are what dlt
decides, exactly as plain dlt would: the odd rows meet the column types
already established and get dlt's coercion or variant columns.

Arrow tables are typed by dlt at extract time, rows at normalize time in any
file order: so a column first seen in rows is noted with the type dlt will give
it (its first value's), and a later Arrow batch must agree with that too.
"""

from __future__ import annotations

import json
from collections.abc import Collection, Iterable, Sequence
from itertools import repeat
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc
from dlt.common.schema import Schema, utils

from rest_assets.errors import UnloadableRecordError
from rest_assets.runtime.responses import INT64_MAX, INT64_MIN

# dlt writes extracted rows with orjson, which refuses a row whose objects/lists reach this depth
MAX_DEPTH = 255
# objects nested deeper than this are left to dlt's normalizer (rare; keeps this cheap)
MAX_FLAT_DEPTH = 16
EMPTY_KEY = "_empty"  # dlt's name for an empty or blank key
# schema metadata of a batch: the columns dlt first meets after its first row (JSON list of names)
LATE_COLUMNS = "rest_assets.late_columns"
_PY_TYPES: dict[type, str] = {str: "text", int: "bigint", float: "double", bool: "bool"}
_ARROW: dict[str, pa.DataType] = {"text": pa.string(), "bigint": pa.int64(), "double": pa.float64(), "bool": pa.bool_()}


class _Unclean(Exception):
    """The batch cannot take the Arrow path."""


class BatchShape:
    """Per resource and run: turns clean batches into Arrow tables and remembers each column's type."""

    def __init__(
        self,
        schema: Schema,
        resource: str,
        hinted: dict[str, str],
        max_nesting: int | None,
        table: str | None = None,
        text_as_rows: Collection[str] = ("json",),
        loaded: bool = True,
    ) -> None:
        """`hinted`: the spec's column data types. Strings in a hinted column stay Arrow (cast after the
        incremental step, or by the destination on load), except in one of a type in `text_as_rows`: dlt
        parses a string in a json column (or keeps it in a variant), which no cast does, so they go to its rows.
        A resource not `loaded` (an unselected parent: its records only feed children) refuses nothing."""
        self.loaded = loaded
        self.schema, self.naming, self.resource = schema, schema.naming, resource
        self.table = self.naming.normalize_table_identifier(table or resource)  # its `table_name`, where it has one
        stored = schema.tables.get(self.table, {})
        nesting = (stored.get("x-normalizer") or {}).get("max_nesting")
        self.max_nesting = nesting if nesting is not None else (max_nesting if max_nesting is not None else 1000)
        self.types: dict[str, str] = {
            name: str(column["data_type"]) for name, column in stored.get("columns", {}).items() if column.get("data_type")
        }
        # dlt's name of each key and path, and each name's preferred type: the same few names on every row
        self._idents: dict[str, str] = {}
        self._names: dict[tuple[str, ...], str] = {}
        self._preferred: dict[str, str | None] = {}
        self.hinted = {self._ident(name): data_type for name, data_type in hinted.items()}
        self.types.update(self.hinted)
        self.castable = {name for name, data_type in self.hinted.items() if data_type not in text_as_rows}

    def _ident(self, key: str) -> str:
        ident = self._idents.get(key)
        if ident is None:
            ident = self._idents[key] = self.naming.normalize_path(key) if key and not key.isspace() else EMPTY_KEY
        return ident

    def _name(self, path: tuple[str, ...]) -> str:
        """The column name dlt makes of a path of normalized keys (`parent__child`, shortened as dlt does)."""
        if len(path) == 1:
            return path[0]
        name = self._names.get(path)
        if name is None:
            name = self._names[path] = self.naming.shorten_fragments(*path)
        return name

    def split(self, rows: list[dict[str, Any]]) -> tuple[pa.Table | None, list[dict[str, Any]]]:
        """The batch as an Arrow table of its clean rows and the list of the rows that must go on as they are.

        Either part may be empty (None, []); the rows keep their order within each part.
        """
        odd: set[int] = set()
        try:
            table = self._table(rows, odd)
        except _Unclean:
            odd = set(range(len(rows)))
        if not odd:
            return table, []
        if 2 * len(odd) <= len(rows):
            clean = [row for index, row in enumerate(rows) if index not in odd]
            try:
                table = self._table(clean, odd=None)
            except _Unclean:  # a column that was new in the batch now holds nothing but nulls, or the like
                pass
            else:
                left = [rows[index] for index in sorted(odd)]
                self.note_rows(left)
                return table, left
        self.note_rows(rows)
        return None, rows

    def _table(self, rows: list[dict[str, Any]], odd: set[int] | None) -> pa.Table:
        """`rows` as an Arrow table; raises _Unclean, or (with `odd`) fills `odd` with the rows that break it.

        With `odd` the table returned is only meaningful when `odd` stays empty.
        """
        columns: dict[str, tuple[str, pa.Array]] = {}  # normalized name -> (name in the table, values)
        for key in _keys_in_order(rows):
            self._add(columns, key, (self._ident(key),), _values_of(rows, key), self.max_nesting, odd)
        if odd:
            return pa.table({})
        new = any(name not in self.types for name in columns)
        for name, (_, array) in columns.items():
            self.types.setdefault(name, _arrow_type_name(array.type))
        table = pa.Table.from_arrays([array for _, array in columns.values()], names=[label for label, _ in columns.values()])
        return self._in_dlts_order(table, columns, rows) if new else table

    def _in_dlts_order(self, table: pa.Table, columns: dict[str, tuple[str, pa.Array]], rows: list[dict[str, Any]]) -> pa.Table:
        """`table` with its columns in the order dlt's normalizer first meets them, row by row.

        That order is the new columns' order in the table: dlt flattens a row's
        own fields first, then its objects, last met first (a stack), and
        adds its `_dlt_load_id` and `_dlt_id` after the first row's fields. The
        columns first met after the first row are named in the table's metadata
        (`LATE_COLUMNS`), for the step that adds dlt's columns.
        """
        order: dict[str, None] = {}
        first_row_columns = 0
        for index, row in enumerate(rows):
            self._flattened_names(row, columns, order)
            if index == 0:
                first_row_columns = len(order)
            if len(order) == len(columns):
                break
        labels = [columns[name][0] for name in order]
        if len(labels) != table.num_columns:  # not all met the way dlt meets them: left as they are
            return table
        if labels != table.column_names:
            table = table.select(labels)
        late = labels[first_row_columns:]
        return table.replace_schema_metadata({LATE_COLUMNS: json.dumps(late)}) if late else table

    def _flattened_names(self, row: dict[str, Any], columns: Collection[str], order: dict[str, None]) -> None:
        """Add to `order` the names of `columns` that `row` has values of, in dlt's flattening order
        (see `_in_dlts_order`)."""
        stack: list[tuple[dict[str, Any], tuple[str, ...]]] = [(row, ())]
        while stack:
            current, path = stack.pop()
            for key, value in current.items():
                here = (*path, self._ident(key))
                if type(value) is dict:
                    stack.append((value, here))
                elif value is not None and (name := self._name(here)) in columns:
                    order.setdefault(name)

    def _add(
        self,
        columns: dict[str, tuple[str, pa.Array]],
        label: str,
        path: tuple[str, ...],
        values: list[Any],
        level: int,
        odd: set[int] | None,
    ) -> None:
        name = self._name(path)
        kinds = set(map(type, values))
        kinds.discard(type(None))
        if list in kinds and odd is not None:  # a list goes to a child table, whatever the column's type
            self._add_odd(odd, (index for index, value in enumerate(values) if type(value) is list), len(values))
            values = [None if type(value) is list else value for value in values]
            kinds.discard(list)
        if not kinds:
            return  # null in every row: dlt makes no column of it
        if name in columns:
            raise _Unclean  # two keys that dlt names alike
        if kinds == {dict}:
            if level <= 0 or len(path) > MAX_FLAT_DEPTH or self._expected(name) == "json":
                raise _Unclean
            objects = [value for value in values if value] if None in values else values
            for key in _keys_in_order(objects):
                self._add(columns, name, (*path, self._ident(key)), _values_of(values, key), level - 1, odd)
            return
        data_type = _PY_TYPES.get(next(iter(kinds))) if len(kinds) == 1 else None
        if data_type is not None:
            expected = self._expected(name) or self._inferred(name, next(v for v in values if v is not None))
            if expected == data_type or (name in self.castable and data_type == "text"):
                if odd:
                    return  # the table is built again from the clean rows
                try:
                    array = pa.array(values, type=_ARROW[data_type])
                except (pa.ArrowInvalid, OverflowError):
                    raise _Unclean from None
                if data_type == "double":
                    array = _finite_or_null(array)
                columns[name] = (label if len(path) == 1 and label.strip() else name, array)
                return
        self._note_odd_rows(name, values, odd)

    def _note_odd_rows(self, name: str, values: list[Any], odd: set[int] | None) -> None:
        """Add to `odd` the rows whose value of column `name` does not fit the column's established type.

        Raises _Unclean when the rows cannot be told apart: no split asked for,
        or a column whose type is not established yet (dlt would type it from
        the first row, whichever part that is).
        """
        established = self._expected(name)
        accepted = {python for python, data_type in _PY_TYPES.items() if data_type == established}
        if name in self.castable:
            accepted.add(str)  # cast to the hinted type after the incremental step
        if odd is None or not accepted:
            raise _Unclean
        rows = (index for index, value in enumerate(values) if value is not None and type(value) not in accepted)
        self._add_odd(odd, rows, len(values))

    @staticmethod
    def _add_odd(odd: set[int], rows: Iterable[int], batch_size: int) -> None:
        """Add `rows` to `odd`; raises _Unclean as soon as they are most of the batch (it goes whole as rows)."""
        odd.update(rows)
        if 2 * len(odd) > batch_size:
            raise _Unclean

    def _expected(self, name: str) -> str | None:
        return self.types.get(name) or self._preferred_type(name)

    def _preferred_type(self, name: str) -> str | None:
        if name not in self._preferred:
            preferred = self.schema.get_preferred_type(name)
            self._preferred[name] = str(preferred) if preferred else None
        return self._preferred[name]

    def _inferred(self, name: str, value: Any) -> str | None:
        """The type dlt's normalizer gives a new column from its first value (detections, preferred types)."""
        detected = utils.autodetect_sc_type(self.schema._type_detections, type(value), value)
        return self._preferred_type(name) or detected or _PY_TYPES.get(type(value))

    def note_rows(self, rows: Iterable[dict[str, Any]]) -> None:
        """Note the type dlt will give each new column of rows handed on as they are; refuse what dlt cannot load."""
        for row in rows:
            stack: list[tuple[dict[str, Any], tuple[str, ...], int, str]] = [(row, (), self.max_nesting, "")]
            while stack:
                current, path, level, field = stack.pop()
                for key, value in current.items():
                    here, field_name = (*path, self._ident(key)), field or key
                    name = self._name(here)
                    if type(value) is dict and level > 0 and self._expected(name) != "json":
                        if len(here) + 1 >= MAX_DEPTH:
                            self._check_loadable(value, field_name, len(here) + 1)
                        stack.append((value, here, level - 1, field_name))
                    elif value is not None:
                        self._check_loadable(value, field_name, len(here) + 1)
                        if type(value) is float:
                            self._check_fits_an_integer_column(value, name, field_name)
                        if not isinstance(value, (list, dict)) and name not in self.types:
                            self.types[name] = self._inferred(name, value) or "json"

    def _check_fits_an_integer_column(self, value: float, name: str, key: str) -> None:
        """A whole float beyond 64 bits in a bigint column: dlt makes an integer of it that no writer takes
        (its parquet writer fails the run naming neither resource nor field; its SQL insert stores 0)."""
        if self.loaded and value.is_integer() and not INT64_MIN <= value <= INT64_MAX and self._expected(name) == "bigint":
            raise UnloadableRecordError(
                f"resource '{self.resource}': field '{key}' holds {value!r} in an integer column, beyond 64 bits; "
                "neither dlt nor a destination column can hold it (hint the column as double, or have the API "
                "send it as a string)"
            )

    def _check_loadable(self, value: Any, key: str, depth: int) -> None:
        """Nesting dlt's JSON writer refuses (integers beyond 64 bits are refused as the page arrives, see
        runtime.responses)."""
        if not self.loaded:
            return
        if isinstance(value, (list, dict)):
            if depth >= MAX_DEPTH:
                raise UnloadableRecordError(
                    f"resource '{self.resource}': field '{key}' nests objects or lists {MAX_DEPTH} levels deep or "
                    "more; dlt's JSON writer cannot store it (point data_selector at a shallower part)"
                )
            for item in value.values() if isinstance(value, dict) else value:
                if isinstance(item, (list, dict)):
                    self._check_loadable(item, key, depth + 1)


def _keys_in_order(records: list[dict[str, Any]]) -> list[str]:
    """The keys of `records`, in the order first met (one pass in C when no record has a key the first lacks)."""
    if not records:
        return []
    if len(set().union(*records)) == len(records[0]):
        return list(records[0])
    return list(dict.fromkeys(key for record in records for key in record))


def _values_of(records: Sequence[dict[str, Any] | None], key: str) -> list[Any]:
    """Each record's value of `key` (None where it has none, or is None itself)."""
    if None in records:
        return [record.get(key) if record is not None else None for record in records]
    return list(map(dict.get, records, repeat(key)))  # type: ignore[arg-type]


def _finite_or_null(array: pa.Array) -> pa.Array:
    """`array` with infinities and NaN (a JSON number beyond a double, `NaN`) as nulls, as dlt writes them
    (its extracted rows are JSON, where they are null)."""
    finite = pc.is_finite(array)
    if pc.all(finite).as_py() is not False:
        return array
    return pc.if_else(finite, array, pa.scalar(None, pa.float64()))


def _arrow_type_name(arrow_type: pa.DataType) -> str:
    return next(name for name, known in _ARROW.items() if known == arrow_type)
