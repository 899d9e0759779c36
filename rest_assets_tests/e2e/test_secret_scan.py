"""Secret scan: after failing runs whose errors carry credentials, and after a DEBUG-logging run, no secret is on disk.

The emulator gets random credentials (a hit can only be a leak). In one
on-disk Dagster instance whose python_logs capture urllib3, requests and dlt
at DEBUG:

* good runs of an api_key-in-the-query source and an OAuth2 source;
* a 400 on a request with `api_key` in its query (requests' error names the URL);
* a 401 from the token endpoint that echoes the posted form (client_id, client_secret);
* a 400 that echoes the request headers (`Authorization: Bearer <token>`).

Then every file under DAGSTER_HOME, the dlt data dir and the working dir,
and every DuckDB table, is searched for every secret in every form it could
take: plain, URL- and form-encoded, base64, and the first half of it (a
prefix left by a cut); gzip, zlib, base64 runs and pickles (read with
pickletools, never loaded) are decoded first. Expected hits: 0.

A second test: an API that echoes the caller's token inside a record gets
`***` stored, counted in `secrets_masked_in_rows`, with a run warning, on the
Arrow path and the plain-dict path alike.
"""

from __future__ import annotations

import base64
import binascii
import gzip
import logging
import pickletools
import re
import secrets
import zlib
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import quote, quote_plus

import pytest
import yaml
from conftest import failure_messages
from dagster import DagsterInstance
from dagster._serdes import serialize_value
from reliability_support import Recorded, RecordingServer, json_reply, run_source, write_spec
from test_secrets import TokenRecorder, duckdb_dump, random_credentials

from rest_assets.cli.demo import EMULATOR_TOKEN_PATHS, emulator_environment
from rest_assets.emulator import Emulator, EmulatorConfig

pytestmark = pytest.mark.e2e

DEBUG_PYTHON_LOGS = {"python_logs": {"python_log_level": "DEBUG", "managed_python_loggers": ["urllib3", "requests", "dlt"]}}
SPECS = {"chat_analytics": ["contacts"], "help_desk": ["users"], "contact_book": ["contacts"]}
_BASE64_RUN = re.compile(rb"[A-Za-z0-9+/_-]{16,}={0,2}")


def secret_forms(value: str) -> set[str]:
    """Every form a leaked secret could take on disk, plus its first half (what a cut would leave)."""
    encoded = base64.b64encode(value.encode()).decode()
    forms = {
        value,
        quote(value, safe=""),
        quote_plus(value),
        encoded,
        encoded.rstrip("="),
        base64.urlsafe_b64encode(value.encode()).decode().rstrip("="),
    }
    if len(value) >= 16:
        forms.add(value[: len(value) // 2])
    return forms


def decoded_views(name: str, data: bytes, depth: int = 0) -> Iterator[tuple[str, bytes]]:
    """`data` and whatever it decodes to: gzip, zlib, base64 runs, strings of a pickle (recursively, twice)."""
    yield name, data
    if depth > 2:
        return
    for label, decode in (("gunzip", gzip.decompress), ("zlib", zlib.decompress), ("pickle", _pickle_strings)):
        try:
            inner = decode(data)
        except Exception:  # noqa: BLE001 - not that encoding
            continue
        if inner:
            yield from decoded_views(f"{name} ({label})", inner, depth + 1)
    for match in _BASE64_RUN.finditer(data):
        try:
            inner = base64.b64decode(match.group() + b"==", altchars=b"-_" if b"-" in match.group() else None)
        except (binascii.Error, ValueError):
            continue
        yield f"{name} (base64)", inner
        if inner[:1] in (b"\x78", b"\x1f"):
            yield from decoded_views(f"{name} (base64)", inner, depth + 1)


def _pickle_strings(data: bytes) -> bytes:
    """The string and bytes constants of a pickle, read opcode by opcode (nothing is executed)."""
    if data[:1] != b"\x80":
        raise ValueError("not a pickle")
    parts = []
    for _, arg, _ in pickletools.genops(data):
        if isinstance(arg, str):
            parts.append(arg.encode("utf-8", "replace"))
        elif isinstance(arg, bytes):
            parts.append(arg)
    return b"\n".join(parts)


def files_under(*roots: Path) -> Iterator[tuple[str, bytes]]:
    """Every file under `roots` with its decoded views, parquet files as their rows."""
    for root in roots:
        for path in sorted(p for p in root.rglob("*") if p.is_file()):
            data = path.read_bytes()
            yield from decoded_views(str(path), data)
            if path.suffix == ".parquet":
                import pyarrow.parquet as pq

                yield f"{path} (rows)", str(pq.read_table(path).to_pylist()).encode()


def leaks_in(forms: dict[str, set[str]], places: Iterator[tuple[str, bytes]]) -> list[str]:
    """`<secret name> as <form prefix> in <place>` for every form of every secret found anywhere."""
    found = []
    needles = [(name, form.encode()) for name, values in forms.items() for form in values]
    for place, blob in places:
        found += [f"{name} as {needle[:8]!r}... in {place}" for name, needle in needles if needle in blob]
    return found


@pytest.fixture()
def scan_world(tmp_path, monkeypatch):
    """An emulator with random credentials, trimmed specs pointing at it, everything written under tmp_path."""
    credentials = random_credentials()
    emulator = Emulator(EmulatorConfig(seed=3, default_size=12, credentials=credentials))
    emulator.start()
    recorder = TokenRecorder(emulator)
    for key, value in emulator_environment(emulator.url, credentials).items():
        monkeypatch.setenv(key, value)
    for source, resources in SPECS.items():
        write_spec(tmp_path / "specs", source, resources=resources, page_limit=5, max_retries=0)
    monkeypatch.setenv("REST_ASSETS_SOURCES_DIR", str(tmp_path / "specs"))
    monkeypatch.setenv("DESTINATION__DUCKDB__CREDENTIALS", str(tmp_path / "db.duckdb"))
    monkeypatch.setenv("DLT_DATA_DIR", str(tmp_path / "dlt"))
    monkeypatch.chdir(tmp_path)
    yield emulator, credentials, recorder
    emulator.stop()


def test_no_secret_on_disk_after_failing_runs_and_a_debug_logging_run(scan_world, tmp_path):
    emulator, credentials, recorder = scan_world
    home = tmp_path / "dagster_home"
    home.mkdir()
    with DagsterInstance.local_temp(tempdir=str(home), overrides=DEBUG_PYTHON_LOGS) as instance:
        good = [run_source(source, instance) for source in ("chat_analytics", "help_desk")]
        emulator.add_fault(kind="status", status=400, count=None, source="chat_analytics")
        emulator.add_fault(
            kind="echo", status=401, count=None, source="help_desk", path_contains=EMULATOR_TOKEN_PATHS["help_desk"]
        )
        emulator.add_fault(kind="echo", status=400, count=None, source="contact_book")
        failed = {source: run_source(source, instance) for source in ("chat_analytics", "help_desk", "contact_book")}
        event_log = "\n".join(serialize_value(e) for r in good + list(failed.values()) for e in instance.all_logs(r.run_id))

    assert [r.success for r in good] == [True, True] and not any(r.success for r in failed.values())
    messages = {source: " ".join(failure_messages(r)) for source, r in failed.items()}
    assert "api_key=***" in messages["chat_analytics"] and "400 Client Error" in messages["chat_analytics"]
    assert "HTTP 401" in messages["help_desk"] and "client_secret=***" in messages["help_desk"]
    # The scan looked where secrets would be: urllib3's request lines reached the event log (masked),
    # and each failed run left its scrubbed working folder with a redacted error.txt.
    assert re.search(r"GET /chat_analytics/v1/contacts\?[^ ]*api_key=\*\*\*", event_log)
    error_files = sorted((tmp_path / "dlt").glob("*/error.txt"))
    assert len(error_files) == 3 and all("last requests:" in f.read_text() for f in error_files)
    assert not list((tmp_path / "dlt").rglob("trace.pickle"))

    forms = {f"{source}.{key}": secret_forms(value) for source, creds in credentials.items() for key, value in creds.items()}
    forms.update({f"issued token {i}": secret_forms(token) for i, token in enumerate(sorted(recorder.issued))})
    assert recorder.issued, "the OAuth2 run must have been issued a token"
    places = [
        *files_under(tmp_path),
        ("event log", event_log.encode()),
        ("duckdb rows", duckdb_dump(tmp_path / "db.duckdb").encode()),
    ]
    assert leaks_in(forms, iter(places)) == []


def test_the_scan_finds_planted_secrets_in_every_encoding(tmp_path):
    """The search itself works: a pickle, zlib+base64 (dlt's state), a gzip file and a prefix are found."""
    import pickle

    planted = "planted-" + secrets.token_hex(12)
    (tmp_path / "trace.pickle").write_bytes(pickle.dumps({"error": f"?key={quote(planted)}"}))
    (tmp_path / "state.json").write_bytes(b'{"s":"' + base64.b64encode(zlib.compress(planted.encode())) + b'"}')
    (tmp_path / "log.gz").write_bytes(gzip.compress(b"Bearer " + planted[:20].encode()))
    leaks = leaks_in({"planted": secret_forms(planted)}, files_under(tmp_path))
    assert {leak.split(" in ")[1].split(" (")[0] for leak in leaks} == {
        str(tmp_path / n) for n in ("trace.pickle", "state.json", "log.gz")
    }


def echo_spec(target: Path, url: str) -> None:
    spec = {
        "client": {"base_url": url, "auth": {"type": "bearer", "token": {"secret": "token"}}},
        "resources": [
            {
                "name": "items",
                "primary_key": "id",
                "write_disposition": "replace",
                "endpoint": {"path": "/items", "data_selector": "data", "paginator": "single_page"},
            }
        ],
    }
    target.mkdir(parents=True, exist_ok=True)
    (target / "echo_api.yaml").write_text(yaml.safe_dump(spec))


def echoing(request: Recorded) -> Any:
    auth = request.headers.get("authorization", "")
    return json_reply(
        {
            "data": [
                {"id": 1, "seen": auth, "note": f"called with {auth.removeprefix('Bearer ')}"},
                {"id": 2, "seen": "nothing", "note": "plain"},
            ]
        }
    )


def test_a_token_echoed_inside_a_record_is_stored_masked_counted_and_warned(tmp_path, monkeypatch):
    from conftest import read_table

    token = "tok-" + secrets.token_hex(12)
    monkeypatch.setenv("SOURCES__ECHO_API__TOKEN", token)
    monkeypatch.setenv("DESTINATION__DUCKDB__CREDENTIALS", str(tmp_path / "db.duckdb"))
    monkeypatch.setenv("DLT_DATA_DIR", str(tmp_path / "dlt"))
    monkeypatch.chdir(tmp_path)
    with RecordingServer(handler=echoing) as server:
        echo_spec(tmp_path / "specs", server.url)
        monkeypatch.setenv("REST_ASSETS_SOURCES_DIR", str(tmp_path / "specs"))
        with DagsterInstance.ephemeral() as instance:
            result = run_source("echo_api", instance)
            warnings = [entry.user_message for entry in instance.all_logs(result.run_id) if entry.level == logging.WARNING]
        plain_rows = _rows_on_the_dict_path(tmp_path / "specs")
    assert result.success
    rows = sorted(read_table("echo_api", "items"), key=lambda r: r["id"])
    assert [(r["seen"], r["note"]) for r in rows] == [("Bearer ***", "called with ***"), ("nothing", "plain")]
    assert [(r["seen"], r["note"]) for r in plain_rows] == [("Bearer ***", "called with ***"), ("nothing", "plain")]
    materialization = result.asset_materializations_for_node("echo_api")[0]
    assert materialization.metadata["secrets_masked_in_rows"].value == 2
    assert any("2 record value(s) held a secret" in w for w in warnings), warnings
    assert server.requests[0].headers["authorization"] == f"Bearer {token}"


def _rows_on_the_dict_path(specs: Path) -> list[dict[str, Any]]:
    """The records as dicts (no Arrow batching), straight from the compiled dlt source."""
    from rest_assets.compile.source import compile_source
    from rest_assets.dialect import load_spec_file

    compiled = compile_source(load_spec_file(specs / "echo_api.yaml"), arrow_pages=False)
    return sorted(compiled.source.resources["items"], key=lambda r: r["id"])
