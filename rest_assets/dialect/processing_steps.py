"""`processing_steps` written in YAML: dlt's key names with declarative bodies.

dlt's `processing_steps` is a list of `{filter: <callable>}` and
`{map: <callable>}` applied to every record in order. A YAML spec cannot hold
a callable, so here a step's body is data:

* `filter: "<expression>"` keeps the records for which the expression holds;
  the expression language is the stop condition's (see `stop_condition`),
  over the record (`status != 'deleted'`, `score >= 3`,
  `record['user']['id'] in [1, 2]`), parsed once and never evaluated as code;
* `map: {drop: [...], rename: {...}, keep: [...]}` removes, renames or
  keeps only the named top-level fields, in that order.

Specs built in Python (see `rest_assets.dialect.spec_from_dict`) may still give
callables, as in dlt. Each body becomes a plain callable here, so the
compiler hands dlt exactly what it expects.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from rest_assets.dialect.stop_condition import StopCondition, StopConditionSyntaxError, parse_predicate

STEP_KINDS = ("filter", "map")
PYTHON_STEP_KINDS = (*STEP_KINDS, "yield_map")  # dlt's third kind: a generator, so Python only
MAP_KEYS = ("drop", "rename", "keep")


class ProcessingStepError(ValueError):
    """A step that is not one of the allowed forms; the message says which part and why."""

    def __init__(self, message: str, key: tuple[str | int, ...] = ()) -> None:
        super().__init__(message)
        self.key = key


@dataclass(frozen=True)
class RecordFilter:
    """`filter: "<expression>"`: True for the records to keep."""

    condition: StopCondition

    def __call__(self, record: Any) -> bool:
        return bool(self.condition.should_stop(record))


@dataclass(frozen=True)
class RecordMap:
    """`map: {drop, rename, keep}` over a record's top-level fields."""

    drop: tuple[str, ...] = ()
    rename: tuple[tuple[str, str], ...] = ()
    keep: tuple[str, ...] | None = None

    def __call__(self, record: Any) -> Any:
        if not isinstance(record, dict):
            return record
        for name in self.drop:
            record.pop(name, None)
        for old, new in self.rename:
            if old in record:
                record[new] = record.pop(old)
        if self.keep is not None:
            record = {name: value for name, value in record.items() if name in self.keep}
        return record


def build_processing_steps(steps: Any) -> list[dict[str, Callable[[Any], Any]]]:
    """dlt's `processing_steps` list from the spec's (raises ProcessingStepError)."""
    if not isinstance(steps, list):
        raise ProcessingStepError("must be a list of {filter: ...} or {map: ...} steps")
    return [_build_step(step, index) for index, step in enumerate(steps)]


def _build_step(step: Any, index: int) -> dict[str, Callable[[Any], Any]]:
    if not isinstance(step, dict) or len(step) != 1 or next(iter(step)) not in PYTHON_STEP_KINDS:
        raise ProcessingStepError("each step is one key, filter or map", (index,))
    kind, body = next(iter(step.items()))
    if callable(body):  # a spec built in Python: dlt's own callables, as they are
        return {kind: body}
    if kind not in STEP_KINDS:
        raise ProcessingStepError("yield_map takes a Python generator function (specs built in Python)", (index, kind))
    if kind == "filter":
        return {kind: _record_filter(body, index)}
    return {kind: _record_map(body, index)}


def _record_filter(body: Any, index: int) -> RecordFilter:
    if not isinstance(body, str):
        raise ProcessingStepError("a filter is an expression over the record, e.g. \"status != 'deleted'\"", (index, "filter"))
    try:
        return RecordFilter(parse_predicate(body, root="record"))
    except StopConditionSyntaxError as exc:
        raise ProcessingStepError(f"{exc}", (index, "filter")) from None


def _record_map(body: Any, index: int) -> RecordMap:
    where = (index, "map")
    if not isinstance(body, dict) or not body or set(body) - set(MAP_KEYS):
        raise ProcessingStepError(f"a map is a mapping of {', '.join(MAP_KEYS)}", where)
    drop, keep, rename = body.get("drop", []), body.get("keep"), body.get("rename", {})
    for key, names in (("drop", drop), ("keep", keep or [])):
        if not isinstance(names, list) or not all(isinstance(n, str) for n in names):
            raise ProcessingStepError("must be a list of field names", (*where, key))
    if not isinstance(rename, dict) or not all(isinstance(k, str) and isinstance(v, str) for k, v in rename.items()):
        raise ProcessingStepError("must map old field names to new ones", (*where, "rename"))
    return RecordMap(drop=tuple(drop), rename=tuple(rename.items()), keep=tuple(keep) if keep is not None else None)
