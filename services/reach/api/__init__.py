"""Reach HTTP API: routes validate and delegate to the use cases."""

from fastapi import APIRouter

from servicekit.jobs import jobs_router
from services.reach.api import (
    call_tasks,
    campaigns,
    messages,
    providers,
    public,
    teams,
    templates,
)

router = APIRouter()
router.include_router(templates.router)
router.include_router(campaigns.router)
router.include_router(messages.router)
router.include_router(providers.router)
router.include_router(public.router)
router.include_router(call_tasks.router)
router.include_router(teams.router)
router.include_router(jobs_router())
