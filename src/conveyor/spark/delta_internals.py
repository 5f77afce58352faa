"""Every use of Delta Lake's internal (JVM) API from Python, in one place.

Written against Delta 4.4.0 (`delta-spark_4.2_2.13`). Conveyor drives these internals where
Delta's public API would cost a batch seconds: the table's log and latest snapshot without a
state rebuild (`DeltaLog.update`), an append committed with its app transaction by hand
(`startTransaction`, `writeFiles`, the `Write` operation's default arguments), checkpoints
written off the commit path (`DeltaLog.checkpoint`), and the file list read from the log.
Internals change between Delta releases without notice, so `check_members` runs at session
start: it finds each class and member below by reflection and, when one is missing, fails in
one line naming the member, the Delta version found and the one this was written against.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any

from conveyor.errors import ConveyorError

if TYPE_CHECKING:
    from pyspark.sql import SparkSession

WRITTEN_AGAINST = "4.4.0"
DELTA = "org.apache.spark.sql.delta"

MEMBERS: Mapping[str, tuple[str, ...]] = {
    f"{DELTA}.DeltaLog": (
        "forTable",
        "update",
        "unsafeVolatileSnapshot",
        "startTransaction",
        "checkpoint",
    ),
    f"{DELTA}.Snapshot": (
        "version",
        "checksumOpt",
        "schema",
        "metadata",
        "protocol",
        "allFiles",
        "logSegment",
    ),
    f"{DELTA}.OptimisticTransaction": ("writeFiles", "commit"),
    f"{DELTA}.actions.SetTransaction": ("appId", "version"),
    f"{DELTA}.DeltaOperations$Write$": (
        "apply",
        *(f"apply$default${i}" for i in range(3, 10)),
    ),
    f"{DELTA}.LogSegment": ("checkpointProvider",),
}
"""The classes Conveyor uses and, per class, the members it calls."""


class DeltaInternalsChanged(ConveyorError):
    """The Delta jar on the classpath lacks a class or member Conveyor drives."""


def missing_members(members_of: Callable[[str], set[str] | None]) -> list[str]:
    """`Class.member` (or `Class`) for each entry of MEMBERS that `members_of(class name)`
    (the class's public member names, None when the class is not found) does not have."""
    missing = []
    for name, members in MEMBERS.items():
        found = members_of(name)
        if found is None:
            missing.append(name)
            continue
        missing += [f"{name}.{member}" for member in members if member not in found]
    return missing


def check_members(spark: SparkSession) -> None:
    """Raise DeltaInternalsChanged, in one line, when the session's Delta lacks a member
    Conveyor uses (a few reflection calls; run once per session)."""
    jvm: Any = spark._jvm

    # the jars Spark added (spark.jars) are seen by the context class loader, not the system one
    loader = jvm.java.lang.Thread.currentThread().getContextClassLoader()

    def members_of(name: str) -> set[str] | None:
        try:
            cls = jvm.java.lang.Class.forName(name, False, loader)
        except Exception:
            return None
        return {str(m.getName()) for m in cls.getMethods()}

    missing = missing_members(members_of)
    if missing:
        raise DeltaInternalsChanged(
            f"Delta {delta_version_found(spark)} lacks {', '.join(missing)}, which Conveyor "
            f"drives (written against Delta {WRITTEN_AGAINST}): use delta-spark "
            f"{WRITTEN_AGAINST} (jvm/artifacts.toml)"
        )


def delta_version_found(spark: SparkSession) -> str:
    """The Delta release on the session's classpath ("unknown" when it does not say)."""
    jvm: Any = spark._jvm
    try:
        return str(getattr(getattr(jvm.io.delta, "package$"), "MODULE$").VERSION())
    except Exception:
        return "unknown"


# --- what Conveyor calls ------------------------------------------------------------------------


def delta_log(spark: SparkSession, uri: str) -> Any:
    """The table's DeltaLog (cached per path by Delta)."""
    jvm: Any = spark._jvm
    return jvm.org.apache.spark.sql.delta.DeltaLog.forTable(spark._jsparkSession, uri)


def latest_snapshot(spark: SparkSession, log: Any) -> Any:
    """The log's snapshot at its latest version, updated synchronously."""
    none = _none(spark)
    return log.update(False, none, none)


def known_version(spark: SparkSession, uri: str) -> int:
    """The version the session's log already knows (no listing): -1 without a commit."""
    return int(delta_log(spark, uri).unsafeVolatileSnapshot().version())


def last_checkpoint(spark: SparkSession, uri: str) -> int:
    """The version of the table's last checkpoint, -1 when it has none."""
    snapshot = delta_log(spark, uri).unsafeVolatileSnapshot()
    return int(snapshot.logSegment().checkpointProvider().version())


def checkpoint(spark: SparkSession, uri: str) -> int:
    """Write the table's checkpoint at its latest version (Delta also removes the log files
    past the log retention); the version checkpointed."""
    log = delta_log(spark, uri)
    snapshot = latest_snapshot(spark, log)
    version = int(snapshot.version())
    if version > 0:
        log.checkpoint(snapshot, _none(spark))
    return version


def transactions(snapshot: Any) -> dict[str, int] | None:
    """The table's app transactions (app id -> version) from the snapshot's checksum file;
    None when the checksum does not hold them."""
    checksum = snapshot.checksumOpt()
    if checksum.isEmpty() or checksum.get().setTransactions().isEmpty():
        return None
    found = {}
    known = checksum.get().setTransactions().get().iterator()
    while known.hasNext():
        txn = known.next()
        found[str(txn.appId())] = int(txn.version())
    return found


def commit_append(
    spark: SparkSession, log: Any, snapshot: Any, frame_jdf: Any, app_id: str, version: int
) -> int:
    """Write the frame's files and commit them with the app transaction (app_id, version) on
    top of `snapshot`, as Delta's `Write` operation in append mode; the version committed."""
    import time

    jvm: Any = spark._jvm
    delta = jvm.org.apache.spark.sql.delta
    txn = log.startTransaction(_none(spark), jvm.scala.Option.apply(snapshot))
    now = jvm.java.lang.Long.valueOf(int(time.time() * 1000))
    marker = delta.actions.SetTransaction(app_id, version, jvm.scala.Option.apply(now))
    actions = txn.writeFiles(frame_jdf).appended(marker)
    write = getattr(getattr(delta, "DeltaOperations$Write$"), "MODULE$")
    operation = write.apply(
        jvm.org.apache.spark.sql.SaveMode.Append,
        jvm.scala.Option.apply(snapshot.metadata().partitionColumns()),
        *(getattr(write, f"apply$default${i}")() for i in range(3, 10)),
    )
    return int(txn.commit(actions, operation))


def _none(spark: SparkSession) -> Any:
    jvm: Any = spark._jvm
    return jvm.scala.Option.empty()
