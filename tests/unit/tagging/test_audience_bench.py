"""The segment-build benchmark's pure part at a small size, so it cannot rot: its rules are
valid segment rules, its synthetic customers are valid facts, and its numbers add up."""

from __future__ import annotations

from bench.segment_build import (
    BUILDS,
    NOW,
    SEGMENTS,
    customers,
    leaf_count,
    report_lines,
    run_engine,
)
from services.tagging.audience import AudienceEngine
from services.tagging.domain.rules.ast import segment
from services.tagging.domain.rules.catalogue import (
    CustomField,
    TagSpec,
    TagValueKind,
    build_catalogue,
)
from services.tagging.domain.rules.evaluate import matches
from services.tagging.domain.rules.facts import CustomerFacts
from services.tagging.domain.rules.validate import RuleContext, find_problems

CONTEXT = RuleContext(
    build_catalogue(
        [
            CustomField("skin_type", "enum", ("dry", "oily", "normal", "combination")),
            CustomField(
                "interests", "multi_enum", ("tea", "golf", "wine", "yoga", "baby", "travel")
            ),
        ]
    ),
    tags={
        "vip": TagSpec("vip", "VIP"),
        "coupon_fan": TagSpec("coupon_fan", "Coupon fan"),
        "level": TagSpec(
            "level", "Level", TagValueKind.ENUM, frozenset({"gold", "silver", "bronze"})
        ),
        "score": TagSpec("score", "Score", TagValueKind.NUMBER),
    },
    segment_rules=SEGMENTS,
)


def test_the_benchmark_rules_are_valid_segment_rules_of_the_intended_sizes() -> None:
    for segment_id, rule in SEGMENTS.items():
        assert find_problems(rule, CONTEXT) == [], segment_id
    sizes = {name: leaf_count(rule) for name, rule in BUILDS}
    assert sizes["small"] <= 2 and 5 <= sizes["medium"] <= 8 and 20 <= sizes["large"] <= 30


def test_synthetic_customers_are_valid_facts_the_engine_answers_like_the_reference() -> None:
    people = next(customers(1_500, seed=3))
    for facts in people[:200]:
        CustomerFacts.model_validate(facts.model_dump())
    audience = AudienceEngine().tenant("bench")
    audience.upsert_many(people)
    for segment_id in SEGMENTS:
        found = audience.evaluate(segment(segment_id), NOW, SEGMENTS).customer_ids()
        expected = [c.customer_id for c in people if reference_member(segment_id, c)]
        assert found == sorted(expected), segment_id


def reference_member(segment_id: str, facts: CustomerFacts) -> bool:
    memberships: dict[str, bool] = {}
    for other in ("medium", *SEGMENTS):  # `large` refers to `medium`
        memberships[other] = matches(SEGMENTS[other], facts, NOW, memberships)
    return memberships[segment_id]


def test_a_small_run_reports_every_measurement() -> None:
    results = run_engine(3_000, 200)
    assert results.customers == 3_000 and results.load_seconds > 0
    assert [b.rule for b in results.builds] == ["small", "medium", "large"]
    assert all(b.seconds > 0 and 0 <= b.members <= 3_000 for b in results.builds)
    assert results.builds[0].members > 0
    assert results.real_time.events == 200
    assert results.real_time.joined > 0
    assert 0 < results.real_time.p50_ms <= results.real_time.p99_ms
    lines = report_lines(results, scan_rate=40_000)
    assert any("faster than the scan" in line for line in lines)
