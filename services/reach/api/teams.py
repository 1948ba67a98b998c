"""Which staff hear of ops alerts: each team's contacts (email, mobile, webhook). An alert
goes to the team that owns what it is about, else to the `ops` team."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Path, status
from fastapi.responses import Response
from pydantic import BaseModel, ConfigDict, Field

from servicekit.clock import utcnow
from servicekit.context import ActorDep, TenantDep
from servicekit.errors import Forbidden, NotFound
from services.reach.api.deps import ReachDep
from services.reach.domain.staff import Contact, Team

router = APIRouter(tags=["teams"])
TeamId = Annotated[str, Path(pattern=r"^[\w.-]{1,64}$")]  # a budget owner may be 华东区


class TeamContacts(BaseModel):
    model_config = ConfigDict(extra="forbid")

    contacts: list[Contact] = Field(min_length=1, max_length=20)


@router.put("/teams/{team}/contacts")
async def set_team_contacts(
    team: TeamId, body: TeamContacts, tenant: TenantDep, actor: ActorDep, reach: ReachDep
) -> Team:
    """Who in the team hears of alerts; replaces the list. Needs the admin role."""
    if not actor.has_role("admin"):
        raise Forbidden("only an admin may change who hears of alerts", code="admin_only")
    saved = Team(
        tenant=tenant, team=team, contacts=body.contacts, updated_by=actor.id, updated_at=utcnow()
    )
    await reach.teams.save(saved)
    return saved


@router.get("/teams")
async def list_teams(tenant: TenantDep, reach: ReachDep) -> list[Team]:
    return await reach.teams.of_tenant(tenant)


@router.delete("/teams/{team}/contacts", status_code=status.HTTP_204_NO_CONTENT)
async def remove_team_contacts(
    team: TeamId, tenant: TenantDep, actor: ActorDep, reach: ReachDep
) -> Response:
    if not actor.has_role("admin"):
        raise Forbidden("only an admin may change who hears of alerts", code="admin_only")
    if not await reach.teams.remove(tenant, team):
        raise NotFound(f"no contacts for team {team}", code="team_not_found")
    return Response(status_code=status.HTTP_204_NO_CONTENT)
