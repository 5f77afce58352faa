"""Table maintenance as Airflow tasks: thin shells over `conveyor.maintenance`.

Each task resolves its table in the catalog when it runs (never at parse time), reaches the lake
through its `lake_conn_id` connection and the Spark master through `spark_conn_id`, and does its work
in a local Spark session (`conveyor.spark.session.spark_session`: stopped at the end unless the
process already ran one, as under `dag.test()`). Outcomes become task states: nothing due, or
another run holding the table's lock (a retry while the first attempt still compacts) -> skipped;
a failure -> failed, and retried.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from airflow.sdk import BaseOperator
from airflow.sdk.exceptions import AirflowSkipException

from conveyor import connections

if TYPE_CHECKING:
    from airflow.sdk import Context

    from conveyor.catalog import Catalog, TableRef
    from conveyor.maintenance import MaintenanceRun
    from conveyor.settings import Settings

VACUUM_WHEN = ("daily", "now", "never")


def resolve_table(
    table: str, catalog_path: str | None, settings: Settings
) -> tuple[Catalog, TableRef]:
    """The catalog (`catalog_path`, else the settings' one) and the named table in it."""
    from conveyor.catalog import resolve_catalog
    from conveyor.maintenance import find_table

    catalog = resolve_catalog(settings, catalog_path)
    return catalog, find_table(catalog, table)


def as_flag(value: bool | str) -> bool:
    """A boolean from a rendered template ("True", "false") or a bool."""
    return value if isinstance(value, bool) else str(value).strip().lower() in {"true", "1", "yes"}


class _TableOperator(BaseOperator):
    """`lake_conn_id` names the lake, `spark_conn_id` the master of the task's Spark session."""

    template_fields: Sequence[str] = ("table", "catalog_path")
    ui_color = "#eef6e8"

    def __init__(
        self,
        *,
        table: str,
        catalog_path: str | None = None,
        lake_conn_id: str = connections.LAKE,
        spark_conn_id: str = connections.SPARK,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.table = table
        self.catalog_path = catalog_path
        self.lake_conn_id = lake_conn_id
        self.spark_conn_id = spark_conn_id

    def resolve(self) -> tuple[Settings, Catalog, TableRef]:
        """Settings from the task's connections, the catalog and the task's table."""
        from conveyor.provider.hooks.connections import pipeline_settings

        settings = pipeline_settings(
            lake_conn_id=self.lake_conn_id, spark_conn_id=self.spark_conn_id
        )
        return (settings, *resolve_table(self.table, self.catalog_path, settings))

    def report(self, run: MaintenanceRun) -> dict[str, Any]:
        """Log the run; skip the task when it did nothing; else return it (the XCom)."""
        from conveyor.maintenance import RunStatus

        self.log.info(
            "%s %s: %s; files %d -> %d, version %s -> %s, %.1fs: %s",
            run.operation,
            run.table,
            run.status.value,
            run.files_before,
            run.files_after,
            run.version_before,
            run.version_after,
            run.duration_s,
            run.message,
        )
        if run.status in (RunStatus.SKIPPED, RunStatus.LOCKED):
            raise AirflowSkipException(run.message)
        return run.to_dict()


class CompactTableOperator(_TableOperator):
    """Compact (or Z-order, when `zorder` and the catalog names columns) one catalog table's
    closed partitions that crossed its small-file thresholds. Returns the run as a dict."""

    template_fields: Sequence[str] = (*_TableOperator.template_fields, "zorder")

    def __init__(
        self, *, zorder: bool | str = False, include_open: bool = False, **kwargs: Any
    ) -> None:
        super().__init__(**kwargs)
        self.zorder = zorder
        self.include_open = include_open

    def execute(self, context: Context) -> dict[str, Any]:
        from conveyor.maintenance import CompactOptions, compact_table
        from conveyor.spark.session import spark_session

        settings, catalog, ref = self.resolve()
        options = CompactOptions(zorder=as_flag(self.zorder), include_open=self.include_open)
        with spark_session(settings, f"conveyor-compact-{ref.name}") as spark:
            run = compact_table(spark, settings, catalog, ref, options)
        return self.report(run)


class VacuumTableOperator(_TableOperator):
    """VACUUM one catalog table at its safe retention.

    `when` (templated): `daily` vacuums only in the run whose logical date falls in hour
    `daily_at_hour` (UTC), `now` always, `never` not at all (the task is skipped).
    """

    template_fields: Sequence[str] = (*_TableOperator.template_fields, "when")

    def __init__(self, *, when: str = "daily", daily_at_hour: int = 0, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.when = when
        self.daily_at_hour = daily_at_hour

    def due(self, context: Context) -> bool:
        when = str(self.when).strip().lower()
        if when not in VACUUM_WHEN:
            raise ValueError(f"when must be one of {', '.join(VACUUM_WHEN)}, got {self.when!r}")
        if when != "daily":
            return when == "now"
        moment = context.get("logical_date") or datetime.now(UTC)
        return bool(moment.astimezone(UTC).hour == self.daily_at_hour)

    def execute(self, context: Context) -> dict[str, Any]:
        from conveyor.maintenance import vacuum_table
        from conveyor.spark.session import spark_session

        if not self.due(context):
            raise AirflowSkipException(
                f"vacuum of {self.table} runs daily at {self.daily_at_hour:02d}:00 UTC "
                f"(when={self.when!r}); trigger with vacuum=now to run it now"
            )
        settings, catalog, ref = self.resolve()
        with spark_session(settings, f"conveyor-vacuum-{ref.name}") as spark:
            run = vacuum_table(spark, settings, catalog, ref)
        return self.report(run)
