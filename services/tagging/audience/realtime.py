"""Real-time membership: one customer's segments re-evaluated when an event changes them.

Per event the engine's columns are updated with `TenantAudience.upsert`, and the customer's
memberships are recomputed from their facts with the compiled predicates
(`domain.rules.compile.compile_rule`) rather than with a whole-tenant mask: one customer's
answer costs microseconds per segment. Segments are evaluated in dependency order, so a
segment that refers to another sees that segment's new membership.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime

from services.tagging.audience.evaluate import SegmentCycleError
from services.tagging.domain.rules.ast import Node, SegmentCondition, leaves
from services.tagging.domain.rules.compile import Predicate, compile_rule
from services.tagging.domain.rules.facts import CustomerFacts


@dataclass(frozen=True)
class MembershipChange:
    joined: tuple[str, ...]
    left: tuple[str, ...]

    def __bool__(self) -> bool:
        return bool(self.joined or self.left)


class SegmentPredicates:
    """A tenant's segment rules compiled once, for per-customer evaluation."""

    def __init__(self, segment_rules: Mapping[str, Node]) -> None:
        self._ordered = [
            (segment_id, compile_rule(segment_rules[segment_id]))
            for segment_id in dependency_order(segment_rules)
        ]

    def memberships(self, facts: CustomerFacts, now: datetime) -> dict[str, bool]:
        """Segment id -> is the customer a member, for every segment."""
        members: dict[str, bool] = {}
        for segment_id, predicate in self._ordered:
            members[segment_id] = predicate(facts, now, members)
        return members

    @property
    def predicates(self) -> list[tuple[str, Predicate]]:
        return list(self._ordered)


def membership_change(before: Mapping[str, bool], after: Mapping[str, bool]) -> MembershipChange:
    """Segments joined and left between two membership maps (absent = not a member)."""
    joined = tuple(s for s, member in after.items() if member and not before.get(s, False))
    left = tuple(s for s, member in before.items() if member and not after.get(s, False))
    return MembershipChange(joined, left)


def dependency_order(segment_rules: Mapping[str, Node]) -> list[str]:
    """Segment ids, each after the segments its rule refers to; raises on a cycle."""
    order: list[str] = []
    state: dict[str, str] = {}

    def visit(segment_id: str) -> None:
        if state.get(segment_id) == "done" or segment_id not in segment_rules:
            return
        if state.get(segment_id) == "visiting":
            raise SegmentCycleError(f"segment {segment_id} refers to itself")
        state[segment_id] = "visiting"
        for _, leaf in leaves(segment_rules[segment_id]):
            if isinstance(leaf, SegmentCondition):
                visit(leaf.segment_id)
        state[segment_id] = "done"
        order.append(segment_id)

    for segment_id in segment_rules:
        visit(segment_id)
    return order
