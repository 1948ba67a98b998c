"""Fixtures of the loyalty tests: one loyalty service for the whole package on the
session's store and broker (its consumer group joins once), a stand-in coupon service on a
real socket, a tenant per test, and an HTTP client calling as that tenant."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
from aiokafka import AIOKafkaProducer

from services.loyalty.main import create_app
from services.loyalty.settings import LoyaltySettings
from tests.loyalty.coupon_stand_in import CouponStandIn
from tests.loyalty.support import Service
from tests.support.servers import serve
from tests.support.settings import settings_for


@pytest.fixture(scope="package")
async def coupons() -> AsyncIterator[CouponStandIn]:
    stand_in = CouponStandIn()
    async with serve(stand_in.app()) as url:
        stand_in.url = url
        yield stand_in


@pytest.fixture(scope="package")
async def service(infra: Any, coupons: CouponStandIn) -> AsyncIterator[Service]:
    settings = settings_for(
        LoyaltySettings,
        infra,
        uuid.uuid4().hex[:10],
        coupon_base_url=coupons.url,
        coupon_timeout_seconds=2.0,
        sweep_interval_seconds=3600.0,  # tests run the sweeps themselves, at chosen times
    )
    app = create_app(settings)
    async with serve(app) as url:
        yield Service(url, app, settings)


@pytest.fixture(scope="package")
async def producer(service: Service) -> AsyncIterator[AIOKafkaProducer]:
    kafka = AIOKafkaProducer(bootstrap_servers=service.bootstrap, acks="all")
    await kafka.start()
    yield kafka
    await kafka.stop()


@pytest.fixture
def tenant(unique: str) -> str:
    return f"t{unique}"


@pytest.fixture
async def api(service: Service, tenant: str) -> AsyncIterator[httpx.AsyncClient]:
    headers = {"X-Tenant-Id": tenant, "X-Actor-Id": "ops-1"}
    async with httpx.AsyncClient(base_url=service.url, headers=headers, timeout=60) as client:
        yield client
