"""`ConveyorLakeHook`: the lake (Delta tables on HDFS) through an Airflow connection.

The connection (type `conveyor_lake`, or `hdfs` as before; default id `conveyor_lake`) names the file system and the lake:

- host and port: the NameNode (`hdfs://host:port`); for an HA nameservice, the host alone is
  the nameservice (`hdfs://lake`) and the cluster's `hdfs-site.xml` comes from HADOOP_CONF_DIR;
- extras `lake_path` (default `/lake`) and `checkpoint_path` (default `/checkpoints`), and
  `webhdfs_url` (the NameNode's HTTP address, for the health DAG; default the environment's).

Everything it reads comes from Delta logs and small tables through delta-rs (no Spark, no JVM):
table statistics per catalog table and the ingest ledger's batches.
"""

from __future__ import annotations

from datetime import datetime
from functools import cached_property
from typing import TYPE_CHECKING, Any

from airflow.sdk import BaseHook

from conveyor import connections
from conveyor.errors import ConveyorError
from conveyor.provider import LAKE_CONN_TYPE
from conveyor.settings import Settings

if TYPE_CHECKING:
    from airflow.sdk import Connection

    from conveyor.catalog import Catalog
    from conveyor.maintenance.report import TableReport


class LakeConnectionInvalid(ConveyorError):
    """The Airflow connection does not say where the lake is."""


class ConveyorLakeHook(BaseHook):
    """Read-only access to the lake's tables and the ledger through an Airflow connection."""

    conn_name_attr = "lake_conn_id"
    default_conn_name = connections.LAKE
    conn_type = LAKE_CONN_TYPE
    hook_name = "Conveyor lake"

    def __init__(self, lake_conn_id: str = default_conn_name) -> None:
        super().__init__()
        self.lake_conn_id = lake_conn_id

    def __repr__(self) -> str:
        return f"{type(self).__name__}(lake_conn_id={self.lake_conn_id!r})"

    @cached_property
    def settings(self) -> Settings:
        """Conveyor settings pointing at this connection's lake; raises LakeConnectionInvalid."""
        return settings_from_connection(self.get_connection(self.lake_conn_id))

    def table_reports(self, catalog: Catalog) -> list[TableReport]:
        """Per catalog table: Delta version, files, size, small files, compaction due, last
        compaction and vacuum (see `conveyor.maintenance.report.table_reports`)."""
        from conveyor.maintenance.report import table_reports

        return table_reports(self.settings, catalog, catalog.tables())

    def ledger_batches(self, stream: str, since: datetime | None = None) -> list[dict[str, Any]]:
        """The ledger's batch rows of `stream` (ended at or after `since`), oldest first."""
        from conveyor.catalog import ledger_uri
        from conveyor.delta_rs import read_rows
        from conveyor.ledger import LEDGER_COLUMNS

        rows = read_rows(
            ledger_uri(self.settings), LEDGER_COLUMNS, partitions=[("stream", "=", stream)]
        )
        batches = [
            r for r in rows if r["kind"] == "batch" and (since is None or r["ended_at"] >= since)
        ]
        return sorted(batches, key=lambda r: (r["ended_at"], r["batch_id"]))

    def test_connection(self) -> tuple[bool, str]:
        """(True, what answered) when the lake's ledger or root can be read, else (False, why)."""
        from conveyor.catalog import ledger_uri
        from conveyor.delta_rs import open_table

        try:
            table = open_table(ledger_uri(self.settings))
        except Exception as exc:  # the UI shows the reason instead of a traceback
            return False, f"{type(exc).__name__}: {exc}"
        where = self.settings.lake_uri
        if table is None:
            return True, f"Reached {where}: no ledger yet (nothing ingested)"
        return True, f"Reached {where}: ledger at version {table.version()}"


def settings_from_connection(conn: Connection) -> Settings:
    """Validate an Airflow HDFS connection and express it as Conveyor settings."""
    host = (conn.host or "").strip()
    if not host:
        raise LakeConnectionInvalid(
            f"Airflow connection {conn.conn_id!r}: no host: set the NameNode host (and port), "
            "or the HA nameservice as the host"
        )
    if host.startswith("hdfs://"):
        host = host[len("hdfs://") :]
    uri = f"hdfs://{host}:{conn.port}" if conn.port else f"hdfs://{host}"
    extra = conn.extra_dejson
    values: dict[str, Any] = {
        "hdfs_uri": uri,
        "lake_path": str(extra.get("lake_path") or "/lake"),
        "checkpoint_path": str(extra.get("checkpoint_path") or "/checkpoints"),
    }
    if extra.get("webhdfs_url"):  # else the environment's
        values["webhdfs_url"] = str(extra["webhdfs_url"])
    return Settings(**values)
