"""Wait until a catalog table needs compaction: a closed partition crossed its small-file
thresholds (from the table's statistics, not the clock).

The statistics come from the Delta log, read without Spark (`conveyor.delta_rs`), so a poke costs
milliseconds. The maintenance DAG checks once per run (`timeout=0`, `soft_fail=True`): a table
that does not need compaction is skipped, and so is its compaction task. With a longer timeout
and `mode="reschedule"` it waits instead, releasing its worker slot between pokes.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from airflow.sdk import PokeReturnValue
from airflow.sdk.bases.sensor import BaseSensorOperator

from conveyor import connections

if TYPE_CHECKING:
    from airflow.sdk import Context


class TableNeedsCompactionSensor(BaseSensorOperator):
    """Done when `table` (a catalog table name, templated) in the lake of `lake_conn_id` has
    partitions to compact; its XCom is `{"table", "version", "partitions"}`."""

    template_fields: Sequence[str] = ("table", "catalog_path")
    ui_color = "#eef6e8"

    def __init__(
        self,
        *,
        table: str,
        catalog_path: str | None = None,
        include_open: bool = False,
        lake_conn_id: str = connections.LAKE,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.table = table
        self.catalog_path = catalog_path
        self.include_open = include_open
        self.lake_conn_id = lake_conn_id

    def poke(self, context: Context) -> PokeReturnValue:
        from conveyor.maintenance import plan_compaction, table_stats
        from conveyor.provider.hooks.connections import pipeline_settings
        from conveyor.provider.operators.maintenance import resolve_table

        settings = pipeline_settings(lake_conn_id=self.lake_conn_id)
        catalog, ref = resolve_table(self.table, self.catalog_path, settings)
        stats = table_stats(settings, ref)
        if stats is None:
            self.log.info("%s does not exist yet: nothing to compact", ref.name)
            return PokeReturnValue(is_done=False)
        tolerance = catalog.stream(ref.stream).event_schema.late_tolerance
        plan = plan_compaction(
            stats, ref.maintenance, tolerance, datetime.now(UTC), include_open=self.include_open
        )
        self.log.info(
            "%s version %d: %d files, %d small (%.0f%%): %s",
            ref.name,
            stats.version,
            stats.files,
            stats.small_files,
            100 * stats.small_share,
            plan.describe(),
        )
        return PokeReturnValue(
            is_done=bool(plan.partitions),
            xcom_value={"table": ref.name, "version": stats.version, "partitions": plan.labels},
        )
