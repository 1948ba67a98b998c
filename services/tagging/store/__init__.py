"""Tagging store: every query of the tagging service lives here."""

from services.tagging.store.profiles import INDEXES, ProfileStore

__all__ = ["INDEXES", "ProfileStore"]
