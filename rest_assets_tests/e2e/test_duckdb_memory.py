"""DuckDB's memory limit follows the data: wide records load, and a load that still runs out says what to set.

A run's DuckDB connection has a small memory limit (64 MB; a 1M-row merge
spills instead of growing the process), raised per load for wide tables and
large row groups (warehouse.duckdb_transaction.memory_limit_for). At a fixed
64 MB, 25 records of 1,501 fields, or 3,000 of 301 (an API such as a CRM's
objects), ran out of memory where plain dlt loads them.
"""

from __future__ import annotations

from urllib.parse import parse_qs, urlsplit

import pytest
from conftest import failure_errors, failure_messages, read_table, table_names
from dagster import DagsterInstance
from reliability_support import Recorded, RecordingServer, Reply, json_reply, run_source

from rest_assets.warehouse.duckdb_transaction import memory_ceiling


def _records(count: int, fields: int, value: str) -> list[dict[str, object]]:
    return [{"id": n, **{f"field_{n % 3}_{f}": f"{value}{n}" for f in range(fields)}} for n in range(count)]


def _serve(records: list[dict[str, object]], page_size: int):
    def answer(request: Recorded) -> Reply:
        offset = int(parse_qs(urlsplit(request.path).query).get("offset", ["0"])[0])
        return json_reply({"data": records[offset : offset + page_size]})

    return answer


def _spec(folder, url: str, limit: int = 100) -> None:
    folder.mkdir()
    (folder / "wide.yaml").write_text(
        f"client: {{base_url: '{url}'}}\n"
        "resources:\n"
        "  - name: items\n"
        "    primary_key: id\n"
        "    write_disposition: merge\n"
        f"    endpoint: {{path: items, data_selector: data, paginator: {{type: offset, limit: {limit}}}}}\n"
    )


@pytest.mark.e2e
@pytest.mark.parametrize(("count", "fields"), [(25, 500), (3000, 301)], ids=["1501-columns", "3000-records-of-301-fields"])
def test_wide_records_load_under_the_default_memory_limit(workdir, tmp_path, count, fields):
    records = _records(count, fields, "a value of some length ")
    with RecordingServer(handler=_serve(records, 100)) as api:
        _spec(tmp_path / "specs", api.url)
        workdir.use_specs(tmp_path / "specs")
        result = run_source("wide")
    assert result.success, failure_messages(result)
    assert len(read_table("wide", "items", columns="id")) == count


def _log_messages(instance: DagsterInstance, result) -> list[str]:
    return [entry.user_message for entry in instance.all_logs(result.run_id) if entry.user_message]


@pytest.mark.e2e
@pytest.mark.parametrize(
    "records",
    [
        # parquet's dictionary encoding keeps one copy: the estimate sees 2 MB where DuckDB holds 20
        [{"id": n, "blob": "x" * 2_000_000 if n < 10 else "y"} for n in range(25)],
        [{"id": n, "text": f"{n:08d}" * 125_000} for n in range(100)],  # 1 MB each, every value its own
    ],
    ids=["long-repeated-values", "long-distinct-values"],
)
def test_a_load_that_runs_out_of_its_memory_limit_is_rolled_back_and_tried_again_higher(workdir, tmp_path, records):
    with RecordingServer(handler=_serve(records, 10)) as api:
        _spec(tmp_path / "specs", api.url, limit=10)
        workdir.use_specs(tmp_path / "specs")
        instance = DagsterInstance.ephemeral()
        result = run_source("wide", instance)
    assert result.success, failure_messages(result)
    assert any("trying again at" in message for message in _log_messages(instance, result))
    (field,) = set(records[0]) - {"id"}
    stored = read_table("wide", "items", columns=f"id, {field}")
    assert sorted(stored, key=lambda row: row["id"]) == [{"id": row["id"], field: row[field]} for row in records]


@pytest.mark.e2e
def test_a_load_that_runs_out_of_memory_says_how_to_raise_the_limit_and_changes_nothing(workdir, tmp_path, monkeypatch):
    monkeypatch.setenv("DESTINATION__DUCKDB__CREDENTIALS__GLOBAL_CONFIG", '{"memory_limit": "16MB"}')  # the user's own
    records = _records(25, 500, "a value of some length ")
    with RecordingServer(handler=_serve(records, 100)) as api:
        _spec(tmp_path / "specs", api.url)
        workdir.use_specs(tmp_path / "specs")
        result = run_source("wide")
    assert not result.success
    (message,) = [m for cls, m in failure_errors(result) if cls == "LoadError"]
    assert "ran out of DuckDB's memory_limit" in message and "DESTINATION__DUCKDB__CREDENTIALS__GLOBAL_CONFIG" in message
    assert "items" not in table_names("wide")


def test_a_retried_load_asks_at_most_duckdbs_own_default_limit():
    import duckdb

    with duckdb.connect(":memory:") as fresh:
        (default,) = fresh.execute("SELECT current_setting('memory_limit')").fetchone()
        fresh.execute(f"SET memory_limit = '{memory_ceiling() // 1024}KiB'")
        (as_set,) = fresh.execute("SELECT current_setting('memory_limit')").fetchone()
    number, unit = default.split()
    assert unit in ("GiB", "MiB") and as_set.endswith(unit)
    assert abs(float(as_set.split()[0]) - float(number)) < 0.15  # the same size, to the precision DuckDB shows
