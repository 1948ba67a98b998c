"""Jobs at rest: every query of the job record and its attachments."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from pymongo import ReturnDocument
from pymongo.asynchronous.database import AsyncDatabase

from servicekit.clock import utcnow
from servicekit.errors import Conflict, NotFound
from servicekit.jobs.model import ATTACHMENTS, Job, JobState, new_job_id
from servicekit.jobs.progress import ProgressFlush
from servicekit.mongo import Document
from servicekit.pagination import PageRequest, next_cursor

JOBS = "jobs"


class JobStore:
    """Every query on jobs. Writes of a runner name it as `owner`: one that lost its lease
    (another runner took the job over) changes nothing."""

    def __init__(self, db: AsyncDatabase[Document]) -> None:
        self._jobs = db[JOBS]
        self._attachments = db[ATTACHMENTS]

    async def create(
        self,
        tenant: str,
        kind: str,
        *,
        params: dict[str, Any],
        created_by: str,
        total: int | None = None,
        job_id: str | None = None,
    ) -> Job:
        job = Job(
            id=job_id or new_job_id(),
            tenant=tenant,
            kind=kind,
            state=JobState.QUEUED,
            params=params,
            total=total,
            created_by=created_by,
            created_at=utcnow(),
        )
        await self._jobs.insert_one(_to_doc(job))
        return job

    async def get(self, tenant: str, job_id: str) -> Job | None:
        doc = await self._jobs.find_one({"_id": job_id, "tenant": tenant})
        return Job.from_doc(doc) if doc else None

    async def page(
        self,
        tenant: str,
        page: PageRequest,
        *,
        kind: str | None = None,
        state: JobState | None = None,
    ) -> tuple[list[Job], str | None]:
        """Newest first."""
        query: Document = {"tenant": tenant}
        if kind is not None:
            query["kind"] = kind
        if state is not None:
            query["state"] = str(state)
        if page.after:
            query["_id"] = {"$lt": str(page.after_value("_id"))}
        docs = await self._jobs.find(query).sort("_id", -1).limit(page.limit + 1).to_list()
        return [Job.from_doc(d) for d in docs[: page.limit]], next_cursor(docs, page.limit, "_id")

    async def request_cancel(self, tenant: str, job_id: str) -> Job:
        """A queued job is cancelled at once; a running one is asked to stop."""
        at = utcnow()
        queued = {"_id": job_id, "tenant": tenant, "state": str(JobState.QUEUED)}
        finish = {"state": str(JobState.CANCELLED), "finished_at": at, "cancel_requested": True}
        doc = await self._jobs.find_one_and_update(
            queued, {"$set": finish}, return_document=ReturnDocument.AFTER
        )
        if doc is None:
            running = {"_id": job_id, "tenant": tenant, "state": str(JobState.RUNNING)}
            doc = await self._jobs.find_one_and_update(
                running,
                {"$set": {"cancel_requested": True}},
                return_document=ReturnDocument.AFTER,
            )
        if doc is not None:
            return Job.from_doc(doc)
        job = await self.get(tenant, job_id)
        if job is None:
            raise NotFound(f"no job {job_id}", code="job_not_found")
        raise Conflict(f"the job has already {job.state}", code="job_finished")

    # --- a runner's writes -------------------------------------------------------------

    async def claim(self, owner: str, kinds: list[str], lease: timedelta) -> Job | None:
        """Take the oldest queued job of these kinds, or a running one whose runner's lease
        lapsed (it crashed): one conditional update, so two runners never share a job."""
        at = utcnow()
        doc = await self._jobs.find_one_and_update(
            {
                "kind": {"$in": kinds},
                "$or": [
                    {"state": str(JobState.QUEUED)},
                    {"state": str(JobState.RUNNING), "lease_until": {"$lt": at}},
                ],
            },
            {
                "$set": {"state": str(JobState.RUNNING), "owner": owner, "lease_until": at + lease},
                "$inc": {"attempts": 1},
            },
            sort=[("_id", 1)],
            return_document=ReturnDocument.AFTER,
        )
        if doc is None:
            return None
        if doc.get("started_at") is None:
            await self._jobs.update_one({"_id": doc["_id"]}, {"$set": {"started_at": at}})
            doc["started_at"] = at
        return Job.from_doc(doc)

    async def progress(
        self, job_id: str, owner: str, flush: ProgressFlush, lease: timedelta
    ) -> bool | None:
        """Add the counts, keep the errors and checkpoint, renew the lease. Returns whether a
        cancel was requested, or None when this runner no longer owns the job."""
        update: Document = {
            "$set": {"lease_until": utcnow() + lease},
            "$inc": {
                "processed": flush.processed,
                "succeeded": flush.succeeded,
                "failed": flush.failed,
            },
        }
        if flush.has_checkpoint:
            update["$set"]["checkpoint"] = flush.checkpoint
        if flush.total is not None:
            update["$set"]["total"] = flush.total
        if flush.errors:
            update["$push"] = {"errors": {"$each": [e.model_dump() for e in flush.errors]}}
        doc = await self._jobs.find_one_and_update(
            {"_id": job_id, "owner": owner, "state": str(JobState.RUNNING)},
            update,
            projection={"cancel_requested": 1},
            return_document=ReturnDocument.AFTER,
        )
        return None if doc is None else bool(doc.get("cancel_requested"))

    async def finish(
        self,
        job_id: str,
        owner: str,
        state: JobState,
        *,
        result: dict[str, Any] | None = None,
        failure: str | None = None,
    ) -> bool:
        done = {"state": str(state), "finished_at": utcnow(), "lease_until": None}
        done |= {"result": result, "failure": failure}
        outcome = await self._jobs.update_one(
            {"_id": job_id, "owner": owner, "state": str(JobState.RUNNING)}, {"$set": done}
        )
        return outcome.modified_count == 1

    async def release(self, job_id: str, owner: str) -> None:
        """Give a job back at once (the runner stops): another takes it without waiting
        for the lease to lapse."""
        await self._jobs.update_one(
            {"_id": job_id, "owner": owner, "state": str(JobState.RUNNING)},
            {"$set": {"lease_until": utcnow(), "owner": None}},
        )

    # --- attachments: inputs too large or too private for `params` -----------------------

    async def attach(self, job_id: str, tenant: str, content: Document) -> None:
        doc = {"_id": job_id, "tenant": tenant, "content": content, "created_at": utcnow()}
        await self._attachments.insert_one(doc)

    async def attachment(self, job_id: str) -> Document | None:
        doc = await self._attachments.find_one({"_id": job_id})
        return doc["content"] if doc else None

    async def drop_attachment(self, job_id: str) -> None:
        await self._attachments.delete_one({"_id": job_id})


def _to_doc(job: Job) -> Document:
    doc = job.model_dump(mode="json", exclude={"id"})
    doc |= {"_id": job.id, "created_at": job.created_at, "errors": []}
    return doc


# --------------------------------------------------------------------------- progress
