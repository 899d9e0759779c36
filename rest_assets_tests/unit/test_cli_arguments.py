"""The command line refuses what cannot work, in one line and with exit status 2, never a traceback."""

from __future__ import annotations

import socket
import subprocess
import sys

import pytest

from rest_assets.emulator.churn import CHURN_SOURCES, ChurnSettings


def _run(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "rest_assets.cli", *args],
        capture_output=True,
        text=True,
        timeout=60,
        env={"PATH": "/usr/bin:/bin"},
    )


@pytest.mark.parametrize(
    ("args", "says"),
    [
        (("emulator", "--port", "99999"), "99999 is no TCP port"),
        (("emulator", "--size", "-3"), "-3 is negative"),
        (("emulator", "--churn", "nosuch"), "invalid choice: 'nosuch'"),
        (("emulator", "--rate-limit-every", "-1"), "--rate-limit-every: -1 is not 1 or more"),
        (("emulator", "--churn", "help_desk", "--churn-every", "0"), "--churn-every: 0 is not 1 or more"),
        (("emulator", "--churn", "help_desk", "--churn-probability", "2"), "--churn-probability: 2.0 is no probability"),
        (("emulator", "--latency-ms", "-5"), "--latency-ms: -5.0 is not 0 or more"),
        (("demo", "--size", "-1"), "-1 is negative"),
    ],
)
def test_an_argument_that_cannot_work_is_refused(args, says):
    done = _run(*args)
    assert done.returncode == 2 and says in done.stderr and "Traceback" not in done.stderr, done.stderr


def test_the_emulator_on_a_taken_port_says_so():
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        done = _run("emulator", "--port", str(port))
    assert done.returncode == 2 and f"cannot listen on 127.0.0.1:{port}" in done.stderr, done.stderr
    assert "Traceback" not in done.stderr


def test_churn_is_only_for_the_emulated_oauth2_apis():
    assert set(CHURN_SOURCES) == {"client_portal", "help_desk"}
    with pytest.raises(ValueError, match="must be one of client_portal, help_desk"):
        ChurnSettings(source="sales_crm")
