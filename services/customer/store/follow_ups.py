"""Follow-ups, one document each with its reminder embedded (a follow-up has at most one)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime

from pymongo.asynchronous.client_session import AsyncClientSession
from pymongo.asynchronous.database import AsyncDatabase

from servicekit.errors import InvalidInput
from servicekit.mongo import Document, Index, update_and_read
from servicekit.pagination import PageRequest, encode_cursor
from services.customer.domain.follow_ups import FollowUp, Reminder, ReminderState

FOLLOW_UPS = "follow_ups"
INDEXES = [
    Index(
        FOLLOW_UPS,
        [("tenant", 1), ("customer_id", 1), ("occurred_at", -1), ("_id", -1)],
        name="by_customer_newest",
    ),
    # The worker's scan crosses tenants: it serves every tenant of the deployment.
    Index(FOLLOW_UPS, [("reminder.state", 1), ("reminder.remind_at", 1)], name="due_reminders"),
    Index(
        FOLLOW_UPS,
        [("tenant", 1), ("reminder.owner_id", 1), ("reminder.state", 1), ("reminder.remind_at", 1)],
        name="reminders_by_owner",
    ),
]


@dataclass(frozen=True)
class DueReminder:
    follow_up_id: str
    tenant: str


def _to_doc(follow_up: FollowUp) -> Document:
    doc = follow_up.model_dump()
    doc["_id"] = doc.pop("id")
    return doc


def _from_doc(doc: Document) -> FollowUp:
    return FollowUp.model_validate({**doc, "id": doc["_id"]})


def _cursor_position(page: PageRequest, key: str) -> tuple[datetime, str]:
    """The (time, id) a page continues after; anything else was not made by this API."""
    at, follow_up_id = page.after_value(key), page.after_value("_id")
    if not (isinstance(at, str) and isinstance(follow_up_id, str)):
        raise _bad_cursor()
    try:
        return datetime.fromisoformat(at), follow_up_id
    except ValueError:
        raise _bad_cursor() from None


def _bad_cursor() -> InvalidInput:
    return InvalidInput("the cursor is not one this API returned", field="cursor")


def _after(field: str, at: datetime, follow_up_id: str, *, descending: bool) -> Document:
    """Documents strictly after (`at`, `follow_up_id`) in the listing's order."""
    op = "$lt" if descending else "$gt"
    return {"$or": [{field: {op: at}}, {field: at, "_id": {op: follow_up_id}}]}


class FollowUpStore:
    def __init__(self, db: AsyncDatabase[Document]) -> None:
        self._follow_ups = db[FOLLOW_UPS]

    async def add(self, follow_up: FollowUp) -> None:
        await self._follow_ups.insert_one(_to_doc(follow_up))

    async def get(self, tenant: str, follow_up_id: str) -> FollowUp | None:
        doc = await self._follow_ups.find_one({"_id": follow_up_id, "tenant": tenant})
        return _from_doc(doc) if doc else None

    async def page_of_customer(
        self, tenant: str, customer_id: str, page: PageRequest
    ) -> tuple[list[FollowUp], str | None]:
        """A customer's follow-ups, newest contact first."""
        query: Document = {"tenant": tenant, "customer_id": customer_id}
        if page.after is not None:
            at, last_id = _cursor_position(page, "occurred_at")
            query.update(_after("occurred_at", at, last_id, descending=True))
        order = [("occurred_at", -1), ("_id", -1)]
        docs = await self._follow_ups.find(query).sort(order).limit(page.limit + 1).to_list()
        items = [_from_doc(d) for d in docs[: page.limit]]
        more = len(docs) > page.limit
        return items, _next(items, more, "occurred_at", lambda f: f.occurred_at)

    async def open_reminders(
        self, tenant: str, owner_id: str, due_before: datetime | None, page: PageRequest
    ) -> tuple[list[FollowUp], str | None]:
        """An advisor's reminders still to act on, soonest first."""
        query: Document = {
            "tenant": tenant,
            "reminder.owner_id": owner_id,
            "reminder.state": {"$in": [ReminderState.PENDING, ReminderState.SENT]},
        }
        if due_before is not None:
            query["reminder.remind_at"] = {"$lte": due_before}
        if page.after is not None:
            at, last_id = _cursor_position(page, "remind_at")
            query = {"$and": [query, _after("reminder.remind_at", at, last_id, descending=False)]}
        order = [("reminder.remind_at", 1), ("_id", 1)]
        docs = await self._follow_ups.find(query).sort(order).limit(page.limit + 1).to_list()
        items = [_from_doc(d) for d in docs[: page.limit]]
        more = len(docs) > page.limit
        return items, _next(items, more, "remind_at", _remind_at)

    async def due_reminders(self, at: datetime, limit: int) -> list[DueReminder]:
        """Pending reminders due by `at`, of every tenant, the longest overdue first."""
        query = {"reminder.state": ReminderState.PENDING, "reminder.remind_at": {"$lte": at}}
        cursor = self._follow_ups.find(query, {"tenant": 1}).sort("reminder.remind_at", 1)
        return [DueReminder(d["_id"], d["tenant"]) for d in await cursor.limit(limit).to_list()]

    async def claim_due(
        self, follow_up_id: str, at: datetime, session: AsyncClientSession
    ) -> FollowUp | None:
        """Mark a due reminder sent, if it still is pending: of two replicas (or a worker and
        an advisor cancelling) one wins, and the others get None."""
        doc = await update_and_read(
            self._follow_ups,
            {
                "_id": follow_up_id,
                "reminder.state": ReminderState.PENDING,
                "reminder.remind_at": {"$lte": at},
            },
            {"$set": {"reminder.state": ReminderState.SENT, "reminder.sent_at": at}},
            session=session,
        )
        return _from_doc(doc) if doc else None

    async def park_failed(self, follow_up_id: str, reason: str) -> None:
        await self._follow_ups.update_one(
            {"_id": follow_up_id, "reminder.state": ReminderState.PENDING},
            {"$set": {"reminder.state": ReminderState.FAILED, "reminder.failure": reason}},
        )

    async def replace_reminder(
        self, follow_up: FollowUp, reminder: Reminder, *, read_state: ReminderState
    ) -> bool:
        """Write `reminder` if the stored one is still in `read_state`; False otherwise."""
        result = await self._follow_ups.update_one(
            {"_id": follow_up.id, "tenant": follow_up.tenant, "reminder.state": read_state},
            {"$set": {"reminder": reminder.model_dump()}},
        )
        return result.matched_count == 1


def _remind_at(follow_up: FollowUp) -> datetime:
    assert follow_up.reminder is not None  # the query selects follow-ups with a reminder
    return follow_up.reminder.remind_at


def _next(
    items: list[FollowUp], more: bool, key: str, value: Callable[[FollowUp], datetime]
) -> str | None:
    if not more:
        return None
    last = items[-1]
    return encode_cursor({key: value(last).isoformat(), "_id": last.id})
