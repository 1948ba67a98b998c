"""Tags, tag categories and assignments: the rules, without I/O.

An attribute label (label) is a property of the customer itself (gender: female); a business
tag (tag) is attached by the business (member level: gold) — seeds 003. Both share one model;
`kind` says which, so the console can show them apart.
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterable
from datetime import date, datetime, time, timedelta
from enum import StrEnum
from typing import Literal

from pydantic import BaseModel, Field

from servicekit.errors import Conflict, InvalidInput
from services.tagging.domain.rules.catalogue import TagSpec, TagValueKind
from services.tagging.domain.rules.facts import TagAssignment

SLUG = re.compile(r"^[a-z][a-z0-9_-]{1,62}$")
MAX_OPTIONS = 100
TagValue = str | int | float | None


class TagKind(StrEnum):
    ATTRIBUTE_LABEL = "attribute_label"
    BUSINESS_TAG = "business_tag"


class TagState(StrEnum):
    ACTIVE = "active"
    ARCHIVED = "archived"


class Source(StrEnum):
    MANUAL = "manual"
    BATCH = "batch"
    RULE = "rule"
    IMPORT = "import"


#: The reason a tag rule gives when its condition stops holding.
RULE_NO_LONGER_HOLDS = "rule_no_longer_holds"
EXPIRED = "expired"


class ExpiryPolicy(BaseModel):
    """When an assignment of the tag lapses unless the assigner says otherwise."""

    kind: Literal["none", "after_days", "fixed_date"] = "none"
    days: int | None = Field(default=None, ge=1, le=3650)
    on: date | None = None

    def expires_at(self, now: datetime) -> datetime | None:
        if self.kind == "after_days" and self.days:
            return now + timedelta(days=self.days)
        if self.kind == "fixed_date" and self.on:
            return datetime.combine(self.on, time.min, tzinfo=now.tzinfo)
        return None


class Category(BaseModel):
    tenant: str
    category_id: str
    name: str
    parent: str | None = None
    order: int = 0


class Tag(BaseModel):
    tenant: str
    tag_id: str
    name: str
    category: str
    kind: TagKind = TagKind.BUSINESS_TAG
    value_kind: TagValueKind = TagValueKind.FLAG
    options: list[str] = Field(default_factory=list)
    unit: str | None = None
    min: float | None = None
    max: float | None = None
    #: "all", or the owner / store ids the tag may be used for.
    scope: Literal["all"] | list[str] = "all"
    owner: str | None = None
    expiry: ExpiryPolicy = Field(default_factory=ExpiryPolicy)
    description: str = ""
    state: TagState = TagState.ACTIVE

    def spec(self) -> TagSpec:
        """What the rule language needs of this tag."""
        return TagSpec(self.tag_id, self.name, self.value_kind, frozenset(self.options))


class Assignment(BaseModel):
    """A tag on a customer: who put it there, how, when, and until when."""

    tenant: str
    customer_id: str
    tag_id: str
    value: TagValue = None
    source: Source
    assigned_by: str
    assigned_at: datetime
    expires_at: datetime | None = None

    def active(self, now: datetime) -> bool:
        return self.expires_at is None or self.expires_at > now


# --------------------------------------------------------------------------- validation


def check_slug(value: str, *, field: str) -> str:
    if not SLUG.fullmatch(value):
        raise InvalidInput(
            "an id is 2-63 lowercase letters, digits, '-' or '_', starting with a letter",
            field=field,
        )
    return value


def check_tag_shape(tag: Tag) -> Tag:
    """A tag's value kind agrees with its options and bounds."""
    if tag.value_kind == TagValueKind.ENUM:
        if not tag.options:
            raise InvalidInput("an enum tag needs at least one option", field="options")
        if len(set(tag.options)) != len(tag.options):
            raise InvalidInput("the options name a value twice", field="options")
    elif tag.options:
        raise InvalidInput("only an enum tag has options", field="options")
    if tag.value_kind != TagValueKind.NUMBER and (tag.min, tag.max, tag.unit) != (None,) * 3:
        raise InvalidInput("only a number tag has a unit, min or max", field="value_kind")
    if tag.min is not None and tag.max is not None and tag.min > tag.max:
        raise InvalidInput("min is above max", field="min")
    return tag


def check_category_parent(parent: Category | None, *, parent_id: str | None) -> None:
    """Categories nest two levels deep at most."""
    if parent_id is None:
        return
    if parent is None:
        raise InvalidInput(f"no category {parent_id}", field="parent", code="unknown_category")
    if parent.parent is not None:
        raise InvalidInput("categories nest two levels at most", field="parent")


def check_value_kind_change(old: Tag, new: Tag, *, in_use: bool) -> None:
    """Customers' values would stop meaning anything if the kind changed under them."""
    if in_use and old.value_kind != new.value_kind:
        raise Conflict("the tag is on customers: its value kind cannot change", code="tag_in_use")
    if in_use and old.value_kind == TagValueKind.ENUM and set(old.options) - set(new.options):
        raise Conflict("the tag is on customers: options cannot be removed", code="tag_in_use")


def check_assignable(tag: Tag | None, tag_id: str) -> Tag:
    if tag is None:
        raise InvalidInput(f"no tag {tag_id}", field="tag_id", code="unknown_tag")
    if tag.state == TagState.ARCHIVED:
        raise Conflict(f"the tag {tag_id} is archived", code="tag_archived")
    return tag


def check_value(tag: Tag, value: TagValue) -> TagValue:
    """The value an assignment of `tag` may carry; raises with field `value` otherwise."""
    if tag.value_kind == TagValueKind.FLAG:
        if value is not None:
            raise InvalidInput("a flag tag carries no value", field="value")
        return None
    if tag.value_kind == TagValueKind.ENUM:
        if not isinstance(value, str) or value not in tag.options:
            raise InvalidInput(f"the value must be one of {tag.options}", field="value")
        return value
    return _check_number(tag, value)


def _check_number(tag: Tag, value: TagValue) -> TagValue:
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise InvalidInput("a number tag needs a finite number", field="value")
    if (tag.min is not None and value < tag.min) or (tag.max is not None and value > tag.max):
        raise InvalidInput(f"the value must lie in [{tag.min}, {tag.max}]", field="value")
    return value


def check_expiry(expires_at: datetime | None, now: datetime) -> None:
    if expires_at is not None and expires_at <= now:
        raise InvalidInput("the expiry must be in the future", field="expires_at")


# --------------------------------------------------------------------------- assignment


def unchanged(existing: Assignment | None, value: TagValue, expires_at: datetime | None) -> bool:
    """Assigning what is already there changes nothing (and emits nothing)."""
    return existing is not None and existing.value == value and existing.expires_at == expires_at


def tag_facts(assignments: Iterable[Assignment], now: datetime) -> dict[str, TagAssignment]:
    """The customer's tags as rules see them: expired ones are not there."""
    return {
        a.tag_id: TagAssignment(value=a.value, expires_at=a.expires_at)
        for a in assignments
        if a.active(now)
    }


def may_remove(existing: Assignment, reason: str) -> bool:
    """A rule takes off only what a rule put on: a tag an operator set by hand stays when
    the rule's condition stops holding. Operators may remove any tag (recorded)."""
    return reason != RULE_NO_LONGER_HOLDS or existing.source == Source.RULE


# --------------------------------------------------------------------------- templates


class TemplateCategory(BaseModel):
    category_id: str
    name: str
    parent: str | None = None


class TemplateTag(BaseModel):
    tag_id: str
    name: str
    category: str
    kind: TagKind = TagKind.BUSINESS_TAG
    value_kind: TagValueKind = TagValueKind.FLAG
    options: list[str] = Field(default_factory=list)
    unit: str | None = None
    expiry: ExpiryPolicy = Field(default_factory=ExpiryPolicy)


class TagTemplate(BaseModel):
    """A named set of categories and tags created for a tenant in one call (标签模板)."""

    template_id: str
    name: str
    categories: list[TemplateCategory]
    tags: list[TemplateTag]


def _label(tag_id: str, name: str, category: str, options: list[str]) -> TemplateTag:
    return TemplateTag(
        tag_id=tag_id,
        name=name,
        category=category,
        kind=TagKind.ATTRIBUTE_LABEL,
        value_kind=TagValueKind.ENUM,
        options=options,
    )


TEMPLATES: dict[str, TagTemplate] = {
    t.template_id: t
    for t in (
        TagTemplate(
            template_id="apparel-retail",
            name="Apparel retail",
            categories=[
                TemplateCategory(category_id="apparel-profile", name="Profile"),
                TemplateCategory(category_id="apparel-style", name="Style"),
                TemplateCategory(category_id="apparel-value", name="Value"),
            ],
            tags=[
                _label("apparel-size", "Size", "apparel-profile", ["xs", "s", "m", "l", "xl"]),
                _label("apparel-style", "Style", "apparel-style", ["casual", "formal", "sport"]),
                TemplateTag(tag_id="apparel-vip", name="VIP", category="apparel-value"),
                TemplateTag(
                    tag_id="apparel-new-season",
                    name="Interested in new season",
                    category="apparel-style",
                    expiry=ExpiryPolicy(kind="after_days", days=90),
                ),
            ],
        ),
        TagTemplate(
            template_id="maternal-baby",
            name="Maternal & baby",
            categories=[
                TemplateCategory(category_id="baby-family", name="Family"),
                TemplateCategory(category_id="baby-stage", name="Stage", parent="baby-family"),
            ],
            tags=[
                _label(
                    "baby-stage", "Baby stage", "baby-stage", ["pregnant", "0-6m", "6-12m", "1-3y"]
                ),
                TemplateTag(
                    tag_id="baby-young-parent", name="Young parent", category="baby-family"
                ),
                TemplateTag(
                    tag_id="baby-children",
                    name="Children",
                    category="baby-family",
                    value_kind=TagValueKind.NUMBER,
                    unit="children",
                ),
            ],
        ),
    )
}
