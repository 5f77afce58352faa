"""The stack's KRaft cluster id is one Kafka's storage tool accepts."""

from __future__ import annotations

import uuid

import pytest

from conveyor.stack import components


def test_an_id_that_would_start_with_a_dash_is_drawn_again(monkeypatch: pytest.MonkeyPatch) -> None:
    drawn = iter([uuid.UUID(bytes=b"\xf8" + bytes(15)), uuid.UUID(bytes=b"\x01" * 16)])
    monkeypatch.setattr(components.uuid, "uuid4", lambda: next(drawn))
    cluster_id = components.kafka_cluster_id()
    assert not cluster_id.startswith("-")
    assert len(cluster_id) == 22


def test_ids_are_22_url_safe_characters() -> None:
    alphabet = set("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_")
    ids = {components.kafka_cluster_id() for _ in range(500)}
    assert len(ids) == 500
    assert all(len(i) == 22 and set(i) <= alphabet and i[0] != "-" for i in ids)
