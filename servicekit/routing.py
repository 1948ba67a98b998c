"""Routers added to an app as flat routes.

Since 0.137 FastAPI's `include_router` keeps each router as a lazy branch: every request
walks the branches, sums every router's version over the whole tree to see whether a
branch must be rebuilt, and matches the path twice (once to choose, once to handle). With
a service's ~70 routes in ~15 routers that was a sixth of a request's CPU. Adding each
route to the app itself, as `include_router` did before, leaves one flat list of regexes.
"""

from __future__ import annotations

from fastapi import APIRouter, FastAPI
from fastapi.routing import APIRoute, iter_route_contexts


def add_routes(app: FastAPI, router: APIRouter) -> None:
    """Add `router`'s routes (and those of the routers it includes) to `app` with the same
    path, tags, dependencies, responses and operation ids an inclusion gives them; the
    OpenAPI document is the same. A router holding anything but API routes (a mount, a
    websocket) is included as FastAPI does it."""
    contexts = list(iter_route_contexts(router.routes))
    if not all(isinstance(c.original_route, APIRoute) for c in contexts):
        app.include_router(router)
        return
    for context in contexts:
        # The context answers with the route as included: the including routers' prefix,
        # tags, dependencies and responses merged with the route's own.
        route = context.original_route
        assert isinstance(route, APIRoute) and context.path is not None
        app.router.add_api_route(
            context.path,
            route.endpoint,
            response_model=context.response_model,
            status_code=context.status_code,
            tags=context.tags,
            dependencies=context.dependencies,
            summary=context.summary,
            description=context.description,
            response_description=context.response_description,
            responses=context.responses,
            deprecated=context.deprecated,
            methods=context.methods,
            operation_id=context.operation_id,
            response_model_include=context.response_model_include,
            response_model_exclude=context.response_model_exclude,
            response_model_by_alias=context.response_model_by_alias,
            response_model_exclude_unset=context.response_model_exclude_unset,
            response_model_exclude_defaults=context.response_model_exclude_defaults,
            response_model_exclude_none=context.response_model_exclude_none,
            include_in_schema=context.include_in_schema,
            response_class=context.response_class,
            name=context.name,
            route_class_override=type(route),
            callbacks=context.callbacks,
            openapi_extra=context.openapi_extra,
            generate_unique_id_function=context.generate_unique_id_function,
            strict_content_type=context.strict_content_type,
            max_body_size=context.max_body_size,
        )
