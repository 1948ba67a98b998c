"""Turning `CustomerFacts` into column writes, many customers at a time.

Upserts are gathered per column (field, tag, behaviour series) into plain lists of tuples first
and then written with one numpy assignment per column, which is what makes a bulk load fast:
the Python work per customer is a few dict walks and list appends.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field
from datetime import date

from services.tagging.domain.rules.catalogue import CONSENT_PREFIX, CUSTOM_PREFIX, STAT_FIELDS
from services.tagging.domain.rules.facts import BehaviourKey, CustomerFacts, PurchaseFacts

#: Attribute names `read_field` never reads from `attributes`: stats and prefixed names win.
_SHADOWED = STAT_FIELDS
_PREFIXES = (CUSTOM_PREFIX, CONSENT_PREFIX)
#: (row, value)
Cell = tuple[int, object]
#: (row, value, expires_at)
TagCell = tuple[int, object, object]
#: (row, day ordinal, count)
Entry = tuple[int, int, int]


def _stat_columns(stats: list[PurchaseFacts]) -> dict[str, list[object]]:
    # The properties' formulas inline: a million property calls cost seconds in a load.
    # Without refunds the refund rate is 0.0 whatever the total, as the property computes it.
    return {
        "order_count": [s.order_count for s in stats],
        "total_amount": [s.total_amount for s in stats],
        "net_amount": [s.total_amount - s.refunded_amount for s in stats],
        "refund_rate": [s.refund_rate if s.refunded_amount else 0.0 for s in stats],
        "first_purchase_at": [s.first_purchase_at for s in stats],
        "last_purchase_at": [s.last_purchase_at for s in stats],
    }


@dataclass
class Batch:
    fields: defaultdict[str, list[Cell]] = field(default_factory=lambda: defaultdict(list))
    tags: defaultdict[str, list[TagCell]] = field(default_factory=lambda: defaultdict(list))
    behaviour: defaultdict[BehaviourKey, list[Entry]] = field(
        default_factory=lambda: defaultdict(list)
    )
    #: Stats are held by every customer: kept whole, split into columns in `stat_cells`.
    stats: list[PurchaseFacts] = field(default_factory=list)
    stat_rows: list[int] = field(default_factory=list)

    def add(self, row: int, facts: CustomerFacts) -> None:
        fields = self.fields
        for name, value in facts.attributes.items():
            if value is not None and name not in _SHADOWED and not name.startswith(_PREFIXES):
                fields[name].append((row, value))
        for key, value in facts.custom.items():
            if value is not None:
                fields[CUSTOM_PREFIX + key].append((row, value))
        for key, granted in facts.consents.items():
            fields[CONSENT_PREFIX + key].append((row, granted))
        self.stats.append(facts.stats)
        self.stat_rows.append(row)
        for tag_id, assignment in facts.tags.items():
            self.tags[tag_id].append((row, assignment.value, assignment.expires_at))
        for key, daily in facts.behaviour.items():
            self.behaviour[key].extend(_entries(row, daily))

    def stat_cells(self) -> dict[str, tuple[list[int], list[object]]]:
        """Rows and values per stat field; a missing (None) value is written as missing."""
        columns = _stat_columns(self.stats)
        return {name: (self.stat_rows, values) for name, values in columns.items()}


def _entries(row: int, daily: dict[date, int]) -> list[Entry]:
    return [(row, day.toordinal(), count) for day, count in daily.items()]


def latest_by_id(facts: list[CustomerFacts]) -> dict[str, CustomerFacts]:
    """The last facts given for each customer: within one batch, a later upsert wins."""
    return {f.customer_id: f for f in facts}
