"""How each customer event changes a customer's facts (pure)."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

from contracts.customer import (
    BehaviourRecorded,
    ConsentGranted,
    ConsentWithdrawn,
    CustomerProfileChanged,
    CustomerRegistered,
    LifecycleStageChanged,
    OwnerChanged,
    PurchaseStatsChanged,
)
from services.tagging.domain import facts_updates as updates
from services.tagging.domain.facts_updates import BEHAVIOUR_DAYS, FactsRecord

NOW = datetime(2025, 6, 15, 12, 0, tzinfo=UTC)
TODAY = NOW.date()


def record(**fields: object) -> FactsRecord:
    return FactsRecord.model_validate({"tenant": "acme", "customer_id": "cus_1", **fields})


def viewed(category: str, at: datetime = NOW) -> BehaviourRecorded:
    return BehaviourRecorded(
        customer_id="cus_1",
        behaviour_id="b1",
        kind="product_view",
        occurred_at=at,
        target={"category": category, "product_id": "p1", "colour": "red"},
    )


def stats(total: int, at: datetime = NOW, last: datetime | None = NOW) -> PurchaseStatsChanged:
    return PurchaseStatsChanged(
        customer_id="cus_1",
        order_count=3,
        total_amount=total,
        refunded_amount=0,
        first_purchase_at=last,
        last_purchase_at=last,
        changed_at=at,
    )


def test_registration_sets_the_profile_attributes() -> None:
    event = CustomerRegistered(
        customer_id="cus_1",
        display_name="Li",
        source_channel="store",
        lifecycle_stage="lead",
        registered_at=NOW,
        owner_id="adv-1",
    )
    attributes = updates.registered(record(), event).attributes
    assert attributes == {
        "registered_at": NOW,
        "source_channel": "store",
        "lifecycle_stage": "lead",
        "owner_id": "adv-1",
    }


def test_a_profile_change_replaces_custom_fields_and_keeps_known_attributes_only() -> None:
    before = record(custom={"old": "x"}, attributes={"registered_at": NOW})
    event = CustomerProfileChanged(
        customer_id="cus_1",
        changed_fields=["gender"],
        changed_by="ops",
        changed_at=NOW,
        attributes={
            "gender": "female",
            "display_name": "never kept",
            "custom_fields.shoe_size": 38,
            "custom_fields.wedding_day": "2020-05-01",
            "custom_fields.cleared": None,
        },
    )
    after = updates.profile_changed(before, event)
    assert after.attributes == {"registered_at": NOW, "gender": "female"}
    assert after.custom == {"shoe_size": 38, "wedding_day": datetime(2020, 5, 1, tzinfo=UTC)}
    assert updates.custom_types(after) == {"shoe_size": "number", "wedding_day": "date"}


def test_custom_field_types_are_inferred_from_values() -> None:
    assert updates.custom_type(True) == "boolean"
    assert updates.custom_type(1.5) == "number"
    assert updates.custom_type(["a"]) == "multi_enum"
    assert updates.custom_type("2020-05-01 is not a date") == "text"


def test_stage_and_owner_changes() -> None:
    staged = updates.stage_changed(
        record(),
        LifecycleStageChanged(
            customer_id="cus_1", from_stage="lead", to_stage="customer", reason="x", changed_at=NOW
        ),
    )
    owned = updates.owner_changed(
        staged,
        OwnerChanged(
            customer_id="cus_1",
            from_owner=None,
            to_owner="adv-2",
            reason="x",
            changed_by="ops",
            changed_at=NOW,
        ),
    )
    assert owned.attributes == {"lifecycle_stage": "customer", "owner_id": "adv-2"}


def test_consent_granted_then_withdrawn() -> None:
    common = {"customer_id": "cus_1", "channel": "sms", "purpose": "marketing", "source": "app"}
    granted = updates.consent_changed(record(), ConsentGranted(**common, granted_at=NOW))
    assert granted.facts().consents == {"sms.marketing": True}
    withdrawn = updates.consent_changed(granted, ConsentWithdrawn(**common, withdrawn_at=NOW))
    assert withdrawn.consents == {"sms.marketing": False}


def test_purchase_stats_are_a_snapshot_and_a_late_older_one_is_ignored() -> None:
    latest = updates.stats_changed(record(), stats(500_000))
    assert latest.stats.total_amount == 500_000
    late = updates.stats_changed(latest, stats(100, at=NOW - timedelta(minutes=1)))
    assert late == latest


def test_behaviour_counts_by_day_untargeted_and_per_known_target_key() -> None:
    once = updates.behaviour_recorded(record(), viewed("baby"), TODAY)
    twice = updates.behaviour_recorded(once, viewed("baby"), TODAY)
    assert twice.behaviour == {
        ("product_view", "", ""): {TODAY: 2},
        ("product_view", "category", "baby"): {TODAY: 2},
        ("product_view", "product_id", "p1"): {TODAY: 2},
    }


def test_behaviour_older_than_the_window_is_trimmed_on_write() -> None:
    old_day = TODAY - timedelta(days=BEHAVIOUR_DAYS)
    kept_day = TODAY - timedelta(days=BEHAVIOUR_DAYS - 1)
    before = record(behaviour={("search", "", ""): {old_day: 5, kept_day: 1}})
    after = updates.behaviour_recorded(before, viewed("baby"), TODAY)
    assert after.behaviour[("search", "", "")] == {kept_day: 1}
    too_old = updates.behaviour_recorded(record(), viewed("baby", NOW - timedelta(days=400)), TODAY)
    assert too_old.behaviour == {}


def test_merge_adds_behaviour_and_missing_consents_and_unmerge_takes_them_back() -> None:
    day = date(2025, 6, 14)
    survivor = record(behaviour={("search", "", ""): {day: 1}}, consents={"sms.marketing": False})
    duplicate = FactsRecord(
        tenant="acme",
        customer_id="cus_2",
        behaviour={("search", "", ""): {day: 2}},
        consents={"sms.marketing": True, "email.marketing": True},
    )
    merged = updates.merged_into(survivor, duplicate, TODAY)
    assert merged.behaviour == {("search", "", ""): {day: 3}}
    assert merged.consents == {"sms.marketing": False, "email.marketing": True}
    folded = updates.mark_merged(duplicate, "cus_1")
    assert not folded.active and folded.merged_into == "cus_1"
    assert updates.unmerged_from(merged, folded, TODAY).behaviour == survivor.behaviour
    assert updates.restore(folded).active
