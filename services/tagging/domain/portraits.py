"""Segment portraits (人群画像): how a segment's members spread over gender, lifecycle stage,
source channel, order count, spend, recency, reachability and tags. Pure: no I/O.

Each bucket is itself a rule of the rule language, so the audience engine answers a portrait
with the same evaluator as a segment (bucket ∧ member of the segment), and a bucket means
exactly what the same condition would mean in a segment.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from pydantic import BaseModel

from services.tagging.domain.rules.ast import Node, all_of, attr, negate, tag
from services.tagging.domain.rules.catalogue import GENDERS, LIFECYCLE_STAGES, SOURCE_CHANNELS

#: At most this many tags are shown, the most common first.
TOP_TAGS = 10


@dataclass(frozen=True)
class Bucket:
    label: str
    rule: Node


@dataclass(frozen=True)
class Dimension:
    name: str
    label: str
    buckets: tuple[Bucket, ...]


def _options(field: str, options: Iterable[str]) -> tuple[Bucket, ...]:
    present = tuple(Bucket(o, attr(field, "eq", o)) for o in options)
    return (*present, Bucket("not known", negate(attr(field, "exists"))))


def _between(field: str, low: int, high: int | None, label: str) -> Bucket:
    if high is None:
        return Bucket(label, attr(field, "gte", low))
    return Bucket(label, attr(field, "between", [low, high]))


_YUAN = 100  # minor units per yuan

DIMENSIONS: tuple[Dimension, ...] = (
    Dimension("gender", "gender", _options("gender", GENDERS)),
    Dimension("lifecycle_stage", "lifecycle stage", _options("lifecycle_stage", LIFECYCLE_STAGES)),
    Dimension("source_channel", "source channel", _options("source_channel", SOURCE_CHANNELS)),
    Dimension(
        "order_count",
        "orders",
        (
            Bucket("none", attr("order_count", "eq", 0)),
            _between("order_count", 1, 1, "1"),
            _between("order_count", 2, 4, "2-4"),
            _between("order_count", 5, 9, "5-9"),
            _between("order_count", 10, None, "10+"),
        ),
    ),
    Dimension(
        "net_amount",
        "net spend (yuan)",
        (
            Bucket("0", attr("net_amount", "lte", 0)),
            _between("net_amount", 1, 100 * _YUAN - 1, "under 100"),
            _between("net_amount", 100 * _YUAN, 500 * _YUAN - 1, "100-499"),
            _between("net_amount", 500 * _YUAN, 2000 * _YUAN - 1, "500-1,999"),
            _between("net_amount", 2000 * _YUAN, 10_000 * _YUAN - 1, "2,000-9,999"),
            _between("net_amount", 10_000 * _YUAN, None, "10,000+"),
        ),
    ),
    Dimension(
        "recency_days",
        "days since last purchase",
        (
            _between("recency_days", 0, 30, "0-30"),
            _between("recency_days", 31, 90, "31-90"),
            _between("recency_days", 91, 180, "91-180"),
            _between("recency_days", 181, 365, "181-365"),
            _between("recency_days", 366, None, "over a year"),
            Bucket("never bought", negate(attr("recency_days", "exists"))),
        ),
    ),
    Dimension(
        "reachable",
        "marketing consent",
        tuple(
            Bucket(channel, attr(f"consent.{channel}.marketing", "is_true"))
            for channel in ("sms", "wechat", "email", "push", "subscription_message")
        ),
    ),
)


def tag_dimension(tags: Iterable[tuple[str, str]]) -> Dimension:
    """A bucket per tag (id, name) of the tenant; `top_buckets` keeps the most common."""
    return Dimension("tags", "tags", tuple(Bucket(name, tag(tag_id)) for tag_id, name in tags))


def within(segment_rule: Node, bucket: Bucket) -> Node:
    return all_of(segment_rule, bucket.rule)


class BucketCount(BaseModel):
    label: str
    count: int
    #: Of the segment's members; 0 for an empty segment.
    share: float


class DimensionCounts(BaseModel):
    name: str
    label: str
    buckets: list[BucketCount]


def counted(
    dimension: Dimension, counts: list[int], size: int, *, top: int | None = None
) -> DimensionCounts:
    buckets = [
        BucketCount(label=b.label, count=n, share=round(n / size, 4) if size else 0.0)
        for b, n in zip(dimension.buckets, counts, strict=True)
    ]
    if top is not None:
        buckets = sorted((b for b in buckets if b.count), key=lambda b: -b.count)[:top]
    return DimensionCounts(name=dimension.name, label=dimension.label, buckets=buckets)
