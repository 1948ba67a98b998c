"""Typed settings from the environment.

Infrastructure addresses are shared by every process and read unprefixed
(`KAFKA_BOOTSTRAP_SERVERS`, `MONGODB_URI`), so one set of variables points the whole
system at a real Kafka cluster and MongoDB replica set. What belongs to one service is
prefixed with its name (`COUPON_MONGODB_DATABASE`, `COUPON_SECRET_KEY`).
"""

from __future__ import annotations

from typing import ClassVar, Literal

from pydantic import AliasChoices, Field, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

PLACEHOLDER_SECRETS = frozenset({"", "changeme", "change-me", "secret", "dev-secret-change-me"})
EMBEDDED_KAFKA = "127.0.0.1:19092"
EMBEDDED_MONGODB = "mongodb://127.0.0.1:27027/?replicaSet=secantus"


def shared(default: object, env: str) -> object:
    """A field read from one unprefixed variable, whatever the class's prefix."""
    return Field(default, validation_alias=AliasChoices(env, env.lower()))


class InfraSettings(BaseSettings):
    """What every process needs to reach the broker, the store and the collector."""

    model_config = SettingsConfigDict(extra="ignore")

    environment: Literal["development", "test", "production"] = shared("development", "ENVIRONMENT")
    log_level: str = shared("INFO", "LOG_LEVEL")
    kafka_bootstrap_servers: str = shared(EMBEDDED_KAFKA, "KAFKA_BOOTSTRAP_SERVERS")
    #: Apache Kafka supports the idempotent producer; the embedded tansu broker does not.
    kafka_idempotent_producer: bool = shared(False, "KAFKA_IDEMPOTENT_PRODUCER")
    #: Prepended to every consumer group id, so two deployments (or test runs) sharing one
    #: cluster never split each other's partitions.
    kafka_group_prefix: str = shared("", "KAFKA_GROUP_PREFIX")
    #: Partitions and replication of topics a service creates when they are missing.
    kafka_topic_partitions: int = shared(4, "KAFKA_TOPIC_PARTITIONS")
    kafka_replication_factor: int = shared(1, "KAFKA_REPLICATION_FACTOR")
    mongodb_uri: str = shared(EMBEDDED_MONGODB, "MONGODB_URI")
    otel_exporter_otlp_endpoint: str | None = shared(None, "OTEL_EXPORTER_OTLP_ENDPOINT")


class ServiceSettings(InfraSettings):
    """Base of each service's settings; a subclass names the service:

    class CouponSettings(ServiceSettings):
        service_name: ClassVar[str] = "coupon"
        model_config = service_config("coupon")
    """

    service_name: ClassVar[str] = "service"

    mongodb_database: str = ""
    secret_key: str = "dev-secret-change-me"
    #: How long a relay owns the outbox before another replica may take it over.
    outbox_lease_seconds: float = 10.0
    #: How many outbox entries one relay round publishes.
    outbox_batch_size: int = 500

    @model_validator(mode="after")
    def _defaults_and_secrets(self) -> ServiceSettings:
        if not self.mongodb_database:
            self.mongodb_database = f"scrm_{self.service_name}"
        if self.environment == "production" and self.secret_key in PLACEHOLDER_SECRETS:
            raise ValueError(
                f"{self.service_name.upper()}_SECRET_KEY must be set to a real secret in production"
            )
        return self


def service_config(service_name: str) -> SettingsConfigDict:
    """Settings config for one service: its own fields read `<SERVICE>_...` variables."""
    return SettingsConfigDict(env_prefix=f"{service_name.upper()}_", extra="ignore")
