"""Import routes: upload a CSV file of existing customers; it is imported as a job."""

from __future__ import annotations

from fastapi import APIRouter, Request, Response, status

from servicekit.context import ActorDep, TenantDep
from servicekit.errors import DomainError
from servicekit.jobs import Job
from servicekit.runtime import RuntimeDep
from services.customer.service.imports import MAX_IMPORT_BYTES, start_import

IMPORT_PATH = "/imports/customers"
#: The upload's own body limit, larger than a profile's (see `BodyLimitMiddleware`).
BODY_LIMITS = {IMPORT_PATH: MAX_IMPORT_BYTES}

router = APIRouter(tags=["imports"])


class UnsupportedMediaType(DomainError):
    status = 415
    title = "Unsupported media type"


@router.post(
    IMPORT_PATH,
    status_code=status.HTTP_202_ACCEPTED,
    openapi_extra={"requestBody": {"content": {"text/csv": {"schema": {"type": "string"}}}}},
)
async def import_customers(
    request: Request, tenant: TenantDep, actor: ActorDep, runtime: RuntimeDep, response: Response
) -> Job:
    """Import customers from a UTF-8 CSV file (`Content-Type: text/csv`, at most 5 MB).
    The header names the columns: display_name (required), mobile, email, gender, birthday,
    source_channel (default `import`), owner_id, province, city, district, street,
    postal_code, id_number, union_id, mini_program_openid, app_user_id, store_member_no, and
    `cf.<key>` for custom fields. An unreadable file or an unknown column is a 422 and
    nothing is imported; otherwise a job of kind `customer.import` starts (poll `Location`):
    a refused row (invalid value, mobile or identity another customer has) is listed in the
    job's errors as `row <n>` (the header is row 1), the others are imported."""
    media_type = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if media_type != "text/csv":
        raise UnsupportedMediaType("send the file as text/csv", code="unsupported_media_type")
    job = await start_import(runtime, tenant, await request.body(), actor=actor)
    response.headers["Location"] = f"/jobs/{job.id}"
    return job
