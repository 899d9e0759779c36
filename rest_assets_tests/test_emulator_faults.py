"""Emulator fault injection, request log, admin endpoints, concurrency and CLI."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from email.utils import parsedate_to_datetime
from pathlib import Path

import pytest
import requests

from rest_assets.emulator import Emulator, EmulatorConfig

CB = {"Authorization": "Bearer demo-contact-book-token"}
CHAT_KEY = "demo-chat-analytics-key"
ROOT = Path(__file__).resolve().parents[1]


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
    with Emulator(EmulatorConfig(latency_ms=100)) as emu:
        def fetch(_):
            with requests.Session() as session:
                return [contacts(emu, session).status_code for _ in range(2)]
        started = time.perf_counter()
        with ThreadPoolExecutor(8) as pool:
            results = list(pool.map(fetch, range(8)))
        elapsed = time.perf_counter() - started
    assert results == [[200, 200]] * 8
    assert 0.2 <= elapsed < 0.8  # serial would take 1.6 s


def test_cli_serves_until_sigterm():
    proc = subprocess.Popen([sys.executable, "-m", "rest_assets.emulator", "--port", "0", "--size", "7",
                             "--error-every", "2"], cwd=ROOT, stdout=subprocess.PIPE, text=True,
                            env={**os.environ, "PYTHONPATH": str(ROOT)})
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
