"""What routes receive from the app's state: its settings and an upstream client from the
pool. `async def` although they do no I/O: a plain `def` dependency runs in a worker thread."""

from __future__ import annotations

from typing import Annotated

import httpx
from fastapi import Depends, Request

from gateway.settings import GatewaySettings


async def _settings(request: Request) -> GatewaySettings:
    return request.app.state.settings


async def _upstream_client(request: Request) -> httpx.AsyncClient:
    return request.app.state.upstream_clients.pick()


SettingsDep = Annotated[GatewaySettings, Depends(_settings)]
UpstreamClientDep = Annotated[httpx.AsyncClient, Depends(_upstream_client)]
