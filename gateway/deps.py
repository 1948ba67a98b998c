"""What routes receive from the app's state: its settings and the one upstream client."""

from __future__ import annotations

from typing import Annotated

import httpx
from fastapi import Depends, Request

from gateway.settings import GatewaySettings


def _settings(request: Request) -> GatewaySettings:
    return request.app.state.settings


def _upstream_client(request: Request) -> httpx.AsyncClient:
    return request.app.state.upstream_client


SettingsDep = Annotated[GatewaySettings, Depends(_settings)]
UpstreamClientDep = Annotated[httpx.AsyncClient, Depends(_upstream_client)]
