"""No secret is ever written anywhere: logs, stdout/stderr, the Dagster event log, errors, DuckDB, dlt's folders.

The emulator is given random credentials (so a hit can only be a leak) and
issues its own access and refresh tokens (rotated, and expiring mid-run so
several are issued). After a successful and a failing run of the three
sources whose secrets travel differently (an api_key in the query string,
OAuth2 client credentials, a rotating refresh token), every secret value is
searched for in every place a run writes to. Expected hits: 0.
"""

from __future__ import annotations

import gzip
import json
import logging
import secrets
import zlib
from base64 import b64decode
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import duckdb
import pytest
from conftest import failure_errors
from dagster import DagsterInstance
from dagster._serdes import serialize_value
from reliability_support import run_source, write_spec

from rest_assets.cli.demo import emulator_environment
from rest_assets.emulator import DEMO_CREDENTIALS, Emulator, EmulatorConfig

pytestmark = pytest.mark.e2e

RUNS = {"chat_analytics": ["contacts"], "client_portal": ["clients"], "help_desk": ["users"]}


def random_credentials() -> dict[str, dict[str, str]]:
    """Fresh random values for every credential of every bundled source."""
    return {source: {key: f"{key}-{secrets.token_hex(12)}" for key in keys} for source, keys in DEMO_CREDENTIALS.items()}


class TokenRecorder:
    """Wraps the emulator's token authority to remember every access and refresh token it hands out."""

    def __init__(self, emulator: Emulator) -> None:
        self.issued: set[str] = set()
        tokens = emulator.apis.tokens
        issue, grant = tokens._issue, tokens.client_portal_grant

        def recording_issue(*args: Any, **kwargs: Any) -> Any:
            issued = issue(*args, **kwargs)
            self.issued.add(issued if isinstance(issued, str) else issued[0])  # the token (first of a tuple)
            return issued

        def recording_grant(*args: Any, **kwargs: Any) -> Any:
            response = grant(*args, **kwargs)
            if response.status == 200:
                self.issued.add(json.loads(response.body)["refresh_token"])
            return response

        tokens._issue, tokens.client_portal_grant = recording_issue, recording_grant


def searchable_texts(root: Path) -> Iterator[tuple[str, bytes]]:
    """(name, bytes) of every file under `root`, plus decompressed forms of gzip and parquet files."""
    for path in sorted(p for p in root.rglob("*") if p.is_file()):
        data = path.read_bytes()
        yield str(path), data
        if data[:2] == b"\x1f\x8b":
            yield f"{path} (gunzipped)", gzip.decompress(data)
        if path.suffix == ".parquet":
            import pyarrow.parquet as pq

            yield f"{path} (rows)", str(pq.read_table(path).to_pylist()).encode()


def duckdb_dump(db: Path) -> str:
    """Every row of every table of the DuckDB file as text, dlt's compressed state decompressed."""
    connection = duckdb.connect(str(db), read_only=True)
    try:
        tables = connection.execute("SELECT table_schema, table_name FROM information_schema.tables").fetchall()
        parts = []
        for schema, table in tables:
            rows = connection.execute(f'SELECT * FROM "{schema}"."{table}"').fetchall()
            parts.append(f"{schema}.{table}: {rows}")
            if table == "_dlt_pipeline_state":
                state_index = [d[0] for d in connection.execute(f'SELECT * FROM "{schema}"."{table}" LIMIT 0').description].index(
                    "state"
                )
                parts += [zlib.decompress(b64decode(row[state_index])).decode() for row in rows]
        return "\n".join(parts)
    finally:
        connection.close()


def find_leaks(secret_values: set[str], places: dict[str, bytes | str]) -> list[str]:
    """`<secret prefix> in <place>` for every secret found anywhere."""
    leaks = []
    for name, content in places.items():
        blob = content if isinstance(content, bytes) else content.encode("utf-8", "replace")
        leaks += [f"{s[:10]}... in {name}" for s in secret_values if s.encode() in blob]
    return leaks


@pytest.fixture()
def secret_world(tmp_path, monkeypatch):
    """An emulator with random credentials, the environment pointing at it, and a recorder of issued tokens."""
    credentials = random_credentials()
    emulator = Emulator(EmulatorConfig(seed=5, default_size=20, credentials=credentials))
    emulator.start()
    recorder = TokenRecorder(emulator)
    for key, value in emulator_environment(emulator.url, credentials).items():
        monkeypatch.setenv(key, value)
    specs = tmp_path / "specs"
    for source, resources in RUNS.items():
        write_spec(specs, source, resources=resources, page_limit=5, max_retries=1)
    monkeypatch.setenv("REST_ASSETS_SOURCES_DIR", str(specs))
    monkeypatch.setenv("DESTINATION__DUCKDB__CREDENTIALS", str(tmp_path / "db.duckdb"))
    monkeypatch.setenv("DLT_DATA_DIR", str(tmp_path / "dlt"))
    monkeypatch.chdir(tmp_path)
    yield emulator, credentials, recorder
    emulator.stop()


def test_no_secret_anywhere_after_successful_and_failing_runs(secret_world, tmp_path, caplog, capsys):
    emulator, credentials, recorder = secret_world
    caplog.set_level(logging.DEBUG)
    emulator.configure(token_expiry_requests=3, rotate_refresh_tokens=True)
    outcomes: dict[str, Any] = {}
    (tmp_path / "dagster_home").mkdir()
    with DagsterInstance.local_temp(tempdir=str(tmp_path / "dagster_home")) as instance:
        for source in RUNS:
            outcomes[f"{source} (good)"] = run_source(source, instance)
        emulator.add_fault(kind="drop_selector", count=None, source="chat_analytics")
        emulator.add_fault(kind="status", status=500, count=None, source="client_portal", path_contains="/v1/")
        emulator.add_fault(kind="status", status=503, count=None, source="help_desk", path_contains="/v2/users")
        for source in RUNS:
            outcomes[f"{source} (failing)"] = run_source(source, instance)
        event_log = {
            run.run_id: "\n".join(serialize_value(e) for e in instance.all_logs(run.run_id)) for run in outcomes.values()
        }

    assert [name for name, r in outcomes.items() if r.success] == [f"{s} (good)" for s in RUNS]
    errors = [message for r in outcomes.values() for _, message in failure_errors(r)]
    assert any("api_key=***" in m for m in errors), "the failing runs must have printed a (masked) URL"
    issued = recorder.issued
    assert len([t for t in issued]) >= 4, "tokens must have been issued, refreshed and rotated"
    secret_values = {v for creds in credentials.values() for v in creds.values()} | issued

    captured = capsys.readouterr()
    places: dict[str, bytes | str] = {
        "caplog": caplog.text + "\n".join(r.getMessage() for r in caplog.records),
        "stdout": captured.out,
        "stderr": captured.err,
        "errors": "\n".join(errors),
        **{f"event log of run {run_id}": text for run_id, text in event_log.items()},
        "duckdb rows": duckdb_dump(tmp_path / "db.duckdb"),
    }
    places.update(searchable_texts(tmp_path / "db.duckdb"))
    places.update(searchable_texts(tmp_path / "dlt"))
    places.update(searchable_texts(tmp_path / "dagster_home"))
    # The search looked where secrets would be: URLs were logged, failed runs left dlt working folders.
    assert "/chat_analytics/v1/contacts" in str(places["caplog"]) + str(places["errors"])
    assert len(list((tmp_path / "dlt").iterdir())) >= 3 and len(places) > 10

    assert find_leaks(secret_values, places) == []


def test_leak_finder_finds_a_planted_secret(tmp_path):
    """The search itself works: a secret written into a gzip file, a parquet file and DuckDB is found."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    planted = "planted-" + secrets.token_hex(8)
    (tmp_path / "a.gz").write_bytes(gzip.compress(planted.encode()))
    pq.write_table(pa.table({"x": [planted] * 50}), tmp_path / "b.parquet", compression="zstd")
    connection = duckdb.connect(str(tmp_path / "c.duckdb"))
    connection.execute("CREATE TABLE t AS SELECT ? AS v FROM range(1000)", [planted])
    connection.close()

    places: dict[str, bytes | str] = dict(searchable_texts(tmp_path))
    places["duckdb rows"] = duckdb_dump(tmp_path / "c.duckdb")

    leaks = find_leaks({planted}, places)
    assert any("(gunzipped)" in leak for leak in leaks) and any("(rows)" in leak for leak in leaks)
    assert any("duckdb rows" in leak for leak in leaks)
