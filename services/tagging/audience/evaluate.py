"""A rule over the columns of one tenant, evaluated as numpy masks, one per node.

`All` / `Any` are `&` / `|` of their children's masks, `Not` and `not_in` of a segment are the
complement among the tenant's customers (`alive`), and a `SegmentCondition` is the mask of the
referenced segment's own rule, computed once per evaluation however often it is referenced.
The meaning is `domain.rules.evaluate.matches`, which the property tests hold it to.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime, timedelta
from typing import Protocol

import numpy as np

from services.tagging.audience.behaviour import BehaviourSeries
from services.tagging.audience.columns import ColumnView, TagColumn
from services.tagging.audience.compare import Mask, compare, present
from services.tagging.audience.encoding import DAY_US, INSTANT, NUMBER, instant_us
from services.tagging.domain.rules.ast import (
    All,
    Any,
    AttributeCondition,
    BehaviourCondition,
    Node,
    Not,
    SegmentCondition,
    TagCondition,
)
from services.tagging.domain.rules.facts import BehaviourKey

#: Derived from `last_purchase_at` at the evaluation's `now`, never stored.
RECENCY_FIELD = "recency_days"


class SegmentCycleError(ValueError):
    """A segment's rule refers back to itself; validation rejects such rules on write."""


class Columns(Protocol):
    """What an evaluation reads of a tenant, over rows [0, size)."""

    def alive(self) -> Mask: ...
    def row_versions(self) -> np.ndarray: ...
    def replacements(self) -> int: ...
    def field(self, name: str) -> ColumnView: ...
    def tag(self, tag_id: str) -> TagColumn | None: ...
    def series(self, key: BehaviourKey) -> BehaviourSeries | None: ...


class Evaluation:
    """One evaluation at one `now`: segment masks are remembered for its length only."""

    def __init__(
        self, columns: Columns, now: datetime, segment_rules: Mapping[str, Node] = {}
    ) -> None:
        self._columns = columns
        self._now = now
        self._now_us = instant_us(now)
        self._alive = columns.alive()
        self._segment_rules = segment_rules
        self._segments: dict[str, Mask] = {}
        self._pending: set[str] = set()

    def mask(self, rule: Node) -> Mask:
        """Rows whose customer satisfies `rule`; always within `alive`."""
        if isinstance(rule, All | Any):
            return self._group(rule)
        if isinstance(rule, Not):
            return self._alive & ~self.mask(rule.child)
        if isinstance(rule, AttributeCondition):
            return self._attribute(rule)
        if isinstance(rule, TagCondition):
            return self._tag(rule)
        if isinstance(rule, BehaviourCondition):
            return self._behaviour(rule)
        if isinstance(rule, SegmentCondition):
            members = self._segment(rule.segment_id)
            return members if rule.op == "in" else self._alive & ~members
        raise TypeError(f"not a rule node: {rule!r}")

    def _group(self, rule: All | Any) -> Mask:
        first, *rest = rule.children
        result = self.mask(first).copy()
        for child in rest:
            if isinstance(rule, All):
                result &= self.mask(child)
            else:
                result |= self.mask(child)
        return result

    def _attribute(self, rule: AttributeCondition) -> Mask:
        view = self._recency() if rule.field == RECENCY_FIELD else self._columns.field(rule.field)
        if rule.op == "exists":
            return present(view)
        return compare(view, rule.op, rule.value, self._now_us)

    def _recency(self) -> ColumnView:
        """Whole days since the last purchase, as `PurchaseFacts.recency_days` counts them."""
        last = self._columns.field("last_purchase_at")
        bought = last.kind == INSTANT
        days = np.maximum(0, (self._now_us - last.payload) // DAY_US).astype(np.float64)
        kind = np.where(bought, np.int8(NUMBER), np.int8(0))
        return ColumnView(kind, days.view(np.int64), {}, last.interner)

    def _tag(self, rule: TagCondition) -> Mask:
        column = self._columns.tag(rule.tag_id)
        size = len(self._alive)
        if column is None:
            return np.zeros(size, dtype=bool)
        active = column.active(size, self._now_us)
        if rule.op == "has":
            return active
        return active & compare(column.value.view(size), rule.op, rule.value, self._now_us)

    def _behaviour(self, rule: BehaviourCondition) -> Mask:
        target = rule.target
        key = (rule.kind, target.key, target.value) if target else (rule.kind, "", "")
        series = self._columns.series(key)
        today = self._now.date()
        first_day = today - timedelta(days=rule.within_days - 1)
        if series is None:
            counts = np.zeros(len(self._alive))
        else:
            counts = series.window(
                first_day.toordinal(),
                today.toordinal(),
                self._columns.row_versions(),
                self._columns.replacements(),
            )
        held = counts >= rule.count if rule.op == "at_least" else counts <= rule.count
        return self._alive & held

    def _segment(self, segment_id: str) -> Mask:
        known = self._segments.get(segment_id)
        if known is not None:
            return known
        rule = self._segment_rules.get(segment_id)
        if rule is None:
            return np.zeros(len(self._alive), dtype=bool)
        if segment_id in self._pending:
            raise SegmentCycleError(f"segment {segment_id} refers to itself")
        self._pending.add(segment_id)
        members = self._segments[segment_id] = self.mask(rule)
        self._pending.discard(segment_id)
        return members
