"""`rest-assets selftest`: the compact fault matrix runs and reports nothing lost and no secret found."""

from __future__ import annotations

import pytest

from rest_assets.cli import main
from rest_assets.selftest import BAD_INPUTS, TRANSIENT_FAULTS, Report


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
    assert lines[-1] == "result: OK"
    assert not list(tmp_path.iterdir()), "the selftest works in a temporary folder and leaves nothing behind"


@pytest.mark.parametrize("field,value", [("rows_lost", 1), ("rows_duplicated", 2), ("secrets_found", 1),
                                         ("faults_survived", 6), ("bad_inputs_refused", 8)])
def test_any_loss_leak_or_unhandled_input_fails_the_report(field, value):
    report = Report(faults_injected=7, faults_survived=7, bad_inputs_tried=9, bad_inputs_refused=9)
    assert report.ok

    setattr(report, field, value)

    assert not report.ok and report.lines()[-1] == "result: FAILED"
