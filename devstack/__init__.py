"""Embedded infrastructure (broker and store) for laptops, tests and CI.

`python -m devstack infra` runs it in a terminal; tests and benchmarks use `EmbeddedInfra`.
"""

from devstack.infra import (
    DEFAULT_BROKER_PORT,
    DEFAULT_STORE_PORT,
    EmbeddedInfra,
    InfraConfig,
    InfraError,
    PortInUseError,
    free_port,
    free_ports,
    port_is_free,
)

__all__ = [
    "DEFAULT_BROKER_PORT",
    "DEFAULT_STORE_PORT",
    "EmbeddedInfra",
    "InfraConfig",
    "InfraError",
    "PortInUseError",
    "free_port",
    "free_ports",
    "port_is_free",
]
