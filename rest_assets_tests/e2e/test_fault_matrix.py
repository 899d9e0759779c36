"""The fault matrix, end to end: real HTTP against the emulator, real Dagster runs, real DuckDB.

test_e2e_faults.py already covers token expiry, a single 429, a 5xx burst and
retries exhausted; this file covers the rest of the matrix. Every case ends
with the destination equal to the emulator's truth, or, where the run must
fail, with one clear error and the last good tables untouched.

Specs are trimmed copies (one or two resources, small pages, tiny backoff,
short timeouts) so that the only waiting is what a fault needs (Retry-After
is 1 s). The repeated-cursor case needs a misbehaving API the emulator cannot
imitate, so it uses a tiny recording HTTP server instead.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest
from conftest import assert_table_equals_truth, failure_errors, failure_messages, materialization_metadata
from reliability_support import RecordingServer, json_reply, run_source, snapshot, write_spec

from rest_assets.emulator import DEMO_CREDENTIALS

pytestmark = pytest.mark.e2e


def _entries(emulator: Any, source: str, path_suffix: str) -> list[dict[str, Any]]:
    return [e for e in emulator.requests() if e["source"] == source and e["path"].endswith(path_suffix)]


def _load_errors(result: Any) -> list[str]:
    return [message for cls, message in failure_errors(result) if cls == "LoadError"]


def _use(workdir: Any, emulator: Any, tmp_path: Path, source: str, **spec: Any) -> None:
    workdir.point_at(emulator)
    workdir.use_specs(write_spec(tmp_path / "specs", source, **spec))


# -- 429 storms ----------------------------------------------------------------------------------


@pytest.mark.parametrize("http_date", [False, True], ids=["retry-after-seconds", "retry-after-http-date"])
def test_429_storm_is_waited_out(own_emulator, workdir, tmp_path, http_date):
    _use(workdir, own_emulator, tmp_path, "chat_analytics", resources=["contacts"], page_limit=5)
    own_emulator.add_fault(
        kind="status",
        status=429,
        count=2,
        source="chat_analytics",
        path_contains="/v1/contacts",
        retry_after=1,
        retry_after_http_date=http_date,
    )

    result = run_source("chat_analytics")

    assert result.success, failure_messages(result)
    statuses = [e["status"] for e in _entries(own_emulator, "chat_analytics", "/v1/contacts")]
    assert statuses[:3] == [429, 429, 200]
    figures = materialization_metadata(result)["chat_analytics/contacts"]
    assert figures["throttled_429"] == 2 and figures["retries"] == 2
    # Retry-After was obeyed, not replaced by the tiny backoff: an HTTP date has 1 s resolution.
    assert figures["seconds_waited"] >= (0.5 if http_date else 1.9)
    assert_table_equals_truth(own_emulator, "chat_analytics", "contacts")


# -- broken bodies and connections -----------------------------------------------------------------


@pytest.mark.parametrize("kind", ["reset", "html", "truncated"])
def test_broken_response_mid_run_is_retried_and_loads_everything(own_emulator, workdir, tmp_path, kind):
    _use(workdir, own_emulator, tmp_path, "chat_analytics", resources=["contacts"], page_limit=5)
    own_emulator.add_fault(kind=kind, count=2, source="chat_analytics", path_contains="/v1/contacts", every=2)

    result = run_source("chat_analytics")

    assert result.success, failure_messages(result)
    faulted = [e for e in _entries(own_emulator, "chat_analytics", "/v1/contacts") if e["fault"] == kind]
    assert len(faulted) == 2, "both faults must have fired mid-run"
    assert materialization_metadata(result)["chat_analytics/contacts"]["retries"] == 2
    assert_table_equals_truth(own_emulator, "chat_analytics", "contacts")


def test_hung_server_times_out_per_spec_timeout_and_is_retried(own_emulator, workdir, tmp_path):
    _use(workdir, own_emulator, tmp_path, "chat_analytics", resources=["contacts"], page_limit=5, client={"timeout": 0.5})
    own_emulator.add_fault(kind="hang", count=1, delay=3, source="chat_analytics", path_contains="/v1/contacts")

    result = run_source("chat_analytics")

    assert result.success, failure_messages(result)
    entries = _entries(own_emulator, "chat_analytics", "/v1/contacts")
    assert entries[0]["fault"] == "hang" and entries[0]["status"] is None
    assert entries[1]["query"] == entries[0]["query"] and entries[1]["status"] == 200
    assert materialization_metadata(result)["chat_analytics/contacts"]["retries"] == 1
    assert_table_equals_truth(own_emulator, "chat_analytics", "contacts")


# -- a page without the data_selector path -----------------------------------------------------------


def test_missing_data_selector_fails_clearly_and_keeps_last_good_tables(own_emulator, workdir, tmp_path):
    _use(workdir, own_emulator, tmp_path, "chat_analytics", resources=["contacts", "teams"], page_limit=5)
    good = run_source("chat_analytics")
    assert good.success, failure_messages(good)
    before = snapshot("chat_analytics", ["contacts", "teams"])
    own_emulator.advance(update_fraction=0.5, add=3)
    own_emulator.add_fault(kind="drop_selector", count=None, source="chat_analytics", path_contains="/v1/contacts")

    bad = run_source("chat_analytics")

    assert not bad.success
    errors = _load_errors(bad)
    assert len(errors) == 1, failure_errors(bad)
    message = errors[0]
    assert "resource 'contacts'" in message and "'data'" in message, message
    assert "/chat_analytics/v1/contacts" in message and "api_key=***" in message, message
    assert DEMO_CREDENTIALS["chat_analytics"]["api_key"] not in message
    assert snapshot("chat_analytics", ["contacts", "teams"]) == before


# -- OAuth2: token endpoint faults, refresh-token rotation, 401 mid-run --------------------------------

TOKEN_PATH = "/oauth2/token"


def test_token_endpoint_5xx_then_ok_recovers(own_emulator, workdir, tmp_path):
    _use(workdir, own_emulator, tmp_path, "help_desk", resources=["users"])
    own_emulator.add_fault(kind="status", status=503, count=1, source="help_desk", path_contains=TOKEN_PATH)

    result = run_source("help_desk")

    assert result.success, failure_messages(result)
    assert [e["status"] for e in _entries(own_emulator, "help_desk", TOKEN_PATH)] == [503, 200]
    assert_table_equals_truth(own_emulator, "help_desk", "users")


def test_token_endpoint_always_failing_is_a_clear_error(own_emulator, workdir, tmp_path, monkeypatch):
    # The token request has no spec error_handler of its own; the default policy's backoff (1 s, 2 s,
    # 4 s) is made tiny here so the test does not sleep 7 s. Retry counts are unchanged.
    monkeypatch.setattr("rest_assets.runtime.retry.RetryPolicy.backoff", lambda self, retry: 0.01)
    _use(workdir, own_emulator, tmp_path, "help_desk", resources=["users"])
    own_emulator.add_fault(kind="status", status=500, count=None, source="help_desk", path_contains=TOKEN_PATH)

    result = run_source("help_desk")

    assert not result.success
    errors = _load_errors(result)
    assert len(errors) == 1, failure_errors(result)
    assert "help_desk" in errors[0] and "oauth2/token" in errors[0] and "HTTP 500" in errors[0], errors[0]
    assert len(_entries(own_emulator, "help_desk", TOKEN_PATH)) == 4  # first try + 3 retries
    assert not _entries(own_emulator, "help_desk", "/v2/users"), "no API call may go out without a token"


def test_token_without_expires_in_is_cached_and_used(own_emulator, workdir, tmp_path):
    """A token endpoint that omits expires_in (a tiny proxy strips it from the emulator's answer)."""
    _use(workdir, own_emulator, tmp_path, "help_desk", resources=["users"], page_limit=5)
    token_url = own_emulator.base_url("help_desk") + "/v2/oauth2/token"

    def strip_expiry(request: Any) -> Any:
        import requests

        creds = DEMO_CREDENTIALS["help_desk"]
        answer = requests.post(token_url, data={"grant_type": "client_credentials", **creds}, timeout=5).json()
        answer.pop("expires_in")
        return json_reply(answer)

    with RecordingServer(handler=strip_expiry) as proxy:
        workdir.monkeypatch.setenv("SOURCES__HELP_DESK__TOKEN_URL", proxy.url + "/token")
        result = run_source("help_desk")

    assert result.success, failure_messages(result)
    assert len(proxy.requests) == 1, "the token must be cached for the default lifetime, not fetched per page"
    assert len(_entries(own_emulator, "help_desk", "/v2/users")) >= 4
    assert_table_equals_truth(own_emulator, "help_desk", "users")


def test_rotated_refresh_token_is_used_after_a_mid_run_refresh(own_emulator, workdir, tmp_path):
    _use(workdir, own_emulator, tmp_path, "client_portal", resources=["clients", "contacts"], page_limit=5)
    own_emulator.configure(token_expiry_requests=2, rotate_refresh_tokens=True)

    result = run_source("client_portal")

    assert result.success, failure_messages(result)
    grants = _entries(own_emulator, "client_portal", TOKEN_PATH)
    assert len(grants) >= 3 and all(g["status"] == 200 for g in grants), grants  # a rotated token was never reused
    assert any(e["status"] == 401 for e in own_emulator.requests()), "the token never expired mid-run"
    for resource in ("clients", "contacts"):
        assert_table_equals_truth(own_emulator, "client_portal", resource)


def test_401_mid_run_on_oauth_refreshes_once_and_loads_everything(own_emulator, workdir, tmp_path):
    _use(workdir, own_emulator, tmp_path, "help_desk", resources=["users"], page_limit=5)
    own_emulator.add_fault(kind="status", status=401, count=1, every=3, source="help_desk", path_contains="/v2/users")

    result = run_source("help_desk")

    assert result.success, failure_messages(result)
    log = [e for e in own_emulator.requests() if e["source"] == "help_desk"]
    index = next(i for i, e in enumerate(log) if e["status"] == 401)
    assert log[index + 1]["path"].endswith(TOKEN_PATH) and log[index + 2]["query"] == log[index]["query"]
    assert log[index + 2]["status"] == 200
    assert_table_equals_truth(own_emulator, "help_desk", "users")


def test_401_mid_run_with_a_static_key_fails_clearly_and_keeps_last_good_tables(own_emulator, workdir, tmp_path):
    _use(workdir, own_emulator, tmp_path, "contact_book", resources=["contacts", "users"], page_limit=5)
    good = run_source("contact_book")
    assert good.success, failure_messages(good)
    before = snapshot("contact_book", ["contacts", "users"])
    own_emulator.advance(update_fraction=0.5, add=3)
    own_emulator.add_fault(kind="status", status=401, count=None, every=2, source="contact_book", path_contains="/v1/contacts")

    bad = run_source("contact_book")

    assert not bad.success
    errors = _load_errors(bad)
    assert len(errors) == 1 and "401" in errors[0] and "contacts" in errors[0], failure_errors(bad)
    assert DEMO_CREDENTIALS["contact_book"]["api_key"] not in errors[0]
    assert snapshot("contact_book", ["contacts", "users"]) == before


# -- paginators that would never end ------------------------------------------------------------------


def test_page_cap_stops_a_runaway_endpoint_and_a_sufficient_cap_loads_everything(own_emulator, workdir, tmp_path):
    _use(workdir, own_emulator, tmp_path, "chat_analytics", resources=["contacts"], page_limit=5, client={"max_pages": 2})

    capped = run_source("chat_analytics")

    assert not capped.success
    errors = _load_errors(capped)
    assert len(errors) == 1 and "max_pages=2" in errors[0] and "contacts" in errors[0], failure_errors(capped)
    assert len(_entries(own_emulator, "chat_analytics", "/v1/contacts")) == 2

    write_spec(tmp_path / "specs", "chat_analytics", resources=["contacts"], page_limit=5, client={"max_pages": 10})
    enough = run_source("chat_analytics")
    assert enough.success, failure_messages(enough)
    assert_table_equals_truth(own_emulator, "chat_analytics", "contacts")


def _repeating_cursor_api(request: Any) -> Any:
    """Page 1 says `next: c1`; every later page says `next: c1` again (a broken API)."""
    query = parse_qs(urlsplit(request.path).query)
    first = "next" not in query
    records = [{"id": 1 if first else 2, "updated_at": "2024-01-01T00:00:00Z"}]
    return json_reply({"items": records, "links": {"next": "c1"}})


def test_repeated_cursor_is_an_error_not_an_endless_loop(workdir, tmp_path):
    with RecordingServer(handler=_repeating_cursor_api) as api:
        spec = {
            "client": {"base_url": api.url},
            "resources": [
                {
                    "name": "items",
                    "primary_key": "id",
                    "endpoint": {
                        "path": "/items",
                        "data_selector": "items",
                        "paginator": {
                            "type": "cursor",
                            "cursor_param": "next",
                            "stop_condition": "not response.get('links', {}).get('next')",
                        },
                    },
                }
            ],
        }
        (tmp_path / "specs").mkdir()
        (tmp_path / "specs" / "loopy.yaml").write_text(json.dumps(spec))
        workdir.use_specs(tmp_path / "specs")
        result = run_source("loopy")

    assert not result.success
    errors = _load_errors(result)
    assert len(errors) == 1 and "same cursor twice" in errors[0] and "items" in errors[0], failure_errors(result)
    assert [r.path for r in api.requests] == ["/items", "/items?next=c1"]
