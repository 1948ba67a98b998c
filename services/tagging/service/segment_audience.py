"""Questions the audience engine answers in milliseconds: how many customers a rule selects
while it is being edited (before any build), and a segment's portrait."""

from __future__ import annotations

import time
from dataclasses import dataclass
from datetime import datetime

from pydantic import BaseModel

from servicekit.clock import utcnow
from servicekit.runtime import Runtime
from services.tagging.domain.portraits import (
    DIMENSIONS,
    TOP_TAGS,
    DimensionCounts,
    counted,
    tag_dimension,
    within,
)
from services.tagging.domain.rules.ast import Node
from services.tagging.domain.segments import Segment
from services.tagging.service.audience import keeper_of
from services.tagging.store.segments import SegmentStore
from services.tagging.store.tags import TagStore

SAMPLE = 20


class Estimate(BaseModel):
    """How many of the tenant's customers the rule selects now."""

    count: int
    customers: int
    share: float
    sample: list[str]
    computed_at: datetime
    took_ms: float


class Portrait(BaseModel):
    segment_id: str
    size: int
    dimensions: list[DimensionCounts]
    computed_at: datetime
    took_ms: float


@dataclass
class SegmentAudience:
    runtime: Runtime

    async def estimate(self, tenant: str, rule: Node) -> Estimate:
        audience = await keeper_of(self.runtime).current(tenant)
        started, now = time.perf_counter(), utcnow()
        rules = await self._rules(tenant)
        found = audience.evaluate(rule, now, rules)
        customers = len(audience)
        return Estimate(
            count=len(found),
            customers=customers,
            share=round(len(found) / customers, 4) if customers else 0.0,
            sample=found.sample(SAMPLE),
            computed_at=now,
            took_ms=round((time.perf_counter() - started) * 1000, 3),
        )

    async def portrait(self, tenant: str, segment: Segment) -> Portrait:
        audience = await keeper_of(self.runtime).current(tenant)
        started, now = time.perf_counter(), utcnow()
        rules = await self._rules(tenant)
        size = len(audience.evaluate(segment.rule, now, rules))

        def count(dimension_rule: Node) -> int:
            return len(audience.evaluate(dimension_rule, now, rules))

        dimensions = [
            counted(d, [count(within(segment.rule, b)) for b in d.buckets], size)
            for d in DIMENSIONS
        ]
        tags = tag_dimension(
            (t.tag_id, t.name) for t in await TagStore(self.runtime.db).all(tenant)
        )
        tag_counts = [count(within(segment.rule, b)) for b in tags.buckets]
        dimensions.append(counted(tags, tag_counts, size, top=TOP_TAGS))
        return Portrait(
            segment_id=segment.segment_id,
            size=size,
            dimensions=dimensions,
            computed_at=now,
            took_ms=round((time.perf_counter() - started) * 1000, 3),
        )

    async def _rules(self, tenant: str) -> dict[str, Node]:
        return {s.segment_id: s.rule for s in await SegmentStore(self.runtime.db).all(tenant)}
