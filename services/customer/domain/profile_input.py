"""Turning what a caller sends into profile values: personal data normalised, custom
fields checked against their definitions."""

from __future__ import annotations

from typing import Any

from services.customer.domain.custom_fields import FieldDefinition, validate_values
from services.customer.domain.customer import Address, Customer, Gender
from services.customer.domain.personal_data import (
    normalize_email,
    normalize_id_number,
    normalize_mobile,
)

NORMALISE = {"mobile": normalize_mobile, "email": normalize_email, "id_number": normalize_id_number}
#: What a field that always has a value becomes when a caller clears it (sends null).
CLEARED: dict[str, Any] = {"gender": Gender.UNKNOWN}


def profile_values(
    given: dict[str, Any], definitions: dict[str, FieldDefinition], *, partial: bool
) -> dict[str, Any]:
    """`given` holds only the fields the caller sent (None clears an optional field)."""
    values = dict(given)
    for field, normalise in NORMALISE.items():
        if values.get(field) is not None:
            values[field] = normalise(values[field])
    if "custom_fields" in values or not partial:
        values["custom_fields"] = validate_values(
            definitions, values.get("custom_fields") or {}, partial=partial
        )
    return values


def apply_values(customer: Customer, values: dict[str, Any], *, at: Any) -> Customer:
    """The profile after an update; custom fields merge (None removes one)."""
    update = {
        k: CLEARED.get(k) if v is None else v for k, v in values.items() if k != "custom_fields"
    }
    if "address" in update and update["address"] is not None:
        update["address"] = Address.model_validate(update["address"])
    if "display_name" in update:
        update["display_name"] = update["display_name"].strip()
    merged = dict(customer.custom_fields)
    for key, value in values.get("custom_fields", {}).items():
        if value is None:
            merged.pop(key, None)
        else:
            merged[key] = value
    return customer.model_copy(update={**update, "custom_fields": merged, "updated_at": at})
