"""A failed run's dlt working folder is emptied and left with one redacted error.txt (runtime.scrub)."""

from __future__ import annotations

import secrets

import dlt
import pytest

from rest_assets.runtime.redaction import register_secret
from rest_assets.runtime.scrub import ERROR_FILE, scrub_failed_run


def test_a_failed_dlt_run_folder_keeps_only_a_redacted_error_file(tmp_path):
    secret = "key-" + secrets.token_hex(12)
    register_secret(secret)
    folder = tmp_path / "run-1"

    @dlt.resource(name="items")
    def items():
        yield [{"id": 1, "echo": secret}]
        raise ValueError(f"400 Client Error: Bad Request for url: https://api.test/items?key={secret}")

    pipeline = dlt.pipeline(pipeline_name="scrub_test", pipelines_dir=str(folder), destination=None)
    with pytest.raises(Exception, match="400 Client Error"):  # dlt wraps the generator's error
        pipeline.extract(items())
    before = [p for p in folder.rglob("*") if p.is_file()]
    assert any(p.name == "trace.pickle" and secret.encode() in p.read_bytes() for p in before)

    error_file = scrub_failed_run(
        folder, "source 'x' failed: see below", ["10:00:00 GET https://api.test/items?key=*** -> HTTP 400"]
    )

    assert error_file == folder / ERROR_FILE
    assert [p.name for p in folder.rglob("*")] == [ERROR_FILE]
    text = error_file.read_text()
    assert secret not in text and secret[:10] not in text
    assert "key=***" in text and "Step extract FAILED" in text and "ValueError" in text
    assert "last requests:" in text and "-> HTTP 400" in text


def test_a_folder_that_was_never_made_is_left_alone(tmp_path):
    assert scrub_failed_run(tmp_path / "missing", "boom") is None
    assert not (tmp_path / "missing").exists()
