"""The coupon service's long operations as jobs (servicekit.jobs): one runner per replica
for every kind listed here; `/jobs/{id}` polls them."""

from __future__ import annotations

from servicekit.jobs import JobHandler, JobRunner
from servicekit.runtime import Runtime
from services.coupon.service import channels, targeted

HANDLERS: dict[str, JobHandler] = {**targeted.HANDLERS}


async def run_jobs(runtime: Runtime) -> None:
    """Run jobs until the replica stops; then close the peers' HTTP pools they used."""
    try:
        lease = channels.settings_of(runtime).job_lease_seconds
        await JobRunner(HANDLERS, lease_seconds=lease).run(runtime)
    finally:
        await channels.close(runtime)
