"""CSV import of existing customers, as a job of kind `customer.import`.

The upload is checked (readable, known columns) before a job exists, sealed with the
personal-data vault (a customer file is personal data at rest like any profile) and kept as
the job's attachment. The handler registers row by row through `CustomerService.register`:
each row is one transaction with its uniqueness claims, so a duplicate mobile or identity is
a row error and never a second customer, also when a crashed job resumes."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from servicekit.context import Actor
from servicekit.errors import Conflict, DomainError, InvalidInput
from servicekit.jobs import ItemError, Job, JobContext, JobFailed, JobHandler, JobStore, submit
from servicekit.pagination import PageRequest
from servicekit.runtime import Runtime
from services.customer.domain.customer import Identity
from services.customer.domain.imports import (
    CsvFile,
    RowError,
    check_header,
    numbered_rows,
    read_csv,
    row_cells,
    row_profile,
)
from services.customer.service.handover import service_for
from services.customer.service.profiles import CustomerService
from services.customer.store.crypto import PersonalDataVault
from services.customer.store.custom_fields import CustomFieldStore

IMPORT = "customer.import"
#: The largest file accepted (the route's body limit).
MAX_IMPORT_BYTES = 5 * 1024 * 1024


def _seal_context(tenant: str) -> str:
    return f"{tenant}/import"


async def start_import(runtime: Runtime, tenant: str, body: bytes, *, actor: Actor) -> Job:
    """Check the file and record the job; nothing is imported if the file is refused."""
    text = decode(body)
    file = read_csv(text)
    check_header(file.header, await CustomFieldStore(runtime.db).definitions(tenant))
    vault: PersonalDataVault = runtime.state["vault"]
    sealed = vault.seal(text, context=_seal_context(tenant))
    params = {"columns": file.header, "rows": len(file.rows), "bytes": len(body)}
    return await submit(
        runtime,
        tenant,
        IMPORT,
        params=params,
        created_by=actor.id,
        total=len(file.rows),
        attachment={"csv": sealed},
    )


def decode(body: bytes) -> str:
    try:
        return body.decode("utf-8")
    except UnicodeDecodeError:
        raise InvalidInput("the file must be UTF-8 text", field="body") from None


async def run_import(ctx: JobContext) -> dict[str, Any]:
    customers = service_for(ctx)
    file = await _file(ctx)
    definitions = await customers.fields.definitions(ctx.tenant)
    try:
        # Definitions may have changed since the upload: refuse before importing more.
        check_header(file.header, definitions)
    except InvalidInput as exc:
        raise JobFailed(exc.detail) from None
    actor = Actor(id=ctx.job.created_by, kind="staff")
    for number, cells in numbered_rows(file, after=ctx.checkpoint or 0):
        if ctx.cancelled:
            break
        reason = await _import_row(ctx, customers, file, cells, definitions, actor)
        errors = [ItemError(item=f"row {number}", reason=reason)] if reason else []
        ok = reason is None
        await ctx.progress(
            processed=1, succeeded=int(ok), failed=int(not ok), errors=errors, checkpoint=number
        )
    if not ctx.cancelled:
        await ctx.flush()  # the file is dropped only once every row is recorded as done
        await JobStore(ctx.runtime.db).drop_attachment(ctx.job.id)  # type: ignore[union-attr]
    return {"rows": len(file.rows)}


async def _file(ctx: JobContext) -> CsvFile:
    assert ctx.runtime is not None
    content = await JobStore(ctx.runtime.db).attachment(ctx.job.id)
    if content is None:
        raise JobFailed("the uploaded file is gone (kept 7 days); upload it again")
    vault: PersonalDataVault = ctx.runtime.state["vault"]
    return read_csv(vault.open(content["csv"], context=_seal_context(ctx.tenant)))


async def _import_row(
    ctx: JobContext,
    customers: CustomerService,
    file: CsvFile,
    cells: list[str],
    definitions: dict[str, Any],
    actor: Actor,
) -> str | None:
    """Register one row; the reason it was refused otherwise."""
    try:
        profile = row_profile(row_cells(file.header, cells), definitions)
    except RowError as exc:
        return str(exc)
    try:
        await customers.register(ctx.tenant, actor=actor, **profile)
    except Conflict as exc:
        return await _conflict_reason(ctx, customers, profile, exc)
    except DomainError as exc:
        return exc.detail
    return None


async def _conflict_reason(
    ctx: JobContext, customers: CustomerService, profile: dict[str, Any], exc: Conflict
) -> str:
    """A resumed job meets the rows its crashed run imported after its last checkpoint:
    the claim refused them, and they are reported as such rather than as duplicates."""
    if ctx.job.attempts > 1 and await _imported_by_this_job(ctx, customers, profile):
        return "already imported"
    field = str(exc.extra.get("field", "mobile"))
    if field.startswith("identities."):
        return f"{field.split('.')[-1]}: another customer already has this identity"
    return f"{field}: {exc.detail}"


async def _imported_by_this_job(
    ctx: JobContext, customers: CustomerService, profile: dict[str, Any]
) -> bool:
    holder = await _holder(customers, ctx.tenant, profile)
    since: datetime = ctx.job.started_at or ctx.job.created_at
    return (
        holder is not None
        and holder.registered_at >= since
        and holder.display_name == profile["display_name"]
    )


async def _holder(customers: CustomerService, tenant: str, profile: dict[str, Any]) -> Any:
    """The customer who holds the row's mobile or first identity."""
    if profile.get("mobile"):
        found, _ = await customers.store.page(
            tenant, PageRequest(limit=1), mobile=profile["mobile"]
        )
        return found[0] if found else None
    identities: list[Identity] = profile.get("identities") or []
    return await customers.store.by_identity(tenant, identities[0]) if identities else None


HANDLERS: dict[str, JobHandler] = {IMPORT: run_import}
