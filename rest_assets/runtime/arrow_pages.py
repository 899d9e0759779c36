"""Hand pages to dlt as Arrow tables, in batches, where that loads what dlt's row path loads.

dlt normalizes JSON items row by row (type coercion, flattening, timestamp
parsing) and recomputes the table schema for every item it extracts; for a
bulk load that is most of the run. Here the resource's page generator is
wrapped to join pages into batches of ~5,000 records (the rest flushed when
the generator ends, however it ends). A batch that is clean (see
runtime.batch_shape: scalar columns of one type each, agreeing with the
table's types; objects flattened to `parent__child` columns as dlt flattens
them) goes on as one Arrow table, so dlt takes its columnar path: incremental
filtering runs vectorized, tables are written to parquet as they are. Rows
that break it (a type change, lists, objects dlt would keep as JSON) go on as
plain rows, for dlt's own normalizer: the tables, columns, variant columns
(`field__v_text`) and child tables are then exactly plain dlt's. Where they
are a few, only they go that way and the rest of their batch stays Arrow;
otherwise the whole batch does, and is counted (`on_rows_batch`). dlt's
`_dlt_id`/`_dlt_load_id` are added to Arrow batches too, as the row path has
them.

Types: columns with a `data_type` hint in the spec are cast to it after
incremental filtering (ISO-8601 strings to `timestamp`, ...).
"""

from __future__ import annotations

import base64
import functools
import json
import os
import re
import secrets
from collections.abc import Callable, Collection, Iterator
from typing import Any

import dlt
import pyarrow as pa
import pyarrow.compute as pc
from dlt.common.arithmetics import DEFAULT_NUMERIC_PRECISION, DEFAULT_NUMERIC_SCALE
from dlt.common.schema import Schema

from rest_assets.dialect.model import endpoint_incrementals, primary_key_fields
from rest_assets.dialect.validate import normalized_identifier
from rest_assets.dlt_internals import (
    ItemTransform,
    current_source_schema,
    is_hints_meta,
    load_id_column,
    replace_generator,
    row_id_column,
    row_id_length_bytes,
)
from rest_assets.errors import LoadError
from rest_assets.runtime.batch_shape import LATE_COLUMNS, BatchShape
from rest_assets.runtime.page_batches import join_pages
from rest_assets.runtime.parent_records import ParentRecords

ROWS_PER_BATCH = 5_000
_ARROW_TYPES: dict[str, pa.DataType] = {
    "text": pa.string(),
    "bigint": pa.int64(),
    "double": pa.float64(),
    "bool": pa.bool_(),
    "timestamp": pa.timestamp("us", tz="UTC"),
    "date": pa.date32(),
}
# dlt adds these columns to Arrow batches only when told to; its row normalizer always does
ADD_LOAD_ID_SETTING = "NORMALIZE__PARQUET_NORMALIZER__ADD_DLT_LOAD_ID"
ADD_ROW_ID_SETTING = "NORMALIZE__PARQUET_NORMALIZER__ADD_DLT_ID"
_ADD_ROW_ID_KEY = "normalize.parquet_normalizer.add_dlt_id"
_ROW_IDS_HERE = "REST_ASSETS_ROW_IDS_AT_EXTRACT"  # set with ADD_ROW_ID_SETTING: the `false` there is ours
ROW_ID = "_dlt_id"
LOAD_ID = "_dlt_load_id"
_ADD_LOAD_ID_KEY = "normalize.parquet_normalizer.add_dlt_load_id"
_PLAIN_KEY = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")


def _current_schema() -> Schema:
    """The schema of the source being extracted (with the tables dlt restored from the destination)."""
    schema = current_source_schema()
    return schema if schema is not None else Schema("rest_assets")  # outside an extraction (unit tests)


def batch_pages(
    generator_function: Callable[..., Iterator[Any]],
    rows_per_batch: int | None = None,
    *,
    resource: str = "resource",
    table: str | None = None,
    hints: dict[str, str] | None = None,
    max_nesting: int | None = None,
    on_rows_batch: Callable[[], None] | None = None,
    cursors: Collection[str] = (),
    parent_records: ParentRecords | None = None,
    loaded: bool = True,
) -> Callable[..., Iterator[Any]]:
    """Wrap a resource's page generator so it yields batches of up to `rows_per_batch` rows.

    A clean batch becomes one Arrow table; a batch where a few rows break it
    becomes an Arrow table of the others followed by the list of those rows
    (see BatchShape.split); any other stays a list of rows (`on_rows_batch()`
    is told). So does a batch where no row has one of the incremental
    `cursors`: dlt's Arrow incremental fails on a missing column
    whatever `on_cursor_value_missing` says, its row path applies it. The
    wrapper keeps the function's signature (dlt binds arguments by it) and
    flushes what it holds when the generator ends, however it ends; anything
    that is not a page of records (e.g. dlt's deferred calls, a page of
    scalars) passes through in order. With `parent_records`, each table's
    records are kept there for the children that read this resource. A resource
    not `loaded` (an unselected parent) refuses no record dlt could not load.
    """

    @functools.wraps(generator_function)
    def batched(*args: Any, **kwargs: Any) -> Iterator[Any]:
        shape = BatchShape(_current_schema(), resource, hints or {}, max_nesting, table, loaded=loaded)

        def finish(rows: list[dict[str, Any]]) -> list[Any]:
            table, odd_rows = shape.split(rows)
            if table is not None and all(cursor in table.column_names for cursor in cursors):
                if parent_records is not None:
                    parent_records.keep(table, _without(rows, odd_rows))
                return [table, odd_rows] if odd_rows else [table]
            if on_rows_batch is not None:
                on_rows_batch()
            return [rows]

        yield from join_pages(generator_function(*args, **kwargs), rows_per_batch or ROWS_PER_BATCH, finish=finish)

    return batched


def _without(rows: list[dict[str, Any]], odd_rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """`rows` minus the `odd_rows` (the very same objects), in order."""
    if not odd_rows:
        return rows
    odd = {id(row) for row in odd_rows}
    return [row for row in rows if id(row) not in odd]


class ColumnCaster(ItemTransform[Any, dict[str, Any]]):
    """Casts Arrow columns to the spec's `columns` data types and nullability; other items pass through.

    A `nullable: false` column without nulls is marked non-nullable, so the
    batch's schema agrees with the spec and dlt has no hint conflict to warn
    about on every batch; a column that does hold nulls keeps its nullable
    field and fails the load on the destination's NOT NULL constraint.
    With `row_ids` each table gets dlt's `_dlt_id` (see `row_ids_at_extract`).
    A new table keeps the records behind it in `parent_records`.
    """

    # dlt keeps incremental (affinity 1) last; cast after it, so cursors stay the API's strings
    placement_affinity = 1.05

    def __init__(
        self,
        columns: dict[str, Any] | None,
        parent_records: ParentRecords | None = None,
        row_ids: bool = False,
        resource: str = "",
        primary_key: list[str] | None = None,
        load_ids: bool = False,
    ) -> None:
        super().__init__(lambda item: item)
        self.parent_records = parent_records
        self.row_ids = row_ids
        self.load_ids = load_ids
        self.dlt_columns = [column() for column, wanted in ((load_id_column, load_ids), (row_id_column, row_ids)) if wanted]
        self.resource = resource
        # as the API names them (batches keep the API's names until dlt normalizes them) and as dlt does
        self.primary_key = sorted({*(primary_key or []), *(normalized_identifier(name) for name in primary_key or [])})
        self.casts = {
            name: arrow_type
            for name, hints in (columns or {}).items()
            if isinstance(hints, dict) and (arrow_type := _arrow_type(hints)) is not None
        }
        self.required = [
            name for name, hints in (columns or {}).items() if isinstance(hints, dict) and hints.get("nullable") is False
        ]
        # dlt puts a resource's columns hinted with a data type first, then the data's (in their order)
        self.hinted = [name for name, hints in (columns or {}).items() if isinstance(hints, dict) and hints.get("data_type")]

    def __call__(self, item: Any, meta: Any = None) -> Any:
        inherited = is_hints_meta(meta)  # a parent's hints, which dlt would apply to this child's table too
        if not isinstance(item, pa.Table):
            return _without_hints(item) if inherited else item
        self._refuse_null_keys(item)
        cast = self._cast(item)
        if isinstance(cast, pa.Table):
            cast = _with_dlt_columns(cast, self.row_ids, self.load_ids)
        if self.parent_records is not None:
            if not isinstance(cast, pa.Table):  # the records themselves load as plain dlt loads them
                cast = self.parent_records.records_of(item) or cast
                return _without_hints(cast) if inherited else cast
            self.parent_records.carry(item, cast)
        if isinstance(cast, pa.Table) and self.dlt_columns and (meta is None or inherited):
            # dlt's normalizer gives its columns their hints (`_dlt_id`: unique, row key) where it adds them;
            # those that come with an Arrow batch need them declared. Declared with the first Arrow batch, not
            # up front: a resource's declared columns come first in its table, and rows keep dlt's order
            columns, self.dlt_columns = self.dlt_columns, []
            return dlt.mark.with_hints(cast, dlt.mark.make_hints(columns=columns))
        return _without_hints(cast) if inherited else cast

    def _refuse_null_keys(self, table: pa.Table) -> None:
        """A null primary key fails the run naming resource and column (dlt's Arrow check names neither)."""
        for name in self.primary_key:
            index = table.schema.get_field_index(name)
            nulls = table.column(index).null_count if index >= 0 else 0
            if nulls:
                raise LoadError(
                    f"resource '{self.resource}': {nulls} record(s) have a null '{name}', a primary key column "
                    "(a key is never null; plain dlt refuses them too)"
                )

    def _hinted_first(self, table: pa.Table) -> pa.Table:
        """`table` with the hinted columns first, in hint order, as dlt orders a table's columns from rows."""
        indices = [_column_index(table, name) for name in self.hinted]
        first = list(dict.fromkeys(table.column_names[i] for i in indices if i >= 0))
        if not first or table.column_names[: len(first)] == first:
            return table
        return table.select(first + [name for name in table.column_names if name not in first])

    def _cast(self, item: pa.Table) -> Any:
        item = self._hinted_first(item)
        for name, arrow_type in self.casts.items():
            index = _column_index(item, name)
            if index >= 0 and item.schema.field(index).type != arrow_type:
                try:
                    item = item.set_column(index, item.schema.field(index).name, pc.cast(item.column(index), arrow_type))
                except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
                    return item.to_pylist()  # dlt's row path coerces what it can and keeps the rest in a variant
        return _mark_required(item, self.required)


def _arrow_type(hints: dict[str, Any]) -> pa.DataType | None:
    """The Arrow type a column hint casts to: a decimal to its precision and scale (dlt's defaults filled in,
    see runtime.decimals), so text that is no number, or has more places than the scale, sends the batch
    to dlt's rows (a variant column, or the rounding plain dlt's load does), not to a failed load."""
    if hints.get("data_type") == "decimal":
        precision = int(hints.get("precision") or DEFAULT_NUMERIC_PRECISION)
        scale = int(hints["scale"] if hints.get("scale") is not None else DEFAULT_NUMERIC_SCALE)
        return (pa.decimal128 if precision <= 38 else pa.decimal256)(precision, scale)
    return _ARROW_TYPES.get(str(hints.get("data_type")))


def _without_hints(item: Any) -> Any:
    """`item` with meta that declares no hints, in place of a parent's that dlt handed on with it."""
    return dlt.mark.with_hints(item, dlt.mark.make_hints())


def _with_dlt_columns(table: pa.Table, row_ids: bool, load_ids: bool) -> pa.Table:
    """`table` with dlt's `_dlt_load_id` and (with `row_ids`) `_dlt_id`, where dlt's normalizer puts them.

    That is after the columns of a batch's first row, before those first met
    in later rows (BatchShape's `LATE_COLUMNS`). The `_dlt_load_id` values
    are blank: dlt fills in the load id where the column is (`load_ids` says
    dlt will, per its `add_dlt_load_id`).
    """
    metadata = table.schema.metadata
    late = json.loads(metadata[LATE_COLUMNS.encode()]) if metadata and LATE_COLUMNS.encode() in metadata else []
    if metadata:
        table = table.replace_schema_metadata(None)
    added = []
    if load_ids and LOAD_ID not in table.column_names:
        added.append(LOAD_ID)
        table = table.append_column(pa.field(LOAD_ID, pa.string(), nullable=False), _blanks(table.num_rows))
    if row_ids and ROW_ID not in table.column_names:
        added.append(ROW_ID)
        table = table.append_column(pa.field(ROW_ID, pa.string(), nullable=False), random_row_ids(table.num_rows))
    if not (late and added):
        return table
    late = [name for name in late if name in table.column_names]
    return table.select([name for name in table.column_names if name not in late and name not in added] + added + late)


def _blanks(count: int) -> pa.Array:
    """`count` empty strings, made without a Python loop."""
    return pa.StringArray.from_buffers(count, pa.py_buffer(bytes(4 * (count + 1))), pa.py_buffer(b""))


def random_row_ids(count: int) -> pa.Array:
    """`count` random ids shaped as dlt's normalizer makes `_dlt_id`: unpadded base64 of N random bytes.

    Made in one go (one random draw, one base64 encode, one Arrow slice), not
    per row as dlt does: 1M ids in about 0.1 s against dlt's 0.35 s.
    """
    size = row_id_length_bytes()
    whole_groups = -(-size // 3) * 3  # random bytes per id, a multiple of 3: ids encode without padding
    width, chars = whole_groups * 4 // 3, -(-size * 4 // 3)
    encoded = base64.b64encode(secrets.token_bytes(whole_groups * count))
    steps = pc.cumulative_sum(pa.repeat(pa.scalar(width, pa.int32()), count))
    offsets = pa.concat_arrays([pa.array([0], pa.int32()), steps])  # 0, width, 2 * width, ...
    ids = pa.StringArray.from_buffers(count, offsets.buffers()[1], pa.py_buffer(encoded))
    return pc.utf8_slice_codeunits(ids, 0, chars) if chars < width else ids


def row_ids_at_extract() -> bool:
    """Whether Arrow batches get their `_dlt_id` here, after dlt's incremental step (else dlt's setting rules).

    dlt's normalizer adds the ids by rewriting every parquet file (read,
    add the column, write again: about a second per million rows); added
    here, a batch whose columns are the table's is imported as it is. Only
    where the user has not set dlt's `add_dlt_id`: their setting, either
    way, is kept. Added after the incremental step, so its deduplication of
    rows at the stored cursor never sees a random id.
    """
    if os.environ.get(_ROW_IDS_HERE) == "1":
        return True
    if dlt.config.get(_ADD_ROW_ID_KEY) is not None:
        return False
    os.environ[ADD_ROW_ID_SETTING] = "false"
    os.environ[_ROW_IDS_HERE] = "1"
    return True


def _column_index(table: pa.Table, name: str) -> int:
    """The index of the column a `columns` hint `name` is for: the same name, or the same once dlt normalizes
    both (a hint `amount_due` is for the API's `amountDue`: batches keep the API's names); -1 when none."""
    index: int = table.schema.get_field_index(name)
    if index >= 0:
        return index
    wanted = normalized_identifier(name)
    return next((i for i, column in enumerate(table.column_names) if normalized_identifier(column) == wanted), -1)


def _mark_required(table: pa.Table, names: list[str]) -> pa.Table:
    """`table` with the fields of `names` that hold no nulls marked non-nullable (no data copied)."""
    schema, changed = table.schema, False
    for name in names:
        index = _column_index(table, name)
        if index >= 0 and schema.field(index).nullable and table.column(index).null_count == 0:
            schema, changed = schema.set(index, schema.field(index).with_nullable(False)), True
    return pa.Table.from_arrays(table.columns, schema=schema) if changed else table


def use_arrow_pages(
    resource: Any,
    config: dict[str, Any],
    on_rows_batch: Callable[[], None] | None = None,
    rows_per_batch: int | None = None,
    parent_records: ParentRecords | None = None,
) -> None:
    """Batch a rest_api resource's pages (Arrow tables where clean) and cast them to the spec's types.

    `config` is the resource's dlt config (its `columns`, `max_table_nesting`,
    `schema_contract`, incremental `cursor_path` decide). Steps after the
    generator then see Arrow tables or rows: dlt's incremental runs vectorized
    on each table and stays last, followed by the caster. Pages are joined
    until a batch holds `rows_per_batch` rows (1: each page is a batch; None:
    `ROWS_PER_BATCH` as it is when the resource runs). `parent_records` keeps
    each table's records for the children that read the resource.
    """
    columns = _columns(config.get("columns"))
    if not _arrow_can_match_rows(config):
        return
    os.environ.setdefault(ADD_LOAD_ID_SETTING, "true")
    row_ids = row_ids_at_extract()
    hints = {name: str(h["data_type"]) for name, h in columns.items() if isinstance(h, dict) and h.get("data_type")}
    replace_generator(
        resource,
        lambda gen: batch_pages(
            gen,
            rows_per_batch,
            resource=resource.name,
            table=config["table_name"] if isinstance(config.get("table_name"), str) else None,
            hints=hints,
            max_nesting=config.get("max_table_nesting"),
            on_rows_batch=on_rows_batch,
            cursors=_cursors(config),
            parent_records=parent_records,
            loaded=config.get("selected") is not False,
        ),
    )
    primary_key = primary_key_fields(config)
    load_ids = bool(dlt.config.get(_ADD_LOAD_ID_KEY, bool))
    resource.add_step(ColumnCaster(columns, parent_records, row_ids, resource.name, primary_key, load_ids))


def _columns(columns: Any) -> dict[str, Any]:
    """dlt's `columns` as a mapping (dlt also takes a list of column schemas with `name`)."""
    if isinstance(columns, list):
        return {c["name"]: c for c in columns if isinstance(c, dict) and "name" in c}
    return dict(columns or {})


def _arrow_can_match_rows(config: dict[str, Any]) -> bool:
    """False where any Arrow batch could load differently: a schema contract (dlt applies it to
    rows and Arrow differently), the scd2 merge strategy (its `_dlt_id` is a hash of the row, which
    dlt computes for rows; on Arrow batches it would be random and every row would look changed) or
    an incremental cursor inside an object (flattened here), or an incremental without a primary key
    (dlt knows the records it loaded at the stored cursor by a hash of each whole record; of an Arrow
    batch's row, that hash changes with the batch's columns, and the next run loads them again)."""
    disposition = config.get("write_disposition")
    if config.get("schema_contract") or (isinstance(disposition, dict) and disposition.get("strategy") == "scd2"):
        return False
    incrementals = endpoint_incrementals(config.get("endpoint") or {})
    if incrementals and not (config.get("primary_key") or any(i.get("primary_key") for i in incrementals)):
        return False
    return all(_PLAIN_KEY.match(cursor) for cursor in _cursors(config))


def _cursors(config: dict[str, Any]) -> list[str]:
    """The `cursor_path` of the resource's incremental, configured or as a param (dlt allows one)."""
    incrementals = endpoint_incrementals(config.get("endpoint") or {})
    return [str(i["cursor_path"]) for i in incrementals if i.get("cursor_path")]
