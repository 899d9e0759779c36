"""Unit tests of the safe `stop_condition` grammar: what it accepts, how it evaluates, what it refuses."""

from __future__ import annotations

import ast
import builtins
import inspect
import os

import pytest

import rest_assets.dialect.stop_condition as stop_condition_module
from rest_assets.dialect.stop_condition import StopConditionSyntaxError, parse_predicate, parse_stop_condition

HAL_LAST = {"_embedded": {"items": [1]}, "_links": {"self": {"href": "/x"}}}
HAL_MORE = {"_embedded": {"items": [1]}, "_links": {"next": {"href": "/x?page=2"}}}
HAL_NULL = {"_links": {"next": None}}
LINKS_MORE = {"links": {"next": "https://api.example.com/v1/clients?cursor=abc"}}
LINKS_EMPTY = {"links": {"next": ""}}
LINKS_ABSENT = {"clients": []}
META_MORE = {"meta": {"has_more": True, "status": "running", "page": 2}}
META_DONE = {"meta": {"has_more": False, "status": "done", "page": 3}}

# (expression, body, should stop)
ACCEPT = [
    # DESIGN.md forms
    ("_links.next is none", HAL_LAST, True),
    ("_links.next is none", HAL_MORE, False),
    ("_links.next is none", HAL_NULL, True),
    ("_links.next is None", HAL_MORE, False),
    ("_links.next is null", HAL_LAST, True),
    ("not meta.has_more", META_DONE, True),
    ("not meta.has_more", META_MORE, False),
    ("not meta.has_more", {}, True),
    ("not response.get('links', {}).get('next', {})", LINKS_MORE, False),
    ("not response.get('links', {}).get('next', {})", LINKS_EMPTY, True),
    ("not response.get('links', {}).get('next', {})", LINKS_ABSENT, True),
    ("response['x']['y'] is None", {"x": {"y": None}}, True),
    ("response['x']['y'] is None", {"x": {"y": 0}}, False),
    ("response['x']['y'] is None", {}, True),
    # comparisons, negations and boolean operators
    ("meta.status == 'done'", META_DONE, True),
    ("meta.status == 'done'", META_MORE, False),
    ("meta.status != 'running'", META_MORE, False),
    ("response['meta']['page'] == 3", META_DONE, True),
    ("meta.has_more == false", META_DONE, True),
    ("meta.has_more == true", META_DONE, False),
    ("_links.next is not none", HAL_MORE, True),
    ("meta.has_more is not None and meta.status == 'done'", META_DONE, True),
    ("meta.has_more is not None and meta.status == 'done'", META_MORE, False),
    ("not meta.has_more or meta.page == 2", META_MORE, True),
    ("response.get('meta', {}).get('has_more') == false", META_DONE, True),
    ("response['items'][0]['id'] is none", {"items": []}, True),
    ("response['items'][0]['id'] is none", {"items": [{"id": 7}]}, False),
    ("response['items'][1]['last'] == true", {"items": [{"last": False}, {"last": True}]}, True),
    ("not response", {}, True),
    # bodies that are not what the expression expects never raise
    ("_links.next is none", [], True),
    ("_links.next is none", None, True),
    ("not meta.has_more", "<html>", True),
    ("_links.next is none", {"_links": "a string"}, True),
]


@pytest.mark.parametrize(("expression", "body", "expected"), ACCEPT)
def test_accepted_expressions_evaluate_on_sample_bodies(expression, body, expected):
    condition = parse_stop_condition(expression)
    assert condition.should_stop(body) is expected
    assert condition.source == expression


@pytest.mark.parametrize(
    ("expression", "single_path"),
    [
        ("_links.next is none", "_links.next"),
        ("not response.get('links', {}).get('next', {})", "links.next"),
        ("response['x']['y'] is None", "x.y"),
        ("not meta.has_more", "meta.has_more"),
        ("meta.has_more is not None and meta.has_more == true", "meta.has_more"),
        ("not meta.has_more or meta.page == 2", None),
    ],
)
def test_single_path_is_derived_for_the_cursor(expression, single_path):
    assert parse_stop_condition(expression).single_path == single_path


# (expression, a regex of the refusal)
REJECT = [
    ("__import__('os').system('touch {marker}')", r"'__'"),
    ("response.__class__", r"'__'"),
    ("response.__class__.__subclasses__()", r"'__'"),
    ("response.links", r"attributes of 'response' are not allowed"),
    ("response.get('a')['b'].c", r"attributes of 'response'"),
    ("lambda: open('{marker}', 'w')", r"'Lambda' expressions are not allowed"),
    ("[open('{marker}', 'w') for x in response]", r"'ListComp'"),
    ("{{x: 1 for x in response}}", r"'DictComp'"),
    ("(open('{marker}', 'w') for _ in 'a')", r"'GeneratorExp'"),
    ("open('/etc/passwd')", r"the only call allowed is \.get"),
    ("open('{marker}', 'w').write('x')", r"the only call allowed is \.get"),
    ('exec(\'open("{marker}", "w")\')', r"the only call allowed is \.get"),
    ("eval('1')", r"the only call allowed is \.get"),
    ("getattr(response, 'get')", r"the only call allowed is \.get"),
    ("response.keys()", r"the only call allowed is \.get"),
    ("response.pop('a')", r"the only call allowed is \.get"),
    ("response()", r"the only call allowed is \.get"),
    ("response.get(key='a')", r"\.get takes a literal key"),
    ("response.get('a', open('{marker}', 'w'))", r"must use literals"),
    ("response[open('{marker}', 'w')]", r"keys must be string or integer literals"),
    ("response['a'][0:2]", r"keys must be string or integer literals"),
    ("os.system('touch {marker}')", r"the only call allowed is \.get|the only name that may be called"),
    ("body.get('a')", r"the only name that may be called or subscripted is 'response', not 'body'"),
    ("data['a'] is none", r"the only name that may be called or subscripted is 'response', not 'data'"),
    ("f'{{response}}'", r"'JoinedStr'"),
    ("(x := open('{marker}', 'w'))", r"'NamedExpr'"),
    ("*response", r"not a valid expression"),
    ("[*response]", r"'List' expressions"),
    ("a if b else c", r"'IfExp'"),
    ("1 + 2", r"'BinOp'"),
    ("'just a string'", r"'Constant'"),
    ("response['a'] < meta.b", r"must use literals"),
    ("response['a'] < []", r"only 'is None', 'is not None', '==', '!='"),
    ("meta.page is 3", r"only 'is None', 'is not None'"),
    ("meta.page in meta.pages", r"'in' takes a literal list"),
    ("meta.page in [len('x')]", r"must use literals"),
    ("a == b", r"must use literals"),
    ("a == 1 == 1", r"chained comparisons"),
    ("import os", r"not a valid expression"),
    ("a or", r"not a valid expression"),
    ("", r"non-empty string"),
    ("   ", r"non-empty string"),
    ("not meta.has_more and " * 40 + "a", r"longer than 500 characters"),
]


@pytest.fixture()
def sentinel(tmp_path, monkeypatch):
    """A marker path that an injection would create, plus recorders on the obvious side doors."""
    calls: list[str] = []
    real_open = builtins.open

    def recording_open(file, *args, **kwargs):
        calls.append(f"open {file}")
        return real_open(file, *args, **kwargs)

    monkeypatch.setattr(builtins, "open", recording_open)
    monkeypatch.setattr(os, "system", lambda cmd: calls.append(f"system {cmd}") or 0)
    return tmp_path / "pwned", calls


@pytest.mark.parametrize(("template", "reason"), REJECT)
def test_injection_attempts_are_refused_and_never_run(sentinel, template, reason):
    marker, calls = sentinel
    expression = template.format(marker=marker)
    with pytest.raises(StopConditionSyntaxError, match=reason):
        parse_stop_condition(expression)
    assert not marker.exists()
    assert calls == []


def test_non_string_input_is_refused():
    with pytest.raises(StopConditionSyntaxError, match="non-empty string"):
        parse_stop_condition(["_links.next is none"])  # type: ignore[arg-type]


def test_evaluation_reads_the_body_and_never_calls_into_it():
    class Trap(dict):
        def get(self, *args, **kwargs):  # a real dict lookup is fine; anything else is not
            return dict.get(self, *args, **kwargs)

        def __getattr__(self, name):
            raise AssertionError(f"attribute {name} was read")

    condition = parse_stop_condition("not response.get('links', {}).get('next', {})")
    assert condition.should_stop(Trap(links=Trap(next="n"))) is False
    assert condition.should_stop(Trap()) is True


def test_the_module_never_evaluates_code():
    tree = ast.parse(inspect.getsource(stop_condition_module))
    called = {node.func.id for node in ast.walk(tree) if isinstance(node, ast.Call) and isinstance(node.func, ast.Name)}
    assert not called & {"eval", "exec", "compile", "__import__", "getattr"}


@pytest.mark.parametrize(
    ("text", "body", "stops"),
    [
        ("meta.status == 'no more pages: none left'", {"meta": {"status": "no more pages: none left"}}, True),
        ("meta.status == 'no more pages: none left'", {"meta": {"status": "no more pages: None left"}}, False),
        ("meta.status != 'true or false'", {"meta": {"status": "true or false"}}, False),
        ("response.get('state', 'null') == 'null'", {}, True),
        ("response.get('state', null) is none", {}, True),
        ("none.x is none", {"none": {"x": 1}}, False),
    ],
)
def test_string_literals_and_path_keys_keep_the_words_none_true_false(text, body, stops):
    assert parse_stop_condition(text).should_stop(body) is stops


@pytest.mark.parametrize(
    ("text", "record", "keep"),
    [
        ("status != 'deleted'", {"status": "open"}, True),
        ("status != 'deleted'", {"status": "deleted"}, False),
        ("score >= 3", {"score": 3}, True),
        ("score > 3", {"score": "many"}, False),  # no order between a string and a number: not a match
        ("score < 3", {}, False),  # a missing field orders with nothing
        ("score > -1.5", {"score": -1}, True),
        ("status in ['open', 'pending']", {"status": "pending"}, True),
        ("status not in ['open', 'pending']", {"status": "pending"}, False),
        ("record['user']['id'] == 7 and not archived", {"user": {"id": 7}, "archived": False}, True),
        ("record.get('tags', []) == []", {}, True),
    ],
)
def test_filter_predicates_over_a_record(text, record, keep):
    assert parse_predicate(text, root="record").should_stop(record) is keep


def test_a_filter_names_its_own_root_not_response():
    with pytest.raises(StopConditionSyntaxError, match="the only name that may be called or subscripted is 'record'"):
        parse_predicate("response['a'] == 1", root="record")
