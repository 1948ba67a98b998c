"""Tag rules without I/O: value kinds, tag shapes, expiry policies, templates, removal."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from typing import Any

import pytest

from servicekit.errors import Conflict, InvalidInput
from services.tagging.domain.rules.catalogue import TagValueKind
from services.tagging.domain.tags import (
    RULE_NO_LONGER_HOLDS,
    TEMPLATES,
    Assignment,
    Category,
    ExpiryPolicy,
    Source,
    Tag,
    TagState,
    check_assignable,
    check_category_parent,
    check_expiry,
    check_slug,
    check_tag_shape,
    check_value,
    check_value_kind_change,
    may_remove,
    unchanged,
)
from services.tagging.sync.service import backoff

NOW = datetime(2025, 6, 15, 12, 0, tzinfo=UTC)


def a_tag(**fields: Any) -> Tag:
    return Tag(**{"tenant": "t1", "tag_id": "vip", "name": "VIP", "category": "value", **fields})


def an_assignment(**fields: Any) -> Assignment:
    defaults = {
        "tenant": "t1",
        "customer_id": "cus_1",
        "tag_id": "vip",
        "source": Source.MANUAL,
        "assigned_by": "ops-1",
        "assigned_at": NOW,
    }
    return Assignment(**{**defaults, **fields})


LEVEL = a_tag(tag_id="level", value_kind=TagValueKind.ENUM, options=["gold", "silver"])
SCORE = a_tag(tag_id="score", value_kind=TagValueKind.NUMBER, min=0, max=100)


@pytest.mark.parametrize(
    ("tag", "value"),
    [(a_tag(), None), (LEVEL, "gold"), (SCORE, 0), (SCORE, 99.5), (SCORE, 100)],
)
def test_a_value_that_suits_the_value_kind_is_kept(tag: Tag, value: Any) -> None:
    assert check_value(tag, value) == value


@pytest.mark.parametrize(
    ("tag", "value"),
    [
        (a_tag(), "yes"),
        (a_tag(), 1),
        (LEVEL, "bronze"),
        (LEVEL, None),
        (LEVEL, 1),
        (SCORE, "50"),
        (SCORE, True),
        (SCORE, float("nan")),
        (SCORE, -1),
        (SCORE, 101),
    ],
)
def test_a_value_that_does_not_suit_is_refused_on_the_value_field(tag: Tag, value: Any) -> None:
    with pytest.raises(InvalidInput) as refused:
        check_value(tag, value)
    assert refused.value.extra["errors"][0]["field"] == "value"


@pytest.mark.parametrize(
    ("fields", "field"),
    [
        ({"value_kind": TagValueKind.ENUM}, "options"),
        ({"value_kind": TagValueKind.ENUM, "options": ["a", "a"]}, "options"),
        ({"options": ["a"]}, "options"),
        ({"unit": "kg"}, "value_kind"),
        ({"value_kind": TagValueKind.NUMBER, "min": 5, "max": 1}, "min"),
    ],
)
def test_a_tag_shape_must_agree_with_its_value_kind(fields: dict[str, Any], field: str) -> None:
    with pytest.raises(InvalidInput) as refused:
        check_tag_shape(a_tag(**fields))
    assert refused.value.extra["errors"][0]["field"] == field


@pytest.mark.parametrize("slug", ["vip", "high-value", "a1_b2"])
def test_good_slugs_pass(slug: str) -> None:
    assert check_slug(slug, field="tag_id") == slug


@pytest.mark.parametrize("slug", ["", "v", "VIP", "1st", "has space", "x" * 64, "$gt"])
def test_bad_slugs_are_refused(slug: str) -> None:
    with pytest.raises(InvalidInput):
        check_slug(slug, field="tag_id")


def test_expiry_policies_give_the_default_expiry() -> None:
    assert ExpiryPolicy().expires_at(NOW) is None
    assert ExpiryPolicy(kind="after_days", days=7).expires_at(NOW) == NOW + timedelta(days=7)
    fixed = ExpiryPolicy(kind="fixed_date", on=date(2025, 12, 31)).expires_at(NOW)
    assert fixed == datetime(2025, 12, 31, tzinfo=UTC)


def test_an_expiry_in_the_past_is_refused() -> None:
    check_expiry(None, NOW)
    check_expiry(NOW + timedelta(seconds=1), NOW)
    with pytest.raises(InvalidInput):
        check_expiry(NOW, NOW)


def test_categories_nest_two_levels_at_most() -> None:
    top = Category(tenant="t1", category_id="family", name="Family")
    child = Category(tenant="t1", category_id="stage", name="Stage", parent="family")
    check_category_parent(None, parent_id=None)
    check_category_parent(top, parent_id="family")
    with pytest.raises(InvalidInput):
        check_category_parent(child, parent_id="stage")
    with pytest.raises(InvalidInput):
        check_category_parent(None, parent_id="nowhere")


def test_archived_and_unknown_tags_are_not_assignable() -> None:
    assert check_assignable(a_tag(), "vip").tag_id == "vip"
    with pytest.raises(Conflict):
        check_assignable(a_tag(state=TagState.ARCHIVED), "vip")
    with pytest.raises(InvalidInput):
        check_assignable(None, "vip")


def test_the_value_kind_of_a_tag_in_use_is_frozen() -> None:
    check_value_kind_change(a_tag(), SCORE, in_use=False)
    with pytest.raises(Conflict):
        check_value_kind_change(a_tag(), SCORE, in_use=True)
    with pytest.raises(Conflict):
        check_value_kind_change(LEVEL, LEVEL.model_copy(update={"options": ["gold"]}), in_use=True)
    check_value_kind_change(
        LEVEL, LEVEL.model_copy(update={"options": ["gold", "silver", "x"]}), in_use=True
    )


def test_assigning_what_is_there_changes_nothing() -> None:
    existing = an_assignment(value="gold")
    assert unchanged(existing, "gold", None)
    assert not unchanged(existing, "silver", None)
    assert not unchanged(existing, "gold", NOW)
    assert not unchanged(None, None, None)


def test_a_rule_removes_only_rule_tags_and_operators_remove_any() -> None:
    assert may_remove(an_assignment(source=Source.RULE), RULE_NO_LONGER_HOLDS)
    assert not may_remove(an_assignment(source=Source.MANUAL), RULE_NO_LONGER_HOLDS)
    assert may_remove(an_assignment(source=Source.RULE), "untagged")


def test_an_expired_assignment_is_not_active() -> None:
    assert an_assignment().active(NOW)
    assert an_assignment(expires_at=NOW + timedelta(seconds=1)).active(NOW)
    assert not an_assignment(expires_at=NOW).active(NOW)


@pytest.mark.parametrize("template_id", sorted(TEMPLATES))
def test_the_built_in_templates_are_well_formed(template_id: str) -> None:
    template = TEMPLATES[template_id]
    categories = {c.category_id: c for c in template.categories}
    for category in template.categories:
        parent = categories.get(category.parent) if category.parent else None
        check_category_parent(
            Category(tenant="t", **parent.model_dump()) if parent else None,
            parent_id=category.parent,
        )
    for tag in template.tags:
        assert tag.category in categories
        check_tag_shape(Tag(tenant="t", **tag.model_dump()))
        check_slug(tag.tag_id, field="tag_id")


def test_a_tag_gives_the_rule_language_its_spec() -> None:
    spec = LEVEL.spec()
    assert (spec.tag_id, spec.value_kind, spec.options) == (
        "level",
        TagValueKind.ENUM,
        frozenset({"gold", "silver"}),
    )


def test_sync_retries_back_off_doubling_up_to_an_hour() -> None:
    assert [backoff(n, 5).total_seconds() for n in (1, 2, 3)] == [5, 10, 20]
    assert backoff(30, 5) == timedelta(hours=1)
