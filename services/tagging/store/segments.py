"""Segments and tenants' segment templates, and the claims that schedule time-based rebuilds."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime, timedelta
from typing import Any

from pymongo import ReturnDocument
from pymongo.asynchronous.client_session import AsyncClientSession
from pymongo.asynchronous.database import AsyncDatabase

from servicekit.mongo import Document, Index
from services.tagging.domain.rules.ast import parse_rule, rule_to_json
from services.tagging.domain.segment_templates import SegmentTemplate
from services.tagging.domain.segments import LastBuild, Segment

SEGMENTS = "segments"
SEGMENT_TEMPLATES = "segment_templates"
INDEXES = [
    Index(SEGMENTS, [("tenant", 1), ("segment_id", 1)], unique=True, name="by_segment"),
    Index(SEGMENTS, [("time_based", 1), ("refresh_due_at", 1)], name="refresh_due"),
    Index(SEGMENT_TEMPLATES, [("tenant", 1), ("template_id", 1)], unique=True, name="by_tpl"),
]
Session = AsyncClientSession | None


def _id(tenant: str, segment_id: str) -> str:
    return f"{tenant}:{segment_id}"


def _doc(segment: Segment) -> Document:
    doc = segment.model_dump(mode="python", exclude={"rule"})
    return {
        "_id": _id(segment.tenant, segment.segment_id),
        **doc,
        "rule": rule_to_json(segment.rule),
    }


def _segment(doc: Mapping[str, Any]) -> Segment:
    fields = {k: v for k, v in doc.items() if k not in ("_id", "refresh_due_at")}
    return Segment.model_validate({**fields, "rule": parse_rule(doc["rule"])})


class SegmentStore:
    def __init__(self, db: AsyncDatabase[Document]) -> None:
        self._segments = db[SEGMENTS]
        self._templates = db[SEGMENT_TEMPLATES]

    async def add(self, segment: Segment, *, refresh_due_at: datetime | None) -> None:
        await self._segments.insert_one({**_doc(segment), "refresh_due_at": refresh_due_at})

    async def get(self, tenant: str, segment_id: str, *, session: Session = None) -> Segment | None:
        doc = await self._segments.find_one({"_id": _id(tenant, segment_id)}, session=session)
        return _segment(doc) if doc else None

    async def replace(
        self, segment: Segment, *, expected_version: int, refresh_due_at: datetime | None
    ) -> bool:
        """Write `segment` unless someone changed it since `expected_version` was read."""
        query = {"_id": _id(segment.tenant, segment.segment_id), "version": expected_version}
        doc = {**_doc(segment), "refresh_due_at": refresh_due_at}
        result = await self._segments.replace_one(query, doc)
        return result.matched_count == 1

    async def delete(self, tenant: str, segment_id: str) -> bool:
        result = await self._segments.delete_one({"_id": _id(tenant, segment_id)})
        return result.deleted_count == 1

    async def page(self, tenant: str, *, after: str | None, limit: int) -> list[Segment]:
        query: Document = {"tenant": tenant}
        if after is not None:
            query["segment_id"] = {"$gt": after}
        cursor = self._segments.find(query).sort("segment_id", 1).limit(limit)
        return [_segment(doc) for doc in await cursor.to_list()]

    async def all(self, tenant: str, *, session: Session = None) -> list[Segment]:
        cursor = self._segments.find({"tenant": tenant}, session=session).sort("segment_id", 1)
        return [_segment(doc) for doc in await cursor.to_list()]

    async def tenants(self) -> list[str]:
        return sorted(await self._segments.distinct("tenant"))

    async def count(self, tenant: str) -> int:
        return await self._segments.count_documents({"tenant": tenant})

    async def record_build(
        self,
        tenant: str,
        segment_id: str,
        build: LastBuild,
        *,
        refresh_due_at: datetime | None,
        session: Session = None,
    ) -> None:
        """Record a finished build, unless a newer build of a newer rule got there first."""
        query = {
            "_id": _id(tenant, segment_id),
            "$or": [
                {"last_build": None},
                {"last_build.rule_version": {"$lte": build.rule_version}},
            ],
        }
        update = {"$set": {"last_build": build.model_dump(), "refresh_due_at": refresh_due_at}}
        await self._segments.update_one(query, update, session=session)

    async def claim_due_refresh(self, now: datetime, *, hold_seconds: float) -> Segment | None:
        """One time-based segment whose refresh is due, claimed by pushing its due time
        forward: of several replicas asking at once, exactly one gets it."""
        doc = await self._segments.find_one_and_update(
            {"time_based": True, "refresh_due_at": {"$lte": now}},
            {"$set": {"refresh_due_at": now + timedelta(seconds=hold_seconds)}},
            return_document=ReturnDocument.AFTER,
        )
        return _segment(doc) if doc else None

    # Templates of the tenant (the built-in ones live in code).
    async def add_template(self, tenant: str, template: SegmentTemplate) -> None:
        doc = template.model_dump(mode="json")
        await self._templates.insert_one({"_id": _id(tenant, template.template_id), **doc})

    async def template(self, tenant: str, template_id: str) -> SegmentTemplate | None:
        doc = await self._templates.find_one({"_id": _id(tenant, template_id)})
        return SegmentTemplate.model_validate(doc) if doc else None

    async def templates(self, tenant: str) -> list[SegmentTemplate]:
        cursor = self._templates.find({"tenant": tenant}).sort("template_id", 1)
        return [SegmentTemplate.model_validate(doc) for doc in await cursor.to_list()]

    async def delete_template(self, tenant: str, template_id: str) -> bool:
        result = await self._templates.delete_one({"_id": _id(tenant, template_id)})
        return result.deleted_count == 1
