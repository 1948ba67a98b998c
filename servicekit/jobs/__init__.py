"""Long operations as jobs that can be polled (batch tagging, segment builds, bulk issue,
imports).

A route records a job (`submit`) and answers 202 at once; a `JobRunner` worker of the same
service claims it, runs the handler registered for its kind and records progress. Every
write a runner makes is conditional on still owning the job (`owner` and a lease it renews),
so a runner that crashed or stalled is taken over by another once its lease lapses, and the
new one resumes from the last checkpoint instead of from zero. Progress is written in
batches: the store manages only a few hundred conditional updates a second.
"""

from servicekit.jobs.api import jobs_router
from servicekit.jobs.model import (
    ATTACHMENTS,
    FLUSH_ITEMS,
    FLUSH_SECONDS,
    JOB_INDEXES,
    JOBS,
    LEASE_SECONDS,
    MAX_ERRORS,
    POLL_OVERRIDE,
    POLL_SECONDS,
    WAKEUP,
    ItemError,
    Job,
    JobFailed,
    JobState,
)
from servicekit.jobs.progress import ProgressBuffer, ProgressFlush
from servicekit.jobs.runner import JobContext, JobHandler, JobLost, JobRunner, submit
from servicekit.jobs.store import JobStore

__all__ = [
    "ATTACHMENTS",
    "FLUSH_ITEMS",
    "FLUSH_SECONDS",
    "JOBS",
    "JOB_INDEXES",
    "LEASE_SECONDS",
    "MAX_ERRORS",
    "POLL_OVERRIDE",
    "POLL_SECONDS",
    "WAKEUP",
    "ItemError",
    "Job",
    "JobContext",
    "JobFailed",
    "JobHandler",
    "JobLost",
    "JobRunner",
    "JobState",
    "JobStore",
    "ProgressBuffer",
    "ProgressFlush",
    "jobs_router",
    "submit",
]
