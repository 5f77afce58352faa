"""Conveyor's Kafka side: topics provisioned from the catalog (kafka-python's admin client)."""

from __future__ import annotations

from conveyor.kafka.topics import (
    ApplyResult,
    ConfigChange,
    KafkaAdminFailed,
    TopicChange,
    TopicPlan,
    admin_client,
    apply_plan,
    open_admin,
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
