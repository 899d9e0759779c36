"""The Arrow batching of pages: nothing lost, order kept, types cast as the spec says."""

import os
from datetime import datetime, timezone

import pyarrow as pa
import pytest
from dlt.common.normalizers.utils import generate_dlt_id
from dlt.common.schema import Schema
from dlt.common.schema.utils import dlt_id_column

from rest_assets.runtime import arrow_pages
from rest_assets.runtime.arrow_pages import ColumnCaster, batch_pages
from rest_assets.runtime.batch_shape import BatchShape


def pages_of(*pages):
    def generate(path: str, limit: int = 0):
        yield from pages

    return generate


def rows(items):
    return [row for item in items for row in (item.to_pylist() if isinstance(item, pa.Table) else [item])]


@pytest.mark.parametrize(
    "pages",
    [
        ([{"id": 1}, {"id": 2}], [{"id": 3}], []),  # an empty last page ends the stream
        ([{"id": 1}, {"id": 2}], [{"id": 3}]),  # the generator just stops (ignored response, limit)
        ([{"id": 1}],),
    ],
)
def test_every_row_comes_out_once_in_order_however_the_pages_end(pages):
    batched = batch_pages(pages_of(*pages), rows_per_batch=2)
    assert rows(batched("/x")) == [row for page in pages for row in page]


def test_a_field_that_first_appears_in_a_later_row_is_kept():
    # APIs often omit empty fields; pyarrow's from_pylist would take the columns from the first row only
    pages = [[{"id": 1}, {"id": 2, "phone": "555"}], [{"id": 3, "address": {"city": "Oslo"}, "phone": None}]]
    out = rows(batch_pages(pages_of(*pages), rows_per_batch=10)("/x"))
    # objects are flattened into `parent__child` columns, as dlt's row normalizer flattens them
    assert out == [
        {"id": 1, "phone": None, "address__city": None},
        {"id": 2, "phone": "555", "address__city": None},
        {"id": 3, "phone": None, "address__city": "Oslo"},
    ]


def test_pages_are_joined_until_a_batch_holds_at_least_rows_per_batch_rows():
    pages = [[{"id": i} for i in range(n, n + 3)] for n in range(0, 12, 3)]
    tables = list(batch_pages(pages_of(*pages), rows_per_batch=5)("/x"))
    assert [t.num_rows for t in tables] == [6, 6]


def test_non_page_items_pass_through_in_order_after_what_came_before():
    deferred = object()
    out = list(batch_pages(pages_of([{"id": 1}], deferred, [{"id": 2}]))("/x"))
    assert out[1] is deferred
    assert out[0].to_pylist() == [{"id": 1}] and out[2].to_pylist() == [{"id": 2}]


def test_the_wrapper_keeps_the_signature_dlt_binds_arguments_by():
    import inspect

    assert list(inspect.signature(batch_pages(pages_of())).parameters) == ["path", "limit"]


def test_caster_applies_spec_types_and_leaves_other_columns_alone():
    table = pa.Table.from_pylist(
        [
            {"id": 1, "updated_at": "2026-01-02T03:04:05Z", "note": None, "address": {"city": "Oslo"}},
            {"id": 2, "updated_at": "2026-01-03T00:00:00Z", "note": None, "address": None},
        ]
    )
    caster = ColumnCaster(
        {
            "updated_at": {"data_type": "timestamp"},
            "id": {"data_type": "bigint"},
            "missing": {"data_type": "text"},
            "note": {"nullable": True},
        }
    )
    cast = caster(table)
    assert cast.schema.field("updated_at").type == pa.timestamp("us", tz="UTC")
    assert cast.column("updated_at")[0].as_py() == datetime(2026, 1, 2, 3, 4, 5, tzinfo=timezone.utc)
    assert cast.schema.field("address").type == pa.struct([("city", pa.string())])
    assert cast.column("note").null_count == 2
    assert caster({"id": 1}) == {"id": 1}


def test_caster_marks_not_null_columns_without_nulls_non_nullable_and_leaves_others():
    table = pa.Table.from_pylist([{"id": 1, "name": "a", "note": None}, {"id": 2, "name": None, "note": "x"}])
    cast = ColumnCaster({"id": {"nullable": False}, "name": {"nullable": False}, "note": {}})(table)
    assert not cast.schema.field("id").nullable  # agrees with the spec: dlt has no hint conflict to warn about
    assert cast.schema.field("name").nullable  # holds a null: left for the destination's NOT NULL to refuse
    assert cast.schema.field("note").nullable
    assert cast.to_pylist() == table.to_pylist()


def _forget_row_id_decision(monkeypatch):
    for name in (arrow_pages.ADD_ROW_ID_SETTING, arrow_pages._ROW_IDS_HERE):
        monkeypatch.delenv(name, raising=False)


def test_row_ids_are_made_at_extraction_unless_the_user_set_dlts_add_dlt_id(monkeypatch):
    _forget_row_id_decision(monkeypatch)
    assert arrow_pages.row_ids_at_extract() is True
    assert os.environ[arrow_pages.ADD_ROW_ID_SETTING] == "false"  # dlt's normalizer then imports the file as it is
    assert arrow_pages.row_ids_at_extract() is True  # the `false` is ours: the decision holds for later runs
    for users_setting in ("true", "false"):
        _forget_row_id_decision(monkeypatch)
        monkeypatch.setenv(arrow_pages.ADD_ROW_ID_SETTING, users_setting)
        assert arrow_pages.row_ids_at_extract() is False
        assert os.environ[arrow_pages.ADD_ROW_ID_SETTING] == users_setting


def test_a_table_gets_one_fresh_row_id_per_row_after_its_casts():
    caster = ColumnCaster({"n": {"data_type": "text"}}, row_ids=True)
    first = caster(pa.table({"n": [1, 2, 3]}))
    assert first.meta.hints["columns"] == {"_dlt_id": dlt_id_column()}  # dlt's hints of the column, declared once
    table = first.data
    assert table.column_names == ["n", "_dlt_id"] and table.schema.field("_dlt_id").nullable is False
    ids = table.column("_dlt_id").to_pylist()
    assert len(set(ids)) == 3 and {len(row_id) for row_id in ids} == {len(generate_dlt_id())}
    assert caster(table).column("_dlt_id").to_pylist() == ids  # never replaced, and no second declaration


def test_a_table_gets_a_blank_load_id_column_before_its_row_ids_for_dlt_to_fill_in():
    first = ColumnCaster(None, row_ids=True, load_ids=True)(pa.table({"n": [1, 2]}))
    assert set(first.meta.hints["columns"]) == {"_dlt_load_id", "_dlt_id"}
    assert first.data.column_names == ["n", "_dlt_load_id", "_dlt_id"]
    assert first.data.column("_dlt_load_id").to_pylist() == ["", ""]


def test_columns_first_met_after_a_batchs_first_row_come_after_dlts_columns_as_dlt_orders_them():
    shape = BatchShape(Schema("s"), "items", {}, None)
    table, odd = shape.split([{"id": 1, "a": {"x": 1, "c": {"y": 2}}, "b": {"z": 1}, "q": "s"}, {"id": 2, "late": 1}])
    assert odd == []
    cast = ColumnCaster(None, row_ids=True, load_ids=True)(table).data
    # dlt: a row's own fields, then its objects last met first; its columns after the first row's
    assert cast.column_names == ["id", "q", "b__z", "a__x", "a__c__y", "_dlt_load_id", "_dlt_id", "late"]
    assert cast.schema.metadata is None  # the note for this step is not written to the file
