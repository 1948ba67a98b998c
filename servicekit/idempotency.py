"""`Idempotency-Key` for POST requests, with the semantics payment APIs use.

- The first request with a key claims it, runs, and its answer (2xx or 4xx) is stored.
- The same key with the same request returns the stored answer (`Idempotent-Replayed: true`).
- The same key with a different request is refused (422): a key names one request.
- A duplicate arriving while the first still runs waits for it, then gets 409 if it is
  still running.
- A 5xx answer releases the key (nothing was written: every write is one transaction), so
  the client may retry; a claim left by a crashed process is taken over after a timeout.
Keys are per tenant and kept for 24 hours.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
from datetime import UTC, datetime, timedelta
from typing import Any

from pymongo.asynchronous.collection import AsyncCollection
from pymongo.errors import DuplicateKeyError
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from servicekit.errors import PROBLEM_JSON
from servicekit.mongo import Document, Index

KEYS = "idempotency_keys"
HEADER = "idempotency-key"
RETENTION = timedelta(hours=24)
#: A claim older than this belongs to a process that died mid-request.
STALE_CLAIM = timedelta(seconds=60)

IDEMPOTENCY_INDEXES = [
    Index(KEYS, [("created_at", 1)], expire_after_seconds=int(RETENTION.total_seconds())),
]


def _now() -> datetime:
    return datetime.now(UTC)


def _problem(status: int, title: str, detail: str) -> tuple[int, list, bytes]:
    body = {"type": "about:blank", "title": title, "status": status, "detail": detail}
    body["code"] = "idempotency_key_conflict" if status == 409 else "idempotency_key_reused"
    return status, [(b"content-type", PROBLEM_JSON.encode())], json.dumps(body).encode()


class IdempotencyMiddleware:
    """Pure ASGI middleware; the collection is resolved per request from app state."""

    def __init__(self, app: ASGIApp, *, wait_seconds: float = 5.0) -> None:
        self.app = app
        self.wait_seconds = wait_seconds

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        key = self._key(scope)
        if key is None:
            await self.app(scope, receive, send)
            return
        if not 8 <= len(key) <= 255:
            await _send(send, *_problem(422, "Invalid Idempotency-Key", "use 8 to 255 characters"))
            return
        body = await _read_body(receive)
        keys: AsyncCollection[Document] = scope["app"].state.runtime.db[KEYS]
        tenant = _header(scope, b"x-tenant-id") or "-"
        doc_id = f"{tenant}:{key}"
        fingerprint = _fingerprint(scope, body)
        stored = await self._claim(keys, doc_id, fingerprint)
        if stored is not None:
            await _send(send, *stored)
            return
        await self._run_and_store(scope, body, receive, send, keys, doc_id)

    @staticmethod
    def _key(scope: Scope) -> str | None:
        if scope["type"] != "http" or scope["method"] != "POST":
            return None
        return _header(scope, HEADER.encode())

    async def _claim(
        self, keys: AsyncCollection[Document], doc_id: str, fingerprint: str
    ) -> tuple[int, list, bytes] | None:
        """None when this request now owns the key; otherwise the answer to send."""
        claim = {"_id": doc_id, "fingerprint": fingerprint, "state": "running"}
        try:
            await keys.insert_one({**claim, "created_at": _now(), "claimed_at": _now()})
            return None
        except DuplicateKeyError:
            pass
        deadline = asyncio.get_running_loop().time() + self.wait_seconds
        while True:
            existing = await keys.find_one({"_id": doc_id})
            if existing is None:  # released after a 5xx: claim it afresh
                return await self._claim(keys, doc_id, fingerprint)
            if existing["fingerprint"] != fingerprint:
                return _problem(
                    422,
                    "Idempotency-Key reused",
                    "this key was used for a different request; use a new key",
                )
            if existing["state"] == "done":
                r = existing["response"]
                headers = [(k.encode(), v.encode()) for k, v in r["headers"]]
                return r["status"], [*headers, (b"idempotent-replayed", b"true")], r["body"]
            if await self._take_over_stale(keys, existing):
                return None
            if asyncio.get_running_loop().time() >= deadline:
                return _problem(
                    409, "Request in progress", "a request with this key is still running"
                )
            await asyncio.sleep(0.05)

    @staticmethod
    async def _take_over_stale(keys: AsyncCollection[Document], existing: Document) -> bool:
        if existing["claimed_at"] > _now() - STALE_CLAIM:
            return False
        taken = await keys.update_one(
            {"_id": existing["_id"], "state": "running", "claimed_at": existing["claimed_at"]},
            {"$set": {"claimed_at": _now()}},
        )
        return taken.modified_count == 1

    async def _run_and_store(
        self,
        scope: Scope,
        body: bytes,
        receive: Receive,
        send: Send,
        keys: AsyncCollection[Document],
        doc_id: str,
    ) -> None:
        captured: dict[str, Any] = {"headers": [], "body": b""}

        async def capture(message: Message) -> None:
            if message["type"] == "http.response.start":
                captured["status"] = message["status"]
                captured["headers"] = [
                    (k.decode(), v.decode()) for k, v in message.get("headers", [])
                ]
            elif message["type"] == "http.response.body":
                captured["body"] += message.get("body", b"")
            await send(message)

        try:
            await self.app(scope, _replay_body(body, receive), capture)
        except BaseException:
            await keys.delete_one({"_id": doc_id, "state": "running"})
            raise
        if captured.get("status", 500) >= 500:
            await keys.delete_one({"_id": doc_id, "state": "running"})
            return
        kept = [(k, v) for k, v in captured["headers"] if k.lower() != "content-length"]
        response = {"status": captured["status"], "headers": kept, "body": captured["body"]}
        await keys.update_one({"_id": doc_id}, {"$set": {"state": "done", "response": response}})


def _header(scope: Scope, name: bytes) -> str | None:
    for k, v in scope.get("headers", []):
        if k.lower() == name:
            return v.decode("latin-1")
    return None


def _fingerprint(scope: Scope, body: bytes) -> str:
    digest = hashlib.sha256()
    for part in (scope["method"].encode(), scope["path"].encode(), scope.get("query_string", b"")):
        digest.update(part + b"\0")
    digest.update(body)
    return digest.hexdigest()


async def _read_body(receive: Receive) -> bytes:
    chunks = []
    while True:
        message = await receive()
        chunks.append(message.get("body", b""))
        if not message.get("more_body"):
            return b"".join(chunks)


def _replay_body(body: bytes, original: Receive) -> Receive:
    """Hand the already-read body to the app once, then the client's own messages."""
    sent = False

    async def receive() -> Message:
        nonlocal sent
        if not sent:
            sent = True
            return {"type": "http.request", "body": body, "more_body": False}
        return await original()

    return receive


async def _send(send: Send, status: int, headers: list, body: bytes) -> None:
    headers = [*headers, (b"content-length", str(len(body)).encode())]
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})
