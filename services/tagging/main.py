from fastapi import FastAPI

from servicekit.app import create_service_app
from services.tagging import api, store
from services.tagging.events import SUBSCRIPTIONS
from services.tagging.settings import TaggingSettings


def create_app(settings: TaggingSettings | None = None) -> FastAPI:
    return create_service_app(
        settings or TaggingSettings(),
        title="Tagging service",
        description="Tags, automatic tagging rules, audience segments kept current.",
        routers=[api.router],
        indexes=store.INDEXES,
        subscriptions=SUBSCRIPTIONS,
    )
