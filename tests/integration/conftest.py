"""Fixtures for tests that talk to Kafka: settings pointing at the test stack's broker, an admin;
the CDC components (Postgres, Kafka Connect) on that same stack for tests that need them."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

import pytest
from kafka import KafkaAdminClient

from conveyor.kafka.clients import admin_client
from conveyor.settings import PostgresConnection, Settings


@pytest.fixture
def kafka_settings(settings: Settings) -> Settings:
    """Settings whose `kafka_servers` is the running test broker (from the session `stack`)."""
    return settings


@pytest.fixture
def admin(kafka_settings: Settings) -> Iterator[KafkaAdminClient]:
    """A kafka-python admin client on that broker, closed after the test."""
    with admin_client(kafka_settings) as client:
        yield client


@dataclass(frozen=True)
class CdcStack:
    """The session stack's CDC components, up and healthy."""

    settings: Settings
    postgres: PostgresConnection
    connect_url: str


@pytest.fixture(scope="session")
def cdc_stack(stack: dict[str, object]) -> CdcStack:
    """Postgres (logical decoding) and a Kafka Connect worker with Debezium, added to the
    session's running stack (`stack up --with cdc`: only the missing components start; the
    session's teardown stops them with the rest)."""
    from conveyor.stack.local import LocalStack

    LocalStack(Settings(stack_with="cdc")).up()
    settings = Settings()
    return CdcStack(settings, settings.postgres_connection(), settings.connect_rest)
