"""Growable per-row arrays: one field's values (`ValueColumn`) and one tag (`TagColumn`).

Rows index every array of a tenant alike. An array grows (doubling) when a row past its end is
written or read, so a column created late, or a field no recent customer has, still lines up
with the tenant's rows; unwritten rows read as missing.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from services.tagging.audience.encoding import (
    INT64_MAX,
    MISSING,
    Interner,
    encode_many,
    instant_us,
)

INITIAL_CAPACITY = 1024


def grown(array: np.ndarray, size: int, fill: int | bool = 0) -> np.ndarray:
    """`array` if it already holds `size` rows, else a copy at least twice as long."""
    if len(array) >= size:
        return array
    bigger = np.full(max(size, 2 * len(array), INITIAL_CAPACITY), fill, dtype=array.dtype)
    bigger[: len(array)] = array
    return bigger


@dataclass(frozen=True)
class ColumnView:
    """One field's values over rows [0, size): what the comparisons read."""

    kind: np.ndarray
    payload: np.ndarray
    #: Rows whose int is too big for a float64: row -> exact value.
    exact: dict[int, int]
    interner: Interner


class ValueColumn:
    def __init__(self, interner: Interner) -> None:
        self._interner = interner
        self._kind = np.zeros(0, dtype=np.int8)
        self._payload = np.zeros(0, dtype=np.int64)
        self._exact: dict[int, int] = {}

    def write(self, rows: np.ndarray, values: Sequence[object]) -> None:
        """Row `rows[i]` now holds `values[i]` (None = missing)."""
        if len(rows) == 0:
            return
        self._fit(int(rows.max()) + 1)
        kinds, payloads, exact = encode_many(values, self._interner)
        self._kind[rows] = kinds
        self._payload[rows] = payloads
        if self._exact:
            for row in rows.tolist():
                self._exact.pop(row, None)
        for index, value in exact.items():
            self._exact[int(rows[index])] = value

    def clear(self, rows: np.ndarray) -> None:
        rows = rows[rows < len(self._kind)]
        self._kind[rows] = MISSING
        self._payload[rows] = 0
        if self._exact:
            for row in rows.tolist():
                self._exact.pop(row, None)

    def view(self, size: int) -> ColumnView:
        self._fit(size)
        return ColumnView(self._kind[:size], self._payload[:size], self._exact, self._interner)

    def _fit(self, size: int) -> None:
        self._kind = grown(self._kind, size)
        self._payload = grown(self._payload, size)


class TagColumn:
    """One tag over the rows: who holds it, until when, and with which value."""

    def __init__(self, interner: Interner) -> None:
        self.value = ValueColumn(interner)
        self._held = np.zeros(0, dtype=bool)
        #: Microseconds since the epoch; INT64_MAX for an assignment that never expires.
        self._expires = np.zeros(0, dtype=np.int64)

    def write(self, rows: np.ndarray, values: Sequence[object], expiries: Sequence[object]) -> None:
        if len(rows) == 0:
            return
        self._fit(int(rows.max()) + 1)
        self._held[rows] = True
        self._expires[rows] = [INT64_MAX if e is None else instant_us(e) for e in expiries]  # type: ignore[arg-type]
        self.value.write(rows, values)

    def clear(self, rows: np.ndarray) -> None:
        rows = rows[rows < len(self._held)]
        self._held[rows] = False
        self.value.clear(rows)

    def active(self, size: int, now_us: int) -> np.ndarray:
        """Rows holding the tag at `now`: an assignment is active strictly before it expires."""
        self._fit(size)
        return self._held[:size] & (self._expires[:size] > now_us)

    def _fit(self, size: int) -> None:
        self._held = grown(self._held, size, False)
        self._expires = grown(self._expires, size)
