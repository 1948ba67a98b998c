"""How one fact value is held in a column: a kind code and a 64-bit payload.

Each field column keeps two arrays, `kind` (int8) and `payload` (int64), and reads the payload
according to the kind, so a field keeps the reference meaning even when customers hold values
of different kinds in it (a wrong-kind value compares false, it is not coerced):

- TEXT and LIST: the payload is a code from the tenant's `Interner` (a list is interned as the
  tuple of its items, so list equality is code equality);
- BOOL: 0 or 1 (never compared with numbers: `same()` keeps them apart);
- NUMBER: the float64 bit pattern (read through `payload.view(float64)`); an int that a float64
  cannot hold exactly (money past 2**53) is also kept as a Python int in the column's
  `exact` map and compared exactly (see `compare.numbers`);
- INSTANT: microseconds since the epoch, UTC (exact: datetimes have microsecond resolution);
- OTHER: a present value no comparison can match (a NaN, an infinity, an unexpected type):
  `exists` and `ne` hold for it, nothing else, as in the reference evaluator.
"""

from __future__ import annotations

import math
from collections.abc import Hashable, Sequence
from datetime import UTC, datetime, timedelta
from typing import Final

import numpy as np

from services.tagging.domain.rules.values import as_utc

MISSING: Final = 0
TEXT: Final = 1
LIST: Final = 2
BOOL: Final = 3
NUMBER: Final = 4
INSTANT: Final = 5
OTHER: Final = 6

EPOCH: Final = datetime(1970, 1, 1, tzinfo=UTC)
MICROSECOND: Final = timedelta(microseconds=1)
DAY_US: Final = 86_400_000_000
INT64_MIN: Final = -(2**63)
INT64_MAX: Final = 2**63 - 1


class Interner:
    """Dictionary codes for the tenant's strings and list values, shared by every column."""

    def __init__(self) -> None:
        self._codes: dict[Hashable, int] = {}
        self.values: list[Hashable] = []
        #: Codes of list values, so `contains*` only looks at lists.
        self.list_codes: list[int] = []

    def code(self, value: Hashable) -> int:
        found = self._codes.get(value)
        if found is None:
            found = self._codes[value] = len(self.values)
            self.values.append(value)
            if isinstance(value, tuple):
                self.list_codes.append(found)
        return found

    def known(self, value: Hashable) -> int | None:
        return self._codes.get(value)


def instant_us(moment: datetime) -> int:
    return (as_utc(moment) - EPOCH) // MICROSECOND


def clamp64(value: int) -> int:
    return min(max(value, INT64_MIN), INT64_MAX)


def float_bits(value: float) -> int:
    return int(np.float64(value).view(np.int64))


def encode(value: object, interner: Interner) -> tuple[int, int, int | None]:
    """(kind, payload, exact int or None) of one value."""
    if value is None:
        return MISSING, 0, None
    if isinstance(value, bool):
        return BOOL, int(value), None
    if isinstance(value, int):
        return _encode_int(value)
    if isinstance(value, float):
        return (NUMBER, float_bits(value), None) if math.isfinite(value) else (OTHER, 0, None)
    if isinstance(value, str):
        return TEXT, interner.code(value), None
    if isinstance(value, datetime):
        return INSTANT, instant_us(value), None
    if isinstance(value, list):
        return _encode_list(value, interner)
    return OTHER, 0, None


def _encode_int(value: int) -> tuple[int, int, int | None]:
    try:
        approximate = float(value)
    except OverflowError:
        approximate = math.inf if value > 0 else -math.inf
    return NUMBER, float_bits(approximate), None if approximate == value else value


def _encode_list(value: list[object], interner: Interner) -> tuple[int, int, int | None]:
    items = tuple(value)
    try:
        return LIST, interner.code(items), None
    except TypeError:  # an unhashable item: no rule value can equal or contain it
        return OTHER, 0, None


def encode_many(
    values: Sequence[object], interner: Interner
) -> tuple[np.ndarray, np.ndarray, dict[int, int]]:
    """Kinds, payloads and {index: exact int} of many values; one fast path per pure kind."""
    if not values:
        return np.empty(0, dtype=np.int8), np.empty(0, dtype=np.int64), {}
    kinds = {type(value) for value in values}
    if type(None) in kinds and len(kinds) > 1:
        return _encode_present(values, interner)
    fast = _FAST_PATHS.get(frozenset(kinds))
    if fast is not None:
        encoded = fast(values, interner)
        if encoded is not None:
            return encoded
    return _encode_each(values, interner)


def _encode_present(
    values: Sequence[object], interner: Interner
) -> tuple[np.ndarray, np.ndarray, dict[int, int]]:
    """Missing (None) where the value is None; the others encoded together."""
    where = [index for index, value in enumerate(values) if value is not None]
    kinds = np.zeros(len(values), dtype=np.int8)
    payloads = np.zeros(len(values), dtype=np.int64)
    some_kinds, some_payloads, some_exact = encode_many([values[i] for i in where], interner)
    kinds[where] = some_kinds
    payloads[where] = some_payloads
    return kinds, payloads, {where[index]: value for index, value in some_exact.items()}


def _encode_each(
    values: Sequence[object], interner: Interner
) -> tuple[np.ndarray, np.ndarray, dict[int, int]]:
    kinds = np.empty(len(values), dtype=np.int8)
    payloads = np.empty(len(values), dtype=np.int64)
    exact: dict[int, int] = {}
    for index, value in enumerate(values):
        kinds[index], payloads[index], big = encode(value, interner)
        if big is not None:
            exact[index] = big
    return kinds, payloads, exact


Encoded = tuple[np.ndarray, np.ndarray, dict[int, int]] | None


def _uniform(kind: int, payloads: np.ndarray) -> Encoded:
    return np.full(len(payloads), kind, dtype=np.int8), payloads, {}


def _texts(values: Sequence[object], interner: Interner) -> Encoded:
    code = interner.code
    return _uniform(TEXT, np.fromiter((code(v) for v in values), np.int64, len(values)))  # type: ignore[arg-type]


def _numbers(values: Sequence[object], interner: Interner) -> Encoded:
    # Floats hold every int up to 2**53 exactly; past that (or on NaN) take the careful path.
    if max(values) > 2**53 or min(values) < -(2**53):  # type: ignore[type-var, operator]
        return None
    floats = np.asarray(values, dtype=np.float64)
    if not np.isfinite(floats).all():
        return None
    return _uniform(NUMBER, floats.view(np.int64))


def _booleans(values: Sequence[object], interner: Interner) -> Encoded:
    return _uniform(BOOL, np.asarray(values, dtype=np.int64))


def _instants(values: Sequence[object], interner: Interner) -> Encoded:
    try:  # facts hold aware datetimes; a naive one takes the careful path
        micros = [(v - EPOCH) // MICROSECOND for v in values]  # type: ignore[operator]
    except TypeError:
        return None
    return _uniform(INSTANT, np.asarray(micros, dtype=np.int64))


_FAST_PATHS = {
    frozenset({str}): _texts,
    frozenset({int}): _numbers,
    frozenset({float}): _numbers,
    frozenset({int, float}): _numbers,
    frozenset({bool}): _booleans,
    frozenset({datetime}): _instants,
}
