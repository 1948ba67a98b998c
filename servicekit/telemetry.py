"""OpenTelemetry: one trace from the gateway through HTTP, the outbox and Kafka to every
consumer. W3C trace context travels in HTTP headers (FastAPI telemetry, httpx instrumentation) and,
for events, in the envelope and the Kafka message headers (here)."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import Any

from fastapi.telemetry import TelemetryConfig
from opentelemetry import context as otel_context
from opentelemetry import propagate, trace
from opentelemetry.instrumentation.httpx import HTTPXClientInstrumentor
from opentelemetry.sdk.resources import SERVICE_NAME, Resource
from opentelemetry.sdk.trace import SpanProcessor, TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor

TRACE_HEADERS = ("traceparent", "tracestate")
#: Probes are not traced: they say nothing about a request.
PROBE_PATHS = frozenset({"/healthz", "/readyz", "/livez"})


def configure_tracing(
    service: str, otlp_endpoint: str | None, extra: SpanProcessor | None = None
) -> None:
    """Install the process's tracer provider once (the first service in a process wins,
    which only happens in tests that host several apps)."""
    if isinstance(trace.get_tracer_provider(), TracerProvider):
        return
    provider = TracerProvider(resource=Resource.create({SERVICE_NAME: service}))
    if otlp_endpoint:
        from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter

        exporter = OTLPSpanExporter(endpoint=f"{otlp_endpoint.rstrip('/')}/v1/traces")
        provider.add_span_processor(BatchSpanProcessor(exporter))
    if extra is not None:
        provider.add_span_processor(extra)
    trace.set_tracer_provider(provider)
    HTTPXClientInstrumentor().instrument()


def server_telemetry() -> TelemetryConfig:
    """FastAPI's own OpenTelemetry (`FastAPI(telemetry=...)`): one server span per request,
    its parent taken from the W3C headers, named and given `http.route` from the route
    FastAPI's router chose. The contrib FastAPI instrumentation matched each request
    against every route a second time to name its span (a tenth of a request's CPU). No
    metrics, logs or spans per dependency and endpoint: nothing here reads them."""
    return {
        "tracing": True,
        "metrics": False,
        "logs": False,
        "operation_spans": False,
        "auto_configure": False,  # configure_tracing installs the exporters
        "exclude": _is_probe,
    }


def _is_probe(scope: dict[str, Any]) -> bool:
    return scope.get("path") in PROBE_PATHS


def tracer(name: str) -> trace.Tracer:
    return trace.get_tracer(name)


def current_trace_headers() -> dict[str, str]:
    """The current span's W3C context, to store with an outgoing event."""
    carrier: dict[str, str] = {}
    propagate.inject(carrier)
    return {k: v for k, v in carrier.items() if k in TRACE_HEADERS}


def kafka_headers(trace_headers: dict[str, str]) -> list[tuple[str, bytes]]:
    return [(k, v.encode()) for k, v in trace_headers.items()]


def headers_to_dict(headers: Sequence[tuple[str, bytes]] | None) -> dict[str, str]:
    return {k: v.decode(errors="replace") for k, v in headers or ()}


@contextmanager
def continued_from(carrier: dict[str, str]) -> Iterator[None]:
    """Run the block inside the trace an incoming message belongs to."""
    token = otel_context.attach(propagate.extract(carrier))
    try:
        yield
    finally:
        otel_context.detach(token)
