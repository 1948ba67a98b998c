"""Loyalty store: every query of the loyalty service lives here."""

from servicekit.mongo import Index
from services.loyalty.store import benefits, exchanges, merges, points, stored_value, tiers

INDEXES: list[Index] = [
    *points.INDEXES,
    *tiers.INDEXES,
    *benefits.INDEXES,
    *stored_value.INDEXES,
    *exchanges.INDEXES,
    *merges.INDEXES,
]
