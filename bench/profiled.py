"""Run a uvicorn app factory under cProfile and write the profile when it is stopped.

    python -m bench.profiled OUT.prof services.coupon.main:create_app --port 8000 ...

uvicorn re-raises the SIGTERM it caught once it has shut down, which would kill a plain
`python -m cProfile` before it writes anything; the handler installed here is the one
uvicorn restores and re-raises to, so the profile is written first."""

from __future__ import annotations

import cProfile
import signal
import sys
from types import FrameType

import uvicorn.main


def main() -> None:
    out, *uvicorn_args = sys.argv[1:]
    profiler = cProfile.Profile()

    def stop(signum: int, frame: FrameType | None) -> None:
        profiler.disable()
        profiler.dump_stats(out)
        raise SystemExit(0)

    signal.signal(signal.SIGTERM, stop)
    profiler.enable()
    uvicorn.main.main(["--factory", *uvicorn_args], standalone_mode=False)
    stop(signal.SIGTERM, None)


if __name__ == "__main__":
    main()
