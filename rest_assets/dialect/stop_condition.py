"""A safe parser and evaluator for the dialect's expressions (`stop_condition`, `filter`).

An expression is a predicate over one JSON value: a page's body for a stop
condition, a record for a `processing_steps` filter. Two notations are
accepted, both parsed into the same small tree and never evaluated as code:

* dotted paths: ``_links.next is none``, ``not meta.has_more``,
  ``meta.status == 'done'``;
* Python-looking access on one root name only (``response`` for a stop
  condition, ``record`` for a filter):
  ``not response.get('links', {}).get('next', {})``,
  ``response['x']['y'] is None``.

Allowed: ``not``, ``and``, ``or``, ``is``/``is not`` None, ``==``/``!=``,
``<``/``<=``/``>``/``>=`` with a literal, ``in``/``not in`` a literal list,
truthiness of a path. Everything else (other names, attributes, calls other
than ``.get``, subscripts with non-literals, dunders, lambdas, comprehensions)
is rejected when the spec loads. An ordering between values that do not
order (a string and a number, a missing field) is false, never an error.
"""

from __future__ import annotations

import ast
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

_MAX_LENGTH = 500
# YAML-style words read as constants where a value stands (never inside a string literal, never as a key).
_WORD_CONSTANTS: dict[str, Any] = {"none": None, "null": None, "NULL": None, "Null": None, "true": True, "false": False}


class StopConditionSyntaxError(ValueError):
    """The expression is outside the grammar; the message says why."""


@dataclass(frozen=True)
class PathRef:
    """A path into the body; each step has a default used when the key is missing."""

    steps: tuple[tuple[str | int, Any], ...]

    @property
    def dotted(self) -> str:
        return ".".join(str(step) for step, _ in self.steps)

    def resolve(self, body: Any) -> Any:
        value = body
        for key, default in self.steps:
            value = _step(value, key, default)
        return value


def _step(value: Any, key: str | int, default: Any) -> Any:
    if isinstance(value, dict):
        return value.get(key, default) if isinstance(key, str) else value.get(str(key), default)
    if isinstance(value, list) and isinstance(key, int) and -len(value) <= key < len(value):
        return value[key]
    return default


@dataclass(frozen=True)
class StopCondition:
    """A compiled stop condition: `should_stop(body)` and the paths it reads."""

    source: str
    predicate: Callable[[Any], bool]
    paths: tuple[PathRef, ...]

    def should_stop(self, body: Any) -> bool:
        """True when pagination must stop after the page whose JSON is `body`."""
        return bool(self.predicate(body))

    @property
    def single_path(self) -> str | None:
        """The one dotted path the condition reads, if it reads exactly one."""
        dotted = {path.dotted for path in self.paths}
        return dotted.pop() if len(dotted) == 1 else None


def parse_stop_condition(text: str) -> StopCondition:
    """Parse `text` (over a page body, root name `response`) or raise StopConditionSyntaxError."""
    return parse_predicate(text, root="response")


def parse_predicate(text: str, root: str) -> StopCondition:
    """Parse `text` into a predicate whose Python-style paths start at the name `root`."""
    if not isinstance(text, str) or not text.strip():
        raise StopConditionSyntaxError("must be a non-empty string")
    text = text.strip()
    if len(text) > _MAX_LENGTH:
        raise StopConditionSyntaxError(f"is longer than {_MAX_LENGTH} characters")
    if "__" in text:
        raise StopConditionSyntaxError("must not contain '__' (dunder names are never allowed)")
    paths: list[PathRef] = []
    try:
        tree = ast.parse(text, mode="eval")
    except SyntaxError:
        raise StopConditionSyntaxError("is not a valid expression") from None
    predicate = _Builder(root, paths).build(_WordConstants().visit(tree).body)
    return StopCondition(source=text, predicate=predicate, paths=tuple(paths))


class _WordConstants(ast.NodeTransformer):
    """Read the bare words none/null/true/false as constants where a value stands.

    Done on the parsed tree, not the text, so string literals are kept exactly
    (`'no more pages: none left'` stays as written) and a word used as the
    root of a path (`none.x`) stays a key.
    """

    def visit_Name(self, node: ast.Name) -> ast.AST:
        if node.id in _WORD_CONSTANTS:
            return ast.copy_location(ast.Constant(_WORD_CONSTANTS[node.id]), node)
        return node

    def visit_Attribute(self, node: ast.Attribute) -> ast.AST:
        return node  # the root of a dotted path is a key, whatever its name

    def visit_Subscript(self, node: ast.Subscript) -> ast.AST:
        node.slice = self.visit(node.slice)
        return node


_ORDERINGS: dict[type[ast.cmpop], Callable[[Any, Any], bool]] = {
    ast.Lt: lambda a, b: a < b,
    ast.LtE: lambda a, b: a <= b,
    ast.Gt: lambda a, b: a > b,
    ast.GtE: lambda a, b: a >= b,
}


class _Builder:
    """Builds the predicate of a parsed expression whose Python-style paths start at `root`."""

    def __init__(self, root: str, paths: list[PathRef]) -> None:
        self.root, self.paths = root, paths

    def build(self, node: ast.AST) -> Callable[[Any], Any]:
        if isinstance(node, ast.BoolOp):
            parts = [self.build(value) for value in node.values]
            if isinstance(node.op, ast.And):
                return lambda body: all(part(body) for part in parts)
            return lambda body: any(part(body) for part in parts)
        if isinstance(node, ast.UnaryOp) and isinstance(node.op, ast.Not):
            inner = self.build(node.operand)
            return lambda body: not inner(body)
        if isinstance(node, ast.Compare):
            return self._compare(node)
        path = self._path(node)
        return path.resolve

    def _compare(self, node: ast.Compare) -> Callable[[Any], bool]:
        if len(node.ops) != 1:
            raise StopConditionSyntaxError("chained comparisons are not allowed")
        op, path = node.ops[0], self._path(node.left)
        if isinstance(op, (ast.In, ast.NotIn)):
            return _membership(path, node.comparators[0], negate=isinstance(op, ast.NotIn))
        literal = _literal_of(node.comparators[0])
        if isinstance(op, ast.Is) and literal is None:
            return lambda body: path.resolve(body) is None
        if isinstance(op, ast.IsNot) and literal is None:
            return lambda body: path.resolve(body) is not None
        if isinstance(op, ast.Eq):
            return lambda body: path.resolve(body) == literal
        if isinstance(op, ast.NotEq):
            return lambda body: path.resolve(body) != literal
        if type(op) in _ORDERINGS and literal is not None and not isinstance(literal, (dict, list)):
            return _ordering(path, _ORDERINGS[type(op)], literal)
        raise StopConditionSyntaxError(
            "only 'is None', 'is not None', '==', '!=', '<', '<=', '>', '>=' (with a literal) and 'in [...]' are allowed"
        )

    def _path(self, node: ast.AST) -> PathRef:
        path = _path_of(node, self.root)
        self.paths.append(path)
        return path


def _ordering(path: PathRef, compare: Callable[[Any, Any], bool], literal: Any) -> Callable[[Any], bool]:
    def ordered(body: Any) -> bool:
        try:
            return bool(compare(path.resolve(body), literal))
        except TypeError:  # values that do not order (None, a string against a number): not a match
            return False

    return ordered


def _membership(path: PathRef, node: ast.AST, negate: bool) -> Callable[[Any], bool]:
    if not isinstance(node, (ast.List, ast.Tuple)):
        raise StopConditionSyntaxError("'in' takes a literal list, e.g. status in ['open', 'pending']")
    choices = [_literal_of(element) for element in node.elts]

    def member(body: Any) -> bool:
        return (path.resolve(body) in choices) != negate

    return member


def _literal_of(node: ast.AST) -> Any:
    if isinstance(node, ast.Constant) and isinstance(node.value, (str, int, float, bool, type(None))):
        return node.value
    if (
        isinstance(node, ast.UnaryOp)
        and isinstance(node.op, ast.USub)
        and isinstance(node.operand, ast.Constant)
        and isinstance(node.operand.value, (int, float))
        and not isinstance(node.operand.value, bool)
    ):
        return -node.operand.value
    if isinstance(node, ast.Dict) and not node.keys:
        return {}
    if isinstance(node, ast.List) and not node.elts:
        return []
    raise StopConditionSyntaxError("comparisons and defaults must use literals (strings, numbers, true/false, none, {}, [])")


def _path_of(node: ast.AST, root_name: str) -> PathRef:
    """A body path from `<root>[...]`, `<root>.get(...)` chains or a bare dotted path."""
    steps: list[tuple[str | int, Any]] = []
    current = node
    while True:
        if isinstance(current, ast.Subscript):
            steps.append((_key_of(current.slice), None))
            current = current.value
        elif isinstance(current, ast.Call):
            steps.append(_get_call_step(current))
            current = current.func.value  # type: ignore[attr-defined]
        elif isinstance(current, ast.Attribute):
            steps.append((current.attr, None))
            current = current.value
        elif isinstance(current, ast.Name):
            break
        else:
            raise StopConditionSyntaxError(f"'{type(current).__name__}' expressions are not allowed")
    steps.reverse()
    root = current.id
    if root == root_name:
        if any(isinstance(n, ast.Attribute) for n in _chain(node)):
            raise StopConditionSyntaxError(
                f"attributes of '{root_name}' are not allowed; use {root_name}['key'] or {root_name}.get('key', default)"
            )
        return PathRef(tuple(steps))
    # a bare dotted path: every link must be a plain attribute (no calls, no subscripts)
    if any(not isinstance(n, (ast.Attribute, ast.Name)) for n in _chain(node)):
        raise StopConditionSyntaxError(f"the only name that may be called or subscripted is '{root_name}', not '{root}'")
    return PathRef(((root, None), *steps))


def _chain(node: ast.AST) -> list[ast.AST]:
    links: list[ast.AST] = []
    while isinstance(node, (ast.Subscript, ast.Call, ast.Attribute)):
        links.append(node)
        node = node.func.value if isinstance(node, ast.Call) else node.value  # type: ignore[attr-defined]
    links.append(node)
    return links


def _get_call_step(call: ast.Call) -> tuple[str | int, Any]:
    func = call.func
    if not (isinstance(func, ast.Attribute) and func.attr == "get"):
        raise StopConditionSyntaxError("the only call allowed is .get(key[, default])")
    if call.keywords or not 1 <= len(call.args) <= 2:
        raise StopConditionSyntaxError(".get takes a literal key and an optional literal default")
    key = _key_of(call.args[0])
    default = _literal_of(call.args[1]) if len(call.args) == 2 else None
    return key, default


def _key_of(node: ast.AST) -> str | int:
    if isinstance(node, ast.Constant) and isinstance(node.value, (str, int)) and not isinstance(node.value, bool):
        return node.value
    raise StopConditionSyntaxError("keys must be string or integer literals")
