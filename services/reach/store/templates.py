"""Templates: every version kept (`template_versions`), so a campaign pinned to a version
sends what was approved; `templates` holds the latest version of each for listing."""

from __future__ import annotations

from pymongo.asynchronous.client_session import AsyncClientSession
from pymongo.asynchronous.database import AsyncDatabase
from pymongo.errors import DuplicateKeyError

from servicekit.mongo import Document, Index
from services.reach.domain.templates import Template

TEMPLATES = "templates"
VERSIONS = "template_versions"
INDEXES = [Index(TEMPLATES, [("tenant", 1), ("template_id", 1)], name="by_tenant")]


class StaleTemplate(Exception):
    """Another writer saved this version first."""


def _key(tenant: str, template_id: str) -> str:
    return f"{tenant}/{template_id}"


class TemplateStore:
    def __init__(self, db: AsyncDatabase[Document]) -> None:
        self._latest = db[TEMPLATES]
        self._versions = db[VERSIONS]

    async def latest(self, tenant: str, template_id: str) -> Template | None:
        doc = await self._latest.find_one({"_id": _key(tenant, template_id), "tenant": tenant})
        return _template(doc) if doc else None

    async def version(self, tenant: str, template_id: str, version: int) -> Template | None:
        key = f"{_key(tenant, template_id)}/{version}"
        doc = await self._versions.find_one({"_id": key, "tenant": tenant})
        return _template(doc) if doc else None

    async def versions(self, tenant: str, template_id: str) -> list[Template]:
        cursor = self._versions.find({"tenant": tenant, "template_id": template_id})
        return [_template(d) for d in await cursor.sort("version", 1).to_list()]

    async def listing(self, tenant: str, limit: int = 200) -> list[Template]:
        cursor = self._latest.find({"tenant": tenant}).sort("template_id", 1).limit(limit)
        return [_template(d) for d in await cursor.to_list()]

    async def save(self, template: Template, session: AsyncClientSession) -> None:
        """Add a version; `StaleTemplate` when that version exists already (a racing edit)."""
        doc = template.model_dump(mode="python")
        key = _key(template.tenant, template.template_id)
        try:
            await self._versions.insert_one(
                {**doc, "_id": f"{key}/{template.version}"}, session=session
            )
        except DuplicateKeyError:
            raise StaleTemplate from None
        await self._latest.replace_one(
            {"_id": key}, {**doc, "_id": key}, upsert=True, session=session
        )


def _template(doc: Document) -> Template:
    return Template.model_validate({k: v for k, v in doc.items() if k != "_id"})
