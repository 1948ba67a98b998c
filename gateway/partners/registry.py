"""Partners, their keys and the nonces they have used, in the gateway's own database.

A partner's secret is needed in clear to check an HMAC, so it is stored sealed (AES-GCM under
the gateway's `partner_sealing_key`, bound to the key id) and shown to staff once, when the
key is issued or rotated. A nonce is remembered by inserting it under a unique id: of two
requests racing with one nonce, exactly one insert succeeds. Nonces expire (TTL index) once
their timestamp could no longer pass the window anyway."""

from __future__ import annotations

import asyncio
import hashlib
import os
import secrets
from datetime import datetime
from enum import StrEnum

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from pydantic import BaseModel
from pymongo import ReturnDocument
from pymongo.asynchronous.database import AsyncDatabase
from pymongo.errors import DuplicateKeyError

from servicekit.clock import utcnow
from servicekit.errors import NotFound
from servicekit.mongo import Document, Index, ensure_indexes

PARTNERS = "partners"
NONCES = "partner_nonces"


class PartnerState(StrEnum):
    ACTIVE = "active"
    SUSPENDED = "suspended"


class Partner(BaseModel):
    partner_id: str
    tenant: str
    name: str
    key_id: str
    state: PartnerState = PartnerState.ACTIVE
    created_by: str
    created_at: datetime
    key_issued_at: datetime


class IssuedKey(BaseModel):
    """A key and its secret, shown once."""

    partner: Partner
    secret: str


class PartnerNotFound(NotFound):
    def __init__(self, partner_id: str) -> None:
        super().__init__(f"no partner {partner_id}", code="partner_not_found")


class SecretBox:
    def __init__(self, sealing_key: str) -> None:
        self._aead = AESGCM(hashlib.sha256(sealing_key.encode()).digest())

    def seal(self, secret: str, key_id: str) -> bytes:
        nonce = os.urandom(12)
        return nonce + self._aead.encrypt(nonce, secret.encode(), key_id.encode())

    def open(self, sealed: bytes, key_id: str) -> str | None:
        try:
            return self._aead.decrypt(sealed[:12], sealed[12:], key_id.encode()).decode()
        except InvalidTag:
            return None  # sealed under another key: the key was changed without re-issuing


class PartnerRegistry:
    def __init__(self, db: AsyncDatabase[Document], box: SecretBox, *, nonce_ttl: int) -> None:
        self._partners = db[PARTNERS]
        self._nonces = db[NONCES]
        self._db = db
        self._box = box
        self._indexes = [
            Index(PARTNERS, [("key_id", 1)], unique=True, name="by_key"),
            Index(PARTNERS, [("tenant", 1), ("partner_id", 1)], unique=True, name="by_partner"),
            Index(NONCES, [("seen_at", 1)], expire_after_seconds=nonce_ttl, name="expiry"),
        ]
        self._ready = asyncio.Lock()
        self._indexed = False

    async def _ensure_indexes(self) -> None:
        # Lazily: the gateway starts (and serves every other route) without its database.
        async with self._ready:
            if not self._indexed:
                await ensure_indexes(self._db, self._indexes)
                self._indexed = True

    async def register(self, tenant: str, name: str, *, by: str) -> IssuedKey:
        await self._ensure_indexes()
        now = utcnow()
        partner = Partner(
            partner_id=f"ptn_{secrets.token_hex(12)}",
            tenant=tenant,
            name=name,
            key_id=_key_id(),
            created_by=by,
            created_at=now,
            key_issued_at=now,
        )
        secret = secrets.token_urlsafe(32)
        sealed = self._box.seal(secret, partner.key_id)
        await self._partners.insert_one({**partner.model_dump(), "sealed_secret": sealed})
        return IssuedKey(partner=partner, secret=secret)

    async def rotate(self, tenant: str, partner_id: str) -> IssuedKey:
        """A new key and secret; the old key stops working at once."""
        key_id, secret = _key_id(), secrets.token_urlsafe(32)
        doc = await self._partners.find_one_and_update(
            {"tenant": tenant, "partner_id": partner_id},
            {
                "$set": {
                    "key_id": key_id,
                    "sealed_secret": self._box.seal(secret, key_id),
                    "key_issued_at": utcnow(),
                }
            },
            return_document=ReturnDocument.AFTER,
        )
        if doc is None:
            raise PartnerNotFound(partner_id)
        return IssuedKey(partner=Partner.model_validate(doc), secret=secret)

    async def set_state(self, tenant: str, partner_id: str, state: PartnerState) -> Partner:
        doc = await self._partners.find_one_and_update(
            {"tenant": tenant, "partner_id": partner_id},
            {"$set": {"state": state.value}},
            return_document=ReturnDocument.AFTER,
        )
        if doc is None:
            raise PartnerNotFound(partner_id)
        return Partner.model_validate(doc)

    async def of_tenant(self, tenant: str) -> list[Partner]:
        cursor = self._partners.find({"tenant": tenant}).sort("partner_id", 1)
        return [Partner.model_validate(doc) for doc in await cursor.to_list()]

    async def by_key(self, key_id: str) -> tuple[Partner, str] | None:
        """The partner holding `key_id` and its secret; None for an unknown key."""
        doc = await self._partners.find_one({"key_id": key_id})
        if doc is None:
            return None
        secret = self._box.open(doc["sealed_secret"], key_id)
        return (Partner.model_validate(doc), secret) if secret is not None else None

    async def first_use(self, key_id: str, nonce: str) -> bool:
        """Remember the nonce; False if it was used before (a replay)."""
        await self._ensure_indexes()
        try:
            await self._nonces.insert_one({"_id": f"{key_id}:{nonce}", "seen_at": utcnow()})
        except DuplicateKeyError:
            return False
        return True


def _key_id() -> str:
    return f"pk_{secrets.token_hex(12)}"
