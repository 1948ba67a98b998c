"""The processes a benchmark's work runs in, and the CPU each spends on it.

On a shared machine rates move with whatever else runs; the CPU each process (the callers,
the services, and the embedded store and broker when they run here) spends per unit of work
does not, so the benchmarks report it beside their rates."""

from __future__ import annotations

import os
import time
from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class Server:
    url: str
    pid: int

    @classmethod
    def listening_at(cls, url: str) -> Server | None:
        """The local process listening on `url`'s port (the embedded store or broker), if
        this machine's /proc tells."""
        pid = _listening_pid(int(url.rsplit(":", 1)[1].split("/")[0]))
        return None if pid is None else cls(url, pid)

    def cpu_seconds(self) -> float:
        """User plus system CPU time used by the process and its children (uvicorn's
        workers), from Linux /proc; 0 elsewhere."""
        stats = _process_stats()
        tree, grew = {self.pid}, True
        while grew:
            children = {pid for pid, (parent, _) in stats.items() if parent in tree} - tree
            tree |= children
            grew = bool(children)
        return sum(stats[pid][1] for pid in tree if pid in stats)


def _process_stats() -> dict[int, tuple[int, float]]:
    """Every process's parent and CPU seconds (user plus system)."""
    ticks = os.sysconf("SC_CLK_TCK")
    stats = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        stats[int(stat.parent.name)] = (int(fields[1]), (int(fields[11]) + int(fields[12])) / ticks)
    return stats


def _listening_pid(port: int) -> int | None:
    """Linux only: the socket inode listening on `port`, then the process holding it."""
    wanted = None
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        try:
            rows = Path(table).read_text().splitlines()[1:]
        except OSError:
            return None
        for row in rows:
            fields = row.split()
            if fields[3] == "0A" and int(fields[1].rsplit(":", 1)[1], 16) == port:
                wanted = f"socket:[{fields[9]}]"
    if wanted is None:
        return None
    for fd_dir in Path("/proc").glob("[0-9]*/fd"):
        try:
            if any(os.readlink(fd) == wanted for fd in fd_dir.iterdir()):
                return int(fd_dir.parent.name)
        except OSError:
            continue
    return None


def infrastructure(bootstrap: str, mongodb_uri: str) -> dict[str, Server]:
    """The store and broker when they run on this machine: their cycles come from the
    same cores as the services'."""
    found = {}
    for name, address in (("store", mongodb_uri.split("?")[0]), ("broker", bootstrap)):
        if (server := Server.listening_at(address.split(",")[0])) is not None:
            found[name] = server
    return found


class CpuMeter:
    """CPU seconds spent by this process (the callers) and each server over a span of time."""

    def __init__(self, servers: dict[str, Server]) -> None:
        self.servers = servers
        self.start = self._now()

    def _now(self) -> dict[str, float]:
        return {"client": time.process_time()} | {
            name: server.cpu_seconds() for name, server in self.servers.items()
        }

    def per_unit_ms(self, units: int) -> dict[str, float]:
        end = self._now()
        return {k: round((end[k] - self.start[k]) * 1000 / units, 2) for k in end}
