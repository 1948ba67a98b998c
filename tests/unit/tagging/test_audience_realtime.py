"""Real-time membership: a customer's segments from their facts, and what changed."""

from __future__ import annotations

import pytest

from services.tagging.audience import (
    AudienceEngine,
    SegmentCycleError,
    SegmentPredicates,
    membership_change,
)
from services.tagging.audience.realtime import dependency_order
from services.tagging.domain.rules.ast import all_of, attr, negate, segment, tag
from services.tagging.domain.rules.facts import TagAssignment
from tests.unit.tagging.factories import NOW, customer

SEGMENTS = {
    "vip_women": all_of(segment("women"), tag("vip")),
    "women": attr("gender", "eq", "female"),
    "others": negate(segment("women")),
    "dangling": segment("no_such_segment"),
}


def test_segments_come_after_the_segments_they_refer_to() -> None:
    order = dependency_order(SEGMENTS)
    assert sorted(order) == sorted(SEGMENTS)
    assert order.index("women") < order.index("vip_women")
    assert order.index("women") < order.index("others")


def test_a_cycle_is_refused() -> None:
    with pytest.raises(SegmentCycleError):
        SegmentPredicates({"a": segment("b"), "b": all_of(segment("a"), tag("x"))})


def test_per_customer_memberships_agree_with_the_whole_tenant_answer() -> None:
    people = [
        customer(gender="female", tags={"vip": TagAssignment()}),
        customer(gender="female"),
        customer(gender="male", tags={"vip": TagAssignment()}),
        customer(),
    ]
    people = [c.model_copy(update={"customer_id": f"c{i}"}) for i, c in enumerate(people)]
    audience = AudienceEngine().tenant("t")
    audience.upsert_many(people)
    predicates = SegmentPredicates(SEGMENTS)
    for segment_id in SEGMENTS:
        built = audience.evaluate(segment(segment_id), NOW, SEGMENTS)
        for who in people:
            member = predicates.memberships(who, NOW)[segment_id]
            assert member is (who.customer_id in built), (segment_id, who.customer_id)


def test_membership_change_names_the_segments_joined_and_left() -> None:
    predicates = SegmentPredicates(SEGMENTS)
    before = predicates.memberships(customer(gender="male"), NOW)
    after = predicates.memberships(customer(gender="female", tags={"vip": TagAssignment()}), NOW)
    change = membership_change(before, after)
    assert sorted(change.joined) == ["vip_women", "women"]
    assert change.left == ("others",)
    assert not membership_change(after, after)
    assert membership_change({}, {"new": True}).joined == ("new",)
