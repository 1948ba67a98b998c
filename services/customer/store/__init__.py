"""Customer store: every query of the customer service lives here."""

from services.customer.store import (
    behaviour,
    consents,
    custom_fields,
    customers,
    follow_ups,
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
]

__all__ = ["INDEXES", "CustomerStore"]
