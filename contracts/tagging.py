"""Events the tagging service publishes, keyed by the customer they are about (a build by
its segment)."""

from __future__ import annotations

from datetime import datetime
from typing import ClassVar

from contracts.events import Event
from contracts.topics import Topic


class TaggingEvent(Event):
    topic: ClassVar[Topic] = Topic.TAGGING


class TagAssigned(TaggingEvent):
    """Sent when a tag is put on a customer (manually, by batch, by a tag rule or import)."""

    type: ClassVar[str] = "tagging.tag_assigned.v1"

    customer_id: str
    tag_id: str
    value: str | int | float | None = None
    source: str
    assigned_by: str
    assigned_at: datetime
    expires_at: datetime | None = None


class TagRemoved(TaggingEvent):
    """Sent when a tag is taken off a customer (untagged, expired, or its rule no longer holds)."""

    type: ClassVar[str] = "tagging.tag_removed.v1"

    customer_id: str
    tag_id: str
    reason: str
    removed_by: str
    removed_at: datetime


class SegmentMemberJoined(TaggingEvent):
    """Sent when a customer starts to match a segment's rule (a build or a live change)."""

    type: ClassVar[str] = "tagging.segment_member_joined.v1"

    customer_id: str
    segment_id: str
    joined_at: datetime


class SegmentMemberLeft(TaggingEvent):
    """Sent when a customer stops matching a segment's rule."""

    type: ClassVar[str] = "tagging.segment_member_left.v1"

    customer_id: str
    segment_id: str
    left_at: datetime


class SegmentBuilt(TaggingEvent):
    """Sent when a segment build finishes, naming the snapshot a campaign can target."""

    type: ClassVar[str] = "tagging.segment_built.v1"
    subject_field: ClassVar[str] = "segment_id"

    segment_id: str
    build_id: str
    snapshot_id: str
    rule_version: int
    member_count: int
    joined: int
    left: int
    built_at: datetime
