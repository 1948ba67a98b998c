"""Teams' staff contacts (who hears of an alert), and the staff notices waiting to go out
(queued in the alert event's transaction, sent by the dispatcher with retries)."""

from __future__ import annotations

from datetime import datetime, timedelta

from pymongo.asynchronous.client_session import AsyncClientSession
from pymongo.asynchronous.database import AsyncDatabase

from servicekit.mongo import Document, Index
from services.reach.domain.staff import Team

TEAMS = "team_contacts"
NOTICES = "staff_notices"
INDEXES = [
    Index(TEAMS, [("tenant", 1), ("team", 1)], name="by_tenant"),
    Index(NOTICES, [("next_at", 1), ("lease_until", 1)], name="due"),
]


class TeamStore:
    def __init__(self, db: AsyncDatabase[Document]) -> None:
        self._teams = db[TEAMS]
        self._notices = db[NOTICES]

    async def save(self, team: Team) -> None:
        key = f"{team.tenant}/{team.team}"
        await self._teams.replace_one(
            {"_id": key}, {"_id": key, **team.model_dump(mode="python")}, upsert=True
        )

    async def get(
        self, tenant: str, team: str, session: AsyncClientSession | None = None
    ) -> Team | None:
        doc = await self._teams.find_one({"_id": f"{tenant}/{team}"}, session=session)
        return Team.model_validate({k: v for k, v in doc.items() if k != "_id"}) if doc else None

    async def of_tenant(self, tenant: str) -> list[Team]:
        docs = await self._teams.find({"tenant": tenant}).sort("team", 1).to_list()
        return [Team.model_validate({k: v for k, v in d.items() if k != "_id"}) for d in docs]

    async def remove(self, tenant: str, team: str) -> bool:
        return (await self._teams.delete_one({"_id": f"{tenant}/{team}"})).deleted_count == 1

    # ---------------------------------------------------------------- notices

    async def queue(self, notices: list[Document], session: AsyncClientSession) -> None:
        """Queue notices once each (a repeat of the same id changes nothing)."""
        for notice in notices:
            await self._notices.update_one(
                {"_id": notice["_id"]}, {"$setOnInsert": notice}, upsert=True, session=session
            )

    async def claim_due(
        self, now: datetime, owner: str, lease: timedelta, limit: int = 100
    ) -> list[Document]:
        due = {"next_at": {"$lte": now}, "lease_until": {"$lte": now}}
        ids = [d["_id"] for d in await self._notices.find(due, {"_id": 1}).limit(limit).to_list()]
        if not ids:
            return []
        until = now + lease
        await self._notices.update_many(
            {"_id": {"$in": ids}, **due}, {"$set": {"lease_until": until, "owner": owner}}
        )
        return await self._notices.find(
            {"_id": {"$in": ids}, "owner": owner, "lease_until": until}
        ).to_list()

    async def done(self, ids: list[str]) -> None:
        await self._notices.delete_many({"_id": {"$in": ids}})

    async def later(self, notice_id: str, at: datetime, reason: str) -> None:
        await self._notices.update_one(
            {"_id": notice_id},
            {
                "$set": {"next_at": at, "lease_until": at, "last_failure": reason},
                "$inc": {"attempts": 1},
            },
        )

    async def pending(self, tenant: str) -> list[Document]:
        return await self._notices.find({"tenant": tenant}).to_list()
