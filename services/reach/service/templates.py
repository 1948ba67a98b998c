"""Template use cases: create, revise (a new version), read, preview with a sample customer."""

from __future__ import annotations

from pydantic import BaseModel

from servicekit.clock import utcnow
from servicekit.errors import Conflict, DomainError, NotFound
from servicekit.unit_of_work import Tx, UnitOfWork
from services.reach.domain import templates as rules
from services.reach.domain.channels import Channel
from services.reach.domain.templates import Content, Rendered, Template, TemplateProblem
from services.reach.store.templates import StaleTemplate, TemplateStore

#: A sample customer for previews, for the variables a preview request does not give.
SAMPLE = {
    "customer_name": "林小姐",
    "coupon_amount": "20元",
    "coupon_expiry": "2026-12-31",
    "tier_name": "金卡",
    "points": "1200",
    "store_name": "南京西路店",
    "birthday_month": "12",
    "note": "回访新品试用感受",
    "link": "https://example.com/r/msg_sample",
}


class TemplateRefused(DomainError):
    title = "The template does not fit its channel"

    def __init__(self, problems: list[TemplateProblem]) -> None:
        detail = "; ".join(f"{p.field}: {p.reason}" for p in problems)
        errors = [p.model_dump() for p in problems]
        super().__init__(detail, code="template_invalid", errors=errors)


class Preview(BaseModel):
    template_id: str
    version: int
    channel: Channel
    rendered: Rendered
    #: Variables filled from the sample customer because the request gave none.
    sampled: list[str]


class TemplateService:
    def __init__(self, uow: UnitOfWork, store: TemplateStore) -> None:
        self.uow = uow
        self.store = store

    async def create(
        self,
        tenant: str,
        template_id: str,
        *,
        channel: Channel,
        name: str,
        content: Content,
        defaults: dict[str, str],
        by: str,
    ) -> Template:
        if await self.store.latest(tenant, template_id) is not None:
            raise Conflict(
                f"template {template_id} exists; revise it instead", code="template_exists"
            )
        return await self._save(tenant, template_id, 1, channel, name, content, defaults, by)

    async def revise(
        self,
        tenant: str,
        template_id: str,
        *,
        name: str | None,
        content: Content,
        defaults: dict[str, str],
        by: str,
    ) -> Template:
        """A new version; earlier versions stay as they were (campaigns pinned to them)."""
        latest = await self.get(tenant, template_id)
        return await self._save(
            tenant,
            template_id,
            latest.version + 1,
            latest.channel,
            name or latest.name,
            content,
            defaults,
            by,
        )

    async def _save(
        self,
        tenant: str,
        template_id: str,
        version: int,
        channel: Channel,
        name: str,
        content: Content,
        defaults: dict[str, str],
        by: str,
    ) -> Template:
        problems = rules.validate(channel, content, defaults)
        if problems:
            raise TemplateRefused(problems)
        template = Template(
            tenant=tenant,
            template_id=template_id,
            channel=channel,
            name=name,
            version=version,
            content=content,
            defaults=defaults,
            updated_by=by,
            updated_at=utcnow(),
        )

        async def work(tx: Tx) -> None:
            await self.store.save(template, tx.session)

        try:
            await self.uow.run(work)
        except StaleTemplate:
            raise Conflict(
                "the template was revised concurrently; read it and retry", code="template_stale"
            ) from None
        return template

    async def get(self, tenant: str, template_id: str, version: int | None = None) -> Template:
        found = (
            await self.store.latest(tenant, template_id)
            if version is None
            else await self.store.version(tenant, template_id, version)
        )
        if found is None:
            raise NotFound(
                f"no template {template_id}" + (f" version {version}" if version else ""),
                code="template_not_found",
            )
        return found

    async def preview(
        self, tenant: str, template_id: str, version: int | None, values: dict[str, str]
    ) -> Preview:
        template = await self.get(tenant, template_id, version)
        needed = rules.variables_of(template.content)
        sampled = sorted(n for n in needed if n not in values and n not in template.defaults)
        merged = {**{n: SAMPLE[n] for n in sampled}, **values}
        rendered = rules.render(template, merged)
        return Preview(
            template_id=template_id,
            version=template.version,
            channel=template.channel,
            rendered=rendered,
            sampled=sampled,
        )
