"""Segments (人群圈选): a named rule of the rule language whose members are the customers it
holds for, kept current as customers change. Pure: no I/O.

Membership is a function of a customer's facts, tags and the tenant's segment rules at `now`:
segments that test membership of other segments are evaluated after them (dependency order),
so one pass over a customer answers every segment. A segment's members are announced as they
join and leave; a build also freezes the member list as a snapshot, so a campaign can target
a list that no longer moves.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from graphlib import CycleError, TopologicalSorter

from pydantic import BaseModel, ConfigDict

from servicekit.errors import Conflict, NotFound
from services.tagging.domain.rules.ast import Node, SegmentCondition, leaves
from services.tagging.domain.rules.compile import Predicate
from services.tagging.domain.rules.facts import CustomerFacts

#: Every customer event evaluates every segment of the tenant; this keeps that bounded.
MAX_SEGMENTS_PER_TENANT = 500


class LastBuild(BaseModel):
    model_config = ConfigDict(frozen=True)

    build_id: str
    snapshot_id: str
    rule_version: int
    count: int
    joined: int
    left: int
    built_at: datetime


class Segment(BaseModel):
    """A stored segment. `version` grows with every change of its rule or name."""

    model_config = ConfigDict(frozen=True, arbitrary_types_allowed=True)

    tenant: str
    segment_id: str
    name: str
    description: str = ""
    rule: Node
    #: Does time alone change who matches (windows relative to now)? Then builds refresh it.
    time_based: bool = False
    template_id: str | None = None
    version: int = 1
    last_build: LastBuild | None = None
    created_by: str
    created_at: datetime
    updated_by: str
    updated_at: datetime


class SegmentNotFound(NotFound):
    def __init__(self, segment_id: str) -> None:
        super().__init__(f"no segment {segment_id}", code="segment_not_found")


class SegmentInUse(Conflict):
    def __init__(self, segment_id: str, users: Iterable[str]) -> None:
        names = ", ".join(sorted(users))
        super().__init__(
            f"segment {segment_id} is tested by other segments ({names}); change them first",
            code="segment_in_use",
        )


class TooManySegments(Conflict):
    def __init__(self) -> None:
        super().__init__(
            f"a tenant may have at most {MAX_SEGMENTS_PER_TENANT} segments",
            code="too_many_segments",
        )


def referenced_segments(rule: Node) -> set[str]:
    return {leaf.segment_id for _, leaf in leaves(rule) if isinstance(leaf, SegmentCondition)}


def users_of(segment_id: str, rules: Mapping[str, Node]) -> set[str]:
    """The segments whose rule tests membership of `segment_id`."""
    return {other for other, rule in rules.items() if segment_id in referenced_segments(rule)}


def dependency_order(rules: Mapping[str, Node]) -> list[str]:
    """Segment ids, each after the segments its rule tests. Validation refuses cycles on write;
    should one exist anyway (edited concurrently), the ids come back in plain order and a
    membership test of a segment not yet evaluated reads as "not a member"."""
    graph = {sid: referenced_segments(rule) & rules.keys() for sid, rule in rules.items()}
    try:
        return list(TopologicalSorter(graph).static_order())
    except CycleError:
        return sorted(rules)


@dataclass(frozen=True)
class CompiledSegment:
    segment_id: str
    holds: Predicate


def memberships(
    segments: Sequence[CompiledSegment], facts: CustomerFacts | None, now: datetime
) -> set[str]:
    """The segments (given in dependency order) the customer is a member of at `now`.
    No facts (merged, erased, never heard of): none."""
    if facts is None:
        return set()
    member: dict[str, bool] = {}
    for segment in segments:
        member[segment.segment_id] = segment.holds(facts, now, member)
    return {sid for sid, yes in member.items() if yes}


@dataclass(frozen=True)
class MembershipChange:
    joined: frozenset[str]
    left: frozenset[str]

    @property
    def changed(self) -> bool:
        return bool(self.joined or self.left)


def membership_change(
    before: Iterable[str], after: Iterable[str], evaluated: Iterable[str]
) -> MembershipChange:
    """What changed among the `evaluated` segments. Segments not evaluated (deleted, or added
    after this pass started) are left as they are: their own build or deletion decides."""
    scope = set(evaluated)
    was, now = set(before) & scope, set(after) & scope
    return MembershipChange(joined=frozenset(now - was), left=frozenset(was - now))
