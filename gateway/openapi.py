"""One OpenAPI document for the whole API, merged from the services' own documents.

Each service's paths move under `/api/v1/<domain>`; its operationIds, tags and component
names gain the domain, and every `$ref` follows, so two services' `Page` or
`HTTPValidationError` stay two schemas. A service that does not answer is named under
`x-unavailable-services` rather than failing the document.
"""

from __future__ import annotations

import asyncio
import copy
import time
from typing import Any

import aiohttp
from fastapi import APIRouter, Request
from fastapi.openapi.docs import get_swagger_ui_html
from fastapi.responses import HTMLResponse, JSONResponse

from gateway.deps import SettingsDep, UpstreamDep
from gateway.proxy import API_PREFIX
from gateway.upstream import Upstream

Document = dict[str, Any]

#: Probes for the platform's operators, not part of the API.
HEALTH_PATHS = frozenset({"/healthz", "/readyz", "/livez"})
HTTP_METHODS = frozenset({"get", "put", "post", "delete", "options", "head", "patch", "trace"})
#: Security schemes describe how to call the gateway, which is the same for every service.
SHARED_COMPONENTS = frozenset({"securitySchemes"})
OPENAPI_URL = f"{API_PREFIX}/openapi.json"

router = APIRouter(include_in_schema=False)


@router.get(OPENAPI_URL)
async def merged_openapi(
    request: Request, upstream: UpstreamDep, settings: SettingsDep
) -> JSONResponse:
    """The whole API: the gateway's own operations and every service's, under their
    public paths."""
    catalogue: ServiceDocuments = request.app.state.service_documents
    documents, unavailable = await catalogue.fetch(
        upstream, settings.upstreams(), probe_timeout=settings.probe_timeout
    )
    merged = merge(request.app.openapi(), documents, unavailable)
    merged["servers"] = [{"url": request.scope.get("root_path") or "/"}]
    return JSONResponse(merged)


@router.get(f"{API_PREFIX}/docs")
async def swagger_ui(request: Request) -> HTMLResponse:
    """Swagger UI over the merged document. Its script and style load from a CDN
    (jsDelivr), which is acceptable for a developer page; a deployment without internet
    access passes self-hosted `swagger_js_url` / `swagger_css_url` here."""
    root = request.scope.get("root_path", "")
    return get_swagger_ui_html(openapi_url=root + OPENAPI_URL, title=request.app.title)


class ServiceDocuments:
    """The services' OpenAPI documents, each kept for `ttl` seconds once fetched. Only
    answers are kept: a service that was down is asked again on the next request."""

    def __init__(self, ttl: float) -> None:
        self.ttl = ttl
        self._kept: dict[str, tuple[float, Document]] = {}

    async def fetch(
        self, upstream: Upstream, upstreams: dict[str, str], *, probe_timeout: float
    ) -> tuple[dict[str, Document], list[str]]:
        """Every domain's document (fetched concurrently when stale), and the domains
        whose service did not answer."""
        # Two concurrent misses fetch the same document twice; harmless, so no lock.
        results = await asyncio.gather(
            *(self._document(upstream, d, base, probe_timeout) for d, base in upstreams.items())
        )
        found = {d: doc for d, doc in zip(upstreams, results, strict=True) if doc is not None}
        return found, sorted(set(upstreams) - set(found))

    async def _document(
        self, upstream: Upstream, domain: str, base: str, probe_timeout: float
    ) -> Document | None:
        kept = self._kept.get(domain)
        if kept is not None and kept[0] > time.monotonic():
            return kept[1]
        try:
            answer = await upstream.probe(f"{base}/openapi.json", within=probe_timeout)
            if answer.status != 200:
                return None
            document = answer.json()
        except (aiohttp.ClientError, TimeoutError, ValueError):
            return None
        self._kept[domain] = (time.monotonic() + self.ttl, document)
        return document


def merge(own: Document, services: dict[str, Document], unavailable: list[str]) -> Document:
    """The gateway's own document with every service's namespaced paths and components
    added. Inputs are not modified."""
    merged = copy.deepcopy(own)
    paths: Document = merged.setdefault("paths", {})
    components: Document = merged.setdefault("components", {})
    tags: list[Document] = merged.setdefault("tags", [])
    for domain in sorted(services):
        service = namespaced(domain, services[domain])
        paths.update(service["paths"])
        for section, entries in service.get("components", {}).items():
            components.setdefault(section, {}).update(entries)
        tags.extend(service.get("tags", []))
    merged["x-unavailable-services"] = unavailable
    return merged


def namespaced(domain: str, document: Document) -> Document:
    """A service's document as the gateway publishes it: paths under `/api/v1/<domain>`,
    operationIds, tags and component names prefixed with the domain. Health paths are
    left out."""
    document = _rewrite_refs(document, domain)
    prefix = f"{API_PREFIX}/{domain}"
    return {
        "paths": {
            prefix + path: _namespaced_path_item(domain, item)
            for path, item in document.get("paths", {}).items()
            if path not in HEALTH_PATHS
        },
        "components": {
            section: entries if section in SHARED_COMPONENTS else _prefixed_keys(domain, entries)
            for section, entries in document.get("components", {}).items()
        },
        "tags": [
            {**tag, "name": tag_name(domain, tag["name"])} for tag in document.get("tags", [])
        ],
    }


def component_name(domain: str, name: str) -> str:
    # A dot cannot occur in a domain name, so `customer.Page` never equals another
    # domain's name. Dots are allowed in component names by the OpenAPI spec.
    return f"{domain}.{name}"


def operation_id(domain: str, operation: str) -> str:
    # operationIds become function names in generated clients: an underscore reads best.
    return f"{domain}_{operation}"


def tag_name(domain: str, tag: str) -> str:
    return f"{domain}.{tag}"


def _namespaced_path_item(domain: str, item: Document) -> Document:
    return {
        key: _namespaced_operation(domain, value) if key in HTTP_METHODS else value
        for key, value in item.items()
    }


def _namespaced_operation(domain: str, operation: Document) -> Document:
    operation = dict(operation)
    if "operationId" in operation:
        operation["operationId"] = operation_id(domain, operation["operationId"])
    # An untagged operation is still grouped under its service.
    operation["tags"] = [tag_name(domain, t) for t in operation.get("tags", [])] or [domain]
    return operation


def _prefixed_keys(domain: str, entries: Document) -> Document:
    return {component_name(domain, name): value for name, value in entries.items()}


def _rewrite_refs(node: Any, domain: str) -> Any:
    """A copy of `node` whose local component references (`$ref`, discriminator mappings)
    point at the prefixed component names."""
    if isinstance(node, list):
        return [_rewrite_refs(item, domain) for item in node]
    if not isinstance(node, dict):
        return node
    rewritten = {key: _rewrite_refs(value, domain) for key, value in node.items()}
    if isinstance(rewritten.get("$ref"), str):
        rewritten["$ref"] = _component_ref(rewritten["$ref"], domain)
    discriminator = rewritten.get("discriminator")
    if isinstance(discriminator, dict) and isinstance(discriminator.get("mapping"), dict):
        discriminator["mapping"] = {
            k: _component_ref(v, domain) for k, v in discriminator["mapping"].items()
        }
    return rewritten


def _component_ref(ref: str, domain: str) -> str:
    """`#/components/schemas/Page` -> `#/components/schemas/<domain>.Page`."""
    parts = ref.split("/", 3)
    if len(parts) != 4 or parts[:2] != ["#", "components"] or parts[2] in SHARED_COMPONENTS:
        return ref
    # The name may carry JSON-pointer escapes (~0, ~1); a prefix without them keeps them valid.
    return f"#/components/{parts[2]}/{component_name(domain, parts[3])}"
