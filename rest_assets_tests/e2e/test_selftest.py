"""`rest-assets selftest`: the compact fault matrix runs and reports nothing lost and no secret found."""

from __future__ import annotations

import re

import pytest

from rest_assets.cli import main
from rest_assets.cli.selftest import BAD_INPUTS, TRANSIENT_FAULTS, Report
from rest_assets.cli.selftest_churn import RUNS, ChurnFigures


@pytest.mark.e2e
def test_selftest_runs_and_reports_zero_rows_lost_and_zero_secrets_found(capsys, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)

    code = main(["selftest"])

    lines = capsys.readouterr().out.splitlines()
    assert code == 0, lines
    faults = len(TRANSIENT_FAULTS) + 1
    assert f"faults injected / survived: {faults} / {faults}" in lines
    assert f"bad inputs tried / refused: {len(BAD_INPUTS)} / {len(BAD_INPUTS)}" in lines
    assert "rows lost: 0" in lines and "rows duplicated: 0" in lines and "secrets found: 0" in lines
    churn = next(line for line in lines if line.startswith("token churn: "))
    assert churn.startswith(f"token churn: runs / succeeded: {RUNS} / {RUNS} ")
    assert ("requests with a replaced token 0, grants beyond one per revocation 0, grants with an old refresh token 0)") in churn
    assert int(re.search(r"tokens revoked (\d+)", churn).group(1)) >= RUNS  # the churn really happened
    assert lines[-1] == "result: OK"
    assert not list(tmp_path.iterdir()), "the selftest works in a temporary folder and leaves nothing behind"


@pytest.mark.parametrize(
    "field,value",
    [("rows_lost", 1), ("rows_duplicated", 2), ("secrets_found", 1), ("faults_survived", 6), ("bad_inputs_refused", 8)],
)
def test_any_loss_leak_or_unhandled_input_fails_the_report(field, value):
    report = Report(faults_injected=7, faults_survived=7, bad_inputs_tried=9, bad_inputs_refused=9)
    assert report.ok

    setattr(report, field, value)

    assert not report.ok and report.lines()[-1] == "result: FAILED"


@pytest.mark.parametrize(
    "field,value",
    [("runs_ok", 2), ("replaced_token_requests", 1), ("extra_grants", 1), ("old_refresh_grants", 1), ("rows_lost", 1)],
)
def test_any_churn_finding_fails_the_report(field, value):
    report = Report(churn=ChurnFigures(runs=3, runs_ok=3))
    assert report.ok

    setattr(report.churn, field, value)

    assert not report.ok and report.lines()[-1] == "result: FAILED"
