"""Tag sync routes: the sync log, and linking a customer to their platform contact."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Path, status
from pydantic import BaseModel, ConfigDict, StringConstraints

from servicekit.context import TenantDep
from servicekit.pagination import Page, PageRequestDep
from servicekit.runtime import RuntimeDep
from services.tagging.sync.store import ContactLinks, SyncLog

router = APIRouter(tags=["tag sync"])
PlatformId = Annotated[str, StringConstraints(pattern=r"^[A-Za-z0-9_.:@-]{1,128}$")]


class ContactLink(BaseModel):
    model_config = ConfigDict(extra="forbid")
    external_userid: PlatformId
    userid: PlatformId


@router.get("/tag-sync/log")
async def sync_log(
    tenant: TenantDep, runtime: RuntimeDep, page: PageRequestDep
) -> Page[dict[str, Any]]:
    """What was pushed, newest first: the change, status (synced, not_linked, retry,
    failed), attempts, the platform's errcode and when it was synced."""
    docs, cursor = await SyncLog(runtime.db).page(tenant, page)
    items = [{"change_id": d.pop("_id"), **d} for d in docs]
    return Page(items=items, next_cursor=cursor)


@router.put("/tag-sync/contacts/{customer_id}", status_code=status.HTTP_204_NO_CONTENT)
async def link_contact(
    customer_id: Annotated[str, Path(pattern=r"^cus_[0-9a-f]{32}$")],
    body: ContactLink,
    tenant: TenantDep,
    runtime: RuntimeDep,
) -> None:
    """Link the customer to their WeCom external contact and the staff member who follows
    them. Tagging's read model carries no WeCom identities, so the link is recorded here (by
    the console or an integration); changes of unlinked customers are logged `not_linked`."""
    await ContactLinks(runtime.db).link(tenant, customer_id, body.external_userid, body.userid)
