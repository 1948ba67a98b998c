"""Pure rules of the profile: personal data normalised and masked, custom fields
validated, changes logged without personal values, the vault's keys rotated."""

from __future__ import annotations

import os
from datetime import UTC, datetime

import pytest
from cryptography.exceptions import InvalidTag

from servicekit.errors import DomainError, InvalidInput
from services.customer.domain.change_log import diff
from services.customer.domain.custom_fields import FieldDefinition, FieldType, validate_values
from services.customer.domain.customer import (
    Customer,
    Gender,
    LifecycleStage,
    SourceChannel,
    register,
)
from services.customer.domain.lifecycle import promotion_after_first_order, stage_change
from services.customer.domain.personal_data import (
    mask_email,
    mask_mobile,
    normalize_email,
    normalize_id_number,
    normalize_mobile,
)
from services.customer.domain.profile_input import apply_values
from services.customer.store.crypto import PersonalDataVault

AT = datetime(2026, 11, 1, tzinfo=UTC)


def a_customer(**profile):
    return register(
        tenant="shop", display_name="Li Lei", source_channel=SourceChannel.STORE, at=AT, **profile
    )


@pytest.mark.parametrize(
    ("raw", "normal"),
    [
        ("13812345678", "+8613812345678"),
        ("138 1234 5678", "+8613812345678"),
        ("+86 138-1234-5678", "+8613812345678"),
        ("008613812345678", "+8613812345678"),
        ("+14155552671", "+14155552671"),
    ],
)
def test_mobiles_are_normalised_to_e164(raw: str, normal: str) -> None:
    assert normalize_mobile(raw) == normal


@pytest.mark.parametrize("raw", ["12812345678", "1381234567", "+8612812345678", "abc", "+0123"])
def test_invalid_mobiles_are_refused_naming_the_field(raw: str) -> None:
    with pytest.raises(InvalidInput) as refused:
        normalize_mobile(raw)
    assert refused.value.extra["errors"][0]["field"] == "mobile"


def test_emails_keep_the_local_part_and_lowercase_the_domain() -> None:
    assert normalize_email(" Li.Lei@Example.COM ") == "Li.Lei@example.com"
    with pytest.raises(InvalidInput):
        normalize_email("not-an-email")


def test_resident_id_numbers_need_a_matching_check_character() -> None:
    assert normalize_id_number("11010519491231002x") == "11010519491231002X"
    with pytest.raises(InvalidInput):
        normalize_id_number("110105194912310021")


def test_masks_hide_the_middle() -> None:
    assert mask_mobile("+8613812345678") == "+86138****5678"
    assert mask_email("lilei@example.com") == "l***@example.com"


def test_custom_fields_are_typed_and_required_ones_enforced() -> None:
    definitions = {
        "size": FieldDefinition(key="size", label="Size", type=FieldType.ENUM, options=["S", "M"]),
        "height": FieldDefinition(
            key="height", label="Height", type=FieldType.NUMBER, min=50, max=250, required=True
        ),
        "vip": FieldDefinition(key="vip", label="VIP", type=FieldType.BOOLEAN),
    }
    assert validate_values(definitions, {"size": "M", "height": 172}, partial=False) == {
        "size": "M",
        "height": 172,
    }
    for values, field in [
        ({"size": "XL", "height": 170}, "custom_fields.size"),
        ({"height": "tall"}, "custom_fields.height"),
        ({"height": 300}, "custom_fields.height"),
        ({"size": "S"}, "custom_fields.height"),
        ({"height": 170, "vip": "yes"}, "custom_fields.vip"),
        ({"height": 170, "$gt": ""}, "custom_fields.$gt"),
    ]:
        with pytest.raises(InvalidInput) as refused:
            validate_values(definitions, values, partial=False)
        assert refused.value.extra["errors"][0]["field"] == field
    assert validate_values(definitions, {"vip": True}, partial=True) == {"vip": True}


def test_a_field_definition_must_be_consistent() -> None:
    with pytest.raises(ValueError):
        FieldDefinition(key="size", label="Size", type=FieldType.ENUM)
    with pytest.raises(ValueError):
        FieldDefinition(key="Bad Key", label="x", type=FieldType.TEXT)


def test_the_change_log_masks_personal_values() -> None:
    before = a_customer(mobile="+8613812345678")
    after = before.model_copy(update={"mobile": "+8613900001111", "display_name": "Li Lei Jr"})
    changes = {c.field: c for c in diff(before, after)}
    assert set(changes) == {"mobile", "display_name"}
    assert changes["mobile"].old == "+86138****5678"
    assert changes["mobile"].new == "+86139****1111"
    assert changes["display_name"].new == "Li Lei Jr"


def test_clearing_a_field_that_always_has_a_value_gives_its_cleared_value() -> None:
    before = a_customer().model_copy(update={"gender": Gender.FEMALE})
    after = apply_values(before, {"gender": None, "birthday": None}, at=AT)
    assert after.gender is Gender.UNKNOWN and after.birthday is None
    # What is stored still makes a valid profile.
    assert Customer.model_validate(after.model_dump()) == after


def test_stage_rules() -> None:
    lead = a_customer()
    assert lead.lifecycle_stage == LifecycleStage.LEAD
    promoted = promotion_after_first_order(lead, at=AT)
    assert promoted is not None and promoted.to_stage == LifecycleStage.CUSTOMER
    customer = lead.model_copy(update={"lifecycle_stage": LifecycleStage.CUSTOMER})
    assert promotion_after_first_order(customer, at=AT) is None
    with pytest.raises(DomainError):
        stage_change(customer, LifecycleStage.CUSTOMER, reason="again", at=AT, by="ops")


def test_the_vault_opens_values_sealed_with_an_older_key_and_binds_them_to_their_place() -> None:
    old_key, new_key, index = os.urandom(32), os.urandom(32), os.urandom(32)
    before = PersonalDataVault({"k1": old_key}, "k1", index)
    sealed = before.seal("+8613812345678", context="shop/cus_1/mobile")
    assert b"13812345678" not in bytes(sealed["c"])

    rotated = PersonalDataVault({"k1": old_key, "k2": new_key}, "k2", index)
    assert rotated.open(sealed, context="shop/cus_1/mobile") == "+8613812345678"
    assert rotated.needs_rotation(sealed)
    assert rotated.seal("x", context="c")["k"] == "k2"
    with pytest.raises(InvalidTag):  # copied to another customer: does not open
        rotated.open(sealed, context="shop/cus_2/mobile")
    # the blind index depends on the index key only, so lookups survive a rotation
    lookup = ("mobile", "shop", "+8613812345678")
    assert before.blind_index(*lookup) == rotated.blind_index(*lookup)
