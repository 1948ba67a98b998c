"""The published language: envelopes validate, every event follows the naming and topic
rules, old versions upcast to the newest, and the generated catalogue is current."""

from __future__ import annotations

import json
import re
from datetime import UTC, datetime
from typing import Any, ClassVar

import pytest
from pydantic import ValidationError

from contracts import Envelope, Event, Topic, event_class, registered_events, upcast
from contracts.catalogue import CATALOGUE, stale_files
from contracts.events import upcast_data

EVENT_TYPE = re.compile(r"^[a-z]+(\.[a-z_]+)+\.v\d+$")
#: Past participles that do not end in -ed; add one here when an event needs it.
IRREGULAR_PAST = (
    "sent",
    "paid",
    "spent",
    "won",
    "lost",
    "set",
    "built",
    "held",
    "made",
    "done",
    "withdrawn",
    "left",
)


def envelope(**overrides: Any) -> Envelope:
    fields: dict[str, Any] = {
        "type": "customer.registered.v1",
        "source": "/services/customer",
        "subject": "cus_1",
        "tenant": "acme",
        "data": {"customer_id": "cus_1"},
    }
    return Envelope(**{**fields, **overrides})


# --------------------------------------------------------------------------- envelope


@pytest.mark.parametrize(
    "bad_type",
    [
        "Customer.Registered.v1",
        "customer.registered",
        "customer.registered.v",
        "customer.registered.V1",
        "customer.v1",
        "customer-registered.v1",
        "customer.registered.v1.",
        "",
    ],
)
def test_envelope_refuses_a_malformed_event_type(bad_type: str) -> None:
    with pytest.raises(ValidationError, match="type"):
        envelope(type=bad_type)


@pytest.mark.parametrize("bad_tenant", ["", "Acme", "-acme", "acme corp", "a" * 64, "ac.me"])
def test_envelope_refuses_a_malformed_tenant(bad_tenant: str) -> None:
    with pytest.raises(ValidationError, match="tenant"):
        envelope(tenant=bad_tenant)


@pytest.mark.parametrize("tenant", ["acme", "0brand", "acme-cn_01", "a" * 63])
def test_envelope_accepts_well_formed_tenants(tenant: str) -> None:
    assert envelope(tenant=tenant).tenant == tenant


def test_envelope_refuses_unknown_attributes() -> None:
    with pytest.raises(ValidationError, match="extra"):
        envelope(partition_key="cus_1")


def test_envelope_round_trips_through_bytes() -> None:
    sent = envelope(
        traceparent="00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01",
        data={"customer_id": "cus_1", "nested": {"amount_fen": 1299}},
    )
    received = Envelope.from_bytes(sent.to_bytes())
    assert received == sent
    assert received.time.tzinfo is not None
    assert received.specversion == "1.0"


def test_envelopes_get_distinct_ids() -> None:
    assert envelope().id != envelope().id


# --------------------------------------------------------------------------- events


EVENTS = registered_events()


def test_the_registry_lists_the_published_events() -> None:
    assert "customer.registered.v1" in EVENTS
    assert all(cls.__module__.startswith("contracts.") for cls in EVENTS.values())


@pytest.mark.parametrize("type_", sorted(EVENTS))
def test_event_type_is_dotted_past_tense_and_versioned(type_: str) -> None:
    assert EVENT_TYPE.fullmatch(type_), f"{type_} is not like `domain.thing_happened.v1`"
    verb = type_.rsplit(".", 2)[-2]
    assert verb.endswith("ed") or verb.endswith(IRREGULAR_PAST), f"{verb!r} is not past tense"


@pytest.mark.parametrize("type_", sorted(EVENTS))
def test_event_declares_its_topic_and_when_it_is_sent(type_: str) -> None:
    cls = EVENTS[type_]
    assert cls.type == type_
    assert isinstance(cls.topic, Topic), f"{type_} has no topic from contracts.Topic"
    doc = (cls.__doc__ or "").strip()
    assert doc, f"{cls.__name__} needs a docstring saying when it is sent"
    assert "\n" not in doc, f"{cls.__name__}'s docstring should be one line"


@pytest.mark.parametrize("type_", sorted(EVENTS))
def test_event_subject_is_one_of_its_string_fields(type_: str) -> None:
    cls = EVENTS[type_]
    field = cls.model_fields.get(cls.subject_field)
    assert field is not None and field.is_required(), f"{type_} lacks {cls.subject_field}"
    assert field.annotation is str
    assert cls.model_construct(**{cls.subject_field: "cus_42"}).subject() == "cus_42"


def test_event_class_resolves_a_type_and_refuses_an_unknown_one() -> None:
    assert event_class("customer.registered.v1") is EVENTS["customer.registered.v1"]
    with pytest.raises(LookupError, match=r"nosuch\.thing_happened\.v1"):
        event_class("nosuch.thing_happened.v1")


def test_an_event_type_cannot_be_declared_twice() -> None:
    with pytest.raises(ValueError, match="declared twice"):

        class Duplicate(Event):
            type: ClassVar[str] = "customer.registered.v1"
            topic: ClassVar[Topic] = Topic.CUSTOMER


# --------------------------------------------------------------------------- upcasting
# Test-only events: their module is not under `contracts`, so the catalogue ignores them.


class MemberJoinedV1(Event):
    """Sent by these tests only (first shape: one name field, points as a float)."""

    type: ClassVar[str] = "contracttest.member_joined.v1"
    topic: ClassVar[Topic] = Topic.LOYALTY

    customer_id: str
    name: str
    points: float


class MemberJoinedV2(Event):
    """Sent by these tests only (second shape: display name)."""

    type: ClassVar[str] = "contracttest.member_joined.v2"
    topic: ClassVar[Topic] = Topic.LOYALTY

    customer_id: str
    display_name: str
    points: float


class MemberJoinedV3(Event):
    """Sent by these tests only (newest shape: integer points, a joined time)."""

    type: ClassVar[str] = "contracttest.member_joined.v3"
    topic: ClassVar[Topic] = Topic.LOYALTY

    customer_id: str
    display_name: str
    points: int
    joined_at: datetime | None = None


@upcast(MemberJoinedV1.type, MemberJoinedV2.type)
def upcast_member_joined_v1_v2(data: dict[str, Any]) -> dict[str, Any]:
    data = dict(data)
    data["display_name"] = data.pop("name")
    return data


@upcast(MemberJoinedV2.type, MemberJoinedV3.type)
def upcast_member_joined_v2_v3(data: dict[str, Any]) -> dict[str, Any]:
    return {**data, "points": round(data["points"]), "joined_at": None}


def test_an_old_message_reads_as_the_newest_version() -> None:
    old = MemberJoinedV1(customer_id="cus_7", name="Li Lei", points=12.6)
    raw = envelope(type=old.type, subject=old.subject(), data=old.model_dump(mode="json"))

    received = Envelope.from_bytes(raw.to_bytes())
    type_, data = upcast_data(received.type, received.data)
    event = event_class(type_).model_validate(data)

    assert type_ == MemberJoinedV3.type
    assert event == MemberJoinedV3(customer_id="cus_7", display_name="Li Lei", points=13)


def test_a_middle_version_upcasts_only_the_remaining_steps() -> None:
    type_, data = upcast_data(
        MemberJoinedV2.type, {"customer_id": "cus_8", "display_name": "Han", "points": 2.0}
    )
    assert type_ == MemberJoinedV3.type
    assert MemberJoinedV3.model_validate(data).points == 2


def test_the_newest_version_is_left_as_it_is() -> None:
    data = {"customer_id": "cus_9", "display_name": "Mei", "points": 5, "joined_at": None}
    assert upcast_data(MemberJoinedV3.type, data) == (MemberJoinedV3.type, data)


def test_test_only_events_stay_out_of_the_published_catalogue() -> None:
    assert not any(t.startswith("contracttest.") for t in registered_events())


# --------------------------------------------------------------------------- catalogue


def test_the_catalogue_is_current() -> None:
    stale = stale_files()
    assert stale == [], (
        "the event catalogue is out of date; run `python -m contracts.catalogue` "
        f"and commit the result: {[str(p) for p in stale]}"
    )


def test_the_asyncapi_document_lists_every_event_under_its_topic() -> None:
    doc = json.loads((CATALOGUE / "asyncapi.json").read_text())
    channels = {channel["address"]: channel for channel in doc["channels"].values()}
    assert set(channels) >= {str(t) for t in Topic}
    for type_, cls in EVENTS.items():
        name = type_.replace(".", "_")
        message = doc["components"]["messages"][name]
        assert message["name"] == type_
        assert message["summary"] == cls.__doc__.strip()
        assert channels[str(cls.topic)]["messages"][name] == {
            "$ref": f"#/components/messages/{name}"
        }


def test_each_event_schema_file_names_its_type_and_topic() -> None:
    for type_, cls in EVENTS.items():
        schema = json.loads((CATALOGUE / "events" / f"{type_}.json").read_text())
        assert schema["title"] == type_
        assert schema["x-topic"] == str(cls.topic)
        assert set(schema["required"]) >= {cls.subject_field}


def test_customer_registered_round_trips_through_its_json_data() -> None:
    cls = EVENTS["customer.registered.v1"]
    at = datetime(2024, 11, 11, 0, 0, tzinfo=UTC)
    event = cls(
        customer_id="cus_1",
        display_name="Li",
        source_channel="store",
        lifecycle_stage="lead",
        registered_at=at,
    )
    assert cls.model_validate(event.model_dump(mode="json")).registered_at == at
