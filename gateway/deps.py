"""What routes receive from the app's state: its settings and the client to the services.
`async def` although they do no I/O: a plain `def` dependency runs in a worker thread."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request

from gateway.settings import GatewaySettings
from gateway.upstream import Upstream


async def _settings(request: Request) -> GatewaySettings:
    return request.app.state.settings


async def _upstream(request: Request) -> Upstream:
    return request.app.state.upstream


SettingsDep = Annotated[GatewaySettings, Depends(_settings)]
UpstreamDep = Annotated[Upstream, Depends(_upstream)]
