"""The definition set as Dagster sees it: validation from the command line and an exact snapshot."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from conftest import BUNDLED_SOURCES_DIR

# asset key → (group, deps, metadata endpoint, paginator, primary_key, write_disposition)
SNAPSHOT = {
    "chat_analytics/companies": ("chat_analytics", (), "/v1/companies", "offset", "id", "merge"),
    "chat_analytics/contacts": ("chat_analytics", (), "/v1/contacts", "offset", "id", "merge"),
    "chat_analytics/conversation_parts": ("chat_analytics", (), "/v1/conversation_parts", "offset", "id", "merge"),
    "chat_analytics/conversations": ("chat_analytics", (), "/v1/conversations", "offset", "id", "merge"),
    "chat_analytics/teams": ("chat_analytics", (), "/v1/teams", "offset", "id", "merge"),
    "client_portal/clients": ("client_portal", (), "/v1/clients", "cursor", "id", "merge"),
    "client_portal/company": ("client_portal", (), "/v1/company", "single_page", "id", "merge"),
    "client_portal/contacts": ("client_portal", (), "/v1/contacts", "cursor", "id", "merge"),
    "contact_book/contact_books": ("contact_book", (), "/v1/contact_books", "offset", "id", "merge"),
    "contact_book/contact_groups": ("contact_book", (), "/v1/contact_groups", "offset", "id", "merge"),
    "contact_book/contacts": ("contact_book", (), "/v1/contacts", "offset", "id", "merge"),
    "contact_book/conversations": ("contact_book", (), "/v1/conversations", "single_page", "id", "merge"),
    "contact_book/organizations": ("contact_book", (), "/v1/organizations", "offset", "id", "merge"),
    "contact_book/shared_labels": ("contact_book", (), "/v1/shared_labels", "offset", "id", "merge"),
    "contact_book/teams": ("contact_book", (), "/v1/teams", "offset", "id", "merge"),
    "contact_book/users": ("contact_book", (), "/v1/users", "offset", "id", "merge"),
    "help_desk/conversation_threads": (
        "help_desk",
        ("help_desk/conversations",),
        "/v2/conversations/{{ stream_partition['conversation_id'] }}/threads",
        "cursor",
        "id",
        "merge",
    ),
    "help_desk/conversations": ("help_desk", (), "/v2/conversations", "cursor", "id", "merge"),
    "help_desk/customers": ("help_desk", (), "/v2/customers", "cursor", "id", "merge"),
    "help_desk/inbox_custom_fields": (
        "help_desk",
        ("help_desk/inboxes",),
        "/v2/mailboxes/{{ stream_partition['inbox_id'] }}/fields",
        "cursor",
        "id",
        "merge",
    ),
    "help_desk/inbox_folders": (
        "help_desk",
        ("help_desk/inboxes",),
        "/v2/mailboxes/{{ stream_partition['inbox_id'] }}/folders",
        "cursor",
        "id",
        "merge",
    ),
    "help_desk/inboxes": ("help_desk", (), "/v2/mailboxes", "cursor", "id", "merge"),
    "help_desk/tags": ("help_desk", (), "/v2/tags", "cursor", "id", "merge"),
    "help_desk/team_members": (
        "help_desk",
        ("help_desk/teams",),
        "/v2/teams/{{ stream_partition['team_id'] }}/members",
        "cursor",
        "['id', '_teams_id']",
        "merge",
    ),
    "help_desk/teams": ("help_desk", (), "/v2/teams", "cursor", "id", "merge"),
    "help_desk/users": ("help_desk", (), "/v2/users", "cursor", "id", "merge"),
    "help_desk/workflows": ("help_desk", (), "/v2/workflows", "cursor", "id", "merge"),
    "sales_crm/deals": ("sales_crm", (), "/v1/deals", "page_number", "id", "merge"),
    "sales_crm/pages": ("sales_crm", (), "/v1/pages", "page_number", "id", "merge"),
    "sales_crm/tags": ("sales_crm", (), "/v1/tags", "page_number", "id", "merge"),
    "sales_crm/tasks": ("sales_crm", (), "/v1/tasks", "page_number", "id", "merge"),
    "sales_crm/users": ("sales_crm", (), "/v1/users", "page_number", "id", "merge"),
}

REQUIRED_METADATA = ("endpoint", "paginator", "primary_key", "write_disposition")


def clean_env(**extra: str) -> dict[str, str]:
    """The current environment without any source setting or secret (every SOURCES__* dropped)."""
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith("SOURCES__") and k not in ("REST_ASSETS_SOURCES_DIR", "DESTINATION__DUCKDB__CREDENTIALS")
    }
    env.update(extra)
    return env


def validate(cwd: Path, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "dagster", "definitions", "validate", "-m", "rest_assets.definitions"],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=240,
    )


@pytest.mark.e2e
def test_definitions_validate_without_any_secret(tmp_path):
    done = validate(tmp_path, clean_env(DLT_DATA_DIR=str(tmp_path / "dlt")))
    assert done.returncode == 0, (done.stdout + done.stderr)[-4000:]
    assert "Validation successful" in done.stdout + done.stderr


@pytest.mark.e2e
def test_definitions_validate_names_file_and_key_of_an_invalid_spec(tmp_path):
    specs = tmp_path / "specs"
    specs.mkdir()
    for source in ("contact_book", "sales_crm"):
        text = (BUNDLED_SOURCES_DIR / f"{source}.yaml").read_text()
        if source == "sales_crm":  # a typo in one resource's endpoint
            text = text.replace("      path: /v1/deals", "      path: /v1/deals\n      paginatr: single_page")
            assert "paginatr" in text
        (specs / f"{source}.yaml").write_text(text)

    done = validate(tmp_path, clean_env(REST_ASSETS_SOURCES_DIR=str(specs), DLT_DATA_DIR=str(tmp_path / "dlt")))

    output = done.stdout + done.stderr
    assert done.returncode != 0, output[-4000:]
    assert str(specs / "sales_crm.yaml") in output
    assert "resource 'deals'" in output
    assert "key 'endpoint.paginatr'" in output
    assert "Did you mean 'paginator'?" in output


@pytest.fixture()
def bundled_definitions(tmp_path, monkeypatch):
    """build_definitions() over the bundled specs, with no secret or source override in the environment."""
    for key in [k for k in os.environ if k.startswith("SOURCES__")]:
        monkeypatch.delenv(key)
    for key in ("REST_ASSETS_SOURCES_DIR", "REST_ASSETS_DESTINATION"):
        monkeypatch.delenv(key, raising=False)
    monkeypatch.setenv("DESTINATION__DUCKDB__CREDENTIALS", str(tmp_path / "db.duckdb"))
    monkeypatch.setenv("DLT_DATA_DIR", str(tmp_path / "dlt"))
    monkeypatch.chdir(tmp_path)
    from rest_assets.definitions import build_definitions

    return build_definitions()


def test_asset_definitions_match_the_snapshot(bundled_definitions):
    specs = {spec.key.to_user_string(): spec for assets in bundled_definitions.assets or [] for spec in assets.specs}
    assert sorted(specs) == sorted(SNAPSHOT) and len(specs) == 32

    actual = {
        key: (
            spec.group_name,
            tuple(sorted(dep.asset_key.to_user_string() for dep in spec.deps)),
            *(spec.metadata[name] for name in REQUIRED_METADATA),
        )
        for key, spec in specs.items()
    }
    assert actual == SNAPSHOT
    for key, spec in specs.items():
        assert key.split("/")[0] == spec.group_name
        assert {"dlt", "duckdb"} <= set(spec.kinds), key


def test_every_dependency_is_an_asset_of_the_set(bundled_definitions):
    """No dagster-dlt default `<source>_<resource>` source keys: every dep is one of the 32 assets."""
    graph = bundled_definitions.resolve_asset_graph()
    all_keys = {key.to_user_string() for key in graph.get_all_asset_keys()}
    assert all_keys == set(SNAPSHOT)
    deps = {
        dep.asset_key.to_user_string()
        for assets in bundled_definitions.assets or []
        for spec in assets.specs
        for dep in spec.deps
    }
    assert deps == {"help_desk/conversations", "help_desk/inboxes", "help_desk/teams"}
    assert deps <= all_keys
    for key in graph.get_all_asset_keys():
        assert {parent.to_user_string() for parent in graph.get(key).parent_keys} <= all_keys, key


def test_a_primary_key_check_covers_every_table_with_one_row_per_key_however_its_merge_is_written(tmp_path):
    from rest_assets.dialect import load_spec_dirs
    from rest_assets.orchestration.checks import build_primary_key_checks

    spec = yaml.safe_load((BUNDLED_SOURCES_DIR / "chat_analytics.yaml").read_text())
    dispositions = {
        "contacts": "merge",
        "companies": {"disposition": "merge"},
        "conversations": {"disposition": "merge", "strategy": "delete-insert", "deduplicated": True},
        "teams": {"disposition": "merge", "strategy": "upsert"},
        "conversation_parts": {"disposition": "merge", "strategy": "scd2"},  # a row per version
    }
    for resource in spec["resources"]:
        resource["write_disposition"] = dispositions[resource["name"]]
    (tmp_path / "chat_analytics.yaml").write_text(yaml.safe_dump(spec))
    (source,) = load_spec_dirs([tmp_path])
    checks = build_primary_key_checks(source)
    assert checks is not None
    checked = {key.asset_key.path[-1] for key in checks.check_keys}
    assert checked == {"contacts", "companies", "conversations", "teams"}


@pytest.mark.parametrize(
    ("raised", "expected"),
    [
        ("resource 'items': field 'v' holds the integer 1", "source 'shop', resource 'items': field 'v' holds the integer 1"),
        ("the has-more flag is missing", "source 'shop', resource 'items': the has-more flag is missing"),
        ("source 'shop', resource 'items': page 2 repeats", "source 'shop', resource 'items': page 2 repeats"),
        ("source 'shop': refused a request to ***", "source 'shop', resource 'items': refused a request to ***"),
    ],
)
def test_a_runs_error_names_its_source_and_resource_once(raised, expected):
    from rest_assets.errors import PaginationError
    from rest_assets.orchestration.execution import _clean_error

    error = PaginationError(raised)
    outer = RuntimeError("extraction failed")
    outer.pipe_name = "items"  # as dlt's extraction errors carry the resource
    outer.__cause__ = error
    assert str(_clean_error("shop", outer)) == expected


def test_an_error_whose_cause_says_nothing_names_the_cause():
    """dlt's message ends "caused an exception: " when the cause prints empty (a MemoryError, helper-found)."""
    from rest_assets.orchestration.execution import _clean_error

    outer = RuntimeError("extraction of resource `items` caused an exception: ")
    outer.__cause__ = MemoryError()
    assert str(_clean_error("shop", outer)).endswith("caused an exception:  (caused by MemoryError)")
    plain = RuntimeError("boom: disk full")
    plain.__cause__ = OSError("disk full")
    assert str(_clean_error("shop", plain)) == "source 'shop' failed: RuntimeError: boom: disk full"
