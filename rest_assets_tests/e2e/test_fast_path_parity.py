"""The fast (Arrow) path loads what plain dlt loads (issue 13, items 3, 4 and 8).

Each case serves JSON pages with `responses` and loads them twice into DuckDB:
with rest_assets (Arrow batches where clean, parquet) and with plain dlt's
`rest_api_source` on the same YAML config (dict rows, default settings). The
tables, their columns and types and their values must be equal; dlt's own id
columns must be present on both sides, their values are not compared. A
property test generates messy pages; the regression tests pin each case of
issue 13 that failed before.
"""

from __future__ import annotations

import json
import math
import re
import shutil
from pathlib import Path
from typing import Any

import dlt
import duckdb
import pyarrow as pa
import pytest
import responses
import yaml
from dlt.common.normalizers.utils import generate_dlt_id
from dlt.sources.rest_api import rest_api_source
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st
from test_dlt_parity import BASE, _mock, _query

from rest_assets.compile.source import compile_source
from rest_assets.dialect import load_spec_file
from rest_assets.runtime import arrow_pages

RESOURCE = """\
  - name: %s
%s    endpoint:
      path: %s
      data_selector: data
      paginator: {type: page_number, base_page: 1, total_path: null}
"""


def spec_text(names: list[str], extra: str = "") -> str:
    """A YAML spec with one page_number resource per name, each at path `<name>`."""
    return f"client: {{base_url: {BASE}}}\nresources:\n" + "".join(RESOURCE % (n, extra, n) for n in names)


# values of dlt's id columns differ run to run; their presence is compared
UNCOMPARED = ("_dlt_id", "_dlt_load_id", "_dlt_parent_id", "_dlt_root_id")


def routes(pages: list[Any], name: str = "items") -> dict[str, Any]:
    """A page_number API at `name` (`?page=N` from 1) serving `pages`, then an empty page."""

    def serve(request: Any) -> dict[str, Any]:
        page = int(dict(part.split("=", 1) for part in _query(request) if "=" in part).get("page", "1"))
        return {"data": pages[page - 1] if page <= len(pages) else []}

    return {f"GET {name}": serve}


class Loads:
    """Both loaders with one pipeline each, so a second run sees the first run's schema."""

    def __init__(self, folder: Path, extra: str = "", names: tuple[str, ...] = ("items",)) -> None:
        self.folder = folder
        self.spec_file = folder / "items.yaml"
        self.spec_file.write_text(spec_text(list(names), extra), encoding="utf-8")
        self.config = yaml.safe_load(self.spec_file.read_text())

    def run(self, pages: list[Any]) -> tuple[dict[str, Any], dict[str, Any]]:
        """(plain dlt's tables, rest_assets' tables) after loading `pages` once more."""
        return self.run_many({"items": pages})

    def run_many(self, pages: dict[str, list[Any]]) -> tuple[dict[str, Any], dict[str, Any]]:
        """Like `run`, every resource of the spec served its own pages, all in one load per side."""
        with responses.RequestsMock(assert_all_requests_are_fired=False) as api:
            for name, served in pages.items():
                _mock(api, routes(served, name))
            plain = self._load(rest_api_source(self.config), "plain", None)
            ours = self._load(compile_source(load_spec_file(self.spec_file)).source, "ours", "parquet")
        return plain, ours

    def _load(self, source: Any, name: str, fmt: str | None) -> dict[str, Any]:
        database = self.folder / f"{name}.duckdb"
        pipeline = dlt.pipeline(
            pipeline_name=f"fast_{name}",
            pipelines_dir=str(self.folder / f"dlt_{name}"),
            destination=dlt.destinations.duckdb(str(database)),
            dataset_name="parity",
        )
        try:
            pipeline.run(source, **({"loader_file_format": fmt} if fmt else {}))
        finally:
            pipeline.deactivate()
        return tables(database)


def tables(database: Path) -> dict[str, Any]:
    """Every data table: its columns with their types, then its rows (sorted; dlt's id values blanked)."""
    with duckdb.connect(str(database), read_only=True) as connection:
        names = [
            row[0]
            for row in connection.execute(
                "select table_name from information_schema.tables where table_schema = 'parity' "
                "and table_name not like '\\_dlt%' escape '\\' order by 1"
            ).fetchall()
        ]
        out = {}
        for name in names:
            columns = connection.execute(
                "select column_name, data_type from information_schema.columns where table_schema = 'parity' "
                "and table_name = ? order by 1",
                [name],
            ).fetchall()
            selected = ", ".join(f'"{c}"' for c, _ in columns)
            rows = connection.execute(f'select {selected} from parity."{name}"').fetchall()
            blanked = [tuple(None if c in UNCOMPARED else v for (c, _), v in zip(columns, row, strict=True)) for row in rows]
            out[name] = {"columns": columns, "rows": sorted(blanked, key=repr)}
        return out


def assert_same(plain: dict[str, Any], ours: dict[str, Any]) -> None:
    assert sorted(ours) == sorted(plain), "tables differ"
    for name in plain:
        assert ours[name]["columns"] == plain[name]["columns"], f"{name}: columns differ"
        assert ours[name]["rows"] == plain[name]["rows"], f"{name}: rows differ"


@pytest.fixture()
def small_batches(monkeypatch):
    """Batches of 2 rows, so one load mixes Arrow batches and row batches."""
    monkeypatch.setattr(arrow_pages, "ROWS_PER_BATCH", 2)


# --- the property test -------------------------------------------------------------------------------

KEYS = st.sampled_from(["name", "userId", "user_id", "Ünïcode ключ", "a b", "", "meta", "tags", "n"])
SCALARS = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(-(2**63), 2**63 - 1),
    st.integers(-3, 3),
    st.floats(allow_nan=False, allow_infinity=False, width=32),
    st.text(max_size=4),
    st.sampled_from(["2024-01-02T03:04:05Z", "two", "1", "ok"]),
)
SMALL_KEYS = st.sampled_from(["x", "y", "Zé"])
VALUES = st.recursive(
    SCALARS, lambda inner: st.one_of(st.lists(inner, max_size=2), st.dictionaries(SMALL_KEYS, inner, max_size=2)), max_leaves=4
)
# every row has an integer id: plain dlt itself fails on some rows that yield no column at all; and
# plain dlt fails to load a list under the empty key (its child table's rows miss `_dlt_load_id`)
ROW = st.builds(lambda id_, rest: {"id": id_, **rest}, st.integers(0, 9), st.dictionaries(KEYS, VALUES, max_size=3)).filter(
    lambda row: not isinstance(row.get(""), list)
)
# rows of few, scalar columns: their batches are mostly clean, so a type that changes from one Arrow
# batch to the next (or disagrees with what dlt infers from a row batch) is met often
FLAT_ROW = st.fixed_dictionaries(
    {"id": st.integers(0, 9)},
    optional={
        "v": st.one_of(st.integers(-3, 3), st.booleans(), st.sampled_from(["two", "2024-01-02T03:04:05Z", 1.5])),
        "w": st.one_of(st.none(), st.integers(0, 2), st.sampled_from(["x", {"k": 1}, {"k": "one"}, [1]])),
    },
)
PAGES = st.one_of(*(st.lists(st.lists(row, min_size=1, max_size=3), min_size=1, max_size=3) for row in (ROW, FLAT_ROW)))


# Each example is a set of independent page sequences, one resource (own table, own types) each, all
# loaded in one run per side: many generated cases for the start-up cost of two pipeline runs.
RESOURCES_PER_EXAMPLE = 10
NAMES = tuple(f"items{n}" for n in range(RESOURCES_PER_EXAMPLE))


def _numbered(pages: list[list[dict[str, Any]]]) -> list[list[dict[str, Any]]]:
    """The pages with ids 0, 1, 2, ... in order: consecutive pages never repeat their first and last ids,
    which rest_assets (rightly) refuses as an API ignoring its paginator (runtime.paginators.PageGuard)."""
    counter = iter(range(10**6))
    return [[{**row, "id": next(counter)} for row in page] for page in pages]


@settings(
    max_examples=2,
    deadline=None,
    derandomize=True,
    suppress_health_check=list(HealthCheck),
    phases=[Phase.explicit, Phase.generate],
)
@given(sets=st.lists(PAGES, min_size=RESOURCES_PER_EXAMPLE, max_size=RESOURCES_PER_EXAMPLE))
def test_rest_assets_loads_generated_pages_as_plain_dlt_does(sets, tmp_path_factory):
    folder = tmp_path_factory.mktemp("prop")
    arrow_pages.ROWS_PER_BATCH, before = 2, arrow_pages.ROWS_PER_BATCH  # mixed Arrow and row batches
    try:
        plain, ours = Loads(folder, names=NAMES).run_many(dict(zip(NAMES, map(_numbered, sets), strict=True)))
    finally:
        arrow_pages.ROWS_PER_BATCH = before
        shutil.rmtree(folder, ignore_errors=True)
    assert set(NAMES) <= set(plain), "a generated resource loaded no table: the example proves less"
    assert_same(plain, ours)


# --- regression tests: each case of issue 13 that failed on the Arrow path ----------------------------

CASES = {
    "a type change across rows": [[{"id": 1, "v": 1}, {"id": 2, "v": "two"}]],
    "a type change across batches": [[{"id": 1, "v": 1}, {"id": 2, "v": 2}], [{"id": 3, "v": "two"}]],
    "an empty object in every row": [[{"id": 1, "meta": {}}, {"id": 2, "meta": {}}]],
    "empty lists and objects": [[{"id": 1, "tags": [], "meta": {"a": {}}}]],
    "nested objects and lists of objects": [
        [{"id": 1, "address": {"city": "Oslo", "geo": {"lat": 1.5}}, "tags": [{"k": "a"}, {"k": "b"}], "scores": [1, 2]}]
    ],
    "unicode and odd keys": [[{"Ünïcode ключ": "x", "a b": 1, "": "empty", "userId": 3}]],
    "timestamps as strings": [[{"id": 1, "at": "2024-01-02T03:04:05Z"}, {"id": 2, "at": "not a time"}]],
    "a selector on a scalar": [5],
    "a few odd rows in established columns": [
        [{"id": 1, "v": 1, "at": "x"}, {"id": 2, "v": 2, "at": "y"}],
        [{"id": 3, "v": 3, "at": "z"}, {"id": 4, "v": "four", "at": 4}],
        [{"id": 5, "v": 5, "tags": ["a"], "at": {"z": 1}}, {"id": 6, "v": 6.5}],
        [{"id": 7, "v": True}, {"id": 8, "v": 8, "new": "n"}],
    ],
}


@pytest.mark.parametrize("case", sorted(CASES))
def test_each_messy_case_loads_as_plain_dlt_loads_it(case, tmp_path, small_batches):
    plain, ours = Loads(tmp_path).run([CASES[case]] if case == "a selector on a scalar" else CASES[case])
    assert plain, "plain dlt loaded nothing: the case proves nothing"
    assert_same(plain, ours)


def test_nested_lists_become_child_tables_and_objects_columns(tmp_path, small_batches):
    plain, ours = Loads(tmp_path).run(CASES["nested objects and lists of objects"])
    assert set(ours) == {"items", "items__tags", "items__scores"}
    assert {"address__city", "address__geo__lat"} <= {c for c, _ in ours["items"]["columns"]}
    assert_same(plain, ours)


def test_max_table_nesting_zero_keeps_objects_and_lists_as_json(tmp_path, small_batches):
    plain, ours = Loads(tmp_path, "    max_table_nesting: 0\n").run(CASES["nested objects and lists of objects"])
    assert set(ours) == {"items"} and ("address", "JSON") in ours["items"]["columns"]
    assert_same(plain, ours)


def test_a_type_change_across_runs_makes_the_variant_column_dlt_makes(tmp_path):
    loads = Loads(tmp_path)
    assert_same(*loads.run([[{"id": 1, "v": 1}]]))
    plain, ours = loads.run([[{"id": 2, "v": "abc"}]])
    assert ("v__v_text", "VARCHAR") in ours["items"]["columns"]
    assert_same(plain, ours)


def test_a_type_change_across_runs_of_a_resource_with_a_table_name_makes_the_variant_columns_dlt_makes(tmp_path):
    """The types a batch must keep are the stored table's: the resource's `table_name`, not its own name."""
    loads = Loads(tmp_path, extra="    table_name: stored_items\n")
    assert_same(*loads.run([[{"id": 1, "v": 1}]]))
    plain, ours = loads.run([[{"id": 2, "v": 5.5}]])  # not rounded into the integer column
    assert ("v__v_double", "DOUBLE") in ours["stored_items"]["columns"]
    assert_same(plain, ours)
    assert_same(*loads.run([[{"id": 3, "v": "abc"}]]))  # not a failed cast


@pytest.mark.parametrize("amounts", [["12", "7"], ["12", "x"]], ids=["castable", "not castable"])
def test_a_column_hint_in_dlts_spelling_applies_to_the_apis_camel_case_field(tmp_path, amounts):
    loads = Loads(tmp_path, extra="    columns: {amount_due: {data_type: bigint}}\n")
    plain, ours = loads.run([[{"id": i, "amountDue": amount} for i, amount in enumerate(amounts)]])
    assert ("amount_due", "BIGINT") in ours["items"]["columns"]
    assert_same(plain, ours)


@pytest.mark.parametrize("values", [["plain", "[1, 2]"], ["plain", {"a": 1}, None]], ids=["strings", "strings and an object"])
def test_strings_in_a_column_hinted_json_load_as_dlt_loads_them(tmp_path, values):
    loads = Loads(tmp_path, extra="    columns: {j: {data_type: json}}\n")
    assert_same(*loads.run([[{"id": i, "j": value} for i, value in enumerate(values)]]))


# a decimal hint in each form: precision and scale, neither, or one of them (dlt fills in the other)
DECIMAL_HINTS = [
    "{data_type: decimal, precision: 10, scale: 2}",
    "{data_type: decimal}",
    "{data_type: decimal, precision: 12}",
    "{data_type: decimal, scale: 2}",
]


@pytest.mark.parametrize("hint", DECIMAL_HINTS)
def test_strings_in_a_column_hinted_decimal_load_rounded_as_in_plain_dlt(tmp_path, hint):
    """More decimal places than the scale: the destination's cast rounds them, as plain dlt's insert does."""
    loads = Loads(tmp_path, extra=f"    columns: {{p: {hint}}}\n")
    assert_same(*loads.run([[{"id": 0, "p": "1.005"}, {"id": 1, "p": "12.345678901234"}, {"id": 2, "p": "2"}]]))


def _column_order(database: Path, table: str) -> list[str]:
    with duckdb.connect(str(database), read_only=True) as connection:
        rows = connection.execute(
            "select column_name from information_schema.columns where table_schema = 'parity' and table_name = ? "
            "order by ordinal_position",
            [table],
        ).fetchall()
    return [name for (name,) in rows]


ORDER_CASES = {
    "a row's own fields, then its objects, last met first": (
        "",
        [[{"id": 1, "a": {"x": 1, "c": {"y": 2}}, "b": {"z": 1}, "q": "s"}]],
    ),
    "a column first met after the first row": ("", [[{"id": 1, "a": {"x": 1}}, {"id": 2, "b": 1, "a": {"x": 1}}]]),
    "a batch on dlt's row path": ("", [[{"id": 1, "l": [1, 2], "s": "x"}] + [{"id": i, "s": 5} for i in range(2, 5)]]),
    "hinted columns first": ("    columns: {s: {data_type: text}}\n", [[{"id": 1, "a": {"x": 1}, "s": "x"}]]),
}


@pytest.mark.parametrize("case", ORDER_CASES)
def test_columns_are_in_plain_dlts_order(tmp_path, case):
    """Where a table's first batch goes whole as Arrow or whole as rows (see the README for a split one)."""
    extra, pages = ORDER_CASES[case]
    Loads(tmp_path, extra).run(pages)
    assert _column_order(tmp_path / "ours.duckdb", "items") == _column_order(tmp_path / "plain.duckdb", "items")


@pytest.mark.parametrize("hint", DECIMAL_HINTS)
def test_floats_with_more_decimals_than_a_decimal_hints_scale_load_rounded_as_in_plain_dlt(tmp_path, hint):
    """dlt's parquet writer refuses them; plain dlt's default insert_values has the destination round them."""
    loads = Loads(tmp_path, extra=f"    columns: {{p: {hint}}}\n")
    values = [1.005, 0.30000000000000004, 2.675, -1.005, 1e-7, 123456.785, 0.125, -0.125, 1.0, 7, None, 1.0000000005]
    if "precision: 12" in hint:  # DECIMAL(12, 9): three digits before the point
        values.remove(123456.785)
    assert_same(*loads.run([[{"id": i, "p": v} for i, v in enumerate(values)], [{"id": 99, "p": 0.135}]]))


@pytest.mark.parametrize(
    "values",
    [
        [1.005, 2.675, "3.14159", -0.125],
        ["3.14159", "-2.675", "1e-7", " 7.125 "],
        [1.5, "n/a", 2.25, 0.005],
        ["1.5", "n/a", "2.25"],
    ],
    ids=["among-floats", "strings-only", "one-not-a-number", "one-not-a-number-among-strings"],
)
def test_numbers_sent_as_strings_in_a_decimal_column_load_rounded_as_in_plain_dlt(tmp_path, values):
    """On the rows path (floats beside them) dlt's parquet writer refused "3.14159" in a DECIMAL(10, 2)
    column; plain dlt's insert_values has the destination round it (helper-found)."""
    loads = Loads(tmp_path, extra="    columns: {p: {data_type: decimal, precision: 10, scale: 2}}\n")
    assert_same(*loads.run([[{"id": i, "p": v} for i, v in enumerate(values)]]))


@pytest.mark.parametrize(
    ("value", "kept"),
    [("x\u0000y", lambda v: v == "x\u0000y"), (-0.0, lambda v: v == 0 and math.copysign(1, v) < 0)],
    ids=["nul-character", "negative-zero"],
)
def test_a_value_plain_dlts_sql_inserts_change_is_kept_as_plain_dlt_keeps_it_loading_parquet(tmp_path, value, kept):
    """A deliberate difference from plain dlt's default: its insert_values drops a NUL (SQL escaping) and
    the sign of -0.0; loading parquet, as rest_assets does on DuckDB, it keeps the API's value as it is."""
    loads = Loads(tmp_path)
    with responses.RequestsMock(assert_all_requests_are_fired=False) as api:
        _mock(api, routes([[{"id": 1, "s": value}]]))
        plain = loads._load(rest_api_source(loads.config), "plain", "parquet")
        ours = loads._load(compile_source(load_spec_file(loads.spec_file)).source, "ours", "parquet")
    assert_same(plain, ours)
    assert [kept(row[-1]) for row in ours["items"]["rows"]] == [True]
    assert [kept(row[-1]) for row in plain["items"]["rows"]] == [True]


CHILD_OF_AN_INCREMENTAL_PARENT = f"""\
client: {{base_url: {BASE}}}
resources:
  - name: parents
    endpoint:
      path: parents
      data_selector: data
      paginator: single_page
      incremental: {{cursor_path: updated, initial_value: 0, start_param: since}}
  - name: kids
    include_from_parent: [name]
    endpoint: {{path: "parents/{{resources.parents.id}}/kids", data_selector: data, paginator: single_page}}
"""


def test_a_child_of_an_incremental_parent_has_its_columns_in_plain_dlts_order(tmp_path):
    """It reads a private copy of the parent, whose `include_from_parent` columns are renamed on the way."""
    loads = Loads(tmp_path)
    loads.spec_file.write_text(CHILD_OF_AN_INCREMENTAL_PARENT, encoding="utf-8")
    loads.config = yaml.safe_load(CHILD_OF_AN_INCREMENTAL_PARENT)
    api_routes = {
        "GET parents": lambda _: {"data": [{"id": 1, "updated": 10, "name": "x"}]},
        "GET parents/1/kids": lambda _: {"data": [{"cid": 10, "v": "c"}, {"cid": 11, "w": 1}]},
    }
    with responses.RequestsMock(assert_all_requests_are_fired=False) as api:
        _mock(api, api_routes)
        loads._load(rest_api_source(loads.config), "plain", None)
        loads._load(compile_source(load_spec_file(loads.spec_file)).source, "ours", "parquet")
    assert _column_order(tmp_path / "ours.duckdb", "kids") == _column_order(tmp_path / "plain.duckdb", "kids")


def test_a_number_beyond_a_double_loads_as_null_as_in_plain_dlt(tmp_path):
    """JSON allows 1e400; Python reads it as infinity, and dlt's extracted rows (JSON again) write it as null."""
    loads = Loads(tmp_path)
    page = '{"data": [{"id": 1, "v": 1e400}, {"id": 2, "v": -1e400}, {"id": 3, "v": 1.5}]}'

    def serve(request: Any) -> tuple[int, dict[str, str], str]:
        return 200, {"Content-Type": "application/json"}, page if "page=1" in request.url else '{"data": []}'

    with responses.RequestsMock(assert_all_requests_are_fired=False) as api:
        api.add_callback(responses.GET, re.compile(f"{re.escape(BASE)}/items.*"), callback=serve)
        plain = loads._load(rest_api_source(loads.config), "plain", None)
        ours = loads._load(compile_source(load_spec_file(loads.spec_file)).source, "ours", "parquet")
    assert_same(plain, ours)
    assert sorted(row[-1] for row in ours["items"]["rows"] if row[-1] is not None) == [1.5]


def test_schema_contract_freeze_refuses_a_new_column_as_dlt_does(tmp_path):
    loads = Loads(tmp_path, "    schema_contract: {columns: freeze}\n")
    assert_same(*loads.run([[{"id": 1}]]))
    with pytest.raises(Exception) as plain_error:
        with responses.RequestsMock(assert_all_requests_are_fired=False) as api:
            _mock(api, routes([[{"id": 2, "new": "x"}]]))
            loads._load(rest_api_source(loads.config), "plain", None)
    with pytest.raises(Exception) as our_error:
        with responses.RequestsMock(assert_all_requests_are_fired=False) as api:
            _mock(api, routes([[{"id": 2, "new": "x"}]]))
            loads._load(compile_source(load_spec_file(loads.spec_file)).source, "ours", "parquet")
    assert "new" in str(plain_error.value) and "new" in str(our_error.value)


def test_an_integer_beyond_64_bits_is_a_clear_error_naming_resource_and_field(tmp_path):
    value, words = 2**70, "beyond 64 bits"
    loads = Loads(tmp_path)
    with responses.RequestsMock(assert_all_requests_are_fired=False) as api:
        _mock(api, routes([[{"id": 1, "big": value}]]))
        with pytest.raises(Exception) as plain_error:
            loads._load(rest_api_source(loads.config), "plain", None)
        with pytest.raises(Exception) as our_error:
            loads._load(compile_source(load_spec_file(loads.spec_file)).source, "ours", "parquet")
    assert "64-bit" in str(plain_error.value)  # plain dlt cannot load it either
    assert "resource 'items': field 'big'" in str(our_error.value) and words in str(our_error.value)


def test_a_whole_float_beyond_64_bits_in_an_integer_column_is_a_clear_error_where_plain_dlt_stores_0(tmp_path):
    loads = Loads(tmp_path)
    with responses.RequestsMock(assert_all_requests_are_fired=False) as api:
        _mock(api, routes([[{"id": 1, "m": 1}, {"id": 2, "m": 1e308}]]))
        plain = loads._load(rest_api_source(loads.config), "plain", None)
        with pytest.raises(Exception) as our_error:
            loads._load(compile_source(load_spec_file(loads.spec_file)).source, "ours", "parquet")
    assert sorted(row[-1] for row in plain["items"]["rows"]) == [0, 1]  # plain dlt: silently 0
    assert "resource 'items': field 'm' holds 1e+308 in an integer column, beyond 64 bits" in str(our_error.value)


def test_an_object_nested_300_levels_is_a_clear_error_naming_resource_and_field(tmp_path):
    deep: Any = 1
    for _ in range(300):
        deep = {"a": deep}
    loads = Loads(tmp_path)
    with responses.RequestsMock(assert_all_requests_are_fired=False) as api:
        _mock(api, routes([[{"id": 1, "deep": deep}]]))
        with pytest.raises(Exception) as plain_error:
            loads._load(rest_api_source(loads.config), "plain", None)
        with pytest.raises(Exception) as our_error:
            loads._load(compile_source(load_spec_file(loads.spec_file)).source, "ours", "parquet")
    assert "Recursion limit" in str(plain_error.value)  # plain dlt cannot load it either
    assert "resource 'items': field 'deep' nests" in str(our_error.value)


def test_clean_batches_take_the_arrow_path_odd_rows_are_split_off_and_whole_row_batches_counted(tmp_path, small_batches):
    from rest_assets.runtime.arrow_pages import batch_pages

    counted: list[int] = []
    pages = [
        [{"id": 1, "a": {"b": 1}}, {"id": 2}],  # clean: one Arrow table
        [{"id": 3, "tags": [1]}, {"id": 4}],  # a list in one row: that row goes on as a row, the other as Arrow
        [{"id": "five"}, {"id": "six"}],  # every row breaks the established bigint `id`: the whole batch as rows
        [{"id": 7}],
    ]

    def generate(path: str):
        yield from pages

    out = list(batch_pages(generate, 2, on_rows_batch=lambda: counted.append(1))("/x"))
    assert [type(item).__name__ for item in out] == ["Table", "Table", "list", "list", "Table"]
    assert out[0].column_names == ["id", "a__b"]
    assert out[1].to_pylist() == [{"id": 4}] and out[2] == [{"id": 3, "tags": [1]}]
    assert out[3] == pages[2] and len(counted) == 1


def _boundary_resource(page: Any, primary_key: str | None) -> Any:
    @dlt.resource(name="items", write_disposition="append", primary_key=primary_key)
    def items(u=dlt.sources.incremental("u")):  # noqa: B008 (dlt's idiom)
        yield page

    return items().add_step(arrow_pages.ColumnCaster(None, row_ids=True))  # Arrow batches get `_dlt_id` as in a run


@pytest.mark.parametrize("primary_key", [None, "id"])
@pytest.mark.parametrize("first_as_arrow", [True, False])
def test_a_row_at_the_incremental_boundary_is_not_loaded_twice_when_it_changes_path(
    tmp_path, monkeypatch, primary_key, first_as_arrow
):
    """The fast path relies on this: a batch may go as Arrow in one run and as rows in the next
    (split or not), and dlt's incremental must recognise the row it already loaded at the stored cursor."""
    monkeypatch.setenv(arrow_pages.ADD_LOAD_ID_SETTING, "true")  # what use_arrow_pages sets for a run
    monkeypatch.setenv(arrow_pages.ADD_ROW_ID_SETTING, "false")
    first, second = [{"id": 1, "u": 5}, {"id": 2, "u": 7}], [{"id": 2, "u": 7}, {"id": 3, "u": 8}]  # id 2 at the stored cursor
    runs = [(first, first_as_arrow), (second, not first_as_arrow)]
    database = tmp_path / "b.duckdb"
    pipeline = dlt.pipeline("boundary", pipelines_dir=str(tmp_path), destination=dlt.destinations.duckdb(str(database)))
    try:
        for rows, as_arrow in runs:
            pipeline.run(_boundary_resource(pa.Table.from_pylist(rows) if as_arrow else rows, primary_key))
    finally:
        pipeline.deactivate()
    with duckdb.connect(str(database), read_only=True) as connection:
        counts = connection.execute("select id, count(*) from boundary_dataset.items group by id order by id").fetchall()
    assert counts == [(1, 1), (2, 1), (3, 1)]


def test_arrow_rows_get_distinct_dlt_ids_declared_as_dlt_declares_them_and_merged_child_rows_keep_their_parent(
    tmp_path,
):
    """The fast path gives Arrow batches their `_dlt_id` itself (dlt's normalizer would rewrite every file):
    one per row, shaped and declared as dlt's, and a merge with a child table still links each child row."""
    loads = Loads(tmp_path, extra="    primary_key: id\n    write_disposition: merge\n")
    pages = [
        [{"id": n, "v": n, "tags": [f"t{n}", "x"] if n % 10 == 0 else None} for n in range(p, p + 50)] for p in (0, 50, 100, 150)
    ]
    for version in (1, 2):  # the second run merges every row again
        plain, ours = loads.run([[{**row, "v": row["v"] * version} for row in page] for page in pages])
        assert ours == plain
    with duckdb.connect(str(tmp_path / "ours.duckdb"), read_only=True) as connection:
        ids = [row[0] for row in connection.execute("select _dlt_id from parity.items").fetchall()]
        orphans = connection.execute(
            "select count(*) from parity.items__tags t left join parity.items i on t._dlt_parent_id = i._dlt_id "
            "where i._dlt_id is null"
        ).fetchone()
        stored = connection.execute("select schema from parity._dlt_version order by inserted_at desc limit 1").fetchone()
    assert len(ids) == 200 and len(set(ids)) == 200
    assert {len(row_id) for row_id in ids} == {len(generate_dlt_id())}
    assert orphans == (0,)
    column = json.loads(stored[0])["tables"]["items"]["columns"]["_dlt_id"]
    assert column["row_key"] and column["unique"] and not column["nullable"]


HUGE = 12345678901234567890123


@pytest.mark.parametrize(
    ("spec", "served", "loaded"),
    [
        (  # a processing step drops the field: plain dlt loads the rest
            "  - name: items\n    processing_steps: [{map: {drop: [big]}}]\n    endpoint: {path: items, data_selector: data,"
            " paginator: single_page}\n",
            {"GET items": lambda request: {"data": [{"id": 1, "big": HUGE}, {"id": 2, "big": 5}]}},
            {"items": 2},
        ),
        (  # a parent that only feeds its child: its records are never loaded
            "  - name: parents\n    selected: false\n    endpoint: {path: parents, data_selector: data, paginator: single_page}\n"
            "  - name: kids\n    endpoint: {path: 'parents/{resources.parents.id}/kids', data_selector: data,"
            " paginator: single_page}\n",
            {
                "GET parents": lambda request: {"data": [{"id": 1, "trace": HUGE}]},
                "GET parents/1/kids": lambda request: {"data": [{"id": 10}]},
            },
            {"kids": 1},
        ),
    ],
    ids=["dropped-by-a-processing-step", "in-an-unselected-parent"],
)
def test_an_integer_beyond_64_bits_that_never_reaches_a_table_does_not_fail_the_run(tmp_path, spec, served, loaded):
    """Plain dlt loads these (helper-found: the check at the response refused them)."""
    spec_file = tmp_path / "huge.yaml"
    spec_file.write_text(f"client: {{base_url: {BASE}}}\nresources:\n{spec}", encoding="utf-8")
    pipeline = dlt.pipeline(
        "huge",
        pipelines_dir=str(tmp_path / "dlt"),
        destination=dlt.destinations.duckdb(str(tmp_path / "h.duckdb")),
        dataset_name="huge",
    )
    with responses.RequestsMock(assert_all_requests_are_fired=False) as api:
        _mock(api, served)
        pipeline.run(compile_source(load_spec_file(spec_file)).source, loader_file_format="parquet")
    pipeline.deactivate()
    with duckdb.connect(str(tmp_path / "h.duckdb"), read_only=True) as connection:
        for table, count in loaded.items():
            assert connection.execute(f"select count(*) from huge.{table}").fetchone()[0] == count


@pytest.mark.parametrize("beside", [1.5, "1.5"], ids=["among-floats", "among-strings"])
@pytest.mark.parametrize("text", ["NaN", "-Infinity", "1e999", "1" * 60])
def test_a_number_as_text_a_decimal_column_cannot_hold_fails_naming_resource_and_field(tmp_path, text, beside):
    """Among floats (dlt's rows) or strings (an Arrow batch); plain dlt fails too, naming neither (helper-found)."""
    loads = Loads(tmp_path, extra="    columns: {p: {data_type: decimal, precision: 10, scale: 2}}\n")
    with responses.RequestsMock(assert_all_requests_are_fired=False) as api, pytest.raises(Exception) as raised:
        _mock(api, routes([[{"id": 1, "p": beside}, {"id": 2, "p": beside}, {"id": 3, "p": text}]]))
        loads._load(compile_source(load_spec_file(loads.spec_file)).source, "ours", "parquet")
    assert f"resource 'items': field 'p' holds {text!r}, a number its decimal column cannot hold" in str(raised.value)


def test_a_child_of_a_parent_with_arrow_batches_has_its_columns_in_plain_dlts_order(tmp_path):
    """dlt hands the hints declared on the parent's first Arrow batch on to the child's items: its `_dlt_id`
    and `_dlt_load_id` came first in the child's table (helper-found)."""
    spec = f"""client: {{base_url: {BASE}}}
resources:
  - name: users
    endpoint: {{path: users, data_selector: users, paginator: single_page}}
  - name: posts
    endpoint:
      path: "users/{{uid}}/posts"
      data_selector: data
      paginator: single_page
      params: {{uid: {{type: resolve, resource: users, field: id}}}}
"""
    (tmp_path / "items.yaml").write_text(spec, encoding="utf-8")
    loads = Loads.__new__(Loads)
    loads.folder, loads.spec_file, loads.config = tmp_path, tmp_path / "items.yaml", yaml.safe_load(spec)
    served = {
        "GET users": lambda request: {"users": [{"id": i} for i in range(1, 4)]},
        r"GET users/\d+/posts": lambda request: {"data": [{"pid": k, "title": "t", "tags": ["a"]} for k in range(2)]},
    }
    with responses.RequestsMock(assert_all_requests_are_fired=False) as api:
        _mock(api, served)
        loads._load(rest_api_source(loads.config), "plain", None)
        loads._load(compile_source(load_spec_file(loads.spec_file)).source, "ours", "parquet")
    for table in ("users", "posts", "posts__tags"):
        assert _column_order(tmp_path / "ours.duckdb", table) == _column_order(tmp_path / "plain.duckdb", table), table
