from fastapi import FastAPI

from servicekit.app import create_service_app
from services.reach import api, store
from services.reach.events import SUBSCRIPTIONS
from services.reach.settings import ReachSettings


def create_app(settings: ReachSettings | None = None) -> FastAPI:
    return create_service_app(
        settings or ReachSettings(),
        title="Reach service",
        description="Outreach channels, templates, triggered campaigns, consent, frequency caps.",
        routers=[api.router],
        indexes=store.INDEXES,
        subscriptions=SUBSCRIPTIONS,
    )
