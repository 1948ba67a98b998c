"""Reach store: every query of the reach service lives here."""

from servicekit.jobs import JOB_INDEXES
from servicekit.mongo import Index
from services.reach.providers.call_task import INDEXES as CALL_TASK_INDEXES
from services.reach.providers.sandbox import INDEXES as SANDBOX_INDEXES
from services.reach.store import audience, campaigns, messages, providers, teams, templates

INDEXES: list[Index] = [
    *audience.INDEXES,
    *campaigns.INDEXES,
    *messages.INDEXES,
    *templates.INDEXES,
    *providers.INDEXES,
    *teams.INDEXES,
    *CALL_TASK_INDEXES,
    *SANDBOX_INDEXES,
    *JOB_INDEXES,
]
