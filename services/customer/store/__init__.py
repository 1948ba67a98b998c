"""Customer store: every query of the customer service lives here."""

from services.customer.store.customers import INDEXES, CustomerStore

__all__ = ["INDEXES", "CustomerStore"]
