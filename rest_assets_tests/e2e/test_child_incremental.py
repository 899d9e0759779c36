"""`incremental` on a child resource behaves as in plain dlt: one cursor for the child, across its parents.

dlt asks every parent's children from the same start value in a run (the
child's cursor as the last run left it, the initial value at first), and the
cursor then advances to the largest value seen under any parent. The same
config through rest_assets must send exactly the same requests, run after run.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import dlt
import responses
import yaml
from dlt.sources.rest_api import rest_api_source

from rest_assets.compile.source import compile_source
from rest_assets.dialect import load_spec_file

BASE = "https://api.example.com"
CONFIG = {
    "client": {"base_url": BASE, "paginator": "single_page"},
    "resources": [
        "posts",
        {
            "name": "comments",
            "primary_key": "id",
            "write_disposition": "merge",
            "endpoint": {
                "path": "posts/{resources.posts.id}/comments",
                "incremental": {"cursor_path": "updated", "start_param": "since", "initial_value": 0},
            },
        },
    ],
}


class Api:
    """Posts 1-3; each post's comments get newer by `bump` per run. Records every child request."""

    def __init__(self) -> None:
        self.bump, self.asked = 0, []

    def comments(self, request: Any) -> tuple[int, dict[str, str], str]:
        self.asked.append(request.url)
        post = int(request.url.split("/posts/")[1].split("/")[0])
        since = int(re.search(r"since=(\d+)", request.url).group(1))
        rows = [{"id": post * 10 + i, "updated": post * 10 + i + self.bump} for i in range(3)]
        return 200, {}, json.dumps([row for row in rows if row["updated"] >= since])


def _runs(make_source: Any, folder: Path, runs: int = 3) -> list[list[str]]:
    api = Api()
    pipeline = dlt.pipeline(
        "child_inc",
        pipelines_dir=str(folder / "dlt"),
        destination=dlt.destinations.duckdb(str(folder / "out.duckdb")),
        dataset_name="d",
    )
    asked = []
    with responses.RequestsMock() as mock:
        mock.get(f"{BASE}/posts", json=[{"id": 1}, {"id": 2}, {"id": 3}])
        mock.add_callback("GET", re.compile(rf"{re.escape(BASE)}/posts/\d+/comments.*"), callback=api.comments)
        for _ in range(runs):
            api.asked.clear()
            pipeline.run(make_source())
            asked.append(sorted(api.asked))
            api.bump += 5
    return asked


def test_a_child_cursor_advances_across_parents_and_runs_as_in_plain_dlt(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    spec_file = tmp_path / "blog.yaml"
    spec_file.write_text(yaml.safe_dump(CONFIG), encoding="utf-8")
    spec = load_spec_file(spec_file)
    plain = _runs(lambda: rest_api_source(CONFIG), tmp_path / "plain")
    ours = _runs(lambda: compile_source(spec).source, tmp_path / "ours")
    assert [len(run) for run in plain] == [3, 3, 3]
    assert {re.search(r"since=(\d+)", url).group(1) for url in plain[1]} == {"32"}  # one cursor for all parents
    assert ours == plain


PAGED_PARENTS = {
    "client": {"base_url": BASE},
    "resources": [
        {"name": "posts", "endpoint": {"path": "posts", "paginator": {"type": "json_link", "next_url_path": "next"}}},
        {
            "name": "comments",
            "primary_key": "id",
            "endpoint": {
                "path": "posts/{resources.posts.id}/comments",
                "paginator": "single_page",
                "params": {"since": {"type": "incremental", "cursor_path": "updated", "initial_value": 0}},
            },
        },
    ],
}


def _older_comments_for_later_posts(request: Any) -> tuple[int, dict[str, str], str]:
    post = int(request.url.split("/posts/")[1].split("/")[0])
    since = int(re.search(r"since=(\d+)", request.url).group(1))
    rows = [{"id": post * 10 + i, "updated": (5 - post) * 10 + i} for i in range(3)]
    return 200, {}, json.dumps([row for row in rows if row["updated"] >= since])


def test_every_parent_of_every_parent_page_is_asked_from_the_runs_start_value(tmp_path, monkeypatch):
    """Plain dlt writes the cursor reached so far into the param for the parents of later pages (posts 3 and 4
    here, whose comments are older): their comments would never load. Every parent starts at the same value."""
    monkeypatch.chdir(tmp_path)
    spec_file = tmp_path / "blog.yaml"
    spec_file.write_text(yaml.safe_dump(PAGED_PARENTS), encoding="utf-8")
    pipeline = dlt.pipeline(
        "paged_parents", pipelines_dir=str(tmp_path / "dlt"), destination=dlt.destinations.duckdb(str(tmp_path / "out.duckdb"))
    )
    with responses.RequestsMock() as mock:
        mock.get(f"{BASE}/posts", json={"data": [{"id": 1}, {"id": 2}], "next": f"{BASE}/posts/page2"})
        mock.get(f"{BASE}/posts/page2", json={"data": [{"id": 3}, {"id": 4}], "next": None})
        mock.add_callback("GET", re.compile(rf"{re.escape(BASE)}/posts/\d+/comments.*"), callback=_older_comments_for_later_posts)
        pipeline.run(compile_source(load_spec_file(spec_file)).source)
        asked = [call.request.url for call in mock.calls if "/comments" in call.request.url]
    assert sorted(re.search(r"since=(\d+)", url).group(1) for url in asked) == ["0"] * 4
    with pipeline.sql_client() as client:
        loaded = sorted(row[0] for row in client.execute_sql("select id from comments"))
    assert loaded == sorted(post * 10 + i for post in range(1, 5) for i in range(3))
