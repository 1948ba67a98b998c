"""Rows: which customer each row of a tenant's columns holds.

A customer keeps their row while they stay; a removed customer's row goes on a free list and
is given to the next new customer, so arrays do not grow with churn. Every write of a row gets
a new `version` from one counter: behaviour entries carry the version they were written
under, and an entry whose version is no longer its row's belongs to replaced data.
`replacements` counts the writes that can have left such entries behind.

`ids` is shared copy-on-write with the `Audience` results handed out: reusing a row copies the
array first if a result may still read it, so a result keeps naming the customers it was
computed for.
"""

from __future__ import annotations

import numpy as np

from services.tagging.audience.columns import grown


class RowIndex:
    def __init__(self) -> None:
        self._row_of: dict[str, int] = {}
        self._free: list[int] = []
        self.size = 0  # rows ever used: every array is read over [0, size)
        self.ids = np.empty(0, dtype=object)
        self.alive = np.zeros(0, dtype=bool)
        self.versions = np.zeros(0, dtype=np.int64)
        self._next_version = 1
        self._ids_shared = False
        #: Counts writes over rows that held data (replacements and removals): behaviour
        #: series compare it with the count they last swept at.
        self.replacements = 0
        #: Counts the times freed rows were given to new customers: an order of rows by id
        #: taken at one count holds at that count, for the rows it covers.
        self.reuses = 0

    def __len__(self) -> int:
        return len(self._row_of)

    def row_of(self, customer_id: str) -> int | None:
        return self._row_of.get(customer_id)

    def assign(self, customer_ids: list[str]) -> tuple[np.ndarray, np.ndarray]:
        """Rows for `customer_ids` (distinct), and which of them held the customer already."""
        held = [self._row_of.get(customer_id, -1) for customer_id in customer_ids]
        rows = np.array(held, dtype=np.int64)
        existed = rows >= 0
        newcomers = [c for c, row in zip(customer_ids, held, strict=True) if row < 0]
        rows[~existed] = self._new_rows(newcomers)
        if len(newcomers) < len(rows):
            self.replacements += 1
        self.versions[rows] = self._take_versions(len(rows))
        self.alive[rows] = True
        return rows, existed

    def release(self, customer_id: str) -> int | None:
        """Free the customer's row; None if they were not held."""
        row = self._row_of.pop(customer_id, None)
        if row is None:
            return None
        self.alive[row] = False
        self.versions[row] = self._take_versions(1)[0]
        self.replacements += 1
        self._free.append(row)
        return row

    def share_ids(self) -> np.ndarray:
        self._ids_shared = True
        return self.ids

    def _new_rows(self, customer_ids: list[str]) -> list[int]:
        """Free rows first, then rows past the end, for customers not held yet."""
        reused = min(len(customer_ids), len(self._free))
        rows = [self._free.pop() for _ in range(reused)]
        if reused:
            self.reuses += 1
        if reused and self._ids_shared:
            self.ids = self.ids.copy()
            self._ids_shared = False
        rows += range(self.size, self.size + len(customer_ids) - reused)
        self.size += len(customer_ids) - reused
        self._fit(self.size)
        self.ids[rows] = customer_ids
        self._row_of.update(zip(customer_ids, rows, strict=True))
        return rows

    def _take_versions(self, count: int) -> np.ndarray:
        first = self._next_version
        self._next_version += count
        return np.arange(first, first + count, dtype=np.int64)

    def _fit(self, size: int) -> None:
        if len(self.ids) < size:
            # A grown ids array is a new object, so results holding the old one are unaffected.
            self.ids = grown(self.ids, size, None)  # type: ignore[arg-type]
            self._ids_shared = False
        self.alive = grown(self.alive, size, False)
        self.versions = grown(self.versions, size)
