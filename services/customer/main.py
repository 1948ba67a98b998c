from fastapi import FastAPI

from servicekit.app import create_service_app
from services.customer import api, store
from services.customer.api.behaviour import BODY_LIMITS as BEHAVIOUR_BODY_LIMITS
from services.customer.api.imports import BODY_LIMITS
from services.customer.events import SUBSCRIPTIONS
from services.customer.settings import CustomerSettings
from services.customer.store.crypto import PersonalDataVault
from services.customer.workers import WORKERS


def create_app(settings: CustomerSettings | None = None) -> FastAPI:
    settings = settings or CustomerSettings()
    return create_service_app(
        settings,
        title="Customer service",
        description="Customer profiles, consent, ownership, merge, behaviour, orders.",
        routers=[api.router],
        indexes=store.indexes(settings),
        subscriptions=SUBSCRIPTIONS,
        workers=WORKERS,
        body_limits={**BODY_LIMITS, **BEHAVIOUR_BODY_LIMITS},
        state={"vault": PersonalDataVault.from_settings(settings)},
    )
