"""Data subject rights (PIPL / GDPR): who may exercise them on a customer's behalf, and
what erasure leaves of a profile.

Pure: no I/O. Erasure keeps the customer document (status `erased`) so that nothing can
bring the person back under the same id, but nothing in it identifies them any more.
"""

from __future__ import annotations

import uuid
from datetime import datetime

from pydantic import BaseModel

from servicekit.context import Actor
from servicekit.errors import Conflict, Forbidden
from services.customer.domain.change_log import FieldChange
from services.customer.domain.customer import Address, Customer, Status

#: Roles that may export a customer's data in clear or erase it: an administrator, or the
#: data protection officer who answers the person's request.
DATA_RIGHTS_ROLES = ("admin", "dpo")
ERASED_NAME = "erased"
#: What erasure removes, named (never with values) in the change log.
ERASED_FIELDS = (
    "display_name",
    "mobile",
    "email",
    "id_number",
    "birthday",
    "address.street",
    "address.postal_code",
    "custom_fields",
    "identities",
)


class ErasureReceipt(BaseModel):
    customer_id: str
    status: Status
    erased_at: datetime


def require_data_rights_role(actor: Actor, *, action: str) -> None:
    if not actor.has_role(*DATA_RIGHTS_ROLES):
        raise Forbidden(
            f"only an admin or the data protection officer may {action} a customer's data",
            code="role_required",
        )


def check_erasable(customer: Customer) -> None:
    """A merged customer's data lives in its survivor: erase that one (which erases it too)."""
    if customer.status is Status.MERGED:
        raise Conflict(
            f"the customer was merged into {customer.merged_into}; erase that customer",
            code="customer_merged",
            merged_into=customer.merged_into,
        )


def erase(customer: Customer, *, at: datetime) -> Customer:
    """The profile with nothing left that identifies the person. The region of the address
    and the gender stay: alone they identify no one, and they keep regional totals right."""
    address = customer.address
    kept = (
        Address(
            country=address.country,
            province=address.province,
            city=address.city,
            district=address.district,
        )
        if address
        else None
    )
    return customer.model_copy(
        update={
            "display_name": ERASED_NAME,
            "mobile": None,
            "email": None,
            "id_number": None,
            "birthday": None,
            "address": kept,
            "custom_fields": {},
            "identities": [],
            "status": Status.ERASED,
            "updated_at": at,
        }
    )


def erasure_changes(before: Customer) -> list[FieldChange]:
    """The log entry of an erasure: which fields went, never what they held."""
    status = FieldChange(field="status", old=str(before.status), new=str(Status.ERASED))
    return [FieldChange(field=f) for f in ERASED_FIELDS] + [status]


def receipt(customer: Customer) -> ErasureReceipt:
    return ErasureReceipt(
        customer_id=customer.id, status=customer.status, erased_at=customer.updated_at
    )


def anonymous_id() -> str:
    """An id for the business figures an erased customer leaves (orders, statistics): not
    recorded anywhere next to the customer id, so nothing links them back."""
    return f"anon_{uuid.uuid4().hex}"
