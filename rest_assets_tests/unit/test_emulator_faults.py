"""Emulator fault injection, request log, admin endpoints, concurrency and CLI."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from email.utils import parsedate_to_datetime
from pathlib import Path

import pytest
import requests

from rest_assets.emulator import Emulator, EmulatorConfig

CB = {"Authorization": "Bearer demo-contact-book-token"}
CHAT_KEY = "demo-chat-analytics-key"
ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture()
def emu():
    with Emulator(EmulatorConfig(seed=5, default_size=40)) as emulator:
        yield emulator


def contacts(emu, http, **kw):
    return http.get(f"{emu.base_url('contact_book')}/v1/contacts", headers=CB, **kw)


def test_status_fault_with_retry_after_seconds_then_recovers(emu, http):
    emu.add_fault(kind="status", status=429, count=2, path_contains="/v1/contacts", retry_after=3)
    first, second, third = (contacts(emu, http) for _ in range(3))
    assert first.status_code == second.status_code == 429
    assert first.headers["Retry-After"] == "3" and first.json()["error"]
    assert third.status_code == 200 and len(third.json()["contacts"]) == 40
    other = http.get(f"{emu.base_url('contact_book')}/v1/users", headers=CB)
    emu.add_fault(kind="status", status=503, source="sales_crm")
    assert other.status_code == 200 and contacts(emu, http).status_code == 200


def test_retry_after_http_date(emu, http):
    emu.add_fault(kind="status", status=429, retry_after=120, retry_after_http_date=True)
    response = contacts(emu, http)
    when = parsedate_to_datetime(response.headers["Retry-After"])
    assert response.status_code == 429 and 100 < when.timestamp() - time.time() <= 121


def test_every_nth_request_rule(emu, http):
    emu.add_fault(kind="status", status=500, count=None, every=3)
    codes = [contacts(emu, http).status_code for _ in range(9)]
    assert codes == [200, 200, 500] * 3


def test_body_corruption_faults(emu, http):
    emu.add_fault(kind="html")
    html = contacts(emu, http)
    assert html.status_code == 200 and html.headers["Content-Type"].startswith("text/html")
    emu.add_fault(kind="truncated")
    truncated = contacts(emu, http)
    assert truncated.status_code == 200 and truncated.headers["Content-Type"] == "application/json"
    with pytest.raises(ValueError):
        json.loads(truncated.content)
    emu.add_fault(kind="drop_selector")
    dropped = contacts(emu, http).json()
    assert "contacts" not in dropped and dropped["total"] == 40
    emu.add_fault(kind="drop_selector", source="help_desk")
    assert "contacts" in contacts(emu, http).json()


def test_slow_hang_and_reset(emu, http):
    emu.add_fault(kind="slow", delay=0.3)
    started = time.perf_counter()
    assert contacts(emu, http).status_code == 200
    assert time.perf_counter() - started >= 0.3
    emu.add_fault(kind="hang", delay=1.0)
    with pytest.raises(requests.exceptions.ReadTimeout):
        contacts(emu, http, timeout=0.3)
    emu.add_fault(kind="reset")
    with pytest.raises(requests.exceptions.RequestException):
        contacts(emu, http).json()
    assert contacts(emu, http).status_code == 200
    faults = [r["fault"] for r in emu.requests()]
    assert faults[:3] == ["slow", "hang", "reset"]


def test_request_log_masks_secrets_and_skips_admin(emu, http):
    http.get(f"{emu.base_url('chat_analytics')}/v1/teams", params={"api_key": CHAT_KEY, "limit": 5})
    http.get(f"{emu.url}/_admin/requests")
    log = emu.requests()
    assert len(log) == 1
    entry = log[0]
    assert entry["query"] == {"api_key": "***", "limit": "5"}
    assert (entry["method"], entry["path"], entry["status"]) == ("GET", "/chat_analytics/v1/teams", 200)
    assert (entry["source"], entry["resource"]) == ("chat_analytics", "teams") and entry["duration_ms"] >= 0
    assert CHAT_KEY not in json.dumps(log)
    emu.clear_requests()
    assert emu.requests() == []


def test_admin_endpoints(emu, http):
    admin = f"{emu.url}/_admin"
    assert http.post(f"{admin}/faults", json={"kind": "status", "status": 502}).status_code == 201
    assert contacts(emu, http).status_code == 502
    http.post(f"{admin}/faults", json={"kind": "status", "status": 502})
    assert http.delete(f"{admin}/faults").status_code == 200
    assert contacts(emu, http).status_code == 200
    assert len(http.get(f"{admin}/requests").json()) == 2
    http.delete(f"{admin}/requests")
    assert http.get(f"{admin}/requests").json() == []
    assert http.post(f"{admin}/advance", json={"update_fraction": 0, "add": 2}).json()["step"] == 1
    truth = http.get(f"{admin}/truth/contact_book/contacts").json()
    assert truth == emu.truth("contact_book", "contacts") and len(truth) == 42
    assert http.get(f"{admin}/truth/contact_book/nope").status_code == 404
    config = http.post(f"{admin}/config", json={"token_expiry_requests": 5}).json()
    assert config["token_expiry_requests"] == 5 and emu.config.token_expiry_requests == 5
    assert http.post(f"{admin}/faults", json={"kind": "explode"}).status_code == 400


def test_two_emulators_in_one_process_and_port_freed(http):
    with Emulator(EmulatorConfig(seed=1)) as a, Emulator(EmulatorConfig(seed=2)) as b:
        assert a.url != b.url
        a.add_fault(kind="status", status=500)
        assert contacts(b, http).status_code == 200 and contacts(a, http).status_code == 500
        assert contacts(a, http).json()["contacts"] != contacts(b, http).json()["contacts"]
        assert len(a.requests()) == 2 and len(b.requests()) == 2
        port = int(a.url.rsplit(":", 1)[1])
    with pytest.raises(ConnectionRefusedError), socket.create_connection(("127.0.0.1", port), timeout=1):
        pass
    again = Emulator()
    assert again.start(port=port) == f"http://127.0.0.1:{port}"
    again.stop()


def test_latency_overlaps_across_connections():
    """8 requests at once, each held 1 s by the emulator, each given 3 s: served one after another,
    the later ones would wait 2-8 s and time out; served concurrently, every one is answered."""
    with Emulator(EmulatorConfig(latency_ms=1000)) as emu:
        ready = threading.Barrier(8)

        def fetch(_: int) -> int:
            with requests.Session() as session:
                ready.wait()  # all 8 are sent together
                return session.get(f"{emu.base_url('contact_book')}/v1/contacts", headers=CB, timeout=3).status_code

        with ThreadPoolExecutor(8) as pool:
            results = list(pool.map(fetch, range(8)))
    assert results == [200] * 8


def test_cli_serves_until_sigterm():
    proc = subprocess.Popen(
        [sys.executable, "-m", "rest_assets.emulator", "--port", "0", "--size", "7", "--error-every", "2"],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        text=True,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
    )
    try:
        line = proc.stdout.readline().strip()
        assert line.startswith("emulator listening on http://127.0.0.1:")
        url = line.rsplit(" ", 1)[1]
        with requests.Session() as http:
            first = http.get(f"{url}/contact_book/v1/contacts", headers=CB)
            second = http.get(f"{url}/contact_book/v1/contacts", headers=CB)
        assert first.json()["total"] == 7 and second.status_code == 500
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=5) == 0
    finally:
        if proc.poll() is None:
            proc.kill()


# ---------------------------------------------------------------- token churn


def _grant(url: str, refresh: str) -> dict:
    form = {
        "grant_type": "refresh_token",
        "client_id": "demo-helpdesk-client",
        "client_secret": "demo-helpdesk-secret",
        "refresh_token": refresh,
    }
    return requests.post(f"{url}/help_desk/v2/oauth2/token", data=form, timeout=10).json()


def test_churn_revokes_fails_throttles_and_logs_tokens_and_grants():
    with Emulator(EmulatorConfig(seed=5, default_size=5, rotate_refresh_tokens=True)) as emu:
        created = requests.post(
            f"{emu.url}/_admin/churn",
            timeout=10,
            json={
                "source": "help_desk",
                "invalidate_every": 4,
                "error_every": 7,
                "throttle_at": 5,
                "throttle_burst": 1,
                "retry_after": 0,
            },
        ).json()
        assert created["invalidate_every"] == 4 and created["requests_seen"] == 0
        first = _grant(emu.url, "demo-helpdesk-refresh")

        def get(token: str) -> requests.Response:
            return requests.get(f"{emu.url}/help_desk/v2/users", timeout=10, headers={"Authorization": f"Bearer {token}"})

        statuses = [get(first["access_token"]).status_code for _ in range(5)]
        assert statuses == [200, 200, 200, 401, 429]  # n=4: a1 revoked; n=5: a 429 burst of one
        second = _grant(emu.url, first["refresh_token"])
        assert get(second["access_token"]).status_code == 200
        assert get(first["access_token"]).status_code == 503  # n=7: every 7th is 503 (whatever the token)
        assert (
            requests.post(
                f"{emu.url}/help_desk/v2/oauth2/token",
                timeout=10,
                data={
                    "grant_type": "refresh_token",
                    "client_id": "demo-helpdesk-client",
                    "client_secret": "demo-helpdesk-secret",
                    "refresh_token": first["refresh_token"],
                },
            ).status_code
            == 400
        )  # rotated: the old one is refused
        log = emu.requests()
    grants = [e["grant"] for e in log if "grant" in e]
    assert grants[0] == {
        "issued": "a1",
        "replaces": None,
        "replaced_valid": False,
        "refresh_token": "r0",
        "refresh_latest": True,
        "rotated_to": "r2",
    }
    assert grants[1] == {
        "issued": "a3",
        "replaces": "a1",
        "replaced_valid": False,
        "refresh_token": "r2",
        "refresh_latest": True,
        "rotated_to": "r4",
    }
    data = [e for e in log if "churn_request" in e]
    assert [e.get("invalidated") for e in data][3] == "a1"
    assert [(e["token"], e["token_valid"], e["token_replaced"]) for e in data][3:] == [
        ("a1", True, False),
        ("a1", False, False),
        ("a3", True, False),
        ("a1", False, True),
    ]
    assert all(first["access_token"] not in json.dumps(e) for e in log)  # ids in the log, never token values
