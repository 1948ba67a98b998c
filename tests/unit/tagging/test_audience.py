"""The audience engine, operator family by operator family, and how it follows changes."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta, timezone

import pytest

from services.tagging.audience import AudienceEngine, SegmentCycleError, TenantAudience, engine
from services.tagging.domain.rules.ast import (
    BehaviourCondition,
    Node,
    all_of,
    any_of,
    attr,
    negate,
    segment,
    tag,
)
from services.tagging.domain.rules.evaluate import matches
from services.tagging.domain.rules.facts import CustomerFacts, TagAssignment
from tests.unit.tagging.factories import NOW, TODAY, customer

DAY = timedelta(days=1)
BIG = 2**53  # the first int past which float64 skips integers


def person(customer_id: str, **kwargs: object) -> CustomerFacts:
    return customer(**kwargs).model_copy(update={"customer_id": customer_id})  # type: ignore[arg-type]


def tenant(*people: CustomerFacts) -> TenantAudience:
    audience = AudienceEngine().tenant("t")
    audience.upsert_many(people)
    return audience


def members(audience: TenantAudience, rule: Node, now: datetime = NOW, **segments: Node) -> list:
    return audience.evaluate(rule, now, segments).customer_ids()


def assert_selects(people: list[CustomerFacts], rule: Node, expected: list[str]) -> None:
    """The engine selects `expected`, and so does the reference evaluator."""
    assert sorted(c.customer_id for c in people if matches(rule, c, NOW, {})) == expected
    assert members(tenant(*people), rule) == expected


def behaviour(kind: str, within_days: int, count: int = 1, op: str = "at_least") -> Node:
    return BehaviourCondition.model_validate(
        {"kind": kind, "op": op, "count": count, "within_days": within_days}
    )


# ---------------------------------------------------------------- text and enums


@pytest.fixture
def genders() -> list[CustomerFacts]:
    return [
        person("f", gender="female", owner_id="a"),
        person("m", gender="male"),
        person("n"),  # no gender at all
        person("x", gender=3),  # a wrong-kind value: compares false, yet exists
    ]


@pytest.mark.parametrize(
    ("rule", "expected"),
    [
        (attr("gender", "eq", "female"), ["f"]),
        (attr("gender", "ne", "female"), ["m", "x"]),
        (negate(attr("gender", "eq", "female")), ["m", "n", "x"]),
        (attr("gender", "in", ["female", "other"]), ["f"]),
        (attr("gender", "not_in", ["female"]), ["m"]),
        (attr("gender", "in", ["nobody-has-this"]), []),
        # Past four values the codes are looked up in a table rather than compared one by one.
        (attr("gender", "in", ["female", "male", "other", "unknown", "a", "b"]), ["f", "m"]),
        (attr("gender", "not_in", ["female", "other", "unknown", "a", "b"]), ["m"]),
        (attr("gender", "exists"), ["f", "m", "x"]),
        (negate(attr("gender", "exists")), ["n"]),
        (attr("owner_id", "eq", "a"), ["f"]),
        (attr("never_heard_of", "ne", "a"), []),
    ],
)
def test_text_comparisons_keep_missing_and_wrong_kind_values_out(
    genders: list[CustomerFacts], rule: Node, expected: list[str]
) -> None:
    assert_selects(genders, rule, expected)


# ------------------------------------------------------------------------ numbers


@pytest.fixture
def spenders() -> list[CustomerFacts]:
    return [
        person("zero"),
        person("one", stats={"order_count": 1, "total_amount": 100}, birthday_month=1),
        person("bool", custom={"shoe_size": True}),
        person("float", custom={"shoe_size": 38.5}),
        person("big", stats={"total_amount": BIG + 1, "order_count": 2}),
        person("edge", stats={"total_amount": BIG, "order_count": 2}),
    ]


@pytest.mark.parametrize(
    ("rule", "expected"),
    [
        (attr("order_count", "eq", 1), ["one"]),
        (attr("order_count", "eq", 1.0), ["one"]),
        (attr("order_count", "gte", 2), ["big", "edge"]),
        (attr("order_count", "between", [1, 1]), ["one"]),
        (attr("birthday_month", "ne", 1), []),
        (attr("custom.shoe_size", "eq", 1), []),  # True is not 1
        (attr("custom.shoe_size", "eq", True), ["bool"]),
        (attr("custom.shoe_size", "gt", 38), ["float"]),
        (attr("custom.shoe_size", "exists"), ["bool", "float"]),
        (attr("order_count", "gt", True), []),
        # Money past 2**53 compares exactly on both sides.
        (attr("total_amount", "eq", BIG + 1), ["big"]),
        (attr("total_amount", "gt", BIG), ["big"]),
        (attr("total_amount", "lt", BIG + 1), ["bool", "edge", "float", "one", "zero"]),
        (attr("total_amount", "gte", BIG + 1), ["big"]),
        (attr("total_amount", "lte", BIG), ["bool", "edge", "float", "one", "zero"]),
        (attr("total_amount", "between", [BIG + 1, BIG + 1]), ["big"]),
        (attr("net_amount", "eq", BIG + 1), ["big"]),
    ],
)
def test_numbers_compare_exactly_and_never_with_booleans(
    spenders: list[CustomerFacts], rule: Node, expected: list[str]
) -> None:
    assert_selects(spenders, rule, expected)


def test_refund_rate_is_the_stats_formula() -> None:
    audience = tenant(
        person("half", stats={"total_amount": 200, "refunded_amount": 100}),
        person("none", stats={"total_amount": 200}),
    )
    assert members(audience, attr("refund_rate", "gte", 0.5)) == ["half"]
    assert members(audience, attr("refund_rate", "eq", 0)) == ["none"]


# ----------------------------------------------------------------------- instants


@pytest.fixture
def visitors() -> list[CustomerFacts]:
    return [
        person("old", registered_at=NOW - 30 * DAY, stats={"last_purchase_at": NOW - 30 * DAY}),
        person("week", registered_at=NOW - 7 * DAY, stats={"last_purchase_at": NOW - 7 * DAY}),
        person("now", registered_at=NOW, stats={"last_purchase_at": NOW - timedelta(hours=1)}),
        person("future", registered_at=NOW + DAY),
        person("never"),
        person("text", registered_at="2025-01-01"),  # a wrong-kind value
    ]


@pytest.mark.parametrize(
    ("rule", "expected"),
    [
        (attr("registered_at", "before", (NOW - 7 * DAY).isoformat()), ["old"]),
        (attr("registered_at", "after", NOW.date().isoformat()), ["future", "now"]),
        (
            attr("registered_at", "between", [(NOW - 7 * DAY).isoformat(), NOW.isoformat()]),
            ["now", "week"],
        ),
        (attr("registered_at", "within_last_days", 7), ["now", "week"]),
        (attr("registered_at", "not_within_last_days", 7), ["old"]),
        (attr("registered_at", "before", "not a date"), []),
        (attr("registered_at", "exists"), ["future", "now", "old", "text", "week"]),
        (attr("recency_days", "eq", 0), ["now"]),
        (attr("recency_days", "gte", 7), ["old", "week"]),
        (attr("recency_days", "exists"), ["now", "old", "week"]),
        (attr("last_purchase_at", "within_last_days", 10), ["now", "week"]),
    ],
)
def test_instant_comparisons(
    visitors: list[CustomerFacts], rule: Node, expected: list[str]
) -> None:
    assert_selects(visitors, rule, expected)


def test_recency_is_counted_at_the_evaluations_now() -> None:
    audience = tenant(person("c", stats={"last_purchase_at": NOW - 2 * DAY}))
    rule = attr("recency_days", "eq", 2)
    assert members(audience, rule) == ["c"]
    assert members(audience, rule, NOW + DAY) == []


# ------------------------------------------------------------ lists and booleans


@pytest.mark.parametrize(
    ("rule", "expected"),
    [
        (attr("custom.interests", "contains", "golf"), ["both", "golf"]),
        (attr("custom.interests", "contains_any", ["tea", "wine"]), ["both"]),
        (attr("custom.interests", "contains_all", ["golf", "wine"]), ["both"]),
        (attr("custom.interests", "contains_all", []), ["both", "empty", "golf"]),
        (attr("custom.interests", "eq", ["golf", "wine"]), ["both"]),
        (attr("custom.interests", "eq", ["wine", "golf"]), []),
        (attr("custom.interests", "exists"), ["both", "empty", "golf"]),
        (attr("custom.vip_club", "is_true"), ["golf"]),
        (attr("custom.vip_club", "is_false"), ["both"]),
        (negate(attr("custom.vip_club", "is_true")), ["both", "empty", "none"]),
        (attr("consent.sms.marketing", "is_true"), ["empty"]),
        (attr("consent.sms.marketing", "is_false"), []),
    ],
)
def test_list_and_boolean_comparisons(rule: Node, expected: list[str]) -> None:
    people = [
        person("golf", custom={"interests": ["golf"], "vip_club": True}),
        person("both", custom={"interests": ["golf", "wine"], "vip_club": False}),
        person("empty", custom={"interests": []}, consents={"sms.marketing": True}),
        person("none"),
    ]
    assert_selects(people, rule, expected)


# ------------------------------------------------------------------------------ tags


@pytest.mark.parametrize(
    ("rule", "expected"),
    [
        (tag("vip"), ["forever", "later"]),
        (tag("level", "eq", "gold"), ["forever"]),
        (tag("level", "ne", "gold"), ["later"]),
        (tag("level", "in", ["gold", "silver"]), ["forever", "later"]),
        (tag("score", "gte", 5), ["forever"]),
        (tag("score", "ne", 5), []),
        (negate(tag("vip")), ["expired", "untagged"]),
        (tag("nobody"), []),
    ],
)
def test_tags_count_only_while_active(rule: Node, expected: list[str]) -> None:
    forever = {"vip": TagAssignment(), "level": TagAssignment(value="gold")}
    people = [
        person("forever", tags={**forever, "score": TagAssignment(value=5)}),
        person(
            "later",
            tags={
                "vip": TagAssignment(expires_at=NOW + timedelta(seconds=1)),
                "level": TagAssignment(value="silver"),
            },
        ),
        # Expiring exactly now is expired: an assignment is active strictly before.
        person(
            "expired",
            tags={
                "vip": TagAssignment(expires_at=NOW),
                "score": TagAssignment(value=9, expires_at=NOW - DAY),
            },
        ),
        person("untagged"),
    ]
    assert_selects(people, rule, expected)


# ------------------------------------------------------------------------- behaviour


def test_behaviour_windows_are_calendar_days_ending_today() -> None:
    views = {("product_view", "", ""): {TODAY: 1, TODAY - 2 * DAY: 2, TODAY - 9 * DAY: 5}}
    audience = tenant(person("busy", behaviour=views), person("idle"))
    assert members(audience, behaviour("product_view", 1)) == ["busy"]
    assert members(audience, behaviour("product_view", 3, count=3)) == ["busy"]
    assert members(audience, behaviour("product_view", 2, count=2)) == []
    assert members(audience, behaviour("product_view", 10, count=8)) == ["busy"]
    assert members(audience, behaviour("product_view", 3, count=0, op="at_most")) == ["idle"]
    assert members(audience, behaviour("search", 30, count=0, op="at_most")) == ["busy", "idle"]


def test_behaviour_days_are_those_of_the_zone_now_is_given_in() -> None:
    # 12:00 UTC on the 15th is already the 16th in UTC+13.
    ahead = NOW.astimezone(timezone(timedelta(hours=13)))
    views = {("search", "", ""): {date(2025, 6, 16): 1}}
    audience = tenant(person("c", behaviour=views))
    assert members(audience, behaviour("search", 1), NOW) == []
    assert members(audience, behaviour("search", 1), ahead) == ["c"]


def test_a_targeted_condition_reads_its_own_series() -> None:
    series = {("product_view", "category", "baby"): {TODAY: 2}}
    audience = tenant(person("parent", behaviour=series))
    targeted = BehaviourCondition.model_validate(
        {
            "kind": "product_view",
            "target": {"key": "category", "value": "baby"},
            "count": 2,
            "within_days": 30,
        }
    )
    assert members(audience, targeted) == ["parent"]
    assert members(audience, behaviour("product_view", 30)) == []


# -------------------------------------------------------------------------- segments


def test_segment_conditions_use_the_segment_rules_given() -> None:
    audience = tenant(person("f", gender="female"), person("m", gender="male"))
    women = attr("gender", "eq", "female")
    assert members(audience, segment("women"), women=women) == ["f"]
    assert members(audience, segment("women", "not_in"), women=women) == ["m"]
    assert members(audience, segment("unknown")) == []
    assert members(audience, segment("unknown", "not_in")) == ["f", "m"]
    nested = any_of(segment("women"), all_of(segment("women"), segment("vip_women")))
    assert members(audience, nested, women=women, vip_women=segment("women")) == ["f"]


def test_a_cycle_between_segments_is_refused() -> None:
    audience = tenant(person("c"))
    with pytest.raises(SegmentCycleError):
        audience.evaluate(segment("a"), NOW, {"a": segment("b"), "b": segment("a")})


# ---------------------------------------------------------------------------- changes


def test_replacing_a_customer_replaces_everything_known_of_them() -> None:
    views = {("search", "", ""): {TODAY: 3}}
    audience = tenant(
        person(
            "c",
            gender="female",
            tags={"vip": TagAssignment()},
            behaviour=views,
            custom={"interests": ["golf"]},
            stats={"total_amount": BIG + 1},
        ),
    )
    audience.upsert(person("c", gender="male"))
    assert len(audience) == 1
    assert members(audience, attr("gender", "eq", "male")) == ["c"]
    for gone in (
        attr("gender", "eq", "female"),
        tag("vip"),
        behaviour("search", 1),
        attr("custom.interests", "exists"),
        attr("total_amount", "gt", BIG),
    ):
        assert members(audience, gone) == [], gone


def test_removed_customers_leave_every_answer() -> None:
    views = {("search", "", ""): {TODAY: 1}}
    audience = tenant(person("a", behaviour=views), person("b"), person("c", behaviour=views))
    audience.remove("a")
    audience.remove("never-there")
    assert len(audience) == 2
    assert members(audience, behaviour("search", 1)) == ["c"]
    assert members(audience, negate(behaviour("search", 1))) == ["b"]
    assert members(audience, behaviour("search", 1, count=0, op="at_most")) == ["b"]
    assert "a" not in audience.evaluate(negate(tag("x")), NOW)


def test_an_audience_is_a_snapshot_even_when_rows_are_reused() -> None:
    audience = tenant(person("a", gender="female"), person("b", gender="female"))
    before = audience.evaluate(attr("gender", "eq", "female"), NOW)
    audience.remove("a")
    audience.upsert(person("z", gender="male"))  # takes a's row
    audience.upsert(person("a", gender="female"))  # back, in a new row
    assert before.customer_ids() == ["a", "b"]
    assert "a" in before and "z" not in before
    assert members(audience, attr("gender", "eq", "female")) == ["a", "b"]
    assert members(audience, attr("gender", "eq", "male")) == ["z"]


def test_a_later_upsert_in_one_batch_wins() -> None:
    audience = tenant(person("c", gender="female"), person("c", gender="male"))
    assert len(audience) == 1
    assert members(audience, attr("gender", "exists")) == ["c"]
    assert members(audience, attr("gender", "eq", "male")) == ["c"]


def test_rows_grow_past_the_initial_capacity() -> None:
    audience = tenant(*(person(f"c{i:05d}", birthday_month=i % 12) for i in range(2500)))
    for i in range(2500, 3000):
        audience.upsert(person(f"c{i:05d}", birthday_month=i % 12, tags={"t": TagAssignment()}))
    assert len(audience) == 3000
    assert audience.evaluate(attr("birthday_month", "eq", 0), NOW).count == 250
    assert members(audience, tag("t"))[:2] == ["c02500", "c02501"]
    assert audience.evaluate(tag("t"), NOW).count == 500


def test_members_come_in_id_order_and_sample_takes_the_first() -> None:
    audience = tenant(*(person(f"c{i}", gender="female") for i in (5, 3, 9, 1)))
    everyone = audience.evaluate(attr("gender", "exists"), NOW)
    assert everyone.customer_ids() == ["c1", "c3", "c5", "c9"]
    assert everyone.sample(2) == ["c1", "c3"]
    assert everyone.sample(0) == []
    audience.upsert(person("c0", gender="female"))
    assert audience.evaluate(attr("gender", "exists"), NOW).sample(1) == ["c0"]
    assert everyone.sample(1) == ["c1"]


def test_the_engine_keeps_one_audience_per_tenant() -> None:
    engine = AudienceEngine()
    first = engine.tenant("a")
    first.upsert(person("c"))
    assert engine.tenant("a") is first
    assert len(engine.tenant("b")) == 0
    engine.drop("a")
    assert len(engine.tenant("a")) == 0


def test_naive_and_zoned_nows_mean_the_same_instant() -> None:
    audience = tenant(person("c", registered_at=NOW - timedelta(hours=1)))
    rule = attr("registered_at", "within_last_days", 0)
    assert members(audience, rule) == []
    assert members(audience, attr("registered_at", "before", NOW.isoformat())) == ["c"]
    naive = NOW.replace(tzinfo=None)
    assert members(audience, attr("registered_at", "within_last_days", 1), naive) == ["c"]
    assert NOW.tzinfo is UTC


def test_big_tag_values_beside_valueless_assignments_compare_exactly() -> None:
    people = [
        person("big", tags={"score": TagAssignment(value=BIG + 1)}),
        person("flag", tags={"score": TagAssignment()}),
        person("edge", tags={"score": TagAssignment(value=BIG)}),
    ]
    assert_selects(people, tag("score", "gt", BIG), ["big"])
    assert_selects(people, tag("score", "eq", BIG + 1), ["big"])
    assert_selects(people, tag("score", "ne", BIG + 1), ["edge"])
    assert_selects(people, tag("score", "lte", BIG), ["edge"])


def test_replaced_behaviour_is_ignored_then_compacted_away() -> None:
    views = {("search", "", ""): {TODAY: 1}}
    audience = tenant(*(person(f"c{i}", behaviour=views) for i in range(10)))
    searched = behaviour("search", 1)
    series = audience.series(("search", "", ""))
    assert series is not None and len(series) == 10
    audience.upsert(person("c0"))  # one stale entry of ten: skipped, kept
    assert members(audience, searched) == [f"c{i}" for i in range(1, 10)]
    assert len(series) == 10
    for i in range(1, 4):  # four of ten: compacted on the next window
        audience.remove(f"c{i}")
    assert members(audience, searched) == [f"c{i}" for i in range(4, 10)]
    assert len(series) == 6
    audience.upsert(person("c0", behaviour=views))
    assert members(audience, searched) == ["c0", *(f"c{i}" for i in range(4, 10))]


def test_a_portrait_counts_members_per_value() -> None:
    audience = tenant(
        person("a", gender="female", custom={"interests": ["golf", "tea"], "vip_club": True}),
        person("b", gender="female", custom={"interests": ["tea"]}),
        person("c", gender="male", custom={"vip_club": False}),
        person("d"),
        person("e", gender="female", birthday_month=5),
    )
    members = audience.evaluate(negate(attr("birthday_month", "exists")), NOW)
    assert audience.value_counts(members, "gender") == {"female": 2, "male": 1, None: 1}
    assert audience.value_counts(members, "custom.interests") == {"golf": 1, "tea": 2, None: 2}
    assert audience.value_counts(members, "custom.vip_club") == {True: 1, False: 1, None: 2}
    audience.remove("d")
    assert audience.value_counts(members, "gender") == {"female": 2, "male": 1}
    assert audience.value_counts(members, "nothing") == {None: 3}


def test_stats_and_prefixed_names_win_over_attributes_of_the_same_name() -> None:
    shadowing = {"order_count": 99, "custom.nickname": "attr", "consent.sms.marketing": True}
    people = [
        person("c", stats={"order_count": 1}, custom={"nickname": "custom"}, **shadowing),
    ]
    assert_selects(people, attr("order_count", "eq", 1), ["c"])
    assert_selects(people, attr("order_count", "eq", 99), [])
    assert_selects(people, attr("custom.nickname", "eq", "custom"), ["c"])
    assert_selects(people, attr("consent.sms.marketing", "exists"), [])


def test_a_bulk_load_larger_than_a_chunk_keeps_the_last_facts_of_each_customer(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(engine, "LOAD_CHUNK", 7)
    audience = AudienceEngine().tenant("t")
    audience.upsert_many(
        person(f"c{i % 15:02d}", birthday_month=1 + i // 15, gender="female") for i in range(30)
    )
    assert len(audience) == 15
    assert audience.evaluate(attr("birthday_month", "eq", 2), NOW).count == 15
    assert members(audience, attr("gender", "exists"))[:3] == ["c00", "c01", "c02"]


def test_id_order_follows_customers_added_after_it_was_sorted() -> None:
    ids = [f"c{(i * 7919) % 5000:04d}" for i in range(3000)]  # distinct, not in order
    audience = tenant(*(person(customer_id) for customer_id in ids[:100]))
    everyone = attr("gender", "exists")
    audience.upsert_many(person(c, gender="female") for c in ids[:100])
    assert members(audience, everyone) == sorted(ids[:100])
    for customer_id in ids[100:150]:  # a short tail, merged into the cached order
        audience.upsert(person(customer_id, gender="female"))
    assert members(audience, everyone) == sorted(ids[:150])
    assert audience.evaluate(everyone, NOW).sample(5) == sorted(ids[:150])[:5]
    audience.upsert_many(person(c, gender="female") for c in ids[150:])  # past an eighth
    assert members(audience, everyone) == sorted(ids)
    audience.remove(ids[0])
    audience.upsert(person("a-new-first", gender="female"))  # takes the freed row
    assert members(audience, everyone) == sorted(["a-new-first", *ids[1:]])
