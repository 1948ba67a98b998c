"""Coupon flash sale: a batch of 10,000 coupons claimed by 30,000 distinct customers with
200 requests in flight, over HTTP to the coupon service and again through the gateway, as
ratios against the store's raw single-write rate measured in the same run.

    python -m bench.coupon_claims [--stock N] [--customers M] [--in-flight K] [--external]

What is timed, per target (the claim path's parts in this process without HTTP, then the
service over HTTP, then the gateway in front of it):
- a fresh batch (stock `--stock`, one coupon per customer) of a running campaign;
- `--customers` distinct customers each POST one claim, `--in-flight` at a time, from this
  process (the service and the gateway run as their own uvicorn processes);
- claims/s = requests answered per second over the whole stampede (issued, sold out, any
  other answer), and issued/s = coupons issued per second until the last one was issued;
- p50/p99 latency of every claim, and of the successful ones.
- CPU ms per claim of each process: the callers (this process), the service, the gateway,
  and the store and broker when they run on this machine. On a shared machine rates move
  with what else runs; CPU per claim hardly does.
It asserts exactly `--stock` coupons issued (201 answers and documents in the store), no
customer holding more than one, and no answer other than 201 or 409 sold_out (through the
gateway also 503 upstream_unavailable: its pool to the service stayed full past its timeout,
so the request was shed before reaching the service; counted in `answers`).

On a shared 2-core machine the HTTP rows measure Python's HTTP stack (client, gateway and
service on the same cores as the store) more than the claim path; the core row is the claim
path's own capacity against the store."""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import os
import platform
import subprocess
import sys
import time
import uuid
from collections import Counter
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiohttp
import httpx
from pymongo import AsyncMongoClient

from bench.processes import CpuMeter, Server, infrastructure
from bench.raw_capacity import (
    format_table,
    infrastructure_arguments,
    rates,
    run_benchmark,
    run_raw_capacity,
)
from devstack import free_ports
from servicekit.context import Actor
from services.coupon.api.claims import claim_limits
from services.coupon.domain.coupons import Refusal
from services.coupon.main import create_app
from services.coupon.service import parts
from services.coupon.service.claims import ClaimRefused, ClaimRequest
from services.coupon.settings import CouponSettings
from tests.support.servers import serve

DEFAULT_STOCK = 10_000
DEFAULT_CUSTOMERS = 30_000
DEFAULT_IN_FLIGHT = 200
RAW_MESSAGES = 5_000
RAW_DOCS = 1_000
TENANT = "bench-coupon"
#: The gateway's answer when its pool to the service stays full past its timeout: the
#: request never reached the service (load shed), so it is counted, not an error.
SHED = ("503 upstream_unavailable", "503 gateway_busy")
RESULTS_PATH = Path(__file__).parent / "results" / "coupon_claims.json"
ROOT = Path(__file__).resolve().parent.parent
#: The services' log level (BENCH_LOG_LEVEL=INFO shows their start-up and requests).
LOG_LEVEL = os.environ.get("BENCH_LOG_LEVEL", "WARNING")
#: BENCH_PROFILE_DIR=path runs each service under cProfile, writing `<module>.prof` there.
PROFILE_DIR = os.environ.get("BENCH_PROFILE_DIR")


@dataclass
class Stampede:
    target: str
    seconds: float
    issued_seconds: float
    statuses: Counter[str] = field(default_factory=Counter)
    latencies: list[float] = field(default_factory=list)
    issued_latencies: list[float] = field(default_factory=list)
    issued_ids: list[str] = field(default_factory=list)
    batch_id: str = ""
    #: CPU time each process spent on the stampede, in ms per claim answered.
    cpu_ms_per_claim: dict[str, float] = field(default_factory=dict)

    def issued(self, coupon_id: str, sent: float, start: float) -> None:
        now = time.perf_counter()
        self.issued_ids.append(coupon_id)
        self.issued_latencies.append(now - sent)
        self.issued_seconds = now - start
        self.statuses["201"] += 1

    @property
    def answered(self) -> int:
        return sum(self.statuses.values())

    def row(self, raw_insert_one: float) -> dict[str, Any]:
        claims = self.answered / self.seconds
        issued = len(self.issued_ids) / self.issued_seconds
        return {
            "target": self.target,
            "claims": self.answered,
            "issued": len(self.issued_ids),
            "seconds": round(self.seconds, 2),
            "claims_per_s": round(claims, 1),
            "issued_per_s": round(issued, 1),
            "p50_ms": _ms(self.latencies, 0.50),
            "p99_ms": _ms(self.latencies, 0.99),
            "issued_p50_ms": _ms(self.issued_latencies, 0.50),
            "issued_p99_ms": _ms(self.issued_latencies, 0.99),
            "claims_vs_raw_insert_one": round(claims / raw_insert_one, 2),
            "issued_vs_raw_insert_one": round(issued / raw_insert_one, 2),
            "answers": dict(self.statuses),
            "cpu_ms_per_claim": self.cpu_ms_per_claim,
            "cpu_bound_claims_per_s": self.cpu_bound_rate(),
        }

    def cpu_bound_rate(self) -> float | None:
        """Claims/s this machine's cores would answer if CPU were all that limited them:
        the cores over the CPU every process spends on one claim. Far from the measured
        rate means waiting (store round trips, one event loop per process), not CPU."""
        spent = sum(self.cpu_ms_per_claim.values())
        if not spent:
            return None
        return round((os.cpu_count() or 1) * 1000 / spent, 1)


def _ms(values: list[float], quantile: float) -> float:
    if not values:
        return 0.0
    ordered = sorted(values)
    return round(ordered[min(len(ordered) - 1, int(quantile * len(ordered)))] * 1000, 1)


# ----------------------------------------------------------------------- processes


@contextmanager
def uvicorn(factory: str, port: int, env: dict[str, str], workers: int = 1) -> Iterator[Server]:
    """Run `factory` in its own uvicorn process (`workers` processes sharing the port, as
    replicas would); yield its base URL once it answers (the coupon service answers only
    once its lifespan has connected the store and broker)."""
    runner = (
        ["bench.profiled", f"{PROFILE_DIR}/{factory.split(':')[0]}.prof"]
        if PROFILE_DIR
        else ["uvicorn", "--factory"]
    )
    command = [
        sys.executable, "-m", *runner, factory, "--host", "127.0.0.1",
        "--port", str(port), "--no-access-log", "--log-level", LOG_LEVEL.lower(),
        # Longer than the callers' pools keep idle connections (httpx: 5 s), as behind any
        # proxy: else a request can go out on a connection the server is just closing.
        "--timeout-keep-alive", "30", "--workers", str(workers),
    ]  # fmt: skip
    process = subprocess.Popen(command, cwd=ROOT, env={**os.environ, **env})
    url = f"http://127.0.0.1:{port}"
    try:
        _wait_ready(url, process)
        yield Server(url, process.pid)
    finally:
        process.terminate()
        process.wait(timeout=30)


def _wait_ready(url: str, process: subprocess.Popen[bytes]) -> None:
    deadline = time.monotonic() + 90
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"{url} exited with {process.returncode} before answering")
        try:
            httpx.get(f"{url}/healthz", timeout=2)  # any answer: the gateway's is 503 while
            return  # services it fronts but this run does not start are down

        except httpx.HTTPError:
            pass
        time.sleep(0.3)
    raise RuntimeError(f"{url} did not answer within 90 s")


# -------------------------------------------------------------------------- set-up


async def running_batch(api: httpx.AsyncClient, stock: int) -> str:
    """A budget, a campaign with one batch of `stock` coupons, approved and started."""
    now = dt.datetime.now(dt.UTC)
    budget = await _post(api, "/budgets", {
        "name": "bench", "owner_kind": "department", "owner": "growth",
        "amount": stock * 1_000, "starts_at": now.isoformat(),
        "ends_at": (now + dt.timedelta(days=30)).isoformat(),
    })  # fmt: skip
    batch = {
        "key": "flash", "name": "flash sale",
        "discount": {"kind": "threshold", "amount": 1_000, "threshold": 10_000},
        "claim_from": (now - dt.timedelta(minutes=1)).isoformat(),
        "claim_until": (now + dt.timedelta(days=1)).isoformat(),
        "validity": {"days_after_claim": 7}, "stock": stock, "per_customer_limit": 1,
    }  # fmt: skip
    body = {"name": "bench", "budget_id": budget["id"], "batches": [batch]}
    campaign = await _post(api, "/campaigns", body)
    for step in ("submit", "approve", "start"):
        answer = await _post(api, f"/campaigns/{campaign['id']}/{step}", None)
    return str(answer["batch_ids"]["flash"])


async def _post(api: httpx.AsyncClient, path: str, body: Any) -> Any:
    response = await api.post(path, json=body)
    if response.status_code >= 300:
        raise RuntimeError(f"{path}: {response.status_code} {response.text}")
    return response.json()


# ------------------------------------------------------------------------ the sale


async def stampede(
    target: str, base_url: str, batch_id: str, customers: list[str], in_flight: int
) -> Stampede:
    """The callers are an aiohttp session: it spends about a third of httpx's CPU per
    request, and on a shared machine every cycle the load generator uses is one the service
    under test does not get."""
    connector = aiohttp.TCPConnector(
        limit=in_flight,
        # Before uvicorn's keep-alive ends: never reuse a connection the server is closing.
        keepalive_timeout=2.0,
    )
    session = aiohttp.ClientSession(
        base_url=base_url + "/",
        headers={"X-Tenant-Id": TENANT},
        connector=connector,
        timeout=aiohttp.ClientTimeout(total=120),
    )
    result = Stampede(target, 0.0, 0.0)
    queue: asyncio.Queue[str] = asyncio.Queue()
    for customer in customers:
        queue.put_nowait(customer)
    start = time.perf_counter()
    path = f"batches/{batch_id}/claims"

    async def caller() -> None:
        while not queue.empty():
            customer = queue.get_nowait()
            sent = time.perf_counter()
            body = {"customer_id": customer, "channel": "app"}
            async with session.post(path, json=body) as response:
                answer = await response.json()
            took = time.perf_counter() - sent
            result.latencies.append(took)
            if response.status == 201:
                result.issued(answer["id"], sent, start)
            else:
                result.statuses[f"{response.status} {answer.get('code')}"] += 1

    try:
        await asyncio.gather(*(caller() for _ in range(in_flight)))
    finally:
        await session.close()
    result.seconds = time.perf_counter() - start
    return result


async def core_stampede(
    bootstrap: str, mongodb_uri: str, database: str, stock: int, customers: int, in_flight: int
) -> Stampede:
    """The same sale through the service's own parts in this process (the sold-out check,
    rate limits, then the claim desk), no HTTP: what the hot path's store work sustains."""
    settings = CouponSettings(
        kafka_bootstrap_servers=bootstrap,
        mongodb_uri=mongodb_uri,
        mongodb_database=database,
        kafka_group_prefix=f"bench-core-{uuid.uuid4().hex[:8]}.",
        log_level=LOG_LEVEL,
    )
    app = create_app(settings)
    async with serve(app) as url:
        async with httpx.AsyncClient(
            base_url=url, headers={"X-Tenant-Id": TENANT, "X-Actor-Roles": "admin"}, timeout=60
        ) as api:
            batch_id = await running_batch(api, stock)
        runtime = app.state.runtime
        desk = runtime.state.get(parts.DESK) or parts.install(runtime)
        limiter = runtime.state[parts.LIMITER]
        batch = await desk.batch(TENANT, batch_id)
        result = Stampede("core", 0.0, 0.0, batch_id=batch_id)
        queue = [f"core_{i:06d}" for i in range(customers)]
        meter = CpuMeter(infrastructure(bootstrap, mongodb_uri))
        start = time.perf_counter()

        async def claim(customer: str) -> str:
            if desk.sold_out(TENANT, batch_id):
                raise ClaimRefused(Refusal.SOLD_OUT)
            limits = claim_limits(settings, batch, customer, "app", Actor())
            await limiter.check(TENANT, limits)
            request = ClaimRequest(customer, "app")
            return (await desk.issue(TENANT, batch, request, check_window=True)).coupon.id

        async def caller() -> None:
            while queue:
                sent = time.perf_counter()
                try:
                    issued = await claim(queue.pop())
                except ClaimRefused as refused:
                    result.statuses[f"409 {refused.code}"] += 1
                else:
                    result.issued(issued, sent, start)
                result.latencies.append(time.perf_counter() - sent)

        await asyncio.gather(*(caller() for _ in range(in_flight)))
        result.seconds = time.perf_counter() - start
        used = meter.per_unit_ms(result.answered)
        # This process is the claim path here, not a client of it.
        result.cpu_ms_per_claim = {"service": used.pop("client")} | used
    return result


async def check(
    result: Stampede, mongodb_uri: str, database: str, batch_id: str, stock: int
) -> None:
    """Exactly `stock` issued, in the store as answered, one per customer, nothing else."""
    expected = {"201", "409 sold_out", *SHED}
    unexpected = {k: v for k, v in result.statuses.items() if k not in expected}
    if unexpected:
        raise AssertionError(f"{result.target}: unexpected answers {unexpected}")
    if len(result.issued_ids) != stock:
        raise AssertionError(f"{result.target}: {len(result.issued_ids)} issued, not {stock}")
    client: AsyncMongoClient[dict[str, Any]] = AsyncMongoClient(mongodb_uri)
    try:
        docs = (
            await client[database]["coupons"]
            .find({"batch_id": batch_id}, {"customer_id": 1})
            .to_list()
        )
    finally:
        await client.close()
    if {d["_id"] for d in docs} != set(result.issued_ids):
        raise AssertionError(f"{result.target}: the store's coupons differ from the 201 answers")
    if max(Counter(d["customer_id"] for d in docs).values()) > 1:
        raise AssertionError(f"{result.target}: a customer holds more than one coupon")


async def run_sale(bootstrap: str, mongodb_uri: str, args: argparse.Namespace) -> dict[str, Any]:
    raw = await run_raw_capacity(bootstrap, mongodb_uri, messages=RAW_MESSAGES, docs=RAW_DOCS)
    raw_rates = rates(raw)
    print(format_table(raw), flush=True)
    run_id = uuid.uuid4().hex[:8]
    database = f"bench_coupon_{run_id}"
    env = {
        "KAFKA_BOOTSTRAP_SERVERS": bootstrap,
        "MONGODB_URI": mongodb_uri,
        "KAFKA_GROUP_PREFIX": f"bench-{run_id}.",
        "COUPON_MONGODB_DATABASE": database,
        "GATEWAY_MONGODB_DATABASE": f"bench_gateway_{run_id}",
        "LOG_LEVEL": LOG_LEVEL,
    }
    coupon_port, gateway_port = free_ports(2)
    env["GATEWAY_COUPON_URL"] = f"http://127.0.0.1:{coupon_port}"
    rows = []
    if "core" in args.targets:
        core = await core_stampede(
            bootstrap, mongodb_uri, database, args.stock, args.customers, args.in_flight
        )
        await check(core, mongodb_uri, database, core.batch_id, args.stock)
        rows.append(core.row(raw_rates["store_insert_one"]))
        print(_line(rows[-1]), flush=True)
    with (
        uvicorn("services.coupon.main:create_app", coupon_port, env, args.workers) as coupon,
        uvicorn("gateway.main:create_app", gateway_port, env, args.workers) as gateway,
    ):
        targets = [("service", coupon.url), ("gateway", f"{gateway.url}/api/v1/coupon")]
        servers = {"service": coupon, "gateway": gateway} | infrastructure(bootstrap, mongodb_uri)
        for n, (target, base) in enumerate(targets):
            if target not in args.targets:
                continue
            async with httpx.AsyncClient(
                base_url=base, headers={"X-Tenant-Id": TENANT, "X-Actor-Roles": "admin"}, timeout=60
            ) as api:
                batch_id = await running_batch(api, args.stock)
            customers = [f"cus_{n}_{i:06d}" for i in range(args.customers)]
            meter = CpuMeter(servers)
            result = await stampede(target, base, batch_id, customers, args.in_flight)
            result.cpu_ms_per_claim = meter.per_unit_ms(result.answered)
            await check(result, mongodb_uri, database, batch_id, args.stock)
            rows.append(result.row(raw_rates["store_insert_one"]))
            print(_line(rows[-1]), flush=True)
    await _drop(mongodb_uri, database, env["GATEWAY_MONGODB_DATABASE"])
    return {
        "benchmark": "coupon_claims",
        "run_at": dt.datetime.now(dt.UTC).isoformat(),
        "infrastructure": "external" if args.external else "embedded (tansu + SecantusDB)",
        "machine": {"cpus": os.cpu_count(), "platform": platform.platform()},
        "parameters": {
            "stock": args.stock,
            "customers": args.customers,
            "in_flight": args.in_flight,
            "service_workers": args.workers,
            "targets": sorted(args.targets),
        },
        "raw_rates_per_s": raw_rates,
        "sale": rows,
    }


async def _drop(mongodb_uri: str, *databases: str) -> None:
    client: AsyncMongoClient[dict[str, Any]] = AsyncMongoClient(mongodb_uri)
    try:
        for name in databases:
            await client.drop_database(name)
    finally:
        await client.close()


def _line(row: dict[str, Any]) -> str:
    return (
        f"{row['target']:>8}: {row['claims']} claims in {row['seconds']} s = "
        f"{row['claims_per_s']}/s ({row['claims_vs_raw_insert_one']}x raw insert_one), "
        f"{row['issued']} issued at {row['issued_per_s']}/s "
        f"({row['issued_vs_raw_insert_one']}x); p50 {row['p50_ms']} ms, p99 {row['p99_ms']} ms "
        f"(issued: p50 {row['issued_p50_ms']} ms, p99 {row['issued_p99_ms']} ms); "
        f"CPU ms per claim {row['cpu_ms_per_claim']}, "
        f"CPU-bound ceiling {row['cpu_bound_claims_per_s']} claims/s"
    )


# ------------------------------------------------------------------------------ CLI


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m bench.coupon_claims", description=__doc__)
    parser.add_argument("--stock", type=int, default=DEFAULT_STOCK)
    parser.add_argument("--customers", type=int, default=DEFAULT_CUSTOMERS)
    parser.add_argument("--in-flight", type=int, default=DEFAULT_IN_FLIGHT)
    parser.add_argument(
        "--workers",
        type=int,
        default=1,
        help="processes of the coupon service and of the gateway, as replicas sharing a "
        "port (each service process leases its own stock)",
    )
    parser.add_argument(
        "--targets",
        type=lambda v: set(v.split(",")),
        default={"core", "service", "gateway"},
        help="comma-separated: core (in-process, no HTTP), service, gateway",
    )
    infrastructure_arguments(parser, RESULTS_PATH)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    run_benchmark(args, "bench-coupon-", lambda kafka, mongo: run_sale(kafka, mongo, args))
    return 0


if __name__ == "__main__":
    sys.exit(main())
