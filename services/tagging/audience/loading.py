"""Turning `CustomerFacts` into column writes, many customers at a time.

Upserts are gathered per column (field, tag, behaviour series) into plain lists first and then
written with one numpy assignment per column, which is what makes a bulk load fast: the Python
work per customer is a few dict walks and list appends.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field

from services.tagging.domain.rules.catalogue import CONSENT_PREFIX, CUSTOM_PREFIX, STAT_FIELDS
from services.tagging.domain.rules.facts import BehaviourKey, CustomerFacts

#: Attribute names `read_field` never reads from `attributes`: stats and prefixed names win.
_SHADOWED = STAT_FIELDS
_PREFIXES = (CUSTOM_PREFIX, CONSENT_PREFIX)


@dataclass
class Cells:
    """(row, value) pairs bound for one column."""

    rows: list[int] = field(default_factory=list)
    values: list[object] = field(default_factory=list)

    def add(self, row: int, value: object) -> None:
        self.rows.append(row)
        self.values.append(value)


@dataclass
class TagCells(Cells):
    expiries: list[object] = field(default_factory=list)


@dataclass
class Entries:
    """(row, day ordinal, count) triples bound for one behaviour series."""

    rows: list[int] = field(default_factory=list)
    days: list[int] = field(default_factory=list)
    counts: list[int] = field(default_factory=list)


@dataclass
class Batch:
    fields: defaultdict[str, Cells] = field(default_factory=lambda: defaultdict(Cells))
    tags: defaultdict[str, TagCells] = field(default_factory=lambda: defaultdict(TagCells))
    behaviour: defaultdict[BehaviourKey, Entries] = field(
        default_factory=lambda: defaultdict(Entries)
    )

    def add(self, row: int, facts: CustomerFacts) -> None:
        self._attributes(row, facts)
        self._prefixed(row, CUSTOM_PREFIX, facts.custom)
        self._prefixed(row, CONSENT_PREFIX, facts.consents)
        self._stats(row, facts)
        self._tags(row, facts)
        self._behaviour(row, facts)

    def _attributes(self, row: int, facts: CustomerFacts) -> None:
        fields = self.fields
        for name, value in facts.attributes.items():
            if value is not None and name not in _SHADOWED and not name.startswith(_PREFIXES):
                fields[name].add(row, value)

    def _prefixed(self, row: int, prefix: str, values: dict[str, object]) -> None:
        fields = self.fields
        for key, value in values.items():
            if value is not None:
                fields[prefix + key].add(row, value)

    def _stats(self, row: int, facts: CustomerFacts) -> None:
        stats, fields = facts.stats, self.fields
        fields["order_count"].add(row, stats.order_count)
        fields["total_amount"].add(row, stats.total_amount)
        fields["net_amount"].add(row, stats.net_amount)
        fields["refund_rate"].add(row, stats.refund_rate)
        if stats.first_purchase_at is not None:
            fields["first_purchase_at"].add(row, stats.first_purchase_at)
        if stats.last_purchase_at is not None:
            fields["last_purchase_at"].add(row, stats.last_purchase_at)

    def _tags(self, row: int, facts: CustomerFacts) -> None:
        for tag_id, assignment in facts.tags.items():
            cells = self.tags[tag_id]
            cells.add(row, assignment.value)
            cells.expiries.append(assignment.expires_at)

    def _behaviour(self, row: int, facts: CustomerFacts) -> None:
        for key, daily in facts.behaviour.items():
            entries = self.behaviour[key]
            for day, count in daily.items():
                entries.rows.append(row)
                entries.days.append(day.toordinal())
                entries.counts.append(count)


def latest_by_id(facts: Iterable[CustomerFacts]) -> dict[str, CustomerFacts]:
    """The last facts given for each customer: within one batch, a later upsert wins."""
    return {f.customer_id: f for f in facts}
