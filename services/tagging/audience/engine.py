"""`AudienceEngine` and `TenantAudience`: one tenant's customers held as columns."""

from __future__ import annotations

from collections.abc import Hashable, Iterable, Iterator, Mapping, Sequence
from datetime import datetime
from itertools import chain, islice

import numpy as np

from services.tagging.audience.audience import Audience, IdOrder
from services.tagging.audience.behaviour import BehaviourSeries
from services.tagging.audience.columns import ColumnView, TagColumn, ValueColumn
from services.tagging.audience.encoding import Interner
from services.tagging.audience.evaluate import Evaluation
from services.tagging.audience.loading import Batch, latest_by_id
from services.tagging.audience.portrait import value_counts
from services.tagging.audience.rows import RowIndex
from services.tagging.domain.rules.ast import Node
from services.tagging.domain.rules.facts import BehaviourKey, CustomerFacts

#: Customers gathered per bulk write: bounds the Python lists a load builds at once.
LOAD_CHUNK = 50_000


def _rows_of(cells: Sequence[tuple[object, ...]]) -> np.ndarray:
    return np.fromiter((cell[0] for cell in cells), np.int64, len(cells))  # type: ignore[misc]


class TenantAudience:
    """One tenant's customers' facts, kept current by upserts, answering rules as sets."""

    def __init__(self) -> None:
        self._rows = RowIndex()
        self._interner = Interner()
        self._fields: dict[str, ValueColumn] = {}
        self._tags: dict[str, TagColumn] = {}
        self._series: dict[BehaviourKey, BehaviourSeries] = {}
        #: (reuses, rows covered, those rows in id order): see `_order_of`.
        self._order: tuple[int, int, np.ndarray] | None = None

    def __len__(self) -> int:
        return len(self._rows)

    def upsert(self, facts: CustomerFacts) -> None:
        """Add the customer, or replace everything known of them."""
        self._write(latest_by_id([facts]))

    def upsert_many(self, facts: Iterable[CustomerFacts]) -> None:
        """`upsert` for many customers, written column by column in chunks."""
        stream = iter(facts)
        while chunk := list(islice(stream, LOAD_CHUNK)):
            self._write(latest_by_id(chunk))

    def remove(self, customer_id: str) -> None:
        """Forget the customer (merged away or erased); unknown ids are ignored."""
        row = self._rows.release(customer_id)
        if row is not None:
            self._clear(np.array([row], dtype=np.int64))

    def evaluate(
        self, rule: Node, now: datetime, segment_rules: Mapping[str, Node] = {}
    ) -> Audience:
        """The customers matching `rule` at `now`; a `SegmentCondition` is answered by that
        segment's rule in `segment_rules` (absent: no members)."""
        members = Evaluation(self, now, segment_rules).mask(rule)
        ids = self._rows.share_ids()
        return Audience(members, ids, self._rows.reuses, self._order_of, self._rows.row_of)

    def value_counts(self, audience: Audience, field: str) -> dict[Hashable, int]:
        """A portrait of `audience` over `field`: members per value (see `portrait`), as the
        columns hold it now, for the members still held."""
        members = np.zeros(self._rows.size, dtype=bool)
        members[: len(audience.rows)] = audience.rows
        return value_counts(self.field(field), members & self.alive())

    # ------------------------------------------------------- what an evaluation reads

    def alive(self) -> np.ndarray:
        return self._rows.alive[: self._rows.size]

    def row_versions(self) -> np.ndarray:
        return self._rows.versions[: self._rows.size]

    def replacements(self) -> int:
        return self._rows.replacements

    def field(self, name: str) -> ColumnView:
        column = self._fields.get(name)
        if column is None:  # a field nobody holds: read an empty column, do not keep it
            column = ValueColumn(self._interner)
        return column.view(self._rows.size)

    def tag(self, tag_id: str) -> TagColumn | None:
        return self._tags.get(tag_id)

    def series(self, key: BehaviourKey) -> BehaviourSeries | None:
        return self._series.get(key)

    # ------------------------------------------------------------------- writing

    def _write(self, latest: dict[str, CustomerFacts]) -> None:
        rows, existed = self._rows.assign(list(latest))
        if existed.any():
            self._clear(rows[existed])
        batch = Batch()
        for row, facts in zip(rows.tolist(), latest.values(), strict=True):
            batch.add(row, facts)
        for name, cells in batch.fields.items():
            self._field(name).write(_rows_of(cells), [cell[1] for cell in cells])
        for name, (stat_rows, values) in batch.stat_cells().items():
            self._field(name).write(np.array(stat_rows, dtype=np.int64), values)
        for tag_id, tag_cells in batch.tags.items():
            column = self._tags.setdefault(tag_id, TagColumn(self._interner))
            values, expiries = [c[1] for c in tag_cells], [c[2] for c in tag_cells]
            column.write(_rows_of(tag_cells), values, expiries)
        for key, entries in batch.behaviour.items():
            flat = np.fromiter(chain.from_iterable(entries), np.int64, 3 * len(entries))
            self._append_behaviour(key, flat.reshape(-1, 3))

    def _append_behaviour(self, key: BehaviourKey, entries: np.ndarray) -> None:
        """`entries`: one (row, day ordinal, count) per line."""
        rows = entries[:, 0]
        series = self._series.get(key)
        if series is None:  # clean as of now: its entries are all being written
            series = self._series[key] = BehaviourSeries(self._rows.replacements)
        series.append(rows, entries[:, 1], entries[:, 2], self._rows.versions[rows])

    def _clear(self, rows: np.ndarray) -> None:
        """Forget the values held in `rows` (their behaviour entries are already stale)."""
        for column in self._fields.values():
            column.clear(rows)
        for tag in self._tags.values():
            tag.clear(rows)

    def _field(self, name: str) -> ValueColumn:
        column = self._fields.get(name)
        if column is None:
            column = self._fields[name] = ValueColumn(self._interner)
        return column

    # -------------------------------------------------------------------- order

    def _order_of(self, reuses: int) -> IdOrder | None:
        """Rows [0, covered) in ascending id order, as they were at `reuses`; None if rows
        were reused since. Rows added later are left to the caller (a short tail to merge),
        until they are an eighth of the rows: then the order is sorted afresh."""
        if reuses != self._rows.reuses:
            return None
        cached, size = self._order, self._rows.size
        if cached is None or cached[0] != reuses or size - cached[1] > max(1024, cached[1] // 8):
            # Fixed-width unicode sorts in C, by code point: Python's str order.
            order = np.argsort(self._rows.ids[:size].astype(str), kind="stable")
            cached = self._order = (reuses, size, order)
        return cached[2], cached[1]


class AudienceEngine:
    """Per process: one `TenantAudience` per tenant."""

    def __init__(self) -> None:
        self._tenants: dict[str, TenantAudience] = {}

    def tenant(self, tenant: str) -> TenantAudience:
        """The tenant's audience, created empty on first use."""
        audience = self._tenants.get(tenant)
        if audience is None:
            audience = self._tenants[tenant] = TenantAudience()
        return audience

    def drop(self, tenant: str) -> None:
        self._tenants.pop(tenant, None)

    def __iter__(self) -> Iterator[str]:
        return iter(self._tenants)
