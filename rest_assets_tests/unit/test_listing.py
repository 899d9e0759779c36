"""`rest-assets list` shows what the code location defines."""

import subprocess
import sys

from rest_assets.cli.listing import describe_definitions
from rest_assets.definitions import build_definitions


def test_listing_names_every_asset_with_parents_freshness_and_checks():
    text = describe_definitions(build_definitions())
    rows = {line.split()[0]: line for line in text.splitlines() if "/" in line.split()[0]}
    assert len(rows) == 32
    assert "conversations" in rows["help_desk/conversation_threads"].split()[1]
    assert "1d / 6h" in rows["help_desk/team_members"] and "1d / 12h" in rows["sales_crm/deals"]
    assert all("primary_key_unique_not_null" in row and "freshness_check" in row for row in rows.values())
    assert "32 assets, 64 checks" in text
    assert "schedule help_desk_schedule: '0 * * * *', starts stopped" in text
    assert "sensor rest_assets_freshness_sensor: starts running" in text


def test_the_command_prints_it_without_any_secret_set():
    env = {"PATH": "/usr/bin:/bin"}
    result = subprocess.run(
        [sys.executable, "-m", "rest_assets.cli", "list"], capture_output=True, text=True, env=env, timeout=120
    )
    assert result.returncode == 0, result.stderr
    assert "32 assets, 64 checks" in result.stdout


def test_loading_the_definitions_writes_nothing_into_the_working_directory(tmp_path):
    import subprocess
    import sys

    run = subprocess.run(
        [sys.executable, "-c", "import rest_assets.definitions"], cwd=tmp_path, capture_output=True, text=True, timeout=300
    )
    assert run.returncode == 0, run.stderr[-2000:]
    assert list(tmp_path.iterdir()) == []


def test_the_command_reports_an_invalid_spec_in_one_line_without_a_traceback(tmp_path):
    (tmp_path / "shop.yaml").write_text("client: {base_url: http://x}\nresources:\n  - name: a\n    endpont: {path: a}\n")
    env = {"PATH": "/usr/bin:/bin", "REST_ASSETS_SOURCES_DIR": str(tmp_path)}
    result = subprocess.run(
        [sys.executable, "-m", "rest_assets.cli", "list"], capture_output=True, text=True, env=env, timeout=120
    )
    assert result.returncode == 2
    assert "Traceback" not in result.stderr
    assert f"{tmp_path / 'shop.yaml'}:4 - resource 'a' - key 'endpont'" in result.stderr


def test_the_command_ends_quietly_when_its_reader_goes_away():
    listing = subprocess.Popen(
        [sys.executable, "-m", "rest_assets.cli", "list"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env={"PATH": "/usr/bin:/bin"},
    )
    listing.stdout.close()  # as `rest-assets list | head -1` does once it has its line
    _, errors = listing.communicate(timeout=120)
    assert listing.returncode == 0 and b"BrokenPipeError" not in errors and b"Traceback" not in errors, errors.decode()


def test_a_malformed_secrets_file_does_not_stop_the_definitions_from_loading(tmp_path):
    (tmp_path / ".dlt").mkdir()
    (tmp_path / ".dlt" / "secrets.toml").write_text('[sources.shop]\ntoken = "unterminated\n')
    run = subprocess.run(
        [sys.executable, "-c", "import rest_assets.definitions"], cwd=tmp_path, capture_output=True, text=True, timeout=300
    )
    assert run.returncode == 0, run.stderr[-2000:]
