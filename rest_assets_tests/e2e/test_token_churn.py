"""Token churn end to end: an OAuth2 API revokes access tokens mid-run while failing and throttling.

Real HTTP against the emulator's churn mode (help_desk API, refresh-token
grant with rotation, revocations at seeded random moments and every N-th
request, every k-th request 503, a burst of 429s with Retry-After: 0), a
source with two child endpoints fetched 16 at a time, 20 consecutive runs.
Every run succeeds with tables equal to the API's data, and the emulator's
request log shows what the client did with its tokens:

* no request arrived carrying a token that a newer grant had already
  replaced when it arrived. A grant waits for the attempts in flight and
  holds new ones back (runtime/auth.py), so a token can only be seen after
  its replacement if the client sent it after replacing it. What the log
  cannot show is a token revoked by the server but not yet known to the
  client: those requests get a 401, which is the point of the exercise;
* at most one grant per revocation: every grant of a run after its first
  replaces a token that had been revoked, and no two grants replace the same;
* every grant used the newest refresh token (the emulator rotates it on each
  grant and refuses the old one), across runs too: the rotated token is kept
  in `auth.refresh_token_store`, outside the working directory.
"""

from __future__ import annotations

import json
import os
from collections import Counter
from pathlib import Path

import dlt
import pytest
from conftest import assert_table_equals_truth, materialization_metadata
from reliability_support import run_source

from rest_assets.cli.selftest_churn import churn_spec
from rest_assets.compile.source import compile_source
from rest_assets.dialect.loader import load_spec_file
from rest_assets.emulator import Emulator, EmulatorConfig

RUNS = 20
RESOURCES = ("conversations", "conversation_threads", "inboxes", "inbox_folders")


def _spec(emu: Emulator, store: Path) -> dict:
    """The selftest's churn source, with smaller pages (more requests per run) and no merge."""
    return churn_spec(emu, store, page_limit=5, write_disposition="replace", backoff_factor=0.001)


@pytest.fixture()
def churning(workdir, tmp_path_factory):
    """A private emulator rotating refresh tokens, the spec pointed at it, secrets set."""
    with Emulator(EmulatorConfig(seed=5, default_size=12, rotate_refresh_tokens=True)) as emu:
        store = tmp_path_factory.mktemp("token-store") / "help_desk.refresh_token"  # outside the working dir
        specs = workdir.path / "specs"
        specs.mkdir()
        (specs / "help_desk.yaml").write_text(json.dumps(_spec(emu, store)))
        workdir.use_specs(specs)
        for key in [k for k in os.environ if k.startswith("SOURCES__")]:
            workdir.monkeypatch.delenv(key)  # the spec's own base and token URLs, no overrides
        for key, value in emu.config.credentials["help_desk"].items():
            workdir.monkeypatch.setenv(f"SOURCES__HELP_DESK__{key.upper()}", value)
        yield emu, store


def _check_tokens(entries: list[dict], run: int) -> tuple[int, int]:
    """The log's guarantees for one run; returns (revocations, grants)."""
    data = [e for e in entries if "churn_request" in e]
    grants = [e["grant"] for e in entries if "grant" in e]
    assert not [e for e in data if e["token_replaced"]], f"run {run}: a request carried a token already replaced"
    assert grants, f"run {run}: no grant at all"
    assert all(g["refresh_latest"] for g in grants), f"run {run}: a grant used an old refresh token: {grants}"
    assert [g for g in grants if g.get("rotated_to")] == grants
    later = grants[1:]
    assert not [g for g in later if g["replaced_valid"]], f"run {run}: a grant replaced a token never revoked"
    assert len({g["replaces"] for g in later}) == len(later), f"run {run}: two grants replaced one token"
    revoked = [e["invalidated"] for e in data if e.get("invalidated")]
    assert len(later) <= len(revoked)
    return len(revoked), len(grants)


def _run_with_dlt(folder: Path) -> None:
    """Compile the spec from the environment and load it with a plain dlt pipeline (raises on failure)."""
    spec = load_spec_file(folder / "specs" / "help_desk.yaml")
    compiled = compile_source(spec)
    pipeline = dlt.pipeline(
        "help_desk_churn",
        pipelines_dir=str(folder / "plain-dlt"),
        dataset_name="help_desk",
        destination=dlt.destinations.duckdb(str(folder / "db.duckdb")),
    )
    pipeline.run(compiled.source)
    assert compiled.session.stats.rotated_refresh_tokens >= 1


def test_twenty_runs_under_token_churn_all_succeed_with_exact_tables(churning, workdir):
    emu, store = churning
    workdir_path = workdir.path
    totals: Counter[str] = Counter()
    for run in range(RUNS):
        emu.clear_requests()
        emu.set_churn(
            source="help_desk",
            seed=run,
            invalidate_probability=0.04,
            invalidate_every=23,
            error_every=7,
            throttle_at=3 + run % 5,
            throttle_burst=3,
            retry_after=0,
        )
        if run == 0:  # one real Dagster run: the rotation reaches the materialization metadata
            result = run_source("help_desk")
            assert result.success, "run 0 failed"
            metadata = materialization_metadata(result)
            assert metadata and all(m.get("refresh_token_rotated") is True for m in metadata.values()), metadata
        else:  # the same compiled source through dlt directly: 19 more runs in seconds, not minutes
            _run_with_dlt(workdir_path)
        for resource in RESOURCES:
            assert_table_equals_truth(emu, "help_desk", resource)
        entries = emu.requests()
        revoked, grants = _check_tokens(entries, run)
        totals.update(revoked=revoked, grants=grants, **Counter(str(e["status"]) for e in entries))
    # the churn really happened: revocations answered 401, faults 503 and 429, many grants, all survived
    assert totals["revoked"] >= RUNS and totals["401"] >= RUNS
    assert totals["503"] >= RUNS and totals["429"] >= RUNS
    assert totals["grants"] >= 2 * RUNS
    assert store.stat().st_mode & 0o777 == 0o600
