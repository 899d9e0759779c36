"""Floats in a `decimal` column, rounded to its scale as plain dlt's default load rounds them.

dlt's parquet writer, which rest_assets loads through, refuses a value with
more decimal places than its column's scale ("Rescaling Decimal value would
cause data loss"), so one API value like `0.30000000000000004` in a column
hinted `{data_type: decimal, scale: 2}` would fail the run. Plain dlt's
default `insert_values` writes the float's shortest form into SQL and the
destination rounds it to the scale, half away from zero: that is what lands
here too. Numbers sent as strings are rounded alike (dlt makes a Decimal of
them, which the writer refuses just the same). Arrow batches never hold a
float in a decimal column (BatchShape hands such rows on as rows), so only
rows are rounded.
"""

from __future__ import annotations

import math
from decimal import ROUND_HALF_UP, Context, Decimal, InvalidOperation
from typing import Any

from dlt.common.arithmetics import DEFAULT_NUMERIC_PRECISION, DEFAULT_NUMERIC_SCALE

from rest_assets.dialect.validate import normalized_identifier
from rest_assets.dlt_internals import ItemTransform
from rest_assets.errors import UnloadableRecordError


def with_decimal_defaults(columns: dict[str, Any]) -> dict[str, Any]:
    """`columns` with each `decimal` hint's missing precision or scale set to dlt's default (38, 9).

    Where a hint gives one of them, dlt's parquet writer and its destination
    types fill in the other differently (a precision alone: the writer takes
    scale 0, refusing 1.5; DuckDB's column gets scale 9), so plain dlt's
    default `insert_values` loads a value that a parquet load refuses.
    Written out, both take the destination's type, as plain dlt makes it.
    """
    filled = dict(columns)
    for name, hint in columns.items():
        if (
            isinstance(hint, dict)
            and hint.get("data_type") == "decimal"
            and (hint.get("precision") is None) != (hint.get("scale") is None)
        ):
            filled[name] = {
                **hint,
                "precision": hint.get("precision") or DEFAULT_NUMERIC_PRECISION,
                "scale": hint["scale"] if hint.get("scale") is not None else DEFAULT_NUMERIC_SCALE,
            }
    return filled


def decimal_scales(columns: dict[str, Any]) -> dict[str, tuple[int, int]]:
    """The (precision, scale) of each column hinted `decimal`, by dlt's normalized name (dlt's defaults
    where the hint leaves one out, as its type mapping does)."""
    return {
        normalized_identifier(name): (
            int(hint.get("precision") or DEFAULT_NUMERIC_PRECISION),
            int(hint["scale"] if hint.get("scale") is not None else DEFAULT_NUMERIC_SCALE),
        )
        for name, hint in columns.items()
        if isinstance(hint, dict) and hint.get("data_type") == "decimal"
    }


class DecimalRounder(ItemTransform[Any, Any]):
    """Rounds the floats (and numbers as strings) of a resource's `decimal` columns in its rows to each
    column's scale."""

    placement_affinity = 1.1  # after the incremental step (cursors stay the API's values) and the Arrow caster

    def __init__(self, scales: dict[str, tuple[int, int]], resource: str = "resource") -> None:
        super().__init__(lambda item: item)
        self.scales, self.resource = scales, resource
        self._keys: dict[str, tuple[Decimal, Context] | None] = {}  # the API's key -> how to round its floats

    def __call__(self, item: Any, meta: Any = None) -> Any:
        if isinstance(item, dict):
            return self._round_row(item)
        if isinstance(item, list) and item and isinstance(item[0], dict):
            return [self._round_row(row) if isinstance(row, dict) else row for row in item]
        return item

    def _round_row(self, row: dict[str, Any]) -> dict[str, Any]:
        for key, value in row.items():
            if (type(value) is float and math.isfinite(value)) or type(value) is str:
                rounding = self._rounding(key)
                if rounding is not None:
                    row[key] = _rounded(value, *rounding)
                    if isinstance(value, str) and type(row[key]) is str and _is_a_number(value):
                        raise UnloadableRecordError(
                            f"resource '{self.resource}': field '{key}' holds {value!r}, a number its decimal column "
                            f"cannot hold (precision {self.scales[normalized_identifier(key)][0]}); dlt fails on it too "
                            "(hint the column as text or double)"
                        )
        return row

    def _rounding(self, key: str) -> tuple[Decimal, Context] | None:
        if key not in self._keys:
            scale = self.scales.get(normalized_identifier(key))
            self._keys[key] = None if scale is None else (Decimal(1).scaleb(-scale[1]), Context(prec=scale[0] + 1))
        return self._keys[key]


def _is_a_number(text: str) -> bool:
    """Whether `text` reads as a decimal number (NaN and infinities included): dlt makes a Decimal of it."""
    try:
        Decimal(text)
    except InvalidOperation:
        return False
    return True


def _rounded(value: float | str, quantum: Decimal, context: Context) -> Decimal | float | str:
    """`value` rounded to `quantum`, half away from zero, from its shortest form (as SQL reads the literal);
    the value itself where it is no finite number or does not fit the column (dlt keeps text that is no
    number in a variant column; a number as text that does not fit is refused by the caller, naming the
    field; the destination refuses a float too large, naming the column)."""
    try:
        number = Decimal(value if type(value) is str else repr(value))
        return number.quantize(quantum, rounding=ROUND_HALF_UP, context=context) if number.is_finite() else value
    except InvalidOperation:
        return value
