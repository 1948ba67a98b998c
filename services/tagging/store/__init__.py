"""Tagging store: every query of the tagging service lives here."""

from servicekit.jobs import JOB_INDEXES
from servicekit.mongo import Index
from services.tagging.store import (
    assignments,
    facts,
    memberships,
    profiles,
    segments,
    snapshots,
    tag_rules,
    tags,
)
from services.tagging.store.profiles import ProfileStore
from services.tagging.sync import store as sync_store

#: Every index the service declares; a module adds its own list on one line.
INDEXES: list[Index] = [
    *profiles.INDEXES,
    *tags.INDEXES,
    *assignments.INDEXES,
    *sync_store.INDEXES,
    *JOB_INDEXES,
    *facts.INDEXES,
    *tag_rules.INDEXES,
    *segments.INDEXES,
    *memberships.INDEXES,
    *snapshots.INDEXES,
]

__all__ = ["INDEXES", "ProfileStore"]
