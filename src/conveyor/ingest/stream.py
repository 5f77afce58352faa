"""Run one catalog stream: Kafka topic -> bronze, silver, quarantine and the ledger.

This is where the I/O is wired: the checkpoint (outside every table folder), the data-loss check
before starting, the Kafka source with explicit starting offsets, the trigger, and the
`foreachBatch` sink that lands each micro-batch exactly once (`conveyor.ingest.core` with the
stream's landing).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import TYPE_CHECKING

from conveyor.catalog import Catalog, StreamSpec, checkpoint_uri
from conveyor.errors import ConveyorError, first_line
from conveyor.hdfs_errors import hdfs_failure
from conveyor.ingest.bronze import read_kafka
from conveyor.ingest.core import RunState, StreamTarget, process_batch
from conveyor.ingest.landings import landing_for
from conveyor.kafka.clients import spark_source_options
from conveyor.kafka.offsets import (
    DataLossError,
    checkpoint_app_id,
    expected_start,
    find_gaps,
    kafka_bounds,
)
from conveyor.ledger import Gap, LedgerEntry, append_entry, recorded_gaps
from conveyor.maintenance.lock import checkpoint_lease
from conveyor.settings import Settings

if TYPE_CHECKING:
    from pyspark.sql import DataFrame, SparkSession
    from pyspark.sql.streaming import StreamingQuery

    from conveyor.evolution import SchemaPlan

log = logging.getLogger(__name__)
CHECKPOINT_NAME = "ingest"


class IngestFailed(ConveyorError):
    """The streaming query stopped with an error; the message carries Spark's reason."""


@dataclass
class IngestSummary:
    """What one run of a stream did (totals over its micro-batches)."""

    stream: str
    batches: list[LedgerEntry] = field(default_factory=list)

    def total(self, name: str) -> int:
        return sum(int(getattr(b, name)) for b in self.batches)


def ingest_stream(
    spark: SparkSession,
    settings: Settings,
    catalog: Catalog,
    name: str,
    *,
    available_now: bool = False,
    accept_data_loss: bool = False,
    max_offsets_per_trigger: int | None = None,
    schema_plan: SchemaPlan | None = None,
) -> IngestSummary:
    """Run stream `name` until the backlog is landed (available_now) or until stopped.
    `schema_plan`: the stream's schema plan when the caller already made and checked it
    (`conveyor ingest` does, before Spark starts), so it is not made twice.

    One ingest per checkpoint: raises CheckpointHeld at once while another live run holds the
    stream's checkpoint lease (conveyor.maintenance.lock). Silver first takes the catalog's
    allowed schema changes (each recorded in the ledger);
    raises SchemaRefused, before reading anything, while the catalog asks for a refused one.
    Raises DataLossError when Kafka no longer holds offsets the checkpoint expects (unless
    accept_data_loss, which records the gap in the ledger and continues from the earliest
    offsets), IngestFailed when the query fails for another reason.
    """
    stream = catalog.stream(name)
    running: list[StreamingQuery] = []

    def stop_running() -> None:
        for query in running:
            query.stop()

    with checkpoint_lease(spark, settings, name, on_lost=stop_running):
        return _run(
            spark,
            settings,
            catalog,
            stream,
            running,
            available_now=available_now,
            accept_data_loss=accept_data_loss,
            max_offsets_per_trigger=max_offsets_per_trigger,
            schema_plan=schema_plan,
        )


def _run(
    spark: SparkSession,
    settings: Settings,
    catalog: Catalog,
    stream: StreamSpec,
    running: list[StreamingQuery],
    *,
    available_now: bool,
    accept_data_loss: bool,
    max_offsets_per_trigger: int | None,
    schema_plan: SchemaPlan | None,
) -> IngestSummary:
    from pyspark.errors import StreamingQueryException

    name = stream.name
    _evolve_silver(spark, settings, catalog, name, schema_plan)
    checkpoint = checkpoint_uri(settings, name, CHECKPOINT_NAME)
    target = StreamTarget.resolve(settings, stream, checkpoint_app_id(spark, checkpoint, name))
    _check_for_gaps(spark, settings, target, checkpoint, accept_data_loss)
    source = _kafka_source(spark, settings, stream, accept_data_loss, max_offsets_per_trigger)
    summary = IngestSummary(stream=name)
    state = RunState(settings)
    landing = landing_for(stream)

    def land(batch: DataFrame, batch_id: int) -> None:
        entry = process_batch(spark, target, batch, batch_id, state, landing)
        if entry is not None:
            summary.batches.append(entry)
            log.info(
                "stream %s batch %d: %d read, %d silver, %d quarantined, %d duplicates",
                name,
                batch_id,
                entry.rows_read,
                entry.silver_rows,
                entry.quarantined,
                entry.duplicates_dropped,
            )

    writer = (
        source.writeStream.foreachBatch(land)
        .option("checkpointLocation", checkpoint)
        .queryName(f"conveyor_{name}")
    )
    writer = (
        writer.trigger(availableNow=True)
        if available_now
        else writer.trigger(processingTime=settings.trigger_interval)
    )
    query = writer.start()
    running.append(query)
    try:
        query.awaitTermination()
    except StreamingQueryException as exc:
        failure = _query_failure(spark, settings, target, checkpoint, exc, accept_data_loss)
        raise failure from failure.__cause__  # the query's own failure only when unexplained
    finally:
        state.close()
    return summary


def _query_failure(
    spark: SparkSession,
    settings: Settings,
    target: StreamTarget,
    checkpoint: str,
    exc: Exception,
    accept_data_loss: bool,
) -> Exception:
    """What to tell the user about a failed query: the HDFS failure by name, the offsets Kafka
    no longer holds (as a start would), else the query's first line, caused by `exc`."""
    name = target.stream.name
    if (reason := hdfs_failure(settings, str(exc))) is not None:
        return IngestFailed(f"stream '{name}': {reason}")
    try:
        gaps = None if accept_data_loss else _gaps(spark, settings, target, checkpoint)
    except Exception:  # the checkpoint cannot be read now: report the failure itself
        log.warning("could not look for offset gaps of %s", name, exc_info=True)
        gaps = None
    if gaps:
        return DataLossError(name, gaps)
    failure = IngestFailed(f"stream '{name}': the streaming query failed: {first_line(exc)}")
    failure.__cause__ = exc
    return failure


def _evolve_silver(
    spark: SparkSession,
    settings: Settings,
    catalog: Catalog,
    name: str,
    plan: SchemaPlan | None,
) -> None:
    """The catalog's allowed schema changes on silver (planned and checked here unless the
    caller did), and quarantine's replay marks on a table created before them (the batches
    write them)."""
    from conveyor.evolution import apply_changes, plan_schema, require_no_refused
    from conveyor.rework import ensure_replay_columns

    if plan is None:
        plan = plan_schema(settings, catalog, [name])
        require_no_refused(plan, name)
    apply_changes(spark, settings, plan.allowed, catalog)
    ensure_replay_columns(spark, settings, catalog.stream(name))
    _set_properties(spark, settings, catalog, name)


def _set_properties(spark: SparkSession, settings: Settings, catalog: Catalog, name: str) -> None:
    """The catalog's Delta table properties on the stream's tables and the ledger, set holding
    the stream's write lease (a property is a metadata commit: never inside a batch)."""
    from conveyor.maintenance.lock import stream_lock
    from conveyor.maintenance.properties import apply_properties, plan_properties

    changes = plan_properties(settings, catalog, [name])
    if not changes:
        return
    with stream_lock(spark, settings, name, batch=False):
        apply_properties(spark, changes)
    for change in changes:
        log.info("table property set: %s", change.describe())


def _kafka_source(
    spark: SparkSession,
    settings: Settings,
    stream: StreamSpec,
    accept_data_loss: bool,
    max_offsets_per_trigger: int | None,
) -> DataFrame:
    """The stream's topic as a streaming DataFrame, at most the batch bound per trigger."""
    options = {
        "failOnDataLoss": "false" if accept_data_loss else "true",
        # inside the groups the ingest principal's ACL allows (Spark adds a unique suffix)
        "groupIdPrefix": stream.monitoring_group + ".spark",
    }
    limit = max_offsets_per_trigger or settings.max_offsets_per_trigger
    if limit:
        options["maxOffsetsPerTrigger"] = str(limit)
    return read_kafka(
        spark,
        settings.kafka_servers,
        stream.topic.name,
        options=options,
        kafka_options=spark_source_options(settings),
    )


def _gaps(
    spark: SparkSession, settings: Settings, target: StreamTarget, checkpoint: str
) -> list[Gap]:
    """Offsets the checkpoint expects that Kafka no longer holds."""
    topic = target.stream.topic.name
    return find_gaps(expected_start(spark, checkpoint), kafka_bounds(settings, topic), topic)


def _check_for_gaps(
    spark: SparkSession, settings: Settings, target: StreamTarget, checkpoint: str, accept: bool
) -> None:
    gaps = _gaps(spark, settings, target, checkpoint)
    if not gaps:
        return
    if not accept:
        raise DataLossError(target.stream.name, gaps)
    new = [g for g in gaps if g not in recorded_gaps(target.ledger, target.stream.name)]
    if new:
        now = datetime.now(UTC)
        append_entry(
            target.ledger,
            LedgerEntry(
                stream=target.stream.name,
                kind="gap",
                app_id=target.app_id,
                batch_id=-1,
                started_at=now,
                ended_at=now,
                gaps=new,
            ),
            txn=False,
        )
    log.warning(
        "stream %s: accepted data loss, continuing after %s",
        target.stream.name,
        "; ".join(g.describe() for g in gaps),
    )
