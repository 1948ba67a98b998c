"""Customer store: every query of the customer service lives here."""

from datetime import timedelta

from servicekit.jobs import JOB_INDEXES
from servicekit.mongo import Index
from services.customer.settings import CustomerSettings
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


def indexes(settings: CustomerSettings) -> list[Index]:
    """Every index of the customer service; behaviour's TTL follows the settings."""
    retention = timedelta(days=settings.behaviour_retention_days)
    return [
        *customers.INDEXES,
        *custom_fields.INDEXES,
        *consents.INDEXES,
        *follow_ups.INDEXES,
        *behaviour.behaviour_indexes(retention),
        *orders.INDEXES,
        *merges.INDEXES,
        *JOB_INDEXES,
    ]


__all__ = ["CustomerStore", "indexes"]
