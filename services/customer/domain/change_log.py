"""Change log (客户变更记录): which fields changed, from what to what; personal data masked."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pydantic import BaseModel

from services.customer.domain.customer import Customer
from services.customer.domain.personal_data import masked

TRACKED = (
    "display_name",
    "mobile",
    "email",
    "gender",
    "birthday",
    "id_number",
    "address.country",
    "address.province",
    "address.city",
    "address.district",
    "address.street",
    "address.postal_code",
    "lifecycle_stage",
    "owner_id",
    "status",
)


class FieldChange(BaseModel):
    field: str
    old: Any = None
    new: Any = None


class ChangeLogEntry(BaseModel):
    customer_id: str
    tenant: str
    at: datetime
    by: str
    reason: str
    changes: list[FieldChange]


def _flat(customer: Customer) -> dict[str, Any]:
    data = customer.model_dump(mode="json")
    flat = {f: data.get(f) for f in TRACKED if "." not in f}
    address = data.get("address") or {}
    flat.update({f: address.get(f.split(".", 1)[1]) for f in TRACKED if f.startswith("address.")})
    flat.update({f"custom_fields.{k}": v for k, v in data["custom_fields"].items()})
    flat["identities"] = sorted(i["kind"] + ":" + i["value"] for i in data["identities"])
    return flat


def diff(before: Customer, after: Customer) -> list[FieldChange]:
    """Every tracked field whose value differs, old and new masked where personal."""
    old, new = _flat(before), _flat(after)
    return [
        FieldChange(field=f, old=masked(f, old.get(f)), new=masked(f, new.get(f)))
        for f in sorted(set(old) | set(new))
        if old.get(f) != new.get(f)
    ]
