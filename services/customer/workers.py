"""Background loops of the customer service (schedulers and sweeps)."""

from servicekit.runtime import Worker

WORKERS: list[Worker] = []
