"""The token-churn step of `rest-assets selftest`.

An OAuth2 source on the emulator's help_desk API (refresh-token grant, the
refresh token rotated on every grant and kept in `auth.refresh_token_store`)
with two child endpoints fetched 16 at a time, materialized a few times
while the emulator revokes access tokens, answers 503 and throttles with
429 (see emulator/churn.py). From the emulator's request log: runs that
failed, requests that carried a token already replaced by a newer grant,
grants beyond one per revocation, grants that used an old refresh token.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from rest_assets.emulator import Emulator

SOURCE = "churn_desk"
RUNS = 3
RESOURCES = {"conversations": None, "conversation_threads": "_conversations_id", "inboxes": None, "inbox_folders": "_inboxes_id"}


@dataclass
class ChurnFigures:
    """What the churn step measured."""

    runs: int = 0
    runs_ok: int = 0
    revocations: int = 0
    grants: int = 0
    replaced_token_requests: int = 0
    extra_grants: int = 0
    old_refresh_grants: int = 0
    rows_lost: int = 0
    rows_duplicated: int = 0
    refresh_tokens: set[str] = field(default_factory=set)

    @property
    def ok(self) -> bool:
        return (
            self.runs_ok == self.runs
            and not self.replaced_token_requests
            and not self.extra_grants
            and not self.old_refresh_grants
            and not self.rows_lost
            and not self.rows_duplicated
        )

    def line(self) -> str:
        return (
            f"token churn: runs / succeeded: {self.runs} / {self.runs_ok} (tokens revoked {self.revocations}, "
            f"grants {self.grants}, requests with a replaced token {self.replaced_token_requests}, "
            f"grants beyond one per revocation {self.extra_grants}, "
            f"grants with an old refresh token {self.old_refresh_grants})"
        )


def churn_spec(
    emulator: Emulator, store: Path, *, page_limit: int = 10, write_disposition: str = "merge", backoff_factor: float = 0.01
) -> dict[str, Any]:
    """The churn source: help_desk's API with a refresh-token grant and two child endpoints."""
    base = emulator.base_url("help_desk") + "/v2"
    paginator = {
        "type": "cursor",
        "limit": page_limit,
        "cursor_path": "_links.next.href",
        "stop_condition": "_links.next is none",
    }

    def resource(name: str, path: str, key: str) -> dict[str, Any]:
        return {"name": name, "endpoint": {"path": path, "data_selector": f"_embedded.{key}", "paginator": paginator}}

    retry = {"retry_on_status_codes": [429, 500, 502, 503, 504], "max_retries": 8, "backoff_factor": backoff_factor}
    return {
        "client": {
            "base_url": base,
            "child_concurrency": 16,
            "auth": {
                "type": "oauth2",
                "client_id": {"secret": "client_id"},
                "client_secret": {"secret": "client_secret"},
                "refresh_token": {"secret": "refresh_token"},
                "token_url": f"{base}/oauth2/token",
                "refresh_token_store": str(store),
            },
        },
        "resource_defaults": {"primary_key": "id", "write_disposition": write_disposition, "endpoint": {"error_handler": retry}},
        "resources": [
            resource("conversations", "/conversations", "conversations"),
            resource("conversation_threads", "/conversations/{{ stream_partition['conversation_id'] }}/threads", "threads"),
            resource("inboxes", "/mailboxes", "mailboxes"),
            resource("inbox_folders", "/mailboxes/{{ stream_partition['inbox_id'] }}/folders", "folders"),
        ],
    }


def churn_environment(work: Path, emulator: Emulator, credentials: dict[str, str]) -> dict[str, str]:
    """Spec folder and secrets for the churn source (the token store sits outside `work / 'run'`)."""
    specs = work / "churn-specs"
    specs.mkdir()
    (specs / f"{SOURCE}.yaml").write_text(json.dumps(churn_spec(emulator, work / "tokens" / f"{SOURCE}.refresh_token")))
    env = {
        f"SOURCES__{SOURCE.upper()}__{key.upper()}": credentials[key] for key in ("client_id", "client_secret", "refresh_token")
    }
    env["REST_ASSETS_SOURCES_DIR"] = str(specs)
    return env


def run_churn(emulator: Emulator, work: Path, materialize: Callable[[], Any]) -> ChurnFigures:
    """Materialize the churn source RUNS times under churn (cwd: `work / 'run'`) and read the log."""
    figures = ChurnFigures()
    run_dir = work / "run"
    run_dir.mkdir()
    previous = Path.cwd()
    emulator.configure(rotate_refresh_tokens=True)
    os.chdir(run_dir)
    try:
        for run in range(RUNS):
            emulator.clear_requests()
            emulator.set_churn(
                source="help_desk",
                seed=run,
                invalidate_probability=0.03,
                invalidate_every=29,
                error_every=7,
                throttle_at=4,
                throttle_burst=3,
                retry_after=0,
            )
            figures.runs += 1
            figures.runs_ok += int(materialize().success)
            _read_log(emulator.requests(), figures)
        _count_rows(emulator, figures)
    finally:
        os.chdir(previous)
        emulator.clear_faults()
        emulator.configure(rotate_refresh_tokens=False)
    figures.refresh_tokens = set(emulator.apis.tokens.refresh.get("help_desk", {}))
    return figures


def _read_log(entries: list[dict[str, Any]], figures: ChurnFigures) -> None:
    data = [e for e in entries if "churn_request" in e]
    grants = [e["grant"] for e in entries if "grant" in e]
    revoked = sum(1 for e in data if e.get("invalidated"))
    figures.revocations += revoked
    figures.grants += len(grants)
    figures.replaced_token_requests += sum(1 for e in data if e.get("token_replaced"))
    figures.old_refresh_grants += sum(1 for g in grants if not g.get("refresh_latest"))
    later = grants[1:]  # the first grant of a run replaces the previous run's token
    figures.extra_grants += sum(1 for g in later if g["replaced_valid"]) + max(0, len(later) - revoked)


def _count_rows(emulator: Emulator, figures: ChurnFigures) -> None:
    import duckdb

    connection = duckdb.connect(os.environ["DESTINATION__DUCKDB__CREDENTIALS"], read_only=True)
    try:
        for resource, parent_column in RESOURCES.items():
            key = f"id, {parent_column}" if parent_column else "id"
            rows = connection.execute(f'SELECT {key} FROM "{SOURCE}"."{resource}"').fetchall()
            truth = {(r["id"], r["parent_id"]) if parent_column else (r["id"],) for r in emulator.truth("help_desk", resource)}
            figures.rows_lost += len(truth - set(rows))
            figures.rows_duplicated += len(rows) - len(set(rows))
    finally:
        connection.close()
