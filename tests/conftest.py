"""Shared fixtures: the embedded broker and store, started once per test session on free
ports, and an in-memory span exporter so tests can follow a trace."""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from devstack.infra import EmbeddedInfra, InfraConfig, free_ports
from servicekit.telemetry import configure_tracing

SPANS = InMemorySpanExporter()
# The first provider installed in a process wins: install ours before any app does.
configure_tracing("tests", None, extra=SimpleSpanProcessor(SPANS))


@pytest.fixture(scope="session")
def infra(tmp_path_factory: pytest.TempPathFactory) -> Iterator[EmbeddedInfra]:
    """The real embedded broker and store. Set TEST_KAFKA_BOOTSTRAP_SERVERS and
    TEST_MONGODB_URI to run the suite against servers you already have."""
    external = os.environ.get("TEST_KAFKA_BOOTSTRAP_SERVERS"), os.environ.get("TEST_MONGODB_URI")
    if all(external):
        yield _External(*external)  # type: ignore[arg-type,misc]
        return
    broker_port, store_port = free_ports(2)
    config = InfraConfig(
        broker_port=broker_port,
        store_port=store_port,
        data_dir=Path(tmp_path_factory.mktemp("infra")),
        store_in_memory=True,
    )
    with EmbeddedInfra(config) as running:
        yield running


class _External:
    def __init__(self, kafka: str, mongodb: str) -> None:
        self.kafka_bootstrap_servers = kafka
        self.mongodb_uri = mongodb


@pytest.fixture
def unique() -> str:
    """A short unique suffix for tenants, databases and groups of one test."""
    return uuid.uuid4().hex[:10]


@pytest.fixture
def spans() -> InMemorySpanExporter:
    return SPANS
