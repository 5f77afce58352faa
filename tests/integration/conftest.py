"""Fixtures for tests that talk to Kafka: settings pointing at the test stack's broker, an admin."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from kafka import KafkaAdminClient

from conveyor.kafka.topics import admin_client
from conveyor.settings import Settings


@pytest.fixture
def kafka_settings(settings: Settings) -> Settings:
    """Settings whose `kafka_servers` is the running test broker (from the session `stack`)."""
    return settings


@pytest.fixture
def admin(kafka_settings: Settings) -> Iterator[KafkaAdminClient]:
    """A kafka-python admin client on that broker, closed after the test."""
    with admin_client(kafka_settings) as client:
        yield client
