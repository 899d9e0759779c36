"""The destination a run holds: one DuckDB connection and the file lock, both released however the block ends,
and one transaction around the load step."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from rest_assets.warehouse.destination import held_destination, pipeline_with_held_destination


@pytest.fixture
def duckdb_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    path = tmp_path / "warehouse.duckdb"
    monkeypatch.setenv("REST_ASSETS_DESTINATION", "duckdb")
    monkeypatch.setenv("DESTINATION__DUCKDB__CREDENTIALS", str(path))
    monkeypatch.setenv("DLT_DATA_DIR", str(tmp_path / "dlt"))
    return path


def _count_in_another_process(path: Path) -> str:
    """DuckDB lets one process write a file: this fails while ours still holds it."""
    code = f"import duckdb; print(duckdb.connect({str(path)!r}).sql('select count(*) from shop.items').fetchall()[0][0])"
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60).stdout.strip()


def test_loads_in_one_block_share_the_connection_and_the_file_is_free_after(duckdb_file: Path):
    with pipeline_with_held_destination("shop", "work") as (pipeline, destination):
        pipeline.run([{"id": 1}, {"id": 2}], table_name="items", destination=destination)
        pipeline.run([{"id": 3}], table_name="items", destination=destination)
        assert _count_in_another_process(duckdb_file) == ""  # held for the whole block
    assert not pipeline.is_active  # released: dlt's process-wide context no longer holds it
    assert _count_in_another_process(duckdb_file) == "3"


def test_the_file_is_released_when_the_block_fails(duckdb_file: Path):
    with pytest.raises(RuntimeError, match="boom"):
        with pipeline_with_held_destination("shop", "work") as (pipeline, destination):
            pipeline.run([{"id": 1}], table_name="items", destination=destination)
            raise RuntimeError("boom")
    assert _count_in_another_process(duckdb_file) == "1"
    with pipeline_with_held_destination("shop", "work-2") as (pipeline, destination):  # the lock is free too
        pipeline.run([{"id": 2}], table_name="items", destination=destination)
    assert _count_in_another_process(duckdb_file) == "2"


def test_a_merge_leaves_no_second_copy_in_the_staging_dataset(duckdb_file: Path):
    rows = [{"id": 1, "name": "a"}, {"id": 2, "name": "b"}]
    with pipeline_with_held_destination("shop", "work") as (pipeline, destination):
        pipeline.run(rows, table_name="items", destination=destination, write_disposition="merge", primary_key="id")
        pipeline.run(rows[:1], table_name="items", destination=destination, write_disposition="merge", primary_key="id")
    import duckdb

    with duckdb.connect(str(duckdb_file), read_only=True) as connection:
        assert connection.sql("select count(*) from shop.items").fetchall() == [(2,)]
        assert connection.sql("select count(*) from shop_staging.items").fetchall() == [(0,)]


def _shop_source(items: list[dict]) -> list:
    import dlt

    events = dlt.resource([{"seq": 1}], name="events", write_disposition="append")
    return [events, dlt.resource(items, name="items", write_disposition="merge", primary_key="id")]


def test_a_first_load_that_fails_leaves_no_table_and_the_next_one_loads_once(duckdb_file: Path):
    """The load step is one transaction even when the dataset does not exist yet (dlt then reads tables it
    has not created: those reads must not abort the transaction)."""
    import duckdb

    with duckdb.connect(str(duckdb_file)) as connection:  # a table dlt will merge into, with a constraint
        connection.execute("CREATE SCHEMA shop; CREATE TABLE shop.items (id BIGINT, score BIGINT NOT NULL)")
    with pytest.raises(Exception, match="NOT NULL"):
        with pipeline_with_held_destination("shop", "work") as (pipeline, destination):
            pipeline.run(_shop_source([{"id": 1}]), destination=destination)
    with duckdb.connect(str(duckdb_file), read_only=True) as connection:
        tables = {
            name for (name,) in connection.sql("SELECT table_name FROM duckdb_tables() WHERE schema_name LIKE 'shop%'").fetchall()
        }
    assert tables == {"items"}, "the failed load must leave nothing behind but the table that was there"

    with pipeline_with_held_destination("shop", "work-2") as (pipeline, destination):
        pipeline.run(_shop_source([{"id": 1, "score": 2}]), destination=destination)
    with duckdb.connect(str(duckdb_file), read_only=True) as connection:
        assert connection.sql("SELECT count(*) FROM shop.events").fetchall() == [(1,)]
        assert connection.sql("SELECT id, score FROM shop.items").fetchall() == [(1, 2)]


def _setting(name: str) -> str:
    """A setting of the DuckDB connection a run holds."""
    with held_destination() as (_, connection):
        return str(connection.connection.execute("select current_setting(?)", [name]).fetchone()[0])


def test_a_runs_duckdb_memory_is_capped_unless_dlts_global_config_says_otherwise(duckdb_file, monkeypatch):
    assert _setting("memory_limit") == "61.0 MiB"  # 64 MB: a big merge spills to disk instead of growing the process
    monkeypatch.setenv("DESTINATION__DUCKDB__CREDENTIALS__GLOBAL_CONFIG", '{"memory_limit": "1GB", "threads": 1}')
    assert (_setting("memory_limit"), _setting("threads")) == ("953.6 MiB", "1")
