"""Hand pages to dlt as Arrow tables, in batches.

dlt normalizes JSON items row by row (type coercion, flattening, timestamp
parsing) and recomputes the table schema for every item it extracts; for a
bulk load that is most of the run. Here the resource's page generator is
wrapped to yield one Arrow table per batch of pages (the rest flushed when
the generator ends, however it ends), so dlt takes its columnar path:
incremental filtering runs vectorized, tables are written to parquet as they
are, and the schema is computed once per batch.

Types: columns with a `data_type` hint in the spec are cast to it after
incremental filtering (ISO-8601 strings to `timestamp`, ...); other columns
keep the type Arrow infers. Nested data: objects and lists stay in one column
(a struct or list, loaded as a JSON column) instead of being unnested into
child tables — the shape the API returns. Rows and values are unchanged.
"""

from __future__ import annotations

import functools
from typing import Any, Callable, Iterator

import pyarrow as pa
import pyarrow.compute as pc
from dlt.extract.items_transform import ItemTransform

from rest_assets.runtime.page_batches import join_pages

ROWS_PER_BATCH = 5_000
_ARROW_TYPES: dict[str, pa.DataType] = {
    "text": pa.string(),
    "bigint": pa.int64(),
    "double": pa.float64(),
    "bool": pa.bool_(),
    "timestamp": pa.timestamp("us", tz="UTC"),
    "date": pa.date32(),
}


def rows_to_table(rows: list[dict[str, Any]]) -> pa.Table:
    """An Arrow table with a column for every key of any row (None where a row lacks it).

    `pa.Table.from_pylist` takes its columns from the first row alone, so a
    field that first appears later in a batch (APIs often omit empty fields)
    would be dropped without a word.
    """
    names = list(rows[0]) if rows else []
    if len(set().union(*rows)) != len(names):
        names = list(dict.fromkeys(key for row in rows for key in row))
    return pa.Table.from_arrays([pa.array([row.get(name) for row in rows]) for name in names], names=names)


def batch_pages(generator_function: Callable[..., Iterator[Any]], rows_per_batch: int = ROWS_PER_BATCH) -> Callable[..., Iterator[Any]]:
    """Wrap a resource's page generator so it yields Arrow tables of up to `rows_per_batch` rows.

    The wrapper keeps the function's signature (dlt binds arguments by it) and
    flushes what it holds when the generator ends, however it ends; anything
    that is not a page of records (e.g. dlt's deferred calls) passes through in order.
    """

    @functools.wraps(generator_function)
    def batched(*args: Any, **kwargs: Any) -> Iterator[Any]:
        yield from join_pages(generator_function(*args, **kwargs), rows_per_batch, finish=rows_to_table)

    return batched


class ColumnCaster(ItemTransform[Any, dict[str, Any]]):
    """Casts Arrow columns to the spec's `columns` data types and nullability; other items pass through.

    A `nullable: false` column without nulls is marked non-nullable, so the
    batch's schema agrees with the spec and dlt has no hint conflict to warn
    about on every batch; a column that does hold nulls keeps its nullable
    field and fails the load on the destination's NOT NULL constraint.
    """

    # dlt keeps incremental (affinity 1) last; cast after it, so cursors stay the API's strings
    placement_affinity = 1.05

    def __init__(self, columns: dict[str, Any] | None) -> None:
        super().__init__(lambda item: item)
        self.casts = {
            name: _ARROW_TYPES[hints["data_type"]]
            for name, hints in (columns or {}).items()
            if isinstance(hints, dict) and hints.get("data_type") in _ARROW_TYPES
        }
        self.required = [name for name, hints in (columns or {}).items()
                         if isinstance(hints, dict) and hints.get("nullable") is False]

    def __call__(self, item: Any, meta: Any = None) -> Any:
        if not isinstance(item, pa.Table):
            return item
        for name, arrow_type in self.casts.items():
            index = item.schema.get_field_index(name)
            if index >= 0 and item.schema.field(index).type != arrow_type:
                item = item.set_column(index, name, pc.cast(item.column(index), arrow_type))
        return _mark_required(item, self.required)


def _mark_required(table: pa.Table, names: list[str]) -> pa.Table:
    """`table` with the fields of `names` that hold no nulls marked non-nullable (no data copied)."""
    schema, changed = table.schema, False
    for name in names:
        index = schema.get_field_index(name)
        if index >= 0 and schema.field(index).nullable and table.column(index).null_count == 0:
            schema, changed = schema.set(index, schema.field(index).with_nullable(False)), True
    return pa.Table.from_arrays(table.columns, schema=schema) if changed else table


def use_arrow_pages(resource: Any, columns: dict[str, Any] | None) -> None:
    """Batch a rest_api resource's pages into Arrow tables and cast them to the spec's types.

    Steps after the generator then see Arrow tables: dlt's incremental runs
    vectorized on each batch and stays last, followed by the caster.
    """
    resource._pipe.replace_gen(batch_pages(resource._pipe.gen))
    resource.add_step(ColumnCaster(columns))
