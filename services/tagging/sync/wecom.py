"""A connector for the WeCom (企业微信) corporate-tag API.

Tokens come from `/cgi-bin/gettoken` and are reused until they lapse or WeCom says they are
invalid (errcode 42001 expired, 40014 invalid), then fetched again once. Transport faults and
errcode -1 (system busy) are retried with backoff; any other errcode is final."""

from __future__ import annotations

import time
from typing import Any

import httpx
from tenacity import AsyncRetrying, retry_if_exception_type, stop_after_attempt, wait_exponential

from services.tagging.domain.tags import Tag
from services.tagging.sync.connector import ChangeOutcome, SyncResult, SyncStatus, TagChange
from services.tagging.sync.store import ContactLinks

PLATFORM = "wecom"
TOKEN_EXPIRED = frozenset({42001, 40014})
BUSY = -1
GROUP_NAME = "SCRM"


class WeComError(Exception):
    def __init__(self, errcode: int, errmsg: str) -> None:
        super().__init__(f"{errcode}: {errmsg}")
        self.errcode = errcode
        self.errmsg = errmsg


class Busy(WeComError):
    """errcode -1: WeCom asks to try again shortly."""


class WeComConnector:
    name = PLATFORM

    def __init__(
        self,
        http: httpx.AsyncClient,
        links: ContactLinks,
        *,
        corp_id: str,
        secret: str,
        attempts: int = 4,
        wait_seconds: float = 0.2,
    ) -> None:
        self.http = http
        self.links = links
        self.corp_id = corp_id
        self.secret = secret
        self.attempts = attempts
        self.wait_seconds = wait_seconds
        self._token: str | None = None
        self._token_until = 0.0

    async def ensure_tags(self, tenant: str, tags: list[Tag]) -> None:
        for tag in tags:
            if await self.links.platform_tag(PLATFORM, tenant, tag.tag_id) is None:
                body = {"group_name": GROUP_NAME, "tag": [{"name": tag.name}]}
                reply = await self.call("/cgi-bin/externalcontact/add_corp_tag", body)
                platform_id = reply["tag_group"]["tag"][0]["id"]
                await self.links.remember_tag(PLATFORM, tenant, tag.tag_id, platform_id)

    async def push(self, tenant: str, changes: list[TagChange]) -> SyncResult:
        return SyncResult(outcomes=[await self._push_one(tenant, c) for c in changes])

    async def _push_one(self, tenant: str, change: TagChange) -> ChangeOutcome:
        contact = await self.links.contact(tenant, change.customer_id)
        platform_tag = await self.links.platform_tag(PLATFORM, tenant, change.tag_id)
        if contact is None or platform_tag is None:
            return ChangeOutcome(change_id=change.change_id, status=SyncStatus.NOT_LINKED)
        side = "add_tag" if change.action == "mark" else "remove_tag"
        body = {
            "userid": contact["userid"],
            "external_userid": contact["external_userid"],
            side: [platform_tag],
        }
        try:
            await self.call("/cgi-bin/externalcontact/mark_tag", body)
        except Busy as exc:
            return _outcome(change, SyncStatus.RETRY, exc)
        except WeComError as exc:
            return _outcome(change, SyncStatus.FAILED, exc)
        except httpx.HTTPError as exc:
            return ChangeOutcome(
                change_id=change.change_id, status=SyncStatus.RETRY, errmsg=type(exc).__name__
            )
        return ChangeOutcome(change_id=change.change_id, status=SyncStatus.SYNCED, errcode=0)

    async def call(self, path: str, body: dict[str, Any]) -> dict[str, Any]:
        """POST with a token; a lapsed token is refreshed once, busy and network faults are
        retried with backoff, every other errcode raises `WeComError`."""
        retrying = AsyncRetrying(
            retry=retry_if_exception_type((Busy, httpx.TransportError)),
            stop=stop_after_attempt(self.attempts),
            wait=wait_exponential(multiplier=self.wait_seconds, max=5),
            reraise=True,
        )
        async for attempt in retrying:
            with attempt:
                return await self._call_with_token(path, body)
        raise AssertionError("unreachable")

    async def _call_with_token(self, path: str, body: dict[str, Any]) -> dict[str, Any]:
        try:
            return await self._post(path, body, await self.token())
        except WeComError as exc:
            if exc.errcode not in TOKEN_EXPIRED:
                raise
        self._token = None
        return await self._post(path, body, await self.token())

    async def _post(self, path: str, body: dict[str, Any], token: str) -> dict[str, Any]:
        response = await self.http.post(path, params={"access_token": token}, json=body)
        return _checked(response)

    async def token(self) -> str:
        if self._token is None or time.monotonic() >= self._token_until:
            params = {"corpid": self.corp_id, "corpsecret": self.secret}
            reply = _checked(await self.http.get("/cgi-bin/gettoken", params=params))
            self._token = str(reply["access_token"])
            # Refresh a minute early, so a token never lapses between check and use.
            self._token_until = time.monotonic() + max(int(reply["expires_in"]) - 60, 0)
        return self._token


def _checked(response: httpx.Response) -> dict[str, Any]:
    response.raise_for_status()
    reply: dict[str, Any] = response.json()
    errcode = int(reply.get("errcode", 0))
    if errcode == BUSY:
        raise Busy(errcode, str(reply.get("errmsg", "")))
    if errcode != 0:
        raise WeComError(errcode, str(reply.get("errmsg", "")))
    return reply


def _outcome(change: TagChange, status: SyncStatus, exc: WeComError) -> ChangeOutcome:
    return ChangeOutcome(
        change_id=change.change_id, status=status, errcode=exc.errcode, errmsg=exc.errmsg
    )
