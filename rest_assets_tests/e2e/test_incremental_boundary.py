"""An incremental resource without a primary key loads each boundary record once, as plain dlt does.

dlt skips a record whose cursor equals the stored one if it loaded that very
record before, by a hash of the record (of its key, where there is one).
Hashed from an Arrow batch, a record's hash depends on the batch's columns (a
field another record brings, null-filled here), so the next run's batch did
not match and the boundary record was appended again.
"""

from __future__ import annotations

from urllib.parse import parse_qs, urlsplit

import pytest
from conftest import failure_messages, read_table
from reliability_support import Recorded, RecordingServer, Reply, json_reply, run_source

pytestmark = pytest.mark.e2e

RUNS = {
    "a-field-appears": (
        [{"id": 1, "seq": 10, "v": "a"}, {"id": 2, "seq": 20, "v": "a"}],
        [{"id": 1, "seq": 10, "v": "a"}, {"id": 2, "seq": 20, "v": "a"}, {"id": 3, "seq": 30, "v": "b", "note": "new"}],
    ),
    "a-field-vanishes": (
        [{"id": 1, "seq": 10, "v": "a", "note": "x"}, {"id": 2, "seq": 20, "v": "a"}],
        [{"id": 1, "seq": 10, "v": "a", "note": "x"}, {"id": 2, "seq": 20, "v": "a"}, {"id": 3, "seq": 30, "v": "b"}],
    ),
    "arrow-then-rows": (
        [{"id": 1, "seq": 10, "m": {"k": 1}}, {"id": 2, "seq": 20, "m": {"k": 2}}],
        [{"id": 1, "seq": 10, "m": {"k": 1}}, {"id": 2, "seq": 20, "m": {"k": 2}}]
        + [{"id": i, "seq": i * 10, "m": {"k": f"text{i}"}} for i in range(3, 7)],
    ),
}


@pytest.mark.parametrize("disposition", ["append", "merge"])
@pytest.mark.parametrize("case", sorted(RUNS))
def test_each_boundary_record_is_loaded_once_across_runs(workdir, tmp_path, case, disposition):
    served: list[dict[str, object]] = []

    def answer(request: Recorded) -> Reply:
        since = int(parse_qs(urlsplit(request.path).query).get("since", ["0"])[0])
        return json_reply({"data": [record for record in served if int(record["seq"]) >= since]})

    with RecordingServer(handler=answer) as api:
        (tmp_path / "specs").mkdir()
        (tmp_path / "specs" / "events.yaml").write_text(
            f"client: {{base_url: '{api.url}', paginator: single_page}}\n"
            "resources:\n"
            "  - name: events\n"
            f"    write_disposition: {disposition}\n"
            "    endpoint: {path: events, data_selector: data,"
            " incremental: {cursor_path: seq, start_param: since, initial_value: 0}}\n"
        )
        workdir.use_specs(tmp_path / "specs")
        for records in RUNS[case]:
            served[:] = records
            result = run_source("events")
            assert result.success, failure_messages(result)
    stored = sorted(row["id"] for row in read_table("events", "events", columns="id"))
    assert stored == [record["id"] for record in RUNS[case][-1]]
