"""Canaries: one test per dlt internal rest_assets relies on (see rest_assets/dlt_internals.py).

Each fails with a message that names the hook and what changed, so a dlt
upgrade that breaks one is caught here first, not as a wrong load.
"""

from __future__ import annotations

import base64
import copy
import inspect
import subprocess
import sys
import threading
from pathlib import Path
from typing import Any

import dlt
import duckdb
import pyarrow as pa
import pytest
import responses
from dlt.common.configuration.container import Container
from dlt.common.configuration.specs.pluggable_run_context import PluggableRunContext
from dlt.common.normalizers.utils import generate_dlt_id
from dlt.common.schema import Schema
from dlt.pipeline.exceptions import PipelineStepFailed
from dlt.sources.rest_api import rest_api_source

from rest_assets import dlt_internals as hooks
from rest_assets.runtime.auth import BearerAuth
from rest_assets.runtime.http import GuardedSession
from rest_assets.runtime.retry import RetryPolicy


def test_replace_generator_wraps_the_pages_a_rest_api_resource_yields():
    source = rest_api_source(
        {"client": {"base_url": "https://api.example.com", "paginator": "single_page"}, "resources": ["items"]}
    )
    resource = source.resources["items"]
    hooks.replace_generator(resource, lambda gen: lambda *a, **k: iter([[{"id": "wrapped"}]]))
    assert list(resource) == [{"id": "wrapped"}], "dlt's resource._pipe.replace_gen no longer replaces the generator"


def test_objects_shared_on_deep_copy_reach_the_requests_as_the_same_object():
    session = GuardedSession(source="s", allowed_hosts={"api.example.com"}, routes=[], default_policy=RetryPolicy())
    auth = BearerAuth("t0k3n-canary")
    config = {
        "client": {"base_url": "https://api.example.com", "paginator": "single_page", "session": session, "auth": auth},
        "resources": ["items"],
    }
    assert copy.deepcopy(config)["client"]["session"] is session
    with responses.RequestsMock() as api:
        api.get("https://api.example.com/items", json=[{"id": 1}])
        assert list(rest_api_source(config).resources["items"]) == [{"id": 1}]
        assert api.calls[0].request.headers["Authorization"] == "Bearer t0k3n-canary"
    assert session.stats.requests, "dlt no longer sends through the session object it was given (copied it?)"


def test_a_resolved_authenticator_needs_no_dlt_config():
    auth = BearerAuth("t0k3n-canary")
    assert auth.is_resolved(), "dlt no longer reads __is_resolved__: it would resolve our authenticators again"


def test_set_config_default_is_read_back_and_never_overrides_the_user(monkeypatch):
    key = "load.rest_assets_canary_setting"
    hooks.set_config_default(key, True)
    assert dlt.config.get(key) is True, "dlt.config no longer takes writes"
    monkeypatch.setenv("LOAD__REST_ASSETS_CANARY_SETTING_USER", "false")
    hooks.set_config_default("load.rest_assets_canary_setting_user", True)
    assert str(dlt.config.get("load.rest_assets_canary_setting_user")).lower() == "false"


def test_threads_with_the_extraction_prefix_see_the_extracting_threads_state(tmp_path):
    """Our child workers read dlt's resource state (incremental cursors) as dlt's own pool threads do."""
    seen: list[object] = []

    def read_state() -> None:
        try:
            seen.append(dlt.current.resource_state("canary").get("marker"))
        except Exception as error:  # a thread without dlt's context: no state
            seen.append(type(error).__name__)

    @dlt.resource(name="canary")
    def canary():
        dlt.current.resource_state()["marker"] = "set in the extracting thread"
        for name in (hooks.extraction_thread_prefix() + "rest_assets_canary", "a-plain-thread"):
            worker = threading.Thread(target=read_state, name=name)
            worker.start()
            worker.join()
        yield [{"id": 1}]

    pipeline = dlt.pipeline(
        "canary", pipelines_dir=str(tmp_path), destination=dlt.destinations.duckdb(str(tmp_path / "c.duckdb"))
    )
    pipeline.extract(canary())
    assert seen[0] == "set in the extracting thread", "dlt no longer shares its state with threads named with the prefix"
    assert seen[1] != "set in the extracting thread"  # the canary can tell: a thread without the prefix sees none


def test_current_source_schema_inside_and_outside_an_extraction(tmp_path):
    assert hooks.current_source_schema() is None
    seen = []

    @dlt.resource(name="canary")
    def canary():
        seen.append(hooks.current_source_schema())
        yield {"id": 1}

    pipeline = dlt.pipeline(
        "canary", pipelines_dir=str(tmp_path), destination=dlt.destinations.duckdb(str(tmp_path / "c.duckdb"))
    )
    pipeline.extract(canary())
    assert seen and seen[0] is not None and seen[0].name, "dlt.current.source_schema() no longer gives the schema"


def test_item_transform_steps_see_arrow_tables():
    class Count(hooks.ItemTransform):
        def __call__(self, item, meta=None):
            seen.append(type(item))
            return item

    seen: list[type] = []
    resource = dlt.resource([pa.table({"id": [1, 2]})], name="arrow")
    resource.add_step(Count(lambda item: item))
    list(resource)
    assert seen == [pa.Table], "an ItemTransform step no longer receives whole Arrow tables"


def test_duckdb_credentials_keep_the_external_connection(tmp_path):
    from dlt.destinations.impl.duckdb.configuration import DuckDbCredentials

    connection = duckdb.connect(str(tmp_path / "c.duckdb"))
    credentials = DuckDbCredentials(connection)
    marker = object()
    hooks.set_duckdb_external_connection(credentials, marker)
    assert getattr(credentials, "_external_conn", None) is marker, "DuckDbCredentials has no _external_conn any more"
    connection.close()


@pytest.mark.parametrize("hard_links", [True, False], ids=["hard-links", "no-hard-links"])
def test_a_package_put_back_after_a_failed_load_loads_again_from_the_start(tmp_path, monkeypatch, hard_links):
    if not hard_links:  # a file system without them (some network volumes): the job files are copied

        def refuse(*_: object) -> None:
            raise OSError("Operation not permitted")

        monkeypatch.setattr(hooks.os, "link", refuse)
    database = str(tmp_path / "warehouse.duckdb")
    with duckdb.connect(database) as connection:  # a table whose type the load cannot write into: the load fails
        connection.execute("CREATE SCHEMA kept; CREATE TABLE kept.items (id STRUCT(a INT))")
    pipeline = dlt.pipeline("kept", pipelines_dir=str(tmp_path / "dlt"), destination="duckdb", dataset_name="kept")
    pipeline.extract(dlt.resource([{"id": 1}, {"id": 2}], name="items"))
    pipeline.normalize()
    (load_id,) = pipeline.list_normalized_load_packages()
    before = Path(database).read_bytes()
    with hooks.kept_load_packages(pipeline) as put_back:
        with pytest.raises(PipelineStepFailed):
            pipeline.load(credentials=database)
        Path(database).write_bytes(before)  # as the run's rolled-back transaction leaves it
        with duckdb.connect(database) as connection:
            connection.execute("DROP TABLE kept.items")
        put_back()
        assert pipeline.list_normalized_load_packages() == [load_id], "a put-back package is not normalized again"
        pipeline.load(credentials=database)
    with duckdb.connect(database) as connection:
        rows = connection.execute("SELECT id FROM kept.items ORDER BY id").fetchall()
    assert rows == [(1,), (2,)], "a load package put back as it was before a failed load no longer loads whole"
    assert not (tmp_path / "dlt" / "kept" / "packages_before_load").exists()


def test_a_request_carries_its_endpoints_response_actions_in_its_hooks():
    from dlt.sources.rest_api.config_setup import create_response_hooks

    def action(response, *args, **kwargs):
        return None

    response_hooks = create_response_hooks([{"status_code": 404, "action": "ignore"}, action])
    assert action in hooks.response_actions_of(response_hooks), "dlt's response hooks no longer hold the endpoint's actions"


def test_postgres_client_opens_connections_through_open_connection():
    client_class = hooks.postgres_client_class()
    assert callable(getattr(client_class, "open_connection", None)), "Psycopg2SqlClient.open_connection is gone"


def test_dependency_graph_and_paginator_factory_keep_their_shape():
    graph, resources, params = hooks.build_resource_dependency_graph(
        {}, ["posts", {"name": "comments", "endpoint": {"path": "posts/{resources.posts.id}/comments"}}]
    )
    assert list(graph.static_order()) == ["posts", "comments"] and set(resources) == {"posts", "comments"}
    assert params["comments"] and params["comments"][0].resolve_config["resource"] == "posts"
    assert type(hooks.create_paginator({"type": "json_link", "next_url_path": "next"})).__name__ == "JSONLinkPaginator"
    assert hooks.ensure_table_schema_columns([{"name": "id", "data_type": "bigint"}]) == {
        "id": {"name": "id", "data_type": "bigint"}
    }


def test_validate_dict_reads_type_hints_through_the_name_swapped_during_validation(monkeypatch):
    from dlt.common import validation
    from dlt.common.exceptions import DictValidationException
    from dlt.sources.rest_api.typing import RESTAPIConfig

    asked: list[object] = []
    original = validation.get_type_hints
    monkeypatch.setattr(validation, "get_type_hints", lambda spec, **kw: asked.append(spec) or original(spec, **kw))
    good = {"client": {"base_url": "https://api.example.com"}, "resources": ["items"]}
    with hooks.cached_type_hints_in_validation():
        validation.validate_dict(RESTAPIConfig, good, path=".")
        validation.validate_dict(RESTAPIConfig, good, path=".")
        with pytest.raises(DictValidationException):  # cached hints still reject an unknown key
            validation.validate_dict(RESTAPIConfig, {**good, "clinet": {}}, path=".")
    assert asked, "dlt's validate_dict no longer calls dlt.common.validation.get_type_hints: the cache does nothing"
    assert asked.count(RESTAPIConfig) == 1, "each TypedDict's hints are computed once across validations"
    assert validation.get_type_hints.__name__ == "<lambda>", "the swap is undone after the block"


def test_a_rest_api_childs_call_skips_config_resolution_and_pages_as_dlt_does():
    source = rest_api_source(
        {
            "client": {"base_url": "https://api.example.com", "paginator": "single_page"},
            "resources": ["posts", {"name": "comments", "endpoint": {"path": "posts/{resources.posts.id}/comments"}}],
        }
    )
    dlts_call = source.resources["comments"]._pipe.gen
    direct = hooks.direct_transformer_call(dlts_call)
    assert direct is not dlts_call, (
        "dlt's transformer call is no longer a `_tx_partial` closure over a `with_config` wrapper "
        "(f, args, kwargs, __RESOLVED_PARTIAL_FUNC__): every parent pays config resolution again"
    )
    with responses.RequestsMock() as api:
        api.get("https://api.example.com/posts/7/comments", json=[{"id": 70}, {"id": 71}])
        ours = list(direct([{"id": 7}]))
        theirs = list(dlts_call([{"id": 7}]))
    assert ours == theirs and [row["id"] for page in ours for row in page] == [70, 71]
    assert hooks.direct_transformer_call(len) is len  # not a closure of that shape: dlt's call is kept


def test_row_ids_are_as_long_as_dlts_and_declared_as_dlt_declares_them():
    dlt_id = generate_dlt_id()
    assert len(base64.b64decode(dlt_id + "=" * (-len(dlt_id) % 4))) == hooks.row_id_length_bytes(), (
        "dlt's _dlt_id length no longer comes from DLT_ID_LENGTH_BYTES"
    )
    column = hooks.row_id_column()
    assert (column["name"], column["data_type"], column["nullable"]) == ("_dlt_id", "text", False)
    assert column["row_key"] and column["unique"], "dlt's _dlt_id column is no longer the unique row key"


def test_no_config_providers_hides_every_provider_for_the_block_only(monkeypatch, tmp_path):
    monkeypatch.setenv("REST_ASSETS_CANARY_SETTING", "from the environment")
    before = Container()[PluggableRunContext]
    assert dlt.config.get("rest_assets_canary_setting") == "from the environment"
    with hooks.no_config_providers():
        assert dlt.config.get("rest_assets_canary_setting") is None, "a provider is still read within no_config_providers"
        assert Schema("canary").name == "canary"
        assert dlt.pipeline("canary_no_providers", pipelines_dir=str(tmp_path)).pipeline_name == "canary_no_providers"
    assert Container()[PluggableRunContext] is before, "dlt's run context before the block is not back after it"
    assert dlt.config.get("rest_assets_canary_setting") == "from the environment"


# In a fresh process (no run context yet), dlt reads .dlt/secrets.toml when it makes its run context.
FRESH_PROCESS = """
import dlt
from dlt.common.schema import Schema
from rest_assets.dlt_internals import no_config_providers
with no_config_providers():
    Schema("canary")
    dlt.pipeline("canary", pipelines_dir="pipelines")
print("built")
dlt.secrets.get("sources.shop.token")
"""


def test_no_config_providers_reads_no_settings_file_and_leaves_dlt_to_read_them_after_it(tmp_path):
    (tmp_path / ".dlt").mkdir()
    (tmp_path / ".dlt" / "secrets.toml").write_text('[sources.shop]\ntoken = "unterminated\n')
    run = subprocess.run([sys.executable, "-c", FRESH_PROCESS], cwd=tmp_path, capture_output=True, text=True, timeout=120)
    assert "built" in run.stdout, f"dlt read its providers within no_config_providers: {run.stderr[-1500:]}"
    assert "TomlProviderReadException" in run.stderr and ".dlt/secrets.toml" in run.stderr, (
        "after the block dlt no longer makes its run context afresh and reads .dlt/secrets.toml: " + run.stderr[-1500:]
    )


def _comments_source() -> Any:
    return rest_api_source(
        {
            "client": {"base_url": "https://api.example.com", "paginator": "single_page"},
            "resources": ["posts", {"name": "comments", "endpoint": {"path": "posts/{resources.posts.id}/comments"}}],
        }
    )


def _binds_on_call(monkeypatch: pytest.MonkeyPatch, incremental: Any) -> tuple[list[str], Any]:
    """The signature binds of calling the comments' call for one post (dlt's incremental wrapper binds then), and its pages."""
    bound: list[str] = []
    original_bind = inspect.Signature.bind
    monkeypatch.setattr(inspect.Signature, "bind", lambda sig, *a, **k: bound.append("bind") or original_bind(sig, *a, **k))
    source = _comments_source()
    direct = hooks.direct_transformer_call(source.resources["comments"]._pipe.gen)
    if incremental is not None:  # set after the call was made, as hints may be
        source.resources["comments"].apply_hints(incremental=incremental)
    bound.clear()
    pages = direct([{"id": 7}])
    return bound, pages


def test_a_rest_api_childs_call_goes_past_dlts_incremental_wrapper_while_it_has_no_incremental(monkeypatch):
    bound, pages = _binds_on_call(monkeypatch, None)
    assert bound == [], (
        "dlt's incremental wrapper (IncrementalResourceWrapper.wrap's `_wrap`: self, func, incremental_param) "
        "is no longer found: it binds the signature again for every parent"
    )
    with responses.RequestsMock() as api:
        api.get("https://api.example.com/posts/7/comments", json=[{"id": 70}])
        assert [row["id"] for page in pages for row in page] == [70]


def test_an_incremental_set_on_a_child_after_its_call_was_made_still_goes_through_dlts_wrapper(monkeypatch):
    bound, _ = _binds_on_call(monkeypatch, dlt.sources.incremental("id", initial_value=1))
    assert bound, "the child's call went past dlt's incremental wrapper although the resource has an incremental"


def test_cached_capabilities_are_dlts_computed_once_per_naming_and_a_copy_per_call():
    destination = dlt.destinations.duckdb(credentials=":memory:")
    computed: list[object] = []
    original = destination.capabilities
    destination.capabilities = lambda config=None, naming=None: computed.append(naming) or original(config, naming)
    cached = hooks.cached_capabilities(destination)
    naming = Schema("canary").naming

    first, second, named = cached.capabilities(), cached.capabilities(), cached.capabilities(naming=naming)
    cached.capabilities(naming=naming)

    assert computed == [None, naming], "computed once per naming"
    fresh = dlt.destinations.duckdb(credentials=":memory:").capabilities()
    assert dict(first) == dict(fresh), "the cached capabilities differ from dlt's"
    first.preferred_loader_file_format = "jsonl"  # the pipeline sets its file formats on what it gets
    assert second is not first and cached.capabilities().preferred_loader_file_format == fresh.preferred_loader_file_format
    assert named.naming_convention == first.naming_convention
    config = destination.spec(credentials=None)
    cached.capabilities(config)
    assert computed[-1] is None and len(computed) == 3, "a call with a config is dlt's own"


def test_a_pipeline_loads_through_a_destination_with_cached_capabilities(tmp_path):
    destination = hooks.cached_capabilities(dlt.destinations.duckdb(credentials=str(tmp_path / "canary.duckdb")))
    pipeline = dlt.pipeline("canary_cached_caps", pipelines_dir=str(tmp_path / "pipelines"), destination=destination)
    pipeline.run([{"id": 1}, {"id": 2}], table_name="items", loader_file_format="parquet")
    with duckdb.connect(str(tmp_path / "canary.duckdb")) as connection:
        assert connection.execute("select count(*) from canary_cached_caps_dataset.items").fetchone() == (2,)


def test_the_meta_with_hints_puts_on_an_item_is_told_apart():
    import dlt

    from rest_assets.dlt_internals import is_hints_meta

    marked = dlt.mark.with_hints([{"id": 1}], dlt.mark.make_hints(columns=[{"name": "id"}]))
    assert is_hints_meta(marked.meta), "dlt.mark.with_hints no longer wraps items in dlt.extract.hints.HintsMeta"
    assert not is_hints_meta(None) and not is_hints_meta(dlt.mark.with_table_name([], "t").meta)
