"""Comparisons of a column against a rule value, as boolean masks over rows.

Each function is the column-at-once form of `domain.rules.evaluate.compare` for one operator,
with the same missing-value and wrong-kind meaning: a row matches only if its value is of the
kind the operator reads (NUMBER for `gt`, INSTANT for `before`, ...). `ne` and `not_in` are the
complement of `eq` and `in` among rows with a value, never among all rows.
"""

from __future__ import annotations

import math
import operator
from collections.abc import Callable, Mapping
from typing import Final

import numpy as np

from services.tagging.audience.columns import ColumnView
from services.tagging.audience.encoding import (
    BOOL,
    DAY_US,
    INSTANT,
    LIST,
    MISSING,
    NUMBER,
    TEXT,
    clamp64,
    instant_us,
)
from services.tagging.domain.rules.ast import Value
from services.tagging.domain.rules.values import is_number, parse_instant

Mask = np.ndarray
Comparison = Callable[[ColumnView, Value, int], Mask]

_PYTHON_OPS: Final[Mapping[str, Callable[[object, object], bool]]] = {
    "eq": operator.eq,
    "gt": operator.gt,
    "gte": operator.ge,
    "lt": operator.lt,
    "lte": operator.le,
}
_NUMPY_OPS: Final = {
    "eq": np.equal,
    "gt": np.greater,
    "gte": np.greater_equal,
    "lt": np.less,
    "lte": np.less_equal,
}
#: For an int E no float64 equals: the float f nearest E and the operator that, applied to f,
#: gives the same answer for every float a. No float lies strictly between E and f.
_ROUNDED_UP: Final = {"gt": "gte", "gte": "gte", "lt": "lt", "lte": "lt"}  # f > E
_ROUNDED_DOWN: Final = {"gt": "gt", "gte": "gt", "lt": "lte", "lte": "lte"}  # f < E


def compare(view: ColumnView, op: str, expected: Value, now_us: int) -> Mask:
    """Rows whose present value satisfies `op expected` at `now`."""
    return _COMPARISONS[op](view, expected, now_us)


def nothing(view: ColumnView) -> Mask:
    return np.zeros(len(view.kind), dtype=bool)


def present(view: ColumnView) -> Mask:
    return view.kind != MISSING


# ------------------------------------------------------------------- equality, sets


def equal(view: ColumnView, expected: Value, now_us: int = 0) -> Mask:
    """`same(actual, expected)`: bools only equal bools, numbers equal numbers of any type."""
    if isinstance(expected, bool):
        return (view.kind == BOOL) & (view.payload == int(expected))
    if is_number(expected):
        return numbers(view, "eq", expected)  # type: ignore[arg-type]
    if isinstance(expected, str | list):
        kind = TEXT if isinstance(expected, str) else LIST
        code = view.interner.known(expected if isinstance(expected, str) else tuple(expected))
        if code is None:
            return nothing(view)
        return (view.kind == kind) & (view.payload == code)
    return nothing(view)


def not_equal(view: ColumnView, expected: Value, now_us: int = 0) -> Mask:
    return present(view) & ~equal(view, expected)


def member(view: ColumnView, expected: Value, *, inside: bool) -> Mask:
    if not isinstance(expected, list):
        return nothing(view)
    found = (view.interner.known(v) for v in expected if isinstance(v, str))
    codes = [code for code in found if code is not None]
    texts = view.kind == TEXT
    hits = texts & coded(view, codes)
    return hits if inside else texts & ~hits


def coded(view: ColumnView, codes: list[int]) -> Mask:
    """Rows whose payload is one of `codes` (the caller masks by kind): a few comparisons,
    or one lookup in a table over every code (np.isin sorts, several times slower here)."""
    if len(codes) <= 4:
        hits = nothing(view)
        for code in codes:
            hits |= view.payload == code
        return hits
    table = np.zeros(len(view.interner.values), dtype=bool)
    table[codes] = True
    return np.take(table, view.payload, mode="clip")


# ------------------------------------------------------------------------- numbers


def numbers(view: ColumnView, op: str, expected: float) -> Mask:
    """Exact `actual op expected` over NUMBER rows, also for ints past 2**53."""
    floats = view.payload.view(np.float64)
    threshold = _float_threshold(op, expected)
    if threshold is None:
        mask = nothing(view)
    else:
        float_op, bound = threshold
        mask = (view.kind == NUMBER) & _NUMPY_OPS[float_op](floats, bound)
    python_op = _PYTHON_OPS[op]
    for row, exact in view.exact.items():
        if row < len(mask):
            mask[row] = python_op(exact, expected)
    return mask


def _float_threshold(op: str, expected: float) -> tuple[str, float] | None:
    """(op', f) with `a op' f` == `a op expected` for every float a; None: no float matches."""
    if isinstance(expected, float):
        return op, expected
    try:
        bound = float(expected)
    except OverflowError:
        bound = math.inf if expected > 0 else -math.inf
    if bound == expected:
        return op, bound
    if op == "eq":
        return None
    return (_ROUNDED_UP if bound > expected else _ROUNDED_DOWN)[op], bound


def ordered(op: str) -> Comparison:
    def mask(view: ColumnView, expected: Value, now_us: int) -> Mask:
        if not is_number(expected):
            return nothing(view)
        return numbers(view, op, expected)  # type: ignore[arg-type]

    return mask


def between(view: ColumnView, expected: Value, now_us: int) -> Mask:
    """Numbers between number bounds, or instants between instant bounds, inclusive."""
    if not isinstance(expected, list) or len(expected) != 2:
        return nothing(view)
    low, high = expected
    mask = nothing(view)
    if is_number(low) and is_number(high):
        mask |= numbers(view, "gte", low) & numbers(view, "lte", high)  # type: ignore[arg-type]
    start, end = parse_instant(low), parse_instant(high)
    if start is not None and end is not None:
        mask |= instants_between(view, instant_us(start), instant_us(end))
    return mask


# ------------------------------------------------------------------------ instants


def instants_between(view: ColumnView, first_us: int, last_us: int) -> Mask:
    payload = view.payload
    return (view.kind == INSTANT) & (payload >= clamp64(first_us)) & (payload <= clamp64(last_us))


def _bound(expected: Value) -> int | None:
    moment = parse_instant(expected)
    return None if moment is None else instant_us(moment)


def before(view: ColumnView, expected: Value, now_us: int) -> Mask:
    bound = _bound(expected)
    if bound is None:
        return nothing(view)
    return (view.kind == INSTANT) & (view.payload < bound)


def after(view: ColumnView, expected: Value, now_us: int) -> Mask:
    bound = _bound(expected)
    if bound is None:
        return nothing(view)
    return (view.kind == INSTANT) & (view.payload > bound)


def within_last_days(view: ColumnView, expected: Value, now_us: int) -> Mask:
    if not isinstance(expected, int):
        return nothing(view)
    return instants_between(view, now_us - expected * DAY_US, now_us)


def not_within_last_days(view: ColumnView, expected: Value, now_us: int) -> Mask:
    if not isinstance(expected, int):
        return nothing(view)
    cutoff = clamp64(now_us - expected * DAY_US)
    return (view.kind == INSTANT) & (view.payload < cutoff)


# --------------------------------------------------------------------------- lists


def lists_where(view: ColumnView, holds: Callable[[tuple[object, ...]], bool]) -> Mask:
    """Rows holding a list value for which `holds` is true: tested once per distinct list."""
    values = view.interner.values
    codes = [code for code in view.interner.list_codes if holds(values[code])]  # type: ignore[arg-type]
    return (view.kind == LIST) & coded(view, codes)


def _strings(expected: Value) -> frozenset[str]:
    if not isinstance(expected, list):
        return frozenset()
    return frozenset(v for v in expected if isinstance(v, str))


def contains(view: ColumnView, expected: Value, now_us: int) -> Mask:
    return lists_where(view, lambda items: expected in items)


def contains_any(view: ColumnView, expected: Value, now_us: int) -> Mask:
    wanted = _strings(expected)
    return lists_where(view, lambda items: not wanted.isdisjoint(items))


def contains_all(view: ColumnView, expected: Value, now_us: int) -> Mask:
    wanted = _strings(expected)
    return lists_where(view, lambda items: wanted.issubset(items))


def flag(value: bool) -> Comparison:
    return lambda view, expected, now_us: (view.kind == BOOL) & (view.payload == int(value))


_COMPARISONS: Final[Mapping[str, Comparison]] = {
    "eq": equal,
    "ne": not_equal,
    "in": lambda v, e, n: member(v, e, inside=True),
    "not_in": lambda v, e, n: member(v, e, inside=False),
    "gt": ordered("gt"),
    "gte": ordered("gte"),
    "lt": ordered("lt"),
    "lte": ordered("lte"),
    "between": between,
    "before": before,
    "after": after,
    "within_last_days": within_last_days,
    "not_within_last_days": not_within_last_days,
    "contains": contains,
    "contains_any": contains_any,
    "contains_all": contains_all,
    "is_true": flag(True),
    "is_false": flag(False),
}
