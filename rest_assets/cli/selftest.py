"""`rest-assets selftest`: a compact reliability report, measured on this machine.

Starts an in-process emulator with random credentials, points a small
source at it, and materializes it through Dagster into a temporary DuckDB:

1. one run with transient faults on successive pages (429 + Retry-After,
   503, connection reset mid-body, an HTML page, a truncated body, a hung
   request) — each must be survived and the table must equal the API's data;
2. one run whose pages lack the data_selector path for good — it must fail
   cleanly and leave the last good table untouched;
3. hostile inputs (code in stop conditions, object-constructing YAML tags,
   unknown keys, wrong types, cycles) — each must be refused with a SpecError;
4. token churn (see selftest_churn.py): an OAuth2 source with two child
   endpoints, 16 requests at a time, materialized while the emulator revokes
   access tokens, answers 503 and throttles; every run must succeed with
   exact tables, no request may carry a token already replaced, one grant
   per revocation, each with the newest (rotated) refresh token;
5. every secret (the random credentials and every token the emulator issued)
   is searched for in the captured logs and output, the run errors, the
   DuckDB file and dlt's working folders.

Prints the figures; the exit code is non-zero when a row was lost or
duplicated, a secret was found, or a fault or bad input was not handled.
"""

from __future__ import annotations

import contextlib
import io
import logging
import os
import secrets
import tempfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from rest_assets.cli.selftest_churn import ChurnFigures, churn_environment, run_churn
from rest_assets.emulator import DEMO_CREDENTIALS, Emulator, EmulatorConfig
from rest_assets.errors import SpecError

SOURCE = "chat_analytics"
SPEC = """
client:
  base_url: https://api.example.com
  timeout: 0.5
  auth: {type: api_key, name: api_key, api_key: {secret: api_key}, location: query}
resource_defaults:
  primary_key: id
  write_disposition: merge
  endpoint:
    error_handler: {retry_on_status_codes: [429, 500, 502, 503, 504], max_retries: 3, backoff_factor: 0.01}
    incremental: {cursor_path: updated_at, start_param: updated_since, initial_value: "1970-01-01T00:00:00Z"}
resources:
  - name: contacts
    endpoint: {path: /v1/contacts, data_selector: data, paginator: {type: offset, limit: 5}}
"""
TRANSIENT_FAULTS: list[dict[str, Any]] = [
    {"kind": "status", "status": 429, "retry_after": 1},
    {"kind": "status", "status": 503},
    {"kind": "reset"},
    {"kind": "html"},
    {"kind": "truncated"},
    {"kind": "hang", "delay": 2},
]
BAD_INPUTS = [
    "client: {base_url: https://x.example}\nresources:\n  - name: a\n    endpoint: {paginator: {type: cursor, cursor_path: n,"
    " stop_condition: \"__import__('os').system('true')\"}}\n",
    "client: {base_url: https://x.example}\nresources:\n  - name: a\n    endpoint: {paginator: {type: cursor, cursor_path: n,"
    ' stop_condition: "response.__class__.__base__"}}\n',
    "client: {base_url: !!python/object/apply:os.system ['true']}\nresources: [a]\n",
    "client: {base_url: https://x.example}\nresources: [a]\nresource_default: {}\n",
    "client: {base_url: https://x.example, timeout: soon}\nresources: [a]\n",
    "client: {base_url: https://x.example}\nresources:\n  - {name: a, endpoint: {path: '/a/{resources.b.id}'}}\n"
    "  - {name: b, endpoint: {path: '/b/{resources.a.id}'}}\n",
    "client: [not, a, mapping]\nresources: [a]\n",
    "client: {base_url: https://x.example}\nresources:\n  - name: a\n    endpoint:\n",
    "client: {base_url: https://x.example\n",
]


@dataclass
class Report:
    """The figures `selftest` prints."""

    faults_injected: int = 0
    faults_survived: int = 0
    bad_inputs_tried: int = 0
    bad_inputs_refused: int = 0
    rows_lost: int = 0
    rows_duplicated: int = 0
    secrets_found: int = 0
    churn: ChurnFigures | None = None

    @property
    def ok(self) -> bool:
        return (
            self.rows_lost == 0
            and self.rows_duplicated == 0
            and self.secrets_found == 0
            and self.faults_survived == self.faults_injected
            and self.bad_inputs_refused == self.bad_inputs_tried
            and (self.churn is None or self.churn.ok)
        )

    def lines(self) -> list[str]:
        return [
            f"faults injected / survived: {self.faults_injected} / {self.faults_survived}",
            f"bad inputs tried / refused: {self.bad_inputs_tried} / {self.bad_inputs_refused}",
            f"rows lost: {self.rows_lost}",
            f"rows duplicated: {self.rows_duplicated}",
            f"secrets found: {self.secrets_found}",
            *([self.churn.line()] if self.churn else []),
            "result: " + ("OK" if self.ok else "FAILED"),
        ]


def run_selftest(out: Callable[[str], None] = print) -> int:
    """Run the compact fault matrix and print the report; 0 when everything held."""
    report = Report()
    credentials = {s: {k: f"{k}-{secrets.token_hex(10)}" for k in keys} for s, keys in DEMO_CREDENTIALS.items()}
    with (
        tempfile.TemporaryDirectory(prefix="rest-assets-selftest-") as folder,
        Emulator(EmulatorConfig(seed=11, default_size=30, credentials=credentials)) as emulator,
        _captured_output() as captured,
    ):
        work = Path(folder)
        with _environment(_env_for(work, emulator, credentials)):
            errors = _fault_runs(emulator, report)
            with _environment(churn_environment(work, emulator, credentials["help_desk"])):
                report.churn = run_churn(emulator, work, _materialize)
        _check_bad_inputs(report)
        secret_values = (
            {v for c in credentials.values() for v in c.values()} | set(emulator.apis.tokens.access) | report.churn.refresh_tokens
        )
        places: list[str | bytes] = [captured.getvalue(), *errors, *(_file_texts(work, skip=work / "tokens"))]
        report.secrets_found = sum(1 for s in secret_values for text in places if s.encode() in _as_bytes(text))
    for line in report.lines():
        out(line)
    return 0 if report.ok else 1


def _env_for(work: Path, emulator: Emulator, credentials: dict[str, dict[str, str]]) -> dict[str, str]:
    from rest_assets.cli.demo import emulator_environment

    specs = work / "specs"
    specs.mkdir()
    (specs / f"{SOURCE}.yaml").write_text(SPEC)
    env = {
        k: v for k, v in emulator_environment(emulator.url, credentials).items() if k.startswith(f"SOURCES__{SOURCE.upper()}__")
    }
    env.update(
        {
            "REST_ASSETS_SOURCES_DIR": str(specs),
            "DESTINATION__DUCKDB__CREDENTIALS": str(work / "selftest.duckdb"),
            "DLT_DATA_DIR": str(work / "dlt"),
        }
    )
    return env


def _fault_runs(emulator: Emulator, report: Report) -> list[str]:
    """The surviving run and the failing run; returns the failing run's error messages."""
    for index, fault in enumerate(TRANSIENT_FAULTS):
        emulator.add_fault(source=SOURCE, path_contains="/v1/contacts", count=1, every=index + 1, **fault)
    report.faults_injected += len(TRANSIENT_FAULTS)
    good = _materialize()
    fired = sum(1 for e in emulator.requests() if e["fault"])
    if good.success and fired == len(TRANSIENT_FAULTS):
        report.faults_survived += len(TRANSIENT_FAULTS)
    _count_rows(emulator, report)
    before = _table_rows()
    emulator.advance(update_fraction=0.3, add=4)
    emulator.add_fault(kind="drop_selector", source=SOURCE, path_contains="/v1/contacts", count=None)
    report.faults_injected += 1
    bad = _materialize()
    errors = _failure_messages(bad)
    if not bad.success and any("'data'" in e for e in errors) and _table_rows() == before:
        report.faults_survived += 1
    return errors


def _materialize() -> Any:
    from dagster import DagsterInstance, materialize

    from rest_assets.cli.demo import QUIET_RUN_CONFIG, multi_assets
    from rest_assets.definitions import build_definitions

    defs = build_definitions()
    with DagsterInstance.ephemeral() as instance:
        return materialize(
            multi_assets(defs),
            instance=instance,
            resources=defs.resources,
            run_config=QUIET_RUN_CONFIG,
            raise_on_error=False,
        )


def _failure_messages(result: Any) -> list[str]:
    messages = []
    for event in result.all_events:
        if event.is_step_failure:
            error = event.step_failure_data.error
            while error is not None:
                messages.append(error.message)
                error = error.cause
    return messages + [str(e.message) for e in result.all_events]


def _table_rows() -> list[tuple[Any, ...]]:
    import duckdb

    connection = duckdb.connect(os.environ["DESTINATION__DUCKDB__CREDENTIALS"], read_only=True)
    try:
        return sorted(connection.execute(f'SELECT id, CAST(updated_at AS VARCHAR) FROM "{SOURCE}"."contacts"').fetchall())
    finally:
        connection.close()


def _count_rows(emulator: Emulator, report: Report) -> None:
    """Rows the API serves that the table lacks, and ids the table holds more than once."""
    ids = [row[0] for row in _table_rows()]
    truth = {r["id"] for r in emulator.truth(SOURCE, "contacts")}
    report.rows_lost += len(truth - set(ids))
    report.rows_duplicated += len(ids) - len(set(ids))


def _check_bad_inputs(report: Report) -> None:
    from rest_assets.dialect.validate import build_source_spec
    from rest_assets.dialect.yaml_source import parse_yaml

    for text in BAD_INPUTS:
        report.bad_inputs_tried += 1
        try:
            build_source_spec(parse_yaml(text, "bad.yaml"), "bad")
        except SpecError as error:
            report.bad_inputs_refused += int(error.file == "bad.yaml")
        except Exception:  # noqa: BLE001 - anything but a SpecError is a finding, counted as not refused
            pass


def _file_texts(root: Path, skip: Path) -> Iterator[bytes]:
    """Every file under `root` but those under `skip` (the opt-in refresh-token store)."""
    import gzip

    for path in root.rglob("*"):
        if path.is_file() and skip not in path.parents:
            data = path.read_bytes()
            yield data
            if data[:2] == b"\x1f\x8b":
                yield gzip.decompress(data)


def _as_bytes(text: str | bytes) -> bytes:
    return text if isinstance(text, bytes) else text.encode("utf-8", "replace")


@contextlib.contextmanager
def _environment(values: dict[str, str]) -> Iterator[None]:
    """Set environment variables for the block, restoring the previous values after."""
    saved = {k: os.environ.get(k) for k in values}
    os.environ.update(values)
    try:
        yield
    finally:
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value


@contextlib.contextmanager
def _captured_output() -> Iterator[io.StringIO]:
    """Capture every log record (DEBUG and up) and stdout/stderr written during the block."""
    buffer = io.StringIO()
    handler = logging.StreamHandler(buffer)
    handler.setLevel(logging.DEBUG)
    root = logging.getLogger()
    level = root.level
    root.addHandler(handler)
    root.setLevel(logging.DEBUG)
    try:
        with contextlib.redirect_stdout(buffer), contextlib.redirect_stderr(buffer):
            yield buffer
    finally:
        root.removeHandler(handler)
        root.setLevel(level)
