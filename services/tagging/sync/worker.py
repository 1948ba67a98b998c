"""The sync worker: pushes queued tag changes to WeCom when a base URL is configured."""

from __future__ import annotations

import asyncio
import logging

import httpx

from servicekit.runtime import Runtime, Worker
from services.tagging.settings import TaggingSettings
from services.tagging.sync.service import TagSync
from services.tagging.sync.store import ContactLinks
from services.tagging.sync.wecom import WeComConnector

log = logging.getLogger("services.tagging.sync")


async def run_sync(runtime: Runtime) -> None:
    """Loop until cancelled; a failed round is logged and the next tries again. Without a
    configured platform it idles (and stays "running" for readiness)."""
    settings = runtime.settings
    assert isinstance(settings, TaggingSettings)
    if not settings.wecom_base_url:
        await asyncio.Event().wait()
    async with httpx.AsyncClient(base_url=settings.wecom_base_url or "", timeout=10) as http:
        connector = WeComConnector(
            http,
            ContactLinks(runtime.db),
            corp_id=settings.wecom_corp_id,
            secret=settings.wecom_corp_secret,
        )
        sync = TagSync(runtime.db, connector, retry_base_seconds=settings.sync_retry_base_seconds)
        while True:
            claimed = 0
            try:
                claimed = await sync.round()
            except Exception:
                log.exception("tag sync round failed; the next round retries")
            if claimed == 0:
                await asyncio.sleep(settings.sync_poll_seconds)


SYNC_WORKER = Worker(name="tag-sync", run=run_sync)
