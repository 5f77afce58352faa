"""The batch core: one micro-batch of any stream, exactly once, whatever kind it is.

`process_batch` runs the skeleton every stream shares: the landing parses the batch (decode,
check, interpret; one pass also scans offsets and counts), Kafka's backlog is read, the
stream's lease is taken (a replay or rebuild holds it for its run), the landing lands its
tables, the ledger row is written last, the frames held in memory are released, the tables'
Delta checkpoints are written when due and the processed offsets are committed to the
monitoring group. What differs between kinds of stream is a `Landing`
(`conveyor.ingest.landings`): the core imports none of them.

Every Delta write carries `txnAppId` (the checkpoint's app id) and `txnVersion` (the batch id),
so a batch Spark replays after a crash skips the writes that already committed. Every step's
duration is logged and recorded in the ledger (`<step>_ms`, see `conveyor.ledger.STEPS`).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from functools import partial
from typing import TYPE_CHECKING, Any, Protocol, TypeVar

from conveyor.catalog import Layer, StreamSpec, TableRef, ledger_uri, table_uri
from conveyor.ingest.crash import kill_point
from conveyor.kafka.offsets import MonitoringGroup
from conveyor.ledger import (
    LedgerEntry,
    Partition,
    PartitionRange,
    PartitionTime,
    append_entry,
    merge_newest,
    previous_event_times,
    table_exists,
)
from conveyor.settings import Settings
from conveyor.spark.delta_checkpoints import Checkpointer
from conveyor.spark.delta_files import ActiveFiles
from conveyor.spark.jvm import append_idempotent, delta_version

if TYPE_CHECKING:
    from pyspark.sql import DataFrame, SparkSession

log = logging.getLogger(__name__)

KAFKA_COORDINATES = ("topic", "partition", "offset")


@dataclass(frozen=True)
class StreamTarget:
    """Where one stream lands, resolved once per run."""

    stream: StreamSpec
    app_id: str
    bronze: str
    silver: str
    quarantine: str
    ledger: str
    monitoring_group: str

    @classmethod
    def resolve(cls, settings: Settings, stream: StreamSpec, app_id: str) -> StreamTarget:
        return cls(
            stream=stream,
            app_id=app_id,
            bronze=table_uri(settings, stream.table(Layer.BRONZE)),
            silver=table_uri(settings, stream.table(Layer.SILVER)),
            quarantine=table_uri(settings, stream.table(Layer.QUARANTINE)),
            ledger=ledger_uri(settings),
            monitoring_group=stream.monitoring_group,
        )

    def table(self, layer: Layer) -> TableRef:
        return self.stream.table(layer)

    def uri(self, layer: Layer) -> str:
        match layer:
            case Layer.BRONZE:
                return self.bronze
            case Layer.SILVER:
                return self.silver
            case Layer.QUARANTINE:
                return self.quarantine


@dataclass
class RunState:
    """What one run of a stream carries from batch to batch, so a batch need not re-read it:
    the newest event time landed so far from each partition and which tables exist. On the
    first batch of a run (and on any batch id it did not expect) it is read from the tables."""

    settings: Settings
    newest: dict[Partition, datetime] = field(default_factory=dict)
    next_batch: int | None = None
    existing: set[Layer] = field(default_factory=set)
    monitoring: MonitoringGroup | None = field(default=None, repr=False)
    silver_index: ActiveFiles | None = field(default=None, repr=False)
    checkpoints: Checkpointer | None = field(default=None, repr=False)

    def committed(self, spark: SparkSession, versions: dict[str, int | None]) -> None:
        """Tables a batch committed to (URI -> version): their Delta checkpoints are written
        beside the stream when due (`Checkpointer`)."""
        if self.checkpoints is None:
            self.checkpoints = Checkpointer(spark)
        for uri, version in versions.items():
            self.checkpoints.committed(uri, version)

    def silver_files(self, target: StreamTarget) -> ActiveFiles:
        """Silver's active files, kept for the run (see `ActiveFiles`)."""
        if self.silver_index is None:
            self.silver_index = ActiveFiles(target.silver)
        return self.silver_index

    def exists(self, spark: SparkSession, target: StreamTarget, layer: Layer) -> bool:
        """Whether the layer's table exists (looked at once per run, then remembered)."""
        if layer not in self.existing and table_exists(spark, target.uri(layer)):
            self.existing.add(layer)
        return layer in self.existing

    def newest_before(self, target: StreamTarget, batch_id: int) -> dict[Partition, datetime]:
        """Newest event time landed from each partition by batches before batch_id
        (deterministic on replay)."""
        if self.next_batch != batch_id:
            self.newest = previous_event_times(
                target.ledger, target.stream.name, target.app_id, batch_id
            )
        return dict(self.newest)

    def landed(self, batch_id: int, newest: list[PartitionTime]) -> None:
        merge_newest(self.newest, newest)
        self.next_batch = batch_id + 1

    def _group(self, target: StreamTarget) -> MonitoringGroup:
        if self.monitoring is None:
            self.monitoring = MonitoringGroup(self.settings, target.monitoring_group)
        return self.monitoring

    def backlog(self, target: StreamTarget, ranges: list[PartitionRange]) -> int | None:
        """Records left in Kafka after the batch, for the ledger; None when Kafka did not say
        (monitoring only: never fail a batch over it)."""
        try:
            return self._group(target).backlog(ranges)
        except Exception as exc:
            log.warning(
                "stream %s: could not read Kafka's end offsets: %s", target.stream.name, exc
            )
            self.close()
            return None

    def commit_offsets(self, target: StreamTarget, ranges: list[PartitionRange]) -> None:
        """Monitoring only: never fail a landed batch over it."""
        try:
            self._group(target).commit(ranges)
        except Exception as exc:
            log.warning("could not update monitoring group %s: %s", target.monitoring_group, exc)
            self.close()

    def close(self) -> None:
        if self.monitoring is not None:
            self.monitoring.close()
            self.monitoring = None
        if self.checkpoints is not None:
            self.checkpoints.close()
            self.checkpoints = None


class StepClock:
    """Milliseconds per named step of one batch."""

    def __init__(self) -> None:
        self.ms: dict[str, int] = {}

    @contextmanager
    def step(self, name: str) -> Iterator[None]:
        began = time.perf_counter()
        try:
            yield
        finally:
            self.ms[name] = round((time.perf_counter() - began) * 1000)

    def timed(self, name: str, work: Callable[[], int | None]) -> int | None:
        with self.step(name):
            return work()


class Scan(Protocol):
    """What a landing's first pass over a batch found: the offsets it read, per partition."""

    @property
    def ranges(self) -> list[PartitionRange]: ...

    @property
    def rows(self) -> int: ...


@dataclass
class Landed:
    """What a landing wrote: each layer's Delta version (None: not written), what it adds to
    the batch's ledger row (LedgerEntry's fields), and the newest event time it landed per
    partition (the lateness watermarks of later batches; none for a cdc stream)."""

    versions: dict[Layer, int | None]
    ledger: dict[str, Any]
    newest: list[PartitionTime] = field(default_factory=list)


@dataclass
class Batch:
    """One micro-batch as the core hands it to a landing: where it lands, its id, the run's
    state, its clock, and the frames it holds in memory (released by the core)."""

    spark: SparkSession
    target: StreamTarget
    batch_id: int
    state: RunState
    started: datetime
    clock: StepClock = field(default_factory=StepClock)
    held: list[DataFrame] = field(default_factory=list)

    def hold(self, frame: DataFrame) -> DataFrame:
        """Keep `frame` (persisted by the caller) until the batch ends."""
        self.held.append(frame)
        return frame

    def release(self) -> None:
        for frame in self.held:
            frame.unpersist()
        self.held.clear()

    def append(self, frame: DataFrame, layer: Layer) -> int | None:
        """Idempotent append of the batch's share of `layer` (skipped when this app id already
        wrote this batch), into the table's catalog partitioning and with its properties;
        timed as the layer's step. Returns the table's version afterwards."""
        ref = self.target.table(layer)
        with self.clock.step(layer.value):
            version = append_idempotent(
                frame,
                self.target.uri(layer),
                self.target.app_id,
                self.batch_id,
                list(ref.partition_by),
                properties=dict(ref.properties),
            )
        kill_point(f"ingest-after-{layer.value}")
        return version

    def append_each(
        self, frames: dict[Layer, DataFrame], *, together: bool
    ) -> dict[Layer, int | None]:
        """Append each frame to its table, one after the other or all at once: independent
        tables, each append idempotent, so they may commit in any order (the ledger row
        follows all of them)."""
        if not together or len(frames) < 2:
            return {layer: self.append(frame, layer) for layer, frame in frames.items()}
        with ThreadPoolExecutor(max_workers=len(frames)) as pool:
            running = {
                layer: pool.submit(partial(self.append, frame, layer))
                for layer, frame in frames.items()
            }
            return {layer: future.result() for layer, future in running.items()}


ScanT = TypeVar("ScanT", bound=Scan)


class Landing(Protocol[ScanT]):
    """How one kind of stream lands a batch (`conveyor.ingest.landings`). A landing object
    serves one batch: `parse` then, unless the batch was empty, `land` with what it found."""

    def parse(self, raw: DataFrame) -> ScanT:
        """Decode, check and interpret the batch's Kafka rows (held in memory through
        `Batch.hold`); one pass scans the offsets read."""
        ...

    def land(self, scan: ScanT) -> Landed:
        """Write the batch's tables (not the ledger), each append through `Batch.append`."""
        ...


LandingFactory = Callable[[Batch], Landing[Any]]
"""Makes the landing of one batch (`conveyor.ingest.landings.landing_for`)."""


def process_batch(
    spark: SparkSession,
    target: StreamTarget,
    raw: DataFrame,
    batch_id: int,
    state: RunState,
    landing: LandingFactory,
) -> LedgerEntry | None:
    """Land one micro-batch in every table and the ledger; None for an empty batch."""
    from conveyor.maintenance.lock import stream_lock

    batch = Batch(spark, target, batch_id, state, started=datetime.now(UTC))
    land = landing(batch)
    clock = batch.clock
    try:
        with clock.step("parse"):
            scan = land.parse(raw)
        if not scan.ranges:
            return None
        with clock.step("monitor"):
            backlog = state.backlog(target, scan.ranges)
        with ExitStack() as lease:
            # a replay or rebuild of the stream holds it for its run: never both at once
            with clock.step("lock"):
                lease.enter_context(
                    stream_lock(spark, state.settings, target.stream.name, batch=True)
                )
            landed = land.land(scan)
            state.existing.update(layer for layer, v in landed.versions.items() if v is not None)
            entry = _entry(batch, scan, landed, backlog)
            record_batch(spark, target, entry, clock)
            kill_point("ingest-after-ledger")
    finally:
        batch.release()
    state.landed(batch_id, landed.newest)
    state.committed(
        spark,
        {
            **{target.uri(layer): version for layer, version in landed.versions.items()},
            target.ledger: delta_version(spark, target.ledger),
        },
    )
    state.commit_offsets(target, scan.ranges)
    return entry


def _entry(batch: Batch, scan: Scan, landed: Landed, backlog: int | None) -> LedgerEntry:
    """The batch's ledger row: what every batch records, and what its landing adds."""
    return LedgerEntry(
        stream=batch.target.stream.name,
        kind="batch",
        app_id=batch.target.app_id,
        batch_id=batch.batch_id,
        started_at=batch.started,
        ended_at=datetime.now(UTC),
        offsets=scan.ranges,
        rows_read=scan.rows,
        bronze_rows=scan.rows,
        bronze_version=landed.versions.get(Layer.BRONZE),
        silver_version=landed.versions.get(Layer.SILVER),
        quarantine_version=landed.versions.get(Layer.QUARANTINE),
        backlog=backlog,
        step_ms=batch.clock.ms,
        **landed.ledger,
    )


def record_batch(
    spark: SparkSession, target: StreamTarget, entry: LedgerEntry, clock: StepClock
) -> None:
    """Append a batch's ledger row (its last write) and log the steps' timings."""
    began = time.perf_counter()
    append_entry(target.ledger, entry, spark=spark)
    log.info(
        "stream %s batch %d steps (ms): %s, ledger %d",
        entry.stream,
        entry.batch_id,
        ", ".join(f"{k} {v}" for k, v in clock.ms.items()),
        round((time.perf_counter() - began) * 1000),
    )
