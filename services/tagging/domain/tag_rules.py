"""Tag rules (自动打标签): a rule of the rule language that puts a tag on the customers it holds
for, and takes it off again when it stops holding. Pure: no I/O.

Several rules may assign the same tag (e.g. two ways to be `high_value`): the tag is wanted
when any active rule for it holds, with the value of the holding rule of highest priority.
A rule only ever takes off a tag a rule put on (source `rule`); a tag put on by hand or by a
batch is left alone, and not taken over either.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum

from pydantic import BaseModel, ConfigDict, Field

from servicekit.errors import NotFound
from services.tagging.domain.rules.ast import (
    AttributeCondition,
    BehaviourCondition,
    Node,
    leaves,
)
from services.tagging.domain.rules.catalogue import CUSTOM_PREFIX, CustomField, CustomFieldType
from services.tagging.domain.rules.compile import Predicate
from services.tagging.domain.rules.facts import CustomerFacts

TagValue = str | int | float | None
RULE_SOURCE = "rule"
#: Operators whose answer changes as time passes, with the facts unchanged.
TIME_OPS = frozenset({"within_last_days", "not_within_last_days"})
#: Fields computed from `now`.
TIME_FIELDS = frozenset({"recency_days"})


class RuleState(StrEnum):
    ACTIVE = "active"
    PAUSED = "paused"


class TagRule(BaseModel):
    """A stored tag rule. `version` grows with every change, so compiled rules can be cached."""

    model_config = ConfigDict(frozen=True, arbitrary_types_allowed=True)

    tenant: str
    rule_id: str
    name: str
    tag_id: str
    #: For a valued tag (enum, number): the value the rule assigns.
    value: TagValue = None
    rule: Node
    state: RuleState = RuleState.ACTIVE
    #: When rules for one tag disagree on its value, the higher priority wins.
    priority: int = 0
    time_based: bool = False
    version: int = 1
    created_by: str
    created_at: datetime
    updated_by: str
    updated_at: datetime


class TagRuleNotFound(NotFound):
    def __init__(self, rule_id: str) -> None:
        super().__init__(f"no tag rule {rule_id}", code="tag_rule_not_found")


def is_time_based(rule: Node) -> bool:
    """Can the rule change its answer with time alone? Then the sweep re-evaluates it.

    `before` / `after` / `between` compare against fixed dates, so a stored date's answer
    never changes; windows relative to now (within / not within the last N days, days since
    the last purchase, behaviour counts over the last N days) do."""
    return any(_leaf_is_time_based(leaf) for _, leaf in leaves(rule))


def _leaf_is_time_based(leaf: Node) -> bool:
    if isinstance(leaf, BehaviourCondition):
        return True
    if isinstance(leaf, AttributeCondition):
        return leaf.op in TIME_OPS or leaf.field in TIME_FIELDS
    return False


def custom_fields_for(rule: Node, seen: Mapping[str, CustomFieldType]) -> list[CustomField]:
    """Custom fields for the catalogue: every key seen in an event with its inferred type,
    and any other `custom.<key>` the rule names as text (a field nobody has filled yet)."""
    named = {
        leaf.field.removeprefix(CUSTOM_PREFIX)
        for _, leaf in leaves(rule)
        if isinstance(leaf, AttributeCondition) and leaf.field.startswith(CUSTOM_PREFIX)
    }
    types: dict[str, CustomFieldType] = {key: "text" for key in named}
    types.update(seen)
    return [CustomField(key=key, type=kind) for key, kind in sorted(types.items())]


@dataclass(frozen=True)
class CompiledRule:
    rule_id: str
    tag_id: str
    value: TagValue
    priority: int
    holds: Predicate


@dataclass(frozen=True)
class Current:
    """A tag as it is on the customer now."""

    tag_id: str
    value: TagValue
    source: str


@dataclass(frozen=True)
class Change:
    tag_id: str
    rule_id: str
    #: True: put the tag on with `value`; False: take it off.
    assign: bool
    value: TagValue = None


def wanted_tags(
    rules: Sequence[CompiledRule], facts: CustomerFacts, now: datetime
) -> dict[str, tuple[str, TagValue]]:
    """Tag id -> (rule id, value) for every tag some rule holds for; highest priority wins."""
    wanted: dict[str, tuple[str, TagValue]] = {}
    for rule in sorted(rules, key=lambda r: (-r.priority, r.rule_id)):
        if rule.tag_id not in wanted and rule.holds(facts, now, {}):
            wanted[rule.tag_id] = (rule.rule_id, rule.value)
    return wanted


def plan_changes(
    rules: Sequence[CompiledRule],
    facts: CustomerFacts | None,
    current: Iterable[Current],
    now: datetime,
) -> list[Change]:
    """What to put on and take off so the customer's rule tags agree with the rules. `facts`
    None (a merged customer): no rule holds."""
    wanted = wanted_tags(rules, facts, now) if facts is not None else {}
    governed = {rule.rule_id: rule.tag_id for rule in rules}
    now_on = {c.tag_id: c for c in current}
    changes = [
        Change(tag_id, rule_id, assign=True, value=value)
        for tag_id, (rule_id, value) in wanted.items()
        if _should_assign(now_on.get(tag_id), value)
    ]
    for tag_id in sorted(set(governed.values()) - set(wanted)):
        present = now_on.get(tag_id)
        if present is not None and present.source == RULE_SOURCE:
            rule_id = next(r for r, t in governed.items() if t == tag_id)
            changes.append(Change(tag_id, rule_id, assign=False))
    return changes


def _should_assign(present: Current | None, value: TagValue) -> bool:
    if present is None:
        return True
    # A tag someone set by hand is theirs: the rule neither overwrites nor adopts it.
    return present.source == RULE_SOURCE and present.value != value


class Preview(BaseModel):
    """How many of the tenant's customers the rule holds for now, and some of them."""

    matching: int
    scanned: int
    sample: list[str] = Field(default_factory=list)
