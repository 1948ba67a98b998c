"""Customer store: every query of the customer service lives here."""

from servicekit.jobs import JOB_INDEXES
from services.customer.store import (
    behaviour,
    consents,
    custom_fields,
    customers,
    follow_ups,
    merges,
    orders,
)
from services.customer.store.customers import CustomerStore

INDEXES = [
    *customers.INDEXES,
    *custom_fields.INDEXES,
    *consents.INDEXES,
    *follow_ups.INDEXES,
    *behaviour.INDEXES,
    *orders.INDEXES,
    *merges.INDEXES,
    *JOB_INDEXES,
]

__all__ = ["INDEXES", "CustomerStore"]
