"""`topics plan` reports topics the catalog does not name, but never Kafka's or Connect's own."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from kafka.errors import SecurityDisabledError

from conveyor.catalog import load_catalog
from conveyor.kafka.internal import CONNECT_INTERNAL_TOPICS
from conveyor.kafka.topics import plan_topics

SHIPPED = Path(__file__).resolve().parents[2] / "conveyor.yaml"


class ClusterWithTopics:
    """Just enough of KafkaAdminClient for plan_topics: topics, no authorizer."""

    def __init__(self, names: list[str]) -> None:
        self.names = names

    def describe_topics(self) -> list[dict[str, Any]]:
        return [
            {"name": n, "is_internal": n == "__consumer_offsets", "partitions": []}
            for n in self.names
        ]

    def describe_acls(self, _filter: object) -> tuple[list[object], object]:
        raise SecurityDisabledError()


def test_connect_internal_topics_are_never_drift() -> None:
    cluster = ClusterWithTopics(
        ["__consumer_offsets", *CONNECT_INTERNAL_TOPICS, "left-behind", "_conveyor-connected"]
    )
    plan = plan_topics(load_catalog(SHIPPED), cluster, broker_count=3)  # type: ignore[arg-type]
    assert plan.unmanaged == ("_conveyor-connected", "left-behind")


def test_connect_internal_topics_share_one_prefix() -> None:
    assert len(CONNECT_INTERNAL_TOPICS) == 3
    assert all(t.startswith("_conveyor-connect-") for t in CONNECT_INTERNAL_TOPICS)
