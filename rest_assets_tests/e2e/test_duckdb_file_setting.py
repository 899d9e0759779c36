"""The DuckDB file comes from the duckdb credentials wherever dlt reads them, in every form dlt takes.

Each case runs contact_book from a fresh process (dlt reads .dlt/ once per
process) in its own working directory, against the emulator, and checks that
the rows are in the file the setting names and that no other file appeared:
neither the default data/rest_assets.duckdb nor a folder named after a URL
(`duckdb:`), which a `duckdb:///` URL read as a path would make.
"""

from __future__ import annotations

import subprocess
from pathlib import Path
from typing import Any

import duckdb
import pytest
from conftest import run_contact_book_in_a_fresh_process

from rest_assets.cli.demo import emulator_environment

pytestmark = pytest.mark.e2e


def _run(cwd: Path, emulator: Any, **extra: str) -> subprocess.CompletedProcess[str]:
    return run_contact_book_in_a_fresh_process(cwd, DLT_DATA_DIR=str(cwd / "dlt"), **emulator_environment(emulator.url), **extra)


def _settings(cwd: Path, file: str, text: str) -> None:
    (cwd / ".dlt").mkdir(exist_ok=True)
    (cwd / ".dlt" / file).write_text(text)


CASES = {
    "a duckdb:/// URL in the environment": lambda cwd, db: {"DESTINATION__DUCKDB__CREDENTIALS": f"duckdb:///{db}"},
    "a path in secrets.toml": lambda cwd, db: _settings(cwd, "secrets.toml", f'[destination.duckdb]\ncredentials = "{db}"\n'),
    "a database in config.toml": lambda cwd, db: _settings(
        cwd, "config.toml", f'[destination.duckdb.credentials]\ndatabase = "{db}"\n'
    ),
}


@pytest.mark.parametrize("setting", list(CASES))
def test_the_rows_land_in_the_file_the_duckdb_credentials_name(tmp_path, emulator, setting):
    cwd, db = tmp_path / "work", tmp_path / "elsewhere" / "mine.duckdb"
    cwd.mkdir()
    db.parent.mkdir()
    extra = CASES[setting](cwd, db) or {}

    run = _run(cwd, emulator, **extra)

    assert "run succeeded" in run.stdout, run.stdout[-2000:] + run.stderr[-2000:]
    with duckdb.connect(str(db), read_only=True) as connection:
        (contacts,) = connection.execute("select count(*) from contact_book.contacts").fetchone()
    assert contacts == len(emulator.truth("contact_book", "contacts"))
    assert not (cwd / "data").exists() and not (cwd / "duckdb:").exists(), sorted(p.name for p in cwd.iterdir())


def test_a_database_that_is_not_a_file_is_refused_naming_the_setting(tmp_path, emulator):
    run = _run(tmp_path, emulator, DESTINATION__DUCKDB__CREDENTIALS=":memory:")

    assert "run failed" in run.stdout, run.stdout[-2000:] + run.stderr[-2000:]
    assert "DESTINATION__DUCKDB__CREDENTIALS" in run.stdout and "':memory:'" in run.stdout, run.stdout[-2000:]
