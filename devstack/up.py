"""`make up`: the whole system on this machine.

Starts the embedded broker and store, then every service and the gateway under honcho
(one process each, output prefixed by name), loads the demo tenant once the gateway is
green, and prints where to go. Ctrl-C stops the processes, then the broker and store.
"""

from __future__ import annotations

import os
import shlex
import sys
import threading
from pathlib import Path

from honcho.manager import Manager

from devstack.demo import load_demo_when_ready
from devstack.infra import EmbeddedInfra, InfraConfig, InfraError

ROOT = Path(__file__).resolve().parent.parent
SERVICES = ("customer", "tagging", "loyalty", "coupon", "reach")


def ports() -> tuple[int, dict[str, int]]:
    """The gateway's port and each service's, from DEVSTACK_GATEWAY_PORT and
    DEVSTACK_SERVICE_PORT_BASE (services take consecutive ports from it)."""
    gateway = int(os.environ.get("DEVSTACK_GATEWAY_PORT", "8080"))
    base = int(os.environ.get("DEVSTACK_SERVICE_PORT_BASE", "8101"))
    return gateway, {name: base + i for i, name in enumerate(SERVICES)}


def uvicorn_command(factory: str, port: int) -> str:
    argv = [sys.executable, "-m", "uvicorn", "--factory", factory]
    argv += ["--host", "127.0.0.1", "--port", str(port), "--no-access-log"]
    return shlex.join(argv)


def process_env(infra: EmbeddedInfra, service_ports: dict[str, int]) -> dict[str, str]:
    env = {**os.environ, **infra.env(), "PYTHONPATH": str(ROOT), "PYTHONUNBUFFERED": "1"}
    for name, port in service_ports.items():
        env[f"GATEWAY_{name.upper()}_URL"] = f"http://127.0.0.1:{port}"
        # Where a service calls another directly (loyalty asks coupon for a coupon; reach
        # pages through tagging's segment members): `<CALLER>_<CALLEE>_BASE_URL`.
        for caller in service_ports:
            if caller != name:
                env[f"{caller.upper()}_{name.upper()}_BASE_URL"] = f"http://127.0.0.1:{port}"
    return env


def build_manager(env: dict[str, str], gateway_port: int, service_ports: dict[str, int]) -> Manager:
    manager = Manager()
    for name, port in service_ports.items():
        factory = f"services.{name}.main:create_app"
        manager.add_process(name, uvicorn_command(factory, port), env=env, cwd=str(ROOT))
    gateway = uvicorn_command("gateway.main:create_app", gateway_port)
    manager.add_process("gateway", gateway, env=env, cwd=str(ROOT))
    return manager


def run_up() -> int:
    gateway_port, service_ports = ports()
    infra = EmbeddedInfra(InfraConfig.from_env())
    try:
        infra.start()
    except InfraError as exc:
        print(f"devstack: {exc}", file=sys.stderr)
        return 1
    try:
        manager = build_manager(process_env(infra, service_ports), gateway_port, service_ports)
        gateway_url = f"http://127.0.0.1:{gateway_port}"
        threading.Thread(
            target=load_demo_when_ready, args=(gateway_url,), name="demo", daemon=True
        ).start()
        manager.loop()
        return manager.returncode or 0
    finally:
        print("devstack: stopping broker and store...", file=sys.stderr, flush=True)
        infra.stop()
