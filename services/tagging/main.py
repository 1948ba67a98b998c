"""Tagging service: tags, automatic tagging rules, and audience segments kept current."""

from fastapi import FastAPI

from servicekit.app import create_service_app
from services.tagging import api, store
from services.tagging.api.assignments import BODY_LIMITS
from services.tagging.events import SUBSCRIPTIONS
from services.tagging.settings import TaggingSettings
from services.tagging.workers import WORKERS


def create_app(settings: TaggingSettings | None = None) -> FastAPI:
    return create_service_app(
        settings or TaggingSettings(),
        title="Tagging service",
        description="Tags, automatic tagging rules, audience segments kept current.",
        routers=api.ROUTERS,
        indexes=store.INDEXES,
        subscriptions=SUBSCRIPTIONS,
        workers=WORKERS,
        body_limits=BODY_LIMITS,
    )
