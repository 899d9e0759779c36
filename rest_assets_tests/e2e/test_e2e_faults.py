"""End to end under faults: token expiry, 429 + Retry-After, 5xx bursts, retries exhausted.

Each test gets its own emulator (faults and token settings never leak into
other tests). Retry tests load spec copies whose `backoff_factor` is tiny, so
the suite stays fast; what is asserted is the behaviour, never the test's clock.
"""

from __future__ import annotations

import pytest
from conftest import (
    DEMO_SECRET_VALUES,
    assert_table_equals_truth,
    failure_errors,
    failure_messages,
    materialization_metadata,
    materialize_source,
    read_table,
    table_names,
    write_fast_retry_specs,
    write_spec_copies,
)

from rest_assets.cli.demo import _failure_message
from rest_assets.emulator import DEMO_CREDENTIALS
from rest_assets.emulator.schema import SPECS

pytestmark = pytest.mark.e2e


def _api_entries(emulator, source: str, path_suffix: str) -> list[dict]:
    return [e for e in emulator.requests() if e["source"] == source and e["path"].endswith(path_suffix)]


def _assert_every_401_was_retried(log: list[dict]) -> None:
    for index, entry in enumerate(log):
        if entry["status"] != 401:
            continue
        later = log[index + 1 :]
        assert any(e["path"] == entry["path"] and e["query"] == entry["query"] and e["status"] == 200 for e in later), (
            f"{entry['path']} was never retried after its token expired"
        )


def test_token_expiry_mid_run_refreshes_and_loads_everything(own_emulator, workdir, tmp_path):
    """A token that dies after 3 requests: every 401 gets one refresh and one retry (children one at a time)."""
    workdir.point_at(own_emulator)
    workdir.use_specs(write_spec_copies(tmp_path / "specs", ("help_desk",), backoff_factor=None, child_concurrency=1))
    own_emulator.configure(token_expiry_requests=3)

    result = materialize_source("help_desk")

    assert result.success, failure_messages(result)
    log = [e for e in own_emulator.requests() if e["source"] == "help_desk"]
    expired = [e for e in log if e["status"] == 401]
    token_grants = [e for e in log if e["path"].endswith("/oauth2/token") and e["status"] == 200]
    assert len(expired) >= 5, "the token should have expired many times: the test exercised nothing"
    assert len(token_grants) == len(expired) + 1  # the first token, then exactly one refresh per expiry
    for index, entry in enumerate(log):  # sequential: the refresh comes right after the 401
        if entry["status"] == 401:
            assert log[index + 1]["path"].endswith("/oauth2/token")
    _assert_every_401_was_retried(log)
    for resource in SPECS["help_desk"]:
        assert_table_equals_truth(own_emulator, "help_desk", resource)


def test_token_expiry_with_concurrent_child_requests(own_emulator, workdir):
    """Bundled spec (children fetched concurrently): in-flight requests share one refresh per expiry.

    The token lives for 25 requests, comfortably more than the requests in flight at once: a
    budget below the concurrency could expire the refreshed token before every retry got to use it
    (the contract is "a 401 refreshes once and retries").
    """
    workdir.point_at(own_emulator)
    own_emulator.configure(token_expiry_requests=25)

    result = materialize_source("help_desk")

    assert result.success, failure_messages(result)
    log = [e for e in own_emulator.requests() if e["source"] == "help_desk"]
    expired = [e for e in log if e["status"] == 401]
    token_grants = [e for e in log if e["path"].endswith("/oauth2/token") and e["status"] == 200]
    assert len(token_grants) >= 3, "the token should have expired during the run"
    # requests in flight when a token dies share the refresh another one already made
    assert len(token_grants) <= len(expired) + 1
    _assert_every_401_was_retried(log)
    for resource in SPECS["help_desk"]:
        assert_table_equals_truth(own_emulator, "help_desk", resource)


def test_429_retry_after_is_waited_out(own_emulator, workdir):
    workdir.point_at(own_emulator)
    own_emulator.add_fault(kind="status", status=429, count=1, source="contact_book", path_contains="/v1/contacts", retry_after=1)

    result = materialize_source("contact_book")

    assert result.success, failure_messages(result)
    entries = _api_entries(own_emulator, "contact_book", "/v1/contacts")
    assert [e["status"] for e in entries][:2] == [429, 200]
    throttled, retried = entries[0], entries[1]
    assert throttled["fault"] == "status" and retried["query"] == throttled["query"]
    # The emulator's log carries no wall-clock times (only durations), so the wait is read from the
    # transport's own figures: one 429, one retry, and at least the Retry-After second held back.
    figures = materialization_metadata(result)["contact_book/contacts"]
    assert figures["throttled_429"] == 1 and figures["retries"] == 1
    assert figures["seconds_waited"] >= 0.9
    for resource in SPECS["contact_book"]:
        assert_table_equals_truth(own_emulator, "contact_book", resource)


def test_5xx_burst_is_retried_without_losing_rows(own_emulator, workdir, tmp_path):
    workdir.point_at(own_emulator)
    workdir.use_specs(write_fast_retry_specs(tmp_path / "specs", ("help_desk",)))
    own_emulator.add_fault(kind="status", status=503, count=3, source="help_desk", path_contains="/v2/customers")

    result = materialize_source("help_desk")

    assert result.success, failure_messages(result)
    statuses = [e["status"] for e in _api_entries(own_emulator, "help_desk", "/v2/customers")]
    assert statuses[:4] == [503, 503, 503, 200]
    figures = materialization_metadata(result)["help_desk/customers"]
    assert figures["retries"] == 3
    assert figures["rows_loaded"] == len(own_emulator.truth("help_desk", "customers"))
    for resource in SPECS["help_desk"]:
        assert_table_equals_truth(own_emulator, "help_desk", resource)


def test_retries_exhausted_fails_cleanly_and_keeps_the_last_good_tables(own_emulator, workdir, tmp_path):
    workdir.point_at(own_emulator)
    workdir.use_specs(write_fast_retry_specs(tmp_path / "specs", ("chat_analytics",)))
    resources = sorted(SPECS["chat_analytics"])

    good = materialize_source("chat_analytics")
    assert good.success, failure_messages(good)
    before = {r: read_table("chat_analytics", r) for r in resources}

    # New and changed records everywhere, so a partial load of any table would show.
    own_emulator.advance(update_fraction=0.5, add=5)
    own_emulator.add_fault(kind="status", status=500, count=None, source="chat_analytics", path_contains="/v1/contacts")
    bad = materialize_source("chat_analytics")

    assert not bad.success
    errors = failure_errors(bad)
    load_errors = [message for cls, message in errors if cls == "LoadError"]
    assert len(load_errors) == 1, errors
    assert "resource 'contacts'" in load_errors[0] and "HTTP 500" in load_errors[0], load_errors[0]
    messages = [message for _, message in errors]
    # what `rest-assets demo` prints for a failed source is that clean message, not Dagster's wrapper
    assert _failure_message(bad) == load_errors[0].strip()
    contacts_tries = [e for e in _api_entries(own_emulator, "chat_analytics", "/v1/contacts") if e["status"] == 500]
    assert len(contacts_tries) == 4  # first try + max_retries (3)
    api_key = DEMO_CREDENTIALS["chat_analytics"]["api_key"]
    everything_said = "\n".join(messages + [str(e.message) for e in bad.all_events])
    assert api_key not in everything_said
    assert not [s for s in DEMO_SECRET_VALUES if s in everything_said]

    assert table_names("chat_analytics") == set(resources)
    after = {r: read_table("chat_analytics", r) for r in resources}
    for resource in resources:
        assert sorted(after[resource], key=repr) == sorted(before[resource], key=repr), resource
