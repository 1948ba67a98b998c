"""`python -m devstack infra`: run the embedded broker and store until Ctrl-C or SIGTERM.
`python -m devstack up`: the whole system with demo data (`make up`).

Flags override the `DEVSTACK_*` variables, which override the built-in defaults.
"""

from __future__ import annotations

import argparse
import dataclasses
import shlex
import signal
import sys
import threading
from collections.abc import Sequence
from pathlib import Path
from types import FrameType

from devstack.infra import (
    ENV_BROKER_PORT,
    ENV_DATA_DIR,
    ENV_STORE_IN_MEMORY,
    ENV_STORE_PORT,
    EmbeddedInfra,
    InfraConfig,
    InfraError,
)

#: How often the CLI checks that both servers are still alive while it waits.
_WATCH_INTERVAL_SECONDS = 1.0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m devstack")
    commands = parser.add_subparsers(dest="command", required=True)
    infra = commands.add_parser(
        "infra",
        help="run the embedded Kafka-compatible broker and MongoDB-compatible store",
    )
    infra.add_argument("--broker-port", type=int, help=f"default: ${ENV_BROKER_PORT} or 19092")
    infra.add_argument("--store-port", type=int, help=f"default: ${ENV_STORE_PORT} or 27027")
    infra.add_argument("--data-dir", type=Path, help=f"default: ${ENV_DATA_DIR} or .devstack")
    infra.add_argument(
        "--in-memory",
        action="store_true",
        default=None,
        help=f"keep the store's data in memory (default: ${ENV_STORE_IN_MEMORY})",
    )
    infra.add_argument("--timeout", type=float, default=60.0, help="startup timeout, seconds")
    commands.add_parser(
        "up", help="run the broker, the store, every service and the gateway, with demo data"
    )
    return parser


def config_from_args(args: argparse.Namespace) -> InfraConfig:
    overrides = {
        "broker_port": args.broker_port,
        "store_port": args.store_port,
        "data_dir": args.data_dir,
        "store_in_memory": args.in_memory,
    }
    given = {name: value for name, value in overrides.items() if value is not None}
    return dataclasses.replace(InfraConfig.from_env(), **given)


def describe(infra: EmbeddedInfra) -> str:
    store_data = "in memory" if infra.config.store_in_memory else str(infra.data_dir / "store")
    lines = [
        f"broker (tansu)      {infra.kafka_bootstrap_servers}    log: {infra.log_paths['broker']}",
        f"store (SecantusDB)  {infra.mongodb_uri}    data: {store_data}"
        f"    log: {infra.log_paths['store']}",
        "",
        "# point services at it:",
        *(f"export {name}={shlex.quote(value)}" for name, value in infra.env().items()),
        "",
        "Ctrl-C stops both.",
    ]
    return "\n".join(lines)


def _install_stop_handlers(stop: threading.Event) -> None:
    def handle(signum: int, frame: FrameType | None) -> None:
        stop.set()

    signal.signal(signal.SIGINT, handle)
    signal.signal(signal.SIGTERM, handle)


def run_infra(config: InfraConfig, timeout: float) -> int:
    stop = threading.Event()
    infra = EmbeddedInfra(config)
    # KeyboardInterrupt during start() is handled by start() itself (it stops what it
    # spawned); the handlers only take over once both servers are up.
    try:
        infra.start(timeout=timeout)
    except InfraError as exc:
        print(f"devstack: {exc}", file=sys.stderr)
        return 1
    _install_stop_handlers(stop)
    print(describe(infra), flush=True)
    try:
        while not stop.wait(_WATCH_INTERVAL_SECONDS):
            infra.check_alive()
    except InfraError as exc:
        print(f"devstack: {exc}", file=sys.stderr)
        return 1
    finally:
        print("devstack: stopping broker and store...", file=sys.stderr, flush=True)
        infra.stop()
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    if args.command == "infra":
        return run_infra(config_from_args(args), args.timeout)
    if args.command == "up":
        from devstack.up import run_up

        return run_up()
    raise AssertionError(f"unhandled command {args.command!r}")


if __name__ == "__main__":
    try:
        sys.exit(main())
    except KeyboardInterrupt:  # Ctrl-C while starting: start() already cleaned up
        sys.exit(130)
