"""Hostile specs and values: nothing in a spec can run code or read files, every bad spec is a SpecError,
and parent values that look like paths never move a child request off its path.

Property-based (hypothesis) where the input space is large: stop conditions,
mutated specs, parent/child graphs. While a spec or a stop condition is
parsed, ``eval``/``exec``/``open``/``__import__`` are replaced by tripwires, and
injection attempts aim at a canary file that must never appear.
"""

from __future__ import annotations

import builtins
import contextlib
import copy
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, quote, unquote, urlsplit

import pytest
import yaml
from conftest import BUNDLED_SOURCES_DIR, failure_errors, failure_messages, read_table, table_names
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from reliability_support import Recorded, RecordingServer, Reply, json_reply, run_source

from rest_assets.dialect.loader import load_spec_file
from rest_assets.dialect.model import SourceSpec
from rest_assets.dialect.stop_condition import StopCondition, StopConditionSyntaxError, parse_stop_condition
from rest_assets.dialect.validate import build_source_spec
from rest_assets.dialect.yaml_source import parse_yaml
from rest_assets.errors import SpecError, StopConditionError

FAST = settings(max_examples=80, deadline=None, suppress_health_check=[HealthCheck.too_slow])


# CPython's own parser imports unicodedata to normalise non-ASCII identifiers (PEP 3131).
HARMLESS_IMPORTS = frozenset({"unicodedata", "re"})  # re: a replacement template compiles lazily (dlt names)


# jsonpath_ng's bundled ply loads its own parser tables with `exec("import jsonpath_ng._ply...")`
# (dlt parses the parent fields of a spec with it): fixed strings, never spec content.
PLY_TABLES = "jsonpath_ng._ply"


class Tripwire(BaseException):
    """Raised when parsing touched a dangerous builtin (BaseException: no `except Exception` hides it)."""


@contextlib.contextmanager
def tripwires() -> Iterator[None]:
    """Make eval/exec/open/__import__ raise Tripwire for the duration of the block."""

    def trip(*args: Any, **kwargs: Any) -> Any:
        raise Tripwire(f"called with {args[:1]!r}")

    saved = {name: getattr(builtins, name) for name in ("eval", "exec", "open", "__import__")}

    def guarded_import(name: str, *args: Any, **kwargs: Any) -> Any:
        if name in HARMLESS_IMPORTS or name.startswith(PLY_TABLES):
            return saved["__import__"](name, *args, **kwargs)
        return trip(name)

    def guarded_exec(source: Any, *args: Any, **kwargs: Any) -> Any:
        if isinstance(source, str) and source.startswith(f"import {PLY_TABLES}") and not set(source) & set(";\n"):
            return saved["exec"](source, *args, **kwargs)
        return trip(source)

    replacements = {"__import__": guarded_import, "exec": guarded_exec}
    for name in saved:
        setattr(builtins, name, replacements.get(name, trip))
    try:
        yield
    finally:
        for name, value in saved.items():
            setattr(builtins, name, value)


def parse_spec_text(text: str, file: str = "hostile.yaml") -> SourceSpec:
    """Parse and validate spec text with every dangerous builtin tripwired."""
    with tripwires():
        return build_source_spec(parse_yaml(text, file), "hostile")


# -- stop conditions -------------------------------------------------------------------------------------

TOKENS = [
    "response",
    ".get(",
    "'a'",
    "'next'",
    ", {}",
    ", None",
    ")",
    "[",
    "]",
    "[0]",
    ".",
    "meta",
    "has_more",
    "_links",
    "not ",
    " and ",
    " or ",
    " is ",
    " is not ",
    "None",
    "none",
    "null",
    " == ",
    " != ",
    "1",
    "-1",
    "'x'",
    "(",
    "__class__",
    "__import__('os')",
    "lambda: 0",
    "open('/etc/passwd')",
    "*",
    "**",
    "eval",
    "[x for x in ()]",
    "f'{1}'",
    "...",
    "\\",
    "\n",
    "#",
    "__builtins__",
    "exec",
    "getattr",
    ";",
    ":=",
    "@",
    " if ",
    " else ",
    "response.__dict__",
    "{",
    "}",
    "'",
    '"',
    "True",
    "b'x'",
    "0x1f",
    "\x00",
]
expressions = st.one_of(st.text(max_size=120), st.lists(st.sampled_from(TOKENS), max_size=14).map("".join))
json_bodies = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=8),
    lambda children: (
        st.lists(children, max_size=4)
        | st.dictionaries(st.sampled_from(["a", "next", "meta", "has_more", "_links", "x"]), children, max_size=4)
    ),
    max_leaves=12,
)


@FAST
@given(text=expressions, body=json_bodies)
def test_any_stop_condition_is_parsed_safely_or_refused(text, body):
    with tripwires():
        try:
            condition = parse_stop_condition(text)
        except StopConditionSyntaxError:
            return
    assert isinstance(condition, StopCondition)
    assert condition.should_stop(body) in (True, False)  # total over any JSON body, never raises


INJECTIONS = [
    "__import__('pathlib').Path('{canary}').touch()",
    "open('{canary}', 'w')",
    "response.get('a') or open('{canary}', 'w')",
    "exec(\"open('{canary}', 'w')\")",
    "eval('1')",
    "response.__class__.__base__.__subclasses__()",
    "response.get('__class__').__init__.__globals__",
    "[c for c in ().__class__.__base__.__subclasses__()]",
    "(lambda: open('{canary}', 'w'))()",
    "response.get('a', open('{canary}', 'w'))",
    "response[open('{canary}', 'w')]",
    "response.get('x').get('y', __import__('os').system('touch {canary}'))",
    "not response.get('links', {{}}).get('next', getattr(response, 'x'))",
    "f\"{{open('{canary}', 'w')}}\"",
    "meta.has_more == __import__('os')",
]


@pytest.mark.parametrize("template", INJECTIONS)
def test_injection_in_a_stop_condition_is_refused_and_runs_nothing(tmp_path, template):
    canary = tmp_path / "canary"
    code = template.format(canary=canary)
    spec_text = (
        "client: {base_url: 'https://api.example.com'}\nresources:\n  - name: items\n    endpoint:\n"
        f"      paginator: {{type: cursor, cursor_path: next, stop_condition: {json.dumps(code)}}}\n"
    )

    with tripwires(), pytest.raises(StopConditionSyntaxError):
        parse_stop_condition(code)
    with pytest.raises(StopConditionError) as refused:
        parse_spec_text(spec_text)

    assert refused.value.file == "hostile.yaml" and refused.value.resource == "items"
    assert refused.value.key == "endpoint.paginator.stop_condition"
    assert not canary.exists()


# -- YAML tags that construct objects ---------------------------------------------------------------------

TAGS = [
    "!!python/object/apply:os.system ['touch {canary}']",
    "!!python/object/new:subprocess.Popen [['touch', '{canary}']]",
    "!!python/name:os.system",
    "!!python/module:os",
    "!!python/object:builtins.object {{}}",
    "!<tag:yaml.org,2002:python/object/apply:pathlib.Path.touch> [!!python/object/apply:pathlib.Path ['{canary}']]",
    "!custom {{a: 1}}",
]


@pytest.mark.parametrize("place", ["top", "base_url", "path"])
@pytest.mark.parametrize("tag", TAGS)
def test_yaml_tags_that_construct_objects_are_refused(tmp_path, tag, place):
    canary = tmp_path / "canary"
    value = tag.format(canary=canary)
    base_url = value if place == "base_url" else "https://api.example.com"
    path = value if place == "path" else "/items"
    extra = f"description: {value}\n" if place == "top" else ""
    text = f"{extra}client:\n  base_url: {base_url}\nresources:\n  - name: items\n    endpoint:\n      path: {path}\n"
    spec_file = tmp_path / "tagged.yaml"
    spec_file.write_text(text)

    with pytest.raises(SpecError) as refused:
        load_spec_file(spec_file)

    assert refused.value.file == str(spec_file) and refused.value.line is not None
    assert "refused" in str(refused.value) or "could not determine a constructor" in str(refused.value)
    assert not canary.exists()


# -- malformed YAML, wrong types, unknown keys ---------------------------------------------------------------


@FAST
@given(text=st.text(max_size=300))
def test_arbitrary_text_is_a_spec_or_a_spec_error_naming_the_file(text):
    try:
        parse_spec_text(text)
    except SpecError as error:
        assert error.file == "hostile.yaml"


def test_unreadable_bytes_are_a_spec_error(tmp_path):
    spec_file = tmp_path / "binary.yaml"
    spec_file.write_bytes(b"\xff\xfe\x00client: \x80\x81")
    with pytest.raises(SpecError) as refused:
        load_spec_file(spec_file)
    assert refused.value.file == str(spec_file)


BASE = yaml.safe_load((BUNDLED_SOURCES_DIR / "contact_book.yaml").read_text())
# Mappings whose keys are checked (free-form ones such as params, headers and columns are not).
CHECKED_MAPPINGS = [
    (),
    ("client",),
    ("client", "auth"),
    ("resource_defaults",),
    ("resource_defaults", "endpoint"),
    ("resource_defaults", "endpoint", "error_handler"),
    ("resource_defaults", "endpoint", "incremental"),
    ("resource_defaults", "freshness"),
    ("resources", 0),
    ("resources", 1, "endpoint"),
    ("resources", 2, "endpoint", "paginator"),
]
junk = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(),
    st.floats(),
    st.text(max_size=20),
    st.lists(st.integers(), max_size=3),
    st.dictionaries(st.text(max_size=5), st.integers(), max_size=3),
)


def _paths(value: Any, prefix: tuple = ()) -> list[tuple]:
    found = [prefix] if prefix else []
    if isinstance(value, dict):
        for key, item in value.items():
            found += _paths(item, (*prefix, key))
    elif isinstance(value, list):
        for index, item in enumerate(value):
            found += _paths(item, (*prefix, index))
    return found


ALL_PATHS = _paths(BASE)


def _at(document: Any, path: tuple) -> Any:
    for step in path:
        document = document[step]
    return document


def _dotted(path: tuple) -> str:
    steps = path[2:] if len(path) >= 2 and path[0] == "resources" else path
    return ".".join(str(s) for s in steps)


@FAST
@given(path=st.sampled_from(ALL_PATHS), value=junk)
def test_any_value_anywhere_gives_a_spec_or_a_spec_error_with_file_and_key(path, value):
    document = copy.deepcopy(BASE)
    _at(document, path[:-1])[path[-1]] = value
    try:
        parse_spec_text(yaml.safe_dump(document))
    except SpecError as error:
        assert error.file == "hostile.yaml"
        assert error.key or error.line, str(error)


@FAST
@given(where=st.sampled_from(CHECKED_MAPPINGS), key=st.from_regex(r"[a-z][a-z_]{2,12}", fullmatch=True), value=junk)
def test_an_unknown_key_is_a_spec_error_naming_it(where, key, value):
    document = copy.deepcopy(BASE)
    target = _at(document, where)
    if key in target or key in _allowed_here(where):
        return
    target[key] = value

    with pytest.raises(SpecError) as refused:
        parse_spec_text(yaml.safe_dump(document))

    assert refused.value.key == _dotted((*where, key)) and f"unknown key '{key}'" in str(refused.value)


def _allowed_here(where: tuple) -> frozenset[str]:
    from rest_assets.dialect import vocabulary as vocab

    last = where[-1] if where else None
    table = {
        None: vocab.TOP_LEVEL_KEYS,
        "client": vocab.CLIENT_KEYS,
        "auth": vocab.AUTH_KEYS["bearer"],
        "resource_defaults": vocab.RESOURCE_DEFAULT_KEYS,
        "endpoint": vocab.ENDPOINT_KEYS,
        "error_handler": vocab.ERROR_HANDLER_KEYS,
        "incremental": vocab.INCREMENTAL_KEYS,
        "freshness": vocab.FRESHNESS_KEYS,
        "paginator": vocab.PAGINATOR_KEYS["offset"],
    }
    return table.get(last, vocab.RESOURCE_KEYS)  # resources[i]


@FAST
@given(parents=st.lists(st.one_of(st.none(), st.integers(0, 3)), min_size=2, max_size=4))
def test_parent_child_graphs_load_or_name_the_cycle(parents):
    names = [f"r{i}" for i in range(len(parents))]
    resources = []
    for name, parent in zip(names, parents, strict=True):
        endpoint: dict[str, Any] = {"path": f"/{name}"}
        if parent is not None and parent < len(names):
            endpoint = {
                "path": f"/{name}/{{{{ stream_partition['p_id'] }}}}",
                "partition_router": {"parent": names[parent], "parent_key": "id", "partition_field": "p_id"},
            }
        resources.append({"name": name, "endpoint": endpoint})
    text = yaml.safe_dump({"client": {"base_url": "https://api.example.com"}, "resources": resources})

    try:
        spec = parse_spec_text(text)
    except SpecError as error:
        assert "cycle" in str(error) and error.file == "hostile.yaml" and error.key == "endpoint.path", str(error)
        assert _has_cycle(parents)
        return
    assert not _has_cycle(parents)
    assert {r.name: r.parent.parent if r.parent else None for r in spec.resources} == {
        n: (names[p] if p is not None and p < len(names) else None) for n, p in zip(names, parents, strict=True)
    }


def _has_cycle(parents: list[int | None]) -> bool:
    for start in range(len(parents)):
        seen, current = set(), start
        while current is not None and current < len(parents):
            if current in seen:
                return True
            seen.add(current)
            current = parents[current]
    return False


# -- parent values that look like paths (end to end, real HTTP and DuckDB) -------------------------------------

ODD_IDS = ["a/b", "../../admin", "x?y=1", "h#frag", "50%", "with space", "ünï/çødé", "%2F..%2F", "plain"]


def _odd_api(ids: list[str]) -> Any:
    def answer(request: Recorded) -> Reply:
        path = urlsplit(request.path).path
        if path == "/things":
            return json_reply({"items": [{"id": i, "name": f"thing {n}"} for n, i in enumerate(ids)]})
        segment = path.split("/")[2]
        return json_reply({"items": [{"id": 1, "seen": unquote(segment)}]})

    return answer


def _odd_spec(folder: Path, base_url: str) -> Path:
    spec = {
        "client": {"base_url": base_url},
        "resources": [
            {
                "name": "things",
                "primary_key": "id",
                "endpoint": {"path": "/things", "data_selector": "items", "paginator": "single_page"},
            },
            {
                "name": "parts",
                "primary_key": ["id", "_things_id"],
                "endpoint": {
                    "path": "/things/{{ stream_partition['thing_id'] }}/parts",
                    "data_selector": "items",
                    "paginator": "single_page",
                },
            },
        ],
    }
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "odd.yaml").write_text(json.dumps(spec))
    return folder


@pytest.mark.e2e
def test_parent_values_are_url_encoded_into_the_child_path(workdir, tmp_path):
    with RecordingServer(handler=_odd_api(ODD_IDS)) as api:
        workdir.use_specs(_odd_spec(tmp_path / "specs", api.url))
        result = run_source("odd")

    assert result.success, failure_messages(result)
    child_paths = sorted(r.path for r in api.requests if r.path != "/things")
    assert child_paths == sorted(f"/things/{quote(i, safe='')}/parts" for i in ODD_IDS)
    parts = read_table("odd", "parts")
    assert sorted(r["_things_id"] for r in parts) == sorted(ODD_IDS)  # the column keeps the raw value
    assert all(r["seen"] == r["_things_id"] for r in parts)  # the server decoded exactly the parent's id
    assert {r["id"] for r in read_table("odd", "things")} == set(ODD_IDS)
    assert not [c for c in read_table("odd", "things")[0] if c.startswith("_rest_assets")]


@pytest.mark.e2e
@pytest.mark.parametrize("dots", ["..", "."])
def test_a_dot_segment_parent_value_is_refused_not_sent(workdir, tmp_path, dots):
    with RecordingServer(handler=_odd_api(["fine", dots])) as api:
        workdir.use_specs(_odd_spec(tmp_path / "specs", api.url))
        result = run_source("odd")

    assert not result.success
    errors = [m for cls, m in failure_errors(result) if cls == "LoadError"]
    assert len(errors) == 1 and f"{dots!r}" in errors[0] and "parts" in errors[0], failure_errors(result)
    assert all(urlsplit(r.path).path.startswith("/things") for r in api.requests)
    assert "parts" not in table_names("odd")


HOSTILE_KEY_VALUES = ["../../admin/secret?z=1#frag", "a/b", "50%", "with space", "plain"]


def _keyed_api(values: list[str]) -> Any:
    """Users carry their key under `user-key` (and nested under `profile.key`); a child echoes what it saw."""

    def answer(request: Recorded) -> Reply:
        path = urlsplit(request.path).path
        if path == "/users":
            return json_reply({"items": [{"id": n, "user-key": v, "profile": {"key": v}} for n, v in enumerate(values)]})
        if not (path.startswith("/users/") and path.endswith("/posts") and path.count("/") == 3):
            return json_reply({"items": [{"id": 666, "leaked": path}]})  # anything off the child endpoint
        return json_reply({"items": [{"id": 1, "seen": unquote(path.split("/")[2])}]})

    return answer


def _keyed_spec(folder: Path, base_url: str, child_endpoint: dict[str, Any]) -> Path:
    spec = {
        "client": {"base_url": base_url},
        "resources": [
            {
                "name": "users",
                "primary_key": "id",
                "endpoint": {"path": "/users", "data_selector": "items", "paginator": "single_page"},
            },
            {
                "name": "posts",
                "primary_key": "id",
                "write_disposition": "append",
                "endpoint": {"data_selector": "items", "paginator": "single_page", **child_endpoint},
            },
        ],
    }
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "keyed.yaml").write_text(json.dumps(spec))
    return folder


KEYED_CHILDREN = {
    "partition_router with parent_key user-key": {
        "path": "/users/{{ stream_partition['user_key'] }}/posts",
        "params": {"who": "{{ stream_partition['user_key'] }}"},
        "partition_router": {"parent": "users", "parent_key": "user-key", "partition_field": "user_key"},
    },
    "dlt placeholder with a nested field": {
        "path": "/users/{resources.users.profile.key}/posts",
        "params": {"who": "{resources.users.profile.key}"},
    },
}


@pytest.mark.e2e
@pytest.mark.parametrize("child", list(KEYED_CHILDREN.values()), ids=list(KEYED_CHILDREN))
def test_a_parent_value_is_one_encoded_path_segment_whatever_the_keys_name(workdir, tmp_path, child):
    with RecordingServer(handler=_keyed_api(HOSTILE_KEY_VALUES)) as api:
        workdir.use_specs(_keyed_spec(tmp_path / "specs", api.url, copy.deepcopy(child)))
        result = run_source("keyed")

    children = [urlsplit(r.path) for r in api.requests if urlsplit(r.path).path != "/users"]
    assert sorted(c.path for c in children) == sorted(f"/users/{quote(v, safe='')}/posts" for v in HOSTILE_KEY_VALUES)
    # the query carries the raw value, encoded once (requests encodes params; nothing encodes them before)
    assert sorted(parse_qs(c.query)["who"][0] for c in children) == sorted(HOSTILE_KEY_VALUES)
    assert result.success, failure_messages(result)
    posts = read_table("keyed", "posts")
    assert sorted(r["seen"] for r in posts) == sorted(HOSTILE_KEY_VALUES)
    assert all("leaked" not in r or r["leaked"] is None for r in posts)


ROUTED_CHILD = KEYED_CHILDREN["partition_router with parent_key user-key"]


@pytest.mark.e2e
def test_a_dot_segment_value_under_any_key_name_is_refused_not_sent(workdir, tmp_path):
    with RecordingServer(handler=_keyed_api(["fine", ".."])) as api:
        workdir.use_specs(_keyed_spec(tmp_path / "specs", api.url, copy.deepcopy(ROUTED_CHILD)))
        result = run_source("keyed")

    assert not result.success
    errors = [m for cls, m in failure_errors(result) if cls == "LoadError"]
    assert len(errors) == 1 and "'..'" in errors[0] and "'user-key'" in errors[0] and "'posts'" in errors[0], errors
    assert all(urlsplit(r.path).path.startswith("/users") for r in api.requests)


@pytest.mark.e2e
def test_a_parent_record_without_the_key_is_a_clear_error_naming_parent_key_and_child(workdir, tmp_path):
    def answer(request: Recorded) -> Reply:
        if urlsplit(request.path).path == "/users":
            return json_reply({"items": [{"id": 1, "user-key": "u1"}, {"id": 2, "name": "no key"}]})
        return json_reply({"items": [{"id": 1}]})

    with RecordingServer(handler=answer) as api:
        workdir.use_specs(_keyed_spec(tmp_path / "specs", api.url, copy.deepcopy(ROUTED_CHILD)))
        result = run_source("keyed")

    assert not result.success
    errors = [m for cls, m in failure_errors(result) if cls == "LoadError"]
    assert len(errors) == 1, failure_errors(result)
    assert "resource 'users'" in errors[0] and "no field 'user-key'" in errors[0] and "'posts'" in errors[0], errors


@pytest.mark.e2e
@pytest.mark.parametrize(("value", "said"), [(None, "null"), ("", "empty")])
def test_a_null_or_empty_parent_value_is_refused_not_sent(workdir, tmp_path, value, said):
    with RecordingServer(handler=_keyed_api(["fine", value])) as api:  # type: ignore[list-item]
        workdir.use_specs(_keyed_spec(tmp_path / "specs", api.url, copy.deepcopy(ROUTED_CHILD)))
        result = run_source("keyed")

    assert not result.success
    errors = [m for cls, m in failure_errors(result) if cls == "LoadError"]
    assert len(errors) == 1 and f"'user-key' is {said}" in errors[0] and "'posts'" in errors[0], errors
    assert not [r.path for r in api.requests if "None" in r.path or "//" in r.path]


def test_an_incremental_cursor_path_that_is_no_json_path_is_a_spec_error(tmp_path):
    path = tmp_path / "shop.yaml"
    path.write_text(
        "client: {base_url: 'https://api.example.com'}\n"
        "resources:\n"
        "  - name: items\n"
        "    endpoint: {path: items, incremental: {cursor_path: ':', start_param: since, initial_value: 0}}\n"
    )
    with pytest.raises(SpecError) as error:
        load_spec_file(path)
    assert "shop.yaml" in str(error.value) and "items" in str(error.value) and "cursor" in str(error.value).lower()
