"""Conveyor's Kafka side: its clients (`clients`), topics and ACLs provisioned from the catalog,
the ingest's offsets and monitoring groups (`offsets`)."""

from __future__ import annotations

from conveyor.kafka.clients import KafkaAdminFailed, admin_client, open_admin
from conveyor.kafka.topics import (
    ApplyResult,
    ConfigChange,
    TopicChange,
    TopicPlan,
    apply_plan,
    plan_topics,
)

__all__ = [
    "ApplyResult",
    "ConfigChange",
    "KafkaAdminFailed",
    "TopicChange",
    "TopicPlan",
    "admin_client",
    "apply_plan",
    "open_admin",
    "plan_topics",
]
