"""Topics that Kafka's own tools keep for themselves: Conveyor never manages or reports them."""

from __future__ import annotations

CONNECT_GROUP_ID = "conveyor-connect"
CONNECT_TOPIC_PREFIX = "_conveyor-connect-"
CONNECT_CONFIG_TOPIC = CONNECT_TOPIC_PREFIX + "configs"
CONNECT_OFFSET_TOPIC = CONNECT_TOPIC_PREFIX + "offsets"
CONNECT_STATUS_TOPIC = CONNECT_TOPIC_PREFIX + "status"
CONNECT_INTERNAL_TOPICS = (CONNECT_CONFIG_TOPIC, CONNECT_OFFSET_TOPIC, CONNECT_STATUS_TOPIC)
"""Kafka Connect's configs, offsets and status topics (the `--with cdc` stack and compose)."""
