"""Tenants' own providers, one document per tenant and channel. Secrets are sealed with the
kit's `Sealer`, each bound to its tenant, channel and field, so a sealed value copied into
another tenant's document does not open. An Alibaba Cloud SMS config carries the token of
its delivery-report URL: kept as a SHA-256 digest to check against, and sealed to show."""

from __future__ import annotations

import hashlib
import hmac
from datetime import datetime

from pymongo import ReturnDocument
from pymongo.asynchronous.database import AsyncDatabase

from servicekit.mongo import Document, Index
from servicekit.sealing import Sealer

PROVIDERS = "tenant_providers"
INDEXES = [Index(PROVIDERS, [("tenant", 1), ("channel", 1)], name="by_tenant")]


def token_digest(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


class ProviderStore:
    def __init__(self, db: AsyncDatabase[Document], sealer: Sealer) -> None:
        self._configs = db[PROVIDERS]
        self._sealer = sealer

    def _context(self, tenant: str, channel: str, field: str) -> str:
        return f"reach/provider/{tenant}/{channel}/{field}"

    async def save(
        self,
        tenant: str,
        channel: str,
        provider: str,
        plain: Document,
        secrets: dict[str, str],
        *,
        receipt_token: str | None,
        by: str,
        at: datetime,
    ) -> Document:
        """Replace the channel's config (a new version). A receipt token already issued is
        kept, so re-saving credentials does not break the URL the platform calls."""
        current = await self._configs.find_one({"_id": f"{tenant}/{channel}"})
        sealed = {
            k: self._sealer.seal(v, context=self._context(tenant, channel, k))
            for k, v in secrets.items()
        }
        doc: Document = {
            "tenant": tenant,
            "channel": channel,
            "provider": provider,
            "settings": plain,
            "secrets": sealed,
            "updated_by": by,
            "updated_at": at,
        }
        if receipt_token is not None:
            kept = current and current.get("receipt_token_digest")
            if kept:
                doc["receipt_token_digest"] = current["receipt_token_digest"]  # type: ignore[index]
                doc["receipt_token"] = current["receipt_token"]  # type: ignore[index]
            else:
                doc["receipt_token_digest"] = token_digest(receipt_token)
                doc["receipt_token"] = self._sealer.seal(
                    receipt_token, context=self._context(tenant, channel, "receipt_token")
                )
        update: Document = {"$set": doc, "$inc": {"version": 1}}
        if receipt_token is None:  # another kind of provider now: the old URL stops working
            update["$unset"] = {"receipt_token": "", "receipt_token_digest": ""}
        saved = await self._configs.find_one_and_update(
            {"_id": f"{tenant}/{channel}"},
            update,
            upsert=True,
            return_document=ReturnDocument.AFTER,
        )
        return saved

    async def get(self, tenant: str, channel: str) -> Document | None:
        return await self._configs.find_one({"_id": f"{tenant}/{channel}", "tenant": tenant})

    async def of_tenant(self, tenant: str) -> list[Document]:
        return await self._configs.find({"tenant": tenant}).sort("channel", 1).to_list()

    async def remove(self, tenant: str, channel: str) -> bool:
        gone = await self._configs.delete_one({"_id": f"{tenant}/{channel}", "tenant": tenant})
        return gone.deleted_count == 1

    def secrets(self, doc: Document) -> dict[str, str]:
        """The config's secrets in clear (to build its provider)."""
        return {
            k: self._sealer.open(v, context=self._context(doc["tenant"], doc["channel"], k))
            for k, v in doc.get("secrets", {}).items()
        }

    def receipt_token(self, doc: Document) -> str | None:
        sealed = doc.get("receipt_token")
        if not sealed:
            return None
        context = self._context(doc["tenant"], doc["channel"], "receipt_token")
        return self._sealer.open(sealed, context=context)

    async def receipt_token_holds(self, tenant: str, channel: str, token: str) -> bool:
        """Is `token` the tenant's delivery-report token for the channel? Compared in
        constant time; a tenant without one (or an unknown tenant) never matches."""
        doc = await self._configs.find_one(
            {"_id": f"{tenant}/{channel}"}, {"receipt_token_digest": 1}
        )
        expected = (doc or {}).get("receipt_token_digest") or token_digest("\x00no-token")
        return hmac.compare_digest(expected, token_digest(token)) and bool(doc)
