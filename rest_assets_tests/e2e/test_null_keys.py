"""A record whose primary key is null fails the run naming the resource and the key column."""

from __future__ import annotations

import pytest
from conftest import failure_errors, table_names
from reliability_support import Recorded, RecordingServer, Reply, json_reply, run_source


@pytest.mark.e2e
@pytest.mark.parametrize("disposition", ["merge", "append"])
def test_a_null_primary_key_is_an_error_naming_resource_and_column(workdir, tmp_path, disposition):
    def answer(request: Recorded) -> Reply:
        return json_reply({"data": [{"orderId": 1, "total": 5}, {"orderId": None, "total": 7}]})

    with RecordingServer(handler=answer) as api:
        specs = tmp_path / "specs"
        specs.mkdir()
        (specs / "keys.yaml").write_text(
            f"client: {{base_url: '{api.url}', paginator: single_page}}\n"
            "resources:\n"
            f"  - {{name: orders, primary_key: orderId, write_disposition: {disposition},"
            " endpoint: {path: orders, data_selector: data}}\n"
        )
        workdir.use_specs(specs)
        result = run_source("keys")

    assert not result.success
    errors = [message for cls, message in failure_errors(result) if cls == "LoadError"]
    assert len(errors) == 1, failure_errors(result)
    assert "resource 'orders': 1 record(s) have a null 'orderId', a primary key column" in errors[0]
    assert "orders" not in table_names("keys")
