"""`Audience`: the customers one evaluation matched, as a snapshot.

It keeps the evaluation's mask and the row -> customer id array of that moment (shared
copy-on-write with the tenant, see `rows`), so later upserts and removals do not change it.
Listing members in id order uses the tenant's cached order of rows by id (merging in the few
rows added since it was sorted) while no row has been reused, and sorts for itself otherwise.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import cached_property

import numpy as np

#: Rows [0, covered) ordered by customer id, and `covered`.
IdOrder = tuple[np.ndarray, int]
#: The tenant's id order as of a reuse count (None: rows were reused since).
OrderOf = Callable[[int], IdOrder | None]
RowOf = Callable[[str], int | None]


class Audience:
    def __init__(
        self, members: np.ndarray, ids: np.ndarray, reuses: int, order_of: OrderOf, row_of: RowOf
    ) -> None:
        self._members = members
        self._ids = ids
        self._reuses = reuses
        self._order_of = order_of
        self._row_of = row_of
        self.count = int(np.count_nonzero(members))

    def __len__(self) -> int:
        return self.count

    @property
    def rows(self) -> np.ndarray:
        """The evaluation's mask over the tenant's rows (read-only use, for the engine)."""
        return self._members

    def __contains__(self, customer_id: object) -> bool:
        if not isinstance(customer_id, str):
            return False
        row = self._row_of(customer_id)
        if row is not None and row < len(self._members) and self._ids[row] == customer_id:
            return bool(self._members[row])
        # Moved to another row or removed since the evaluation: ask the snapshot itself.
        return customer_id in self._member_set

    def customer_ids(self) -> list[str]:
        """Every member, in ascending id order."""
        return self.sample(self.count)

    def sample(self, n: int) -> list[str]:
        """The first `n` members in id order: the tenant's cached order of rows by id, plus
        a sort of the members in rows added since it was taken."""
        if n <= 0 or self.count == 0:
            return []
        order, covered = self._order()
        head = self._ids[order[self._members[order]][:n]].tolist()
        tail = self._ids[np.flatnonzero(self._members[covered:]) + covered].tolist()
        return sorted(head + tail)[:n] if tail else head  # type: ignore[no-any-return]

    def _order(self) -> IdOrder:
        size = len(self._members)
        found = self._order_of(self._reuses)
        if found is None:  # rows were reused since the evaluation: sort the snapshot itself
            return np.argsort(self._ids[:size].astype(str), kind="stable"), size
        order, covered = found
        if covered > size:  # rows added after the evaluation are not in it
            return order[order < size], size
        return order, covered

    @cached_property
    def _member_set(self) -> frozenset[str]:
        return frozenset(self._ids[np.flatnonzero(self._members)].tolist())
