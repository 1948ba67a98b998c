"""Settings from the environment: one unprefixed set of infrastructure variables for every
process, `<SERVICE>_...` for what belongs to one service, and no placeholder secret in
production."""

from __future__ import annotations

import os

import pytest
from pydantic import ValidationError

from servicekit.settings import EMBEDDED_KAFKA, EMBEDDED_MONGODB, PLACEHOLDER_SECRETS
from services.customer.settings import CustomerSettings
from services.tagging.settings import TaggingSettings

OURS = ("ENVIRONMENT", "LOG_LEVEL", "KAFKA_", "MONGODB_", "OTEL_", "CUSTOMER_", "TAGGING_")


@pytest.fixture(autouse=True)
def clean_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    """Whatever the shell running the tests exports must not leak into them."""
    for name in list(os.environ):
        if name.upper().startswith(OURS):
            monkeypatch.delenv(name)


def test_defaults_point_at_the_embedded_broker_and_store() -> None:
    settings = CustomerSettings()
    assert settings.environment == "development"
    assert settings.kafka_bootstrap_servers == EMBEDDED_KAFKA
    assert settings.mongodb_uri == EMBEDDED_MONGODB
    assert settings.kafka_idempotent_producer is False
    assert settings.kafka_group_prefix == ""


def test_a_service_reads_the_shared_infrastructure_variables_unprefixed(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("KAFKA_BOOTSTRAP_SERVERS", "kafka-1:9092,kafka-2:9092")
    monkeypatch.setenv("KAFKA_IDEMPOTENT_PRODUCER", "true")
    monkeypatch.setenv("KAFKA_REPLICATION_FACTOR", "3")
    monkeypatch.setenv("MONGODB_URI", "mongodb://db-1,db-2/?replicaSet=rs0")
    monkeypatch.setenv("ENVIRONMENT", "test")
    monkeypatch.setenv("OTEL_EXPORTER_OTLP_ENDPOINT", "http://collector:4318")

    for settings in (CustomerSettings(), TaggingSettings()):
        assert settings.kafka_bootstrap_servers == "kafka-1:9092,kafka-2:9092"
        assert settings.kafka_idempotent_producer is True
        assert settings.kafka_replication_factor == 3
        assert settings.mongodb_uri == "mongodb://db-1,db-2/?replicaSet=rs0"
        assert settings.environment == "test"
        assert settings.otel_exporter_otlp_endpoint == "http://collector:4318"


def test_prefixed_infrastructure_variables_are_not_a_second_source(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("CUSTOMER_KAFKA_BOOTSTRAP_SERVERS", "elsewhere:9092")
    monkeypatch.setenv("CUSTOMER_MONGODB_URI", "mongodb://elsewhere/")
    settings = CustomerSettings()
    assert settings.kafka_bootstrap_servers == EMBEDDED_KAFKA
    assert settings.mongodb_uri == EMBEDDED_MONGODB


def test_service_fields_read_variables_with_the_service_prefix(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("CUSTOMER_MONGODB_DATABASE", "brand_customers")
    monkeypatch.setenv("CUSTOMER_SECRET_KEY", "s3cr3t-for-customer")
    monkeypatch.setenv("CUSTOMER_OUTBOX_BATCH_SIZE", "50")
    monkeypatch.setenv("TAGGING_SECRET_KEY", "s3cr3t-for-tagging")

    customer = CustomerSettings()
    assert customer.mongodb_database == "brand_customers"
    assert customer.secret_key == "s3cr3t-for-customer"
    assert customer.outbox_batch_size == 50
    assert TaggingSettings().secret_key == "s3cr3t-for-tagging"


def test_unprefixed_service_variables_are_ignored(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MONGODB_DATABASE", "everyone_shares_this")
    monkeypatch.setenv("SECRET_KEY", "one-key-for-all")
    settings = CustomerSettings()
    assert settings.mongodb_database == "scrm_customer"
    assert settings.secret_key != "one-key-for-all"


def test_each_service_defaults_to_its_own_database() -> None:
    assert CustomerSettings().mongodb_database == "scrm_customer"
    assert TaggingSettings().mongodb_database == "scrm_tagging"


@pytest.mark.parametrize("placeholder", [None, *sorted(PLACEHOLDER_SECRETS)])
def test_production_refuses_the_default_or_a_placeholder_secret(
    monkeypatch: pytest.MonkeyPatch, placeholder: str | None
) -> None:
    monkeypatch.setenv("ENVIRONMENT", "production")
    if placeholder is not None:  # None: the default secret, nothing set
        monkeypatch.setenv("CUSTOMER_SECRET_KEY", placeholder)
    with pytest.raises(ValidationError, match="CUSTOMER_SECRET_KEY must be set"):
        CustomerSettings()


def test_production_accepts_a_real_secret(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ENVIRONMENT", "production")
    monkeypatch.setenv("CUSTOMER_SECRET_KEY", "k2F9x-a-real-random-secret")
    assert CustomerSettings().secret_key == "k2F9x-a-real-random-secret"


def test_development_tolerates_the_placeholder_secret() -> None:
    assert CustomerSettings().secret_key in PLACEHOLDER_SECRETS


def test_an_unknown_environment_is_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ENVIRONMENT", "prod")
    with pytest.raises(ValidationError, match="ENVIRONMENT"):
        CustomerSettings()


def test_the_group_prefix_is_one_shared_variable(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("KAFKA_GROUP_PREFIX", "blue.")
    monkeypatch.setenv("TAGGING_KAFKA_GROUP_PREFIX", "green.")
    assert CustomerSettings().kafka_group_prefix == "blue."
    assert TaggingSettings().kafka_group_prefix == "blue."
