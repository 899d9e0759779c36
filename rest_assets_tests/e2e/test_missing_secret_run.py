"""A secret that is not set, in a real Dagster run: the run fails and says exactly what to set.

Each case unsets one secret of a bundled source (everything else points at
the emulator) and materializes the source on an on-disk Dagster instance.
What is read back is what a user sees: the run's event log in that instance.
The step failure must name the environment variable `SOURCES__<SOURCE>__<KEY>`
and the secrets.toml section, carry no chained library error and no stack
frame from inside dlt or requests, and no other secret of the source.
A malformed .dlt/secrets.toml does not stop the definitions from loading,
but the run that needs it fails with dlt's message naming the file.
"""

from __future__ import annotations

from typing import Any

import pytest
from conftest import materialize_source, run_contact_book_in_a_fresh_process
from dagster import DagsterEventType, DagsterInstance
from dagster._core.instance.ref import InstanceRef

from rest_assets.emulator import DEMO_CREDENTIALS

pytestmark = pytest.mark.e2e

# one secret per bundled source, of every kind: query api key, oauth2 client secret and refresh
# token, a header secret (sales_crm's organization id)
CASES = [
    ("chat_analytics", "api_key"),
    ("client_portal", "refresh_token"),
    ("contact_book", "api_key"),
    ("help_desk", "client_secret"),
    ("sales_crm", "organization_id"),
]
LIBRARY_FRAMES = ("/dlt/", "/requests/", "/urllib3/", "/dagster_dlt/")


def _errors(error: Any) -> list[Any]:
    """An error and its causes, outermost first."""
    chain = []
    while error is not None:
        chain.append(error)
        error = error.cause or error.context
    return chain


@pytest.fixture(scope="module")
def instance(tmp_path_factory: pytest.TempPathFactory):
    """One on-disk (sqlite) instance for the module: each case reads only its own run's events."""
    home = tmp_path_factory.mktemp("dagster_home")
    (home / "dagster.yaml").write_text("telemetry:\n  enabled: false\n")
    with DagsterInstance.from_ref(InstanceRef.from_dir(str(home))) as inst:
        yield inst


@pytest.mark.parametrize(("source", "missing"), CASES, ids=[f"{s}-{k}" for s, k in CASES])
def test_a_run_with_a_missing_secret_fails_naming_what_to_set(workdir, instance, emulator, source, missing):
    env_name = f"SOURCES__{source.upper()}__{missing.upper()}"
    workdir.monkeypatch.delenv(env_name)
    workdir.monkeypatch.delenv(missing.upper(), raising=False)
    calls_before = len(emulator_calls(emulator, source))

    result = materialize_source(source, instance=instance)

    assert not result.success
    records = instance.all_logs(result.run_id)
    failures = [r for r in records if r.dagster_event and r.dagster_event.event_type == DagsterEventType.STEP_FAILURE]
    assert len(failures) == 1, [r.user_message for r in records]
    assert any(r.dagster_event and r.dagster_event.event_type == DagsterEventType.RUN_FAILURE for r in records)
    chain = _errors(failures[0].dagster_event.step_failure_data.error)
    user_error = chain[-1]  # what the asset raised (Dagster wraps it once)
    assert len(chain) == 2 and user_error.cls_name == "LoadError", [(e.cls_name, e.message) for e in chain]
    assert env_name in user_error.message, user_error.message
    assert f"[sources.{source}]" in user_error.message and f"'{missing}'" in user_error.message
    frames = "".join(user_error.stack)
    assert "rest_assets" in frames and not [f for f in LIBRARY_FRAMES if f in frames], frames
    said = "\n".join([r.user_message or "" for r in records] + [e.message for e in chain])
    assert not [v for v in DEMO_CREDENTIALS[source].values() if v in said]
    assert len(emulator_calls(emulator, source)) == calls_before, "a run that cannot start must not call the API"


def emulator_calls(emulator: Any, source: str) -> list[dict[str, Any]]:
    return [e for e in emulator.requests() if e["source"] == source]


def test_a_run_with_a_malformed_secrets_file_fails_naming_the_file(tmp_path):
    (tmp_path / ".dlt").mkdir()
    (tmp_path / ".dlt" / "secrets.toml").write_text('[sources.contact_book]\napi_key = "unterminated\n')
    run = run_contact_book_in_a_fresh_process(tmp_path)
    assert "definitions loaded" in run.stdout and "run failed" in run.stdout, run.stdout[-2000:] + run.stderr[-2000:]
    assert "TomlProviderReadException" in run.stdout and "./.dlt/secrets.toml" in run.stdout, run.stdout[-2000:]
