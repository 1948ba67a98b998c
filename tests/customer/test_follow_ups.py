"""Follow-ups and reminders over real HTTP on the real embedded store and broker: contacts
recorded by the calling advisor and listed newest first, reminders for the right owner in
the allowed window, done and cancel, and due reminders published exactly once by two
replicas' workers, never before they are due, surviving faults."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest

from contracts import Envelope
from contracts.customer import FollowUpReminderDue
from servicekit.errors import PROBLEM_JSON
from servicekit.outbox import outbox_events
from servicekit.pagination import encode_cursor
from servicekit.runtime import Runtime
from services.customer.domain.follow_ups import (
    FollowUp,
    FollowUpKind,
    Reminder,
    new_follow_up_id,
    to_store_precision,
)
from services.customer.service.follow_ups import FollowUpService
from services.customer.settings import CustomerSettings
from services.customer.store import indexes
from services.customer.store.customers import CustomerStore
from services.customer.store.follow_ups import FollowUpStore
from services.customer.workers import ReminderPublisher
from tests.customer.support import ADVISOR, Client, Service
from tests.support.events import published
from tests.support.settings import settings_for
from tests.support.waiting import eventually

pytestmark = pytest.mark.integration
REMINDER_DUE = FollowUpReminderDue.type
FAST = 0.05  # seconds between a test worker's rounds


@pytest.fixture(scope="module")
async def replica(service: Service) -> AsyncIterator[Runtime]:
    """A second replica of the customer service on the same store, without HTTP."""
    runtime = await Runtime.start(
        service.settings, indexes=indexes(service.settings), subscriptions=[]
    )
    yield runtime
    await runtime.stop()


@pytest.fixture
def actor() -> dict[str, str]:
    return ADVISOR


def now() -> datetime:
    return datetime.now(UTC)


def iso(at: datetime) -> str:
    return at.isoformat()


def parse(value: str) -> datetime:
    return datetime.fromisoformat(value)


async def register(api: httpx.AsyncClient, **overrides: Any) -> str:
    body = {"display_name": "Li Lei", "source_channel": "store", **overrides}
    response = await api.post("/customers", json=body)
    assert response.status_code == 201, response.text
    return response.json()["id"]


@pytest.fixture
async def customer_id(api: httpx.AsyncClient) -> str:
    return await register(api)


def follow_up_body(**overrides: Any) -> dict[str, Any]:
    return {"kind": "call", "notes": "Asked about the spring collection", **overrides}


async def record(
    api: httpx.AsyncClient, customer_id: str, *, headers: dict[str, str] | None = None, **body: Any
) -> dict[str, Any]:
    response = await api.post(
        f"/customers/{customer_id}/follow-ups", json=follow_up_body(**body), headers=headers
    )
    assert response.status_code == 201, response.text
    return response.json()


async def with_reminder(
    api: httpx.AsyncClient, customer_id: str, remind_at: datetime, **reminder: Any
) -> dict[str, Any]:
    return await record(api, customer_id, reminder={"remind_at": iso(remind_at), **reminder})


async def follow_ups_of(api: httpx.AsyncClient, customer_id: str, **params: Any) -> dict:
    response = await api.get(f"/customers/{customer_id}/follow-ups", params=params)
    assert response.status_code == 200, response.text
    return response.json()


async def reminder_of(api: httpx.AsyncClient, customer_id: str, follow_up_id: str) -> dict:
    items = (await follow_ups_of(api, customer_id, limit=200))["items"]
    [found] = [f for f in items if f["id"] == follow_up_id]
    return found["reminder"]


async def open_reminders(api: httpx.AsyncClient, **params: Any) -> httpx.Response:
    return await api.get("/follow-ups/reminders", params=params)


async def reminder_events(service: Service, tenant: str) -> list[Envelope]:
    return await reminder_events_at(service.settings, tenant)


async def reminder_events_at(settings: CustomerSettings, tenant: str) -> list[Envelope]:
    events = await published(settings.kafka_bootstrap_servers, tenant=tenant)
    return [e for e in events if e.type == REMINDER_DUE]


async def stored_follow_ups(service: Service, tenant: str) -> int:
    return await service.db["follow_ups"].count_documents({"tenant": tenant})


def assert_problem(response: httpx.Response, status: int) -> dict[str, Any]:
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == PROBLEM_JSON
    return response.json()


def fields(problem: dict[str, Any]) -> set[str]:
    return {e["field"] for e in problem["errors"]}


@dataclass
class Replicas:
    """Two reminder workers, one per replica, polling fast."""

    first: ReminderPublisher
    second: ReminderPublisher
    tasks: list[asyncio.Task[None]]

    async def more_rounds(self, count: int = 3) -> None:
        """Wait until both have looked again `count` times since now."""
        target = (self.first.rounds + count, self.second.rounds + count)
        await eventually(
            lambda: (self.first.rounds, self.second.rounds),
            until=lambda rounds: rounds[0] >= target[0] and rounds[1] >= target[1],
        )


async def stop(tasks: list[asyncio.Task[None]]) -> None:
    """Cancel the workers and check they stop on cancel, not on a fault of their own."""
    for task in tasks:
        assert not task.done(), "a worker loop died"
        task.cancel()
    for task in tasks:
        with pytest.raises(asyncio.CancelledError):
            await task
        assert task.cancelled()


@pytest.fixture
async def replicas(service: Service, replica: Runtime) -> AsyncIterator[Replicas]:
    first, second = (
        ReminderPublisher(interval_seconds=FAST),
        ReminderPublisher(interval_seconds=FAST),
    )
    tasks = [
        asyncio.create_task(first.run(service.runtime)),
        asyncio.create_task(second.run(replica)),
    ]
    yield Replicas(first, second, tasks)
    await stop(tasks)


# --------------------------------------------------------------------------- recording


async def test_a_follow_up_is_recorded_by_the_caller_and_reads_back(
    api: httpx.AsyncClient, customer_id: str
) -> None:
    occurred = now() - timedelta(hours=2)
    created = await record(
        api, customer_id, kind="visit", occurred_at=iso(occurred), outcome="  bought a coat  "
    )
    assert created["id"].startswith("fup_")
    assert created["customer_id"] == customer_id and created["kind"] == "visit"
    assert created["recorded_by"] == "advisor-7"
    assert created["outcome"] == "bought a coat"
    assert abs(parse(created["occurred_at"]) - occurred) < timedelta(milliseconds=1)
    assert created["reminder"] is None

    listed = await follow_ups_of(api, customer_id)
    assert listed == {"items": [created], "next_cursor": None}


async def test_a_contact_without_a_time_happened_now(
    api: httpx.AsyncClient, customer_id: str
) -> None:
    before = now() - timedelta(milliseconds=1)
    created = await record(api, customer_id, kind="wechat", notes="")
    assert before <= parse(created["occurred_at"]) <= now()
    assert created["notes"] == ""


async def test_follow_ups_are_listed_newest_first_by_cursor(
    api: httpx.AsyncClient, customer_id: str
) -> None:
    base = now() - timedelta(days=1)
    offsets = [5, 1, 3, 3, 0, 8, 2]  # hours; two share a time, so the id breaks the tie
    created = [
        await record(api, customer_id, occurred_at=iso(base + timedelta(hours=h)), notes=f"#{i}")
        for i, h in enumerate(offsets)
    ]
    pages: list[list[str]] = []
    cursor: str | None = None
    while True:
        page = await follow_ups_of(
            api, customer_id, limit=3, **({"cursor": cursor} if cursor else {})
        )
        pages.append([f["id"] for f in page["items"]])
        cursor = page["next_cursor"]
        if cursor is None:
            break
        assert len(pages) < 5, "pagination does not end"

    assert [len(p) for p in pages] == [3, 3, 1]
    newest_first = sorted(created, key=lambda f: (parse(f["occurred_at"]), f["id"]), reverse=True)
    assert [i for page in pages for i in page] == [f["id"] for f in newest_first]


@pytest.mark.parametrize(
    "cursor",
    [
        "garbage!!",
        encode_cursor({"occurred_at": {"$gt": ""}, "_id": "fup_1"}),
        encode_cursor({"occurred_at": "yesterday", "_id": "fup_1"}),
        encode_cursor({"occurred_at": "2025-01-01T00:00:00+00:00", "_id": 7}),
        encode_cursor({"remind_at": "2025-01-01T00:00:00+00:00", "_id": "fup_1"}),
    ],
    ids=["garbage", "operator", "not-a-time", "number-id", "foreign-key"],
)
async def test_a_bad_cursor_is_a_problem(
    api: httpx.AsyncClient, customer_id: str, cursor: str
) -> None:
    response = await api.get(f"/customers/{customer_id}/follow-ups", params={"cursor": cursor})
    assert fields(assert_problem(response, 422)) == {"cursor"}


# --------------------------------------------------------------------------- reminder owner


async def test_a_reminder_goes_to_the_customers_owner_by_default(
    api: httpx.AsyncClient,
) -> None:
    owned = await register(api, owner_id="advisor-1")
    created = await with_reminder(api, owned, now() + timedelta(days=1))
    assert created["reminder"]["owner_id"] == "advisor-1"
    assert created["reminder"]["state"] == "pending"
    assert created["recorded_by"] == "advisor-7"


async def test_a_reminder_goes_to_the_named_owner(api: httpx.AsyncClient) -> None:
    owned = await register(api, owner_id="advisor-1")
    created = await with_reminder(api, owned, now() + timedelta(days=1), owner_id="advisor-2")
    assert created["reminder"]["owner_id"] == "advisor-2"


async def test_a_reminder_for_a_customer_without_owner_goes_to_the_recorder(
    api: httpx.AsyncClient, customer_id: str
) -> None:
    created = await with_reminder(api, customer_id, now() + timedelta(days=1))
    assert created["reminder"]["owner_id"] == "advisor-7"
    # The notes stay in the customer service: the reminder's note is its own.
    assert "spring collection" not in created["reminder"]["note"]


# --------------------------------------------------------------------------- bad input


def reminder_body(**overrides: Any) -> dict[str, Any]:
    return follow_up_body(reminder={"remind_at": iso(now() + timedelta(days=1)), **overrides})


@pytest.mark.parametrize(
    ("body", "field"),
    [
        (follow_up_body(kind="fax"), "kind"),
        (follow_up_body(kind={"$ne": None}), "kind"),
        (follow_up_body(notes="x" * 2001), "notes"),
        (follow_up_body(notes={"$ne": None}), "notes"),
        (follow_up_body(occurred_at=iso(now() + timedelta(days=1))), "occurred_at"),
        (follow_up_body(occurred_at="2025-01-01T10:00:00"), "occurred_at"),
        (follow_up_body(outcome="   "), "outcome"),
        (reminder_body(remind_at=iso(now() - timedelta(minutes=1))), "reminder.remind_at"),
        (reminder_body(remind_at=iso(now() + timedelta(days=400))), "reminder.remind_at"),
        (reminder_body(remind_at="2030-01-01T10:00:00"), "reminder.remind_at"),
        (reminder_body(remind_at={"$gt": ""}), "reminder.remind_at"),
        (reminder_body(owner_id={"$ne": None}), "reminder.owner_id"),
        (reminder_body(owner_id="advisor 1"), "reminder.owner_id"),
        (reminder_body(note="x" * 201), "reminder.note"),
        (follow_up_body(tenant="other"), "tenant"),
        ({"notes": "no kind"}, "kind"),
    ],
    ids=[
        "unknown-kind",
        "operator-kind",
        "long-notes",
        "operator-notes",
        "contact-in-the-future",
        "contact-without-zone",
        "blank-outcome",
        "reminder-in-the-past",
        "reminder-beyond-a-year",
        "reminder-without-zone",
        "operator-reminder-time",
        "operator-owner",
        "owner-with-space",
        "long-reminder-note",
        "extra-field",
        "missing-kind",
    ],
)
async def test_bad_input_is_a_problem_naming_the_field_and_writes_nothing(
    api: httpx.AsyncClient,
    service: Service,
    tenant: str,
    customer_id: str,
    body: dict[str, Any],
    field: str,
) -> None:
    response = await api.post(f"/customers/{customer_id}/follow-ups", json=body)
    problem = assert_problem(response, 422)
    assert field in fields(problem)
    assert all(e["reason"] for e in problem["errors"])
    assert await stored_follow_ups(service, tenant) == 0


async def test_notes_of_two_thousand_characters_are_accepted(
    api: httpx.AsyncClient, customer_id: str
) -> None:
    created = await record(api, customer_id, notes="跟" * 2000)
    assert len(created["notes"]) == 2000


async def test_an_unknown_customer_is_a_404_and_nothing_is_written(
    api: httpx.AsyncClient, service: Service, tenant: str
) -> None:
    unknown = f"cus_{uuid.uuid4().hex}"
    for response in (
        await api.post(f"/customers/{unknown}/follow-ups", json=follow_up_body()),
        await api.get(f"/customers/{unknown}/follow-ups"),
    ):
        assert assert_problem(response, 404)["code"] == "customer_not_found"
    assert await stored_follow_ups(service, tenant) == 0


async def test_another_tenants_follow_up_is_unknown(
    api: httpx.AsyncClient, customer_id: str, unique: str
) -> None:
    created = await with_reminder(api, customer_id, now() + timedelta(days=1))
    other = {"X-Tenant-Id": f"other{unique}"}
    response = await api.post(f"/follow-ups/{created['id']}/reminder/done", headers=other)
    assert assert_problem(response, 404)["code"] == "follow_up_not_found"
    assert (await reminder_of(api, customer_id, created["id"]))["state"] == "pending"


async def test_unknown_or_malformed_follow_ups_and_missing_reminders(
    api: httpx.AsyncClient, customer_id: str
) -> None:
    malformed = await api.post("/follow-ups/fup_$ne/reminder/done")
    assert fields(assert_problem(malformed, 422)) == {"follow_up_id"}
    unknown = await api.delete(f"/follow-ups/fup_{uuid.uuid4().hex}/reminder")
    assert assert_problem(unknown, 404)["code"] == "follow_up_not_found"
    plain = await record(api, customer_id)
    no_reminder = await api.post(f"/follow-ups/{plain['id']}/reminder/done")
    assert assert_problem(no_reminder, 404)["code"] == "reminder_not_found"


# --------------------------------------------------------------------------- an advisor's reminders


async def test_an_advisors_open_reminders_soonest_first_by_cursor(
    api: httpx.AsyncClient, customer_id: str
) -> None:
    start = now() + timedelta(hours=1)
    mine = [await with_reminder(api, customer_id, start + timedelta(hours=h)) for h in (5, 1, 3, 2)]
    await with_reminder(api, customer_id, start, owner_id="advisor-2")  # someone else's
    done, cancelled = mine[2], mine[3]
    assert (await api.post(f"/follow-ups/{done['id']}/reminder/done")).status_code == 200
    assert (await api.delete(f"/follow-ups/{cancelled['id']}/reminder")).status_code == 200

    first = (await open_reminders(api, limit=1)).json()
    second = (await open_reminders(api, limit=1, cursor=first["next_cursor"])).json()
    assert second["next_cursor"] is None
    assert [f["id"] for f in first["items"] + second["items"]] == [mine[1]["id"], mine[0]["id"]]

    due_soon = (await open_reminders(api, due_before=iso(start + timedelta(hours=2)))).json()
    assert [f["id"] for f in due_soon["items"]] == [mine[1]["id"]]
    theirs = (await open_reminders(api, owner_id="advisor-2")).json()
    assert [f["reminder"]["owner_id"] for f in theirs["items"]] == ["advisor-2"]


@pytest.mark.parametrize(
    ("params", "field"),
    [
        ({"due_before": "2030-01-01T10:00:00"}, "due_before"),
        ({"due_before": "soon"}, "due_before"),
        ({"owner_id": "$ne"}, "owner_id"),
        (
            {"cursor": encode_cursor({"occurred_at": "2025-01-01T00:00:00+00:00", "_id": "x"})},
            "cursor",
        ),
    ],
    ids=["time-without-zone", "not-a-time", "operator-owner", "foreign-cursor"],
)
async def test_a_bad_reminder_query_is_a_problem(
    api: httpx.AsyncClient, params: dict[str, str], field: str
) -> None:
    assert fields(assert_problem(await open_reminders(api, **params), 422)) == {field}


async def test_done_and_cancel_follow_the_reminders_state(
    api: httpx.AsyncClient, customer_id: str
) -> None:
    to_do = await with_reminder(api, customer_id, now() + timedelta(days=1))
    path = f"/follow-ups/{to_do['id']}/reminder"
    done = await api.post(f"{path}/done", headers={"X-Actor-Id": "advisor-3"})
    assert done.status_code == 200, done.text
    reminder = done.json()["reminder"]
    assert (reminder["state"], reminder["closed_by"]) == ("done", "advisor-3")
    again = await api.post(f"{path}/done")
    assert again.status_code == 200 and again.json()["reminder"] == reminder  # no change
    refused = await api.delete(path)
    assert assert_problem(refused, 409)["code"] == "reminder_done"

    to_drop = await with_reminder(api, customer_id, now() + timedelta(days=1))
    path = f"/follow-ups/{to_drop['id']}/reminder"
    cancelled = (await api.delete(path)).json()["reminder"]
    assert cancelled["state"] == "cancelled"
    assert (await api.delete(path)).json()["reminder"] == cancelled
    refused = await api.post(f"{path}/done")
    assert assert_problem(refused, 409)["code"] == "reminder_cancelled"
    assert (await reminder_of(api, customer_id, to_drop["id"]))["state"] == "cancelled"


# --------------------------------------------------------------------------- due reminders


async def test_a_due_reminder_is_published_once_by_two_replicas_and_not_before_it_is_due(
    api: httpx.AsyncClient, service: Service, tenant: str, replicas: Replicas
) -> None:
    owned = await register(api, owner_id="advisor-1")
    due_at = now() + timedelta(seconds=2)
    due = [await with_reminder(api, owned, due_at, note=f"Call back #{i}") for i in range(8)]
    later = await with_reminder(api, owned, now() + timedelta(hours=1))
    assert (await reminder_of(api, owned, due[0]["id"]))["state"] == "pending"

    events = await eventually(
        lambda: reminder_events(service, tenant), until=lambda found: len(found) >= len(due)
    )
    await replicas.more_rounds()  # both replicas look again after every reminder was sent
    events = await reminder_events(service, tenant)

    assert sorted(e.data["follow_up_id"] for e in events) == sorted(f["id"] for f in due)
    written = await outbox_events(service.db, tenant=tenant, type=REMINDER_DUE)
    assert len(written) == len(due)
    by_id = {f["id"]: f for f in due}
    for event in events:
        reminder = by_id[event.data["follow_up_id"]]["reminder"]
        assert event.subject == owned
        assert event.data["owner_id"] == "advisor-1"
        assert event.data["note"] == reminder["note"]
        assert parse(event.data["due_at"]) == parse(reminder["remind_at"])
        assert event.time >= parse(reminder["remind_at"])  # not before it was due
    for follow_up in due:
        sent = await reminder_of(api, owned, follow_up["id"])
        assert sent["state"] == "sent"
        assert parse(sent["sent_at"]) >= parse(sent["remind_at"])
    assert (await reminder_of(api, owned, later["id"]))["state"] == "pending"
    # A sent reminder is still the advisor's to act on, until done.
    open_ids = [f["id"] for f in (await open_reminders(api, owner_id="advisor-1")).json()["items"]]
    assert set(open_ids) == {*by_id, later["id"]}


def overdue_follow_up(tenant: str, *, minutes_ago: int) -> FollowUp:
    """A follow-up whose reminder fell due a while ago, as the store would hold it."""
    past = to_store_precision(now() - timedelta(minutes=minutes_ago))
    return FollowUp(
        id=new_follow_up_id(),
        tenant=tenant,
        customer_id=f"cus_{uuid.uuid4().hex}",
        kind=FollowUpKind.CALL,
        occurred_at=past - timedelta(days=1),
        recorded_by="advisor-7",
        recorded_at=past - timedelta(days=1),
        reminder=Reminder(remind_at=past, owner_id="advisor-7", note=f"{minutes_ago} min late"),
    )


async def test_replicas_racing_for_the_same_due_reminders_publish_each_once(
    infra: Any, unique: str
) -> None:
    """Rounds of two replicas started together list the same due reminders and race to
    claim each one; no HTTP service here, so no other worker takes part."""
    settings = settings_for(CustomerSettings, infra, unique)
    tenant = f"t{unique}"
    first = await Runtime.start(settings, indexes=indexes(settings), subscriptions=[])
    second = await Runtime.start(settings, indexes=indexes(settings), subscriptions=[])
    try:
        overdue = [overdue_follow_up(tenant, minutes_ago=m) for m in range(1, 11)]
        for follow_up in overdue:
            await FollowUpStore(first.db).add(follow_up)
        services = [
            FollowUpService(rt.uow, FollowUpStore(rt.db), CustomerStore(rt.db))
            for rt in (first, second, first, second)
        ]
        rounds = await asyncio.gather(*(s.publish_due_reminders(limit=100) for s in services))

        assert sum(published for _, published in rounds) == len(overdue)
        written = await outbox_events(first.db, tenant=tenant, type=REMINDER_DUE)
        assert len(written) == len(overdue)
        events = await eventually(
            lambda: reminder_events_at(settings, tenant),
            until=lambda found: len(found) >= len(overdue),
        )
        assert sorted(e.data["follow_up_id"] for e in events) == sorted(f.id for f in overdue)
    finally:
        await second.stop()
        await first.stop()


async def test_a_reminder_cancelled_before_it_is_due_is_never_published(
    api: httpx.AsyncClient, service: Service, tenant: str, customer_id: str, replicas: Replicas
) -> None:
    dropped = await with_reminder(api, customer_id, now() + timedelta(seconds=2))
    assert (await api.delete(f"/follow-ups/{dropped['id']}/reminder")).status_code == 200
    # A later one of the same customer: its event comes after any for the first one.
    marker = await with_reminder(api, customer_id, now() + timedelta(seconds=3))

    events = await eventually(lambda: reminder_events(service, tenant))
    assert [e.data["follow_up_id"] for e in events] == [marker["id"]]
    assert (await reminder_of(api, customer_id, dropped["id"]))["state"] == "cancelled"


async def test_a_reminder_that_cannot_be_published_is_parked_and_the_others_go_out(
    api: httpx.AsyncClient, service: Service, tenant: str, customer_id: str, replicas: Replicas
) -> None:
    # A document an older version wrote, whose note no longer fits the event.
    poison_id = f"fup_{uuid.uuid4().hex}"
    past = now() - timedelta(minutes=1)
    await service.db["follow_ups"].insert_one(
        {
            "_id": poison_id,
            "tenant": tenant,
            "customer_id": customer_id,
            "kind": "call",
            "notes": "",
            "occurred_at": past,
            "recorded_by": "advisor-7",
            "recorded_at": past,
            "reminder": {
                "remind_at": past,
                "owner_id": "advisor-7",
                "note": "x" * 300,
                "state": "pending",
            },
        }
    )
    good = await with_reminder(api, customer_id, now() + timedelta(seconds=2))

    events = await eventually(lambda: reminder_events(service, tenant))
    assert [e.data["follow_up_id"] for e in events] == [good["id"]]
    parked = await service.db["follow_ups"].find_one({"_id": poison_id})
    assert parked["reminder"]["state"] == "failed"
    assert "ValidationError" in parked["reminder"]["failure"]
    # Parked, it leaves the due set: the replicas do not retry it forever.
    await replicas.more_rounds()
    assert (await service.db["follow_ups"].find_one({"_id": poison_id}))["reminder"] == parked[
        "reminder"
    ]


class FailsFirstRound(ReminderPublisher):
    """A worker whose first round hits a fault (the store unreachable, say)."""

    async def round(self, service: FollowUpService) -> bool:
        if self.rounds == 0:
            raise ConnectionError("store briefly unreachable")
        return await super().round(service)


async def test_the_worker_survives_a_failed_round_and_stops_on_cancel(
    api: httpx.AsyncClient, service: Service, tenant: str, customer_id: str
) -> None:
    worker = FailsFirstRound(interval_seconds=FAST)
    task = asyncio.create_task(worker.run(service.runtime))
    try:
        await eventually(lambda: worker.rounds, until=lambda rounds: rounds >= 3)
        assert worker.faults == 1
        due = await with_reminder(api, customer_id, now() + timedelta(seconds=1))
        [event] = await eventually(lambda: reminder_events(service, tenant))
        assert event.data["follow_up_id"] == due["id"]
    finally:
        await stop([task])


async def test_the_service_runs_the_reminder_worker(http_ready: dict[str, Any]) -> None:
    assert http_ready["workers"]["worker:follow-up-reminders"] == "running"


@pytest.fixture
async def http_ready(client: Client) -> dict[str, Any]:
    async with client(tenant=None) as http:
        response = await http.get("/readyz")
    assert response.status_code == 200, response.text
    return response.json()
