"""Templates: variables, channel limits with variables at their longest, rendering."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from services.reach.domain.channels import Channel
from services.reach.domain.templates import (
    Content,
    MissingVariable,
    Template,
    render,
    sms_segments,
    validate,
    variables_of,
)


def template(channel: Channel, content: Content, **defaults: str) -> Template:
    return Template(
        tenant="t",
        template_id="x",
        channel=channel,
        name="x",
        version=1,
        content=content,
        defaults=defaults,
        updated_by="ops",
        updated_at=datetime.now(UTC),
    )


def test_variables_are_found_in_every_part() -> None:
    content = Content(
        subject="{{customer_name}}",
        body="{{ coupon_amount }} {{link}}",
        fields={"thing1": "{{tier_name}}"},
    )
    assert variables_of(content) == {"customer_name", "coupon_amount", "link", "tier_name"}


def test_an_sms_fits_with_variables_at_their_longest() -> None:
    fits = Content(sign_name="品牌", body="好" * (500 - 4 - 20) + "{{customer_name}}")
    assert validate(Channel.SMS, fits, {}) == []
    over = Content(sign_name="品牌", body="好" * (500 - 4 - 19) + "{{customer_name}}")
    [problem] = validate(Channel.SMS, over, {})
    assert problem.field == "content.body" and "501" in problem.reason


def test_unknown_variables_and_defaults_are_named() -> None:
    problems = validate(
        Channel.SMS, Content(sign_name="品牌", body="{{secret}}"), {"colour": "red"}
    )
    assert [p.field for p in problems] == ["content", "defaults.colour"]


def test_subscription_fields_by_kind() -> None:
    content = Content(
        platform_template_id="t1", fields={"thing1": "{{customer_name}}", "phrase2": "已到期啦啦"}
    )
    assert validate(Channel.SUBSCRIPTION_MESSAGE, content, {}) == []
    too_long = content.model_copy(update={"fields": {"phrase2": "已经到期了吧"}})
    [problem] = validate(Channel.SUBSCRIPTION_MESSAGE, too_long, {})
    assert problem.field == "content.fields.phrase2"


def test_render_uses_values_then_defaults_and_names_what_is_missing() -> None:
    t = template(
        Channel.SMS,
        Content(sign_name="品牌", body="{{customer_name}} {{coupon_amount}}元"),
        customer_name="会员",
    )
    assert render(t, {"coupon_amount": "20"}).content.body == "会员 20元"
    assert render(t, {"coupon_amount": "20", "customer_name": "林"}).content.body == "林 20元"
    with pytest.raises(MissingVariable, match="coupon_amount"):
        render(t, {})


def test_sms_segments() -> None:
    assert [sms_segments(n) for n in (1, 70, 71, 134, 135)] == [1, 1, 2, 2, 3]
