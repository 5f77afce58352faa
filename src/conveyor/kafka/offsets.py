"""Offsets: what the checkpoint expects next, what Kafka still holds, and the monitoring group.

Spark's checkpoint keeps, per batch, the end offsets of every partition (`offsets/<batch>`) and
which batches committed (`commits/<batch>`). Before a stream starts, `find_gaps` compares the
offsets the next batch will start from with the earliest offsets Kafka still has; a gap means
records were lost to retention or a recreated topic, and the job must not skip them silently.
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING

from conveyor.errors import ConveyorError
from conveyor.kafka.clients import client_options, open_admin
from conveyor.ledger import Gap, PartitionRange
from conveyor.settings import Settings
from conveyor.spark.jvm import HadoopFiles

if TYPE_CHECKING:
    from pyspark.sql import SparkSession


class DataLossError(ConveyorError):
    """Kafka no longer holds offsets the checkpoint expects."""

    exit_code = 3

    def __init__(self, stream: str, gaps: list[Gap]) -> None:
        self.stream = stream
        self.gaps = gaps
        ranges = "; ".join(g.describe() for g in gaps)
        super().__init__(
            f"stream '{stream}': Kafka no longer holds records the checkpoint expects "
            f"({ranges}). They were deleted by retention or the topic was recreated. Nothing was "
            f"written. To continue from the earliest available offsets and record the gap in the "
            f"ledger, run `conveyor ingest {stream} --accept-data-loss`."
        )


def checkpoint_app_id(spark: SparkSession, checkpoint: str, stream: str) -> str:
    """The Delta txnAppId of this checkpoint: created with it, so a new checkpoint gets a new id."""
    import uuid

    files = HadoopFiles(spark)
    marker = f"{checkpoint.rstrip('/')}/_conveyor_app_id"
    files.create_new(marker, f"conveyor-{stream}-{uuid.uuid4()}")  # the first writer's id wins
    text = files.read_text(marker)
    if text is None:
        raise RuntimeError(f"{marker} vanished right after it was written")
    return text.strip()


def expected_start(spark: SparkSession, checkpoint: str) -> dict[tuple[str, int], int]:
    """Offsets the next batch starts from, per (topic, partition); {} for a new checkpoint."""
    files = HadoopFiles(spark)
    root = checkpoint.rstrip("/")
    batches = sorted(int(n) for n in files.files_in(f"{root}/offsets") if n.isdigit())
    if not batches:
        return {}
    committed = {int(n) for n in files.files_in(f"{root}/commits") if n.isdigit()}
    latest = batches[-1]
    # an uncommitted last batch is replayed from the end of the one before it
    source = latest if latest in committed else (latest - 1)
    if source < 0 or source not in batches:
        return {}
    lines = (files.read_text(f"{root}/offsets/{source}") or "").strip().splitlines()
    starts: dict[tuple[str, int], int] = {}
    for line in lines[2:]:
        try:
            offsets = json.loads(line)
        except json.JSONDecodeError:
            continue
        if not isinstance(offsets, dict):
            continue
        for topic, partitions in offsets.items():
            for partition, offset in partitions.items():
                starts[(topic, int(partition))] = int(offset)
    return starts


def kafka_bounds(settings: Settings, topic: str) -> dict[int, tuple[int, int]]:
    """(earliest, next) offsets Kafka holds for each partition of topic."""
    from kafka import KafkaConsumer, TopicPartition

    consumer = KafkaConsumer(**client_options(settings), enable_auto_commit=False)
    try:
        partitions = consumer.partitions_for_topic(topic) or set()
        tps = [TopicPartition(topic, p) for p in sorted(partitions)]
        earliest = consumer.beginning_offsets(tps)
        latest = consumer.end_offsets(tps)
    finally:
        consumer.close()
    return {tp.partition: (earliest[tp], latest[tp]) for tp in tps}


def find_gaps(
    expected: dict[tuple[str, int], int], bounds: dict[int, tuple[int, int]], topic: str
) -> list[Gap]:
    """Ranges the checkpoint expects that Kafka no longer has. Pure."""
    gaps = []
    for (t, partition), start in sorted(expected.items()):
        if t != topic or partition not in bounds:
            continue
        earliest, latest = bounds[partition]
        if start < earliest:
            gaps.append(Gap(topic, partition, start, earliest))
        elif start > latest:
            # the topic was recreated: everything after `latest` in the old topic is gone
            gaps.append(Gap(topic, partition, latest, start))
    return gaps


class MonitoringGroup:
    """The `conveyor.<stream>` consumer group, for lag tools only (never read back): processed
    offsets are committed after each batch over one admin client kept for the run."""

    def __init__(self, settings: Settings, group: str) -> None:
        self.group = group
        self._admin = open_admin(settings, "ingest", check=False)

    def commit(self, ranges: list[PartitionRange]) -> None:
        """Record that everything before each range's end offset is processed. Kafka answers
        per partition; partitions refused for a passing reason (no coordinator yet, one still
        loading) are sent again, anything else raises naming the partitions."""
        from kafka import TopicPartition
        from kafka.errors import NoError
        from kafka.structs import OffsetAndMetadata

        from conveyor.kafka.retry import while_retriable

        pending = {
            TopicPartition(r.topic, r.partition): OffsetAndMetadata(r.end_offset, "", -1)
            for r in ranges
        }

        def send() -> None:
            nonlocal pending
            if not pending:
                return
            answers = self._admin.alter_group_offsets(self.group, pending)
            refused = {tp: error for tp, error in answers.items() if error is not NoError}
            pending = {tp: pending[tp] for tp in refused}
            if refused:
                error = next(iter(refused.values()))
                partitions = sorted(f"{tp.topic}[{tp.partition}]" for tp in refused)
                raise error(f"offsets of {', '.join(partitions)} not committed")

        while_retriable(send)

    def backlog(self, ranges: list[PartitionRange]) -> int:
        """Records Kafka holds beyond the ranges' end offsets (the lag right after them)."""
        from kafka import TopicPartition
        from kafka.admin import OffsetSpec

        specs = {TopicPartition(r.topic, r.partition): OffsetSpec.LATEST for r in ranges}
        latest = self._admin.list_partition_offsets(specs)
        return sum(
            max(0, latest[TopicPartition(r.topic, r.partition)].offset - r.end_offset)
            for r in ranges
        )

    def close(self) -> None:
        self._admin.close()
