from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from tests.gateway.upstreams import echo_service
from tests.support.servers import serve


@pytest.fixture
async def echo_url() -> AsyncIterator[str]:
    """A running service that answers with what it received."""
    async with serve(echo_service()) as url:
        yield url
