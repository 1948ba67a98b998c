"""The reach use cases' collaborators, built once per process from the runtime (the store,
the providers, the HTTP clients to other services) and kept in `runtime.state`."""

from __future__ import annotations

from dataclasses import dataclass

import httpx

from servicekit.jobs import JobStore
from servicekit.runtime import Runtime
from servicekit.sealing import derive_key
from services.reach.service.dispatch import Dispatcher
from services.reach.service.peers import CustomerContacts, SegmentMembers
from services.reach.service.providers import Providers
from services.reach.service.staff_notices import StaffNotifier
from services.reach.service.templates import TemplateService
from services.reach.settings import ReachSettings
from services.reach.store.audience import AudienceStore
from services.reach.store.campaigns import CampaignStore
from services.reach.store.messages import MessageStore
from services.reach.store.teams import TeamStore
from services.reach.store.templates import TemplateStore

STATE_KEY = "reach"


@dataclass
class Reach:
    settings: ReachSettings
    http: httpx.AsyncClient
    providers: Providers
    messages: MessageStore
    audience: AudienceStore
    templates: TemplateStore
    campaigns: CampaignStore
    jobs: JobStore
    members: SegmentMembers
    contacts: CustomerContacts
    dispatcher: Dispatcher
    template_service: TemplateService
    teams: TeamStore
    staff: StaffNotifier

    async def close(self) -> None:
        await self.staff.close()
        await self.providers.close()
        await self.http.aclose()


def reach_of(runtime: Runtime) -> Reach:
    found = runtime.state.get(STATE_KEY)
    if found is None:
        found = runtime.state[STATE_KEY] = _build(runtime)
    return found


def _build(runtime: Runtime) -> Reach:
    settings = runtime.settings
    assert isinstance(settings, ReachSettings)
    db = runtime.db
    timeout = settings.provider_timeout_seconds
    http = httpx.AsyncClient(timeout=httpx.Timeout(timeout * 2, connect=timeout))
    messages, audience, templates = MessageStore(db), AudienceStore(db), TemplateStore(db)
    teams = TeamStore(db)
    providers = Providers.from_settings(settings, db)
    contacts = CustomerContacts(http, settings.customer_base_url)
    dispatcher = Dispatcher(
        runtime.uow,
        messages=messages,
        audience=audience,
        templates=templates,
        providers=providers,
        contacts=contacts,
        link_base=settings.public_base_url,
        link_key=derive_key(settings.secret_key, "reach:links"),
    )
    return Reach(
        settings=settings,
        http=http,
        providers=providers,
        messages=messages,
        audience=audience,
        templates=templates,
        campaigns=CampaignStore(db),
        jobs=JobStore(db),
        members=SegmentMembers(http, settings.tagging_base_url),
        contacts=contacts,
        dispatcher=dispatcher,
        template_service=TemplateService(runtime.uow, templates),
        teams=teams,
        staff=StaffNotifier(teams, messages, providers, settings),
    )
