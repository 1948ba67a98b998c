"""Settings for services under test: the session's infrastructure, a database and a
consumer-group prefix of the test's own, so tests never see each other's state."""

from __future__ import annotations

from typing import Any, TypeVar

from servicekit.settings import ServiceSettings

S = TypeVar("S", bound=ServiceSettings)


def settings_for(cls: type[S], infra: Any, unique: str, **overrides: Any) -> S:
    return cls(
        environment="test",
        kafka_bootstrap_servers=infra.kafka_bootstrap_servers,
        mongodb_uri=infra.mongodb_uri,
        mongodb_database=f"t_{unique}_{cls.service_name}",
        kafka_group_prefix=f"t{unique}.",
        **overrides,
    )
