"""The records behind a parent's Arrow batches: found by the table a child is handed, forgotten with it."""

import gc

import pyarrow as pa
import pytest

from rest_assets.errors import LoadError
from rest_assets.runtime.parent_records import ParentRecords

RECORDS = [{"id": 1, "owner": {"id": 7}}, {"id": 2, "owner": {"id": 8}}]


def test_a_child_handed_a_kept_table_gets_its_records():
    kept = ParentRecords("posts")
    table = pa.table({"id": [1, 2], "owner__id": [7, 8]})
    kept.keep(table, RECORDS)
    assert kept.records_for_child(table, "comments") is RECORDS


def test_a_cast_table_carries_the_records_of_the_table_it_replaced():
    kept = ParentRecords("posts")
    table = pa.table({"id": [1, 2]})
    kept.keep(table, RECORDS)
    cast = table.set_column(0, "id", pa.array(["1", "2"]))
    kept.carry(table, cast)
    assert kept.records_for_child(cast, "comments") is RECORDS


def test_rows_pass_to_the_child_as_they_are():
    kept = ParentRecords("posts")
    assert kept.records_for_child(RECORDS, "comments") is RECORDS
    assert kept.records_for_child(RECORDS[0], "comments") == [RECORDS[0]]


def test_a_table_whose_records_are_unknown_fails_naming_parent_and_child():
    with pytest.raises(LoadError, match="resource 'posts': child resource 'comments'"):
        ParentRecords("posts").records_for_child(pa.table({"id": [1]}), "comments")


def test_records_are_forgotten_with_their_table():
    kept = ParentRecords("posts")
    for _ in range(100):
        kept.keep(pa.table({"id": [1, 2]}), RECORDS)
    gc.collect()
    assert kept._records == {}
