"""Tagging HTTP API."""

from fastapi import APIRouter

from servicekit.jobs import jobs_router
from services.tagging.api import assignments, profiles, segments, tag_rules, tags
from services.tagging.sync import api as sync_api

#: Every router of the service; a module adds its own on one line.
ROUTERS: list[APIRouter] = [
    profiles.router,
    tags.router,
    assignments.router,
    sync_api.router,
    jobs_router(),
    tag_rules.router,
    segments.router,
]

__all__ = ["ROUTERS"]
