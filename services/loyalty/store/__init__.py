"""Loyalty store: every query of the loyalty service lives here."""

from servicekit.mongo import Index
from services.loyalty.store import points, tiers

INDEXES: list[Index] = [*points.INDEXES, *tiers.INDEXES]
