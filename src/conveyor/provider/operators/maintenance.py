"""Table maintenance as Airflow tasks: `jobs/maintain.py` through `spark-submit`, like every
other Conveyor job (`ConveyorSparkSubmitOperator`), so the master, YARN or a secured cluster is
reached one way.

Each task resolves its table in the catalog when it runs (never at parse time) and refuses an
unknown one before Spark starts. It names its run in the maintenance log (`--run-id`) and reads
the outcome back from there when the job ends (without Spark): nothing due, or another run
holding the table's lock (a retry while the first attempt still compacts) -> skipped; a failure
-> the job's non-zero exit, failed and retried. A vacuum of a table that does not exist yet is
skipped without starting Spark.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from airflow.sdk.exceptions import AirflowSkipException

from conveyor import connections
from conveyor.provider.operators.spark import ConveyorSparkSubmitOperator

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


def vacuum_due(when: str, moment: datetime | None, daily_at_hour: int = 0) -> bool:
    """Whether a vacuum runs: `when` is `now` (always), `never`, or `daily` (when `moment`, a
    run's logical date, else now, falls in hour `daily_at_hour` UTC)."""
    chosen = str(when).strip().lower()
    if chosen not in VACUUM_WHEN:
        raise ValueError(f"when must be one of {', '.join(VACUUM_WHEN)}, got {when!r}")
    if chosen != "daily":
        return chosen == "now"
    return (moment or datetime.now(UTC)).astimezone(UTC).hour == daily_at_hour


def as_flag(value: bool | str) -> bool:
    """A boolean from a rendered template ("True", "false") or a bool."""
    return value if isinstance(value, bool) else str(value).strip().lower() in {"true", "1", "yes"}


class _TableOperator(ConveyorSparkSubmitOperator):
    """`jobs/maintain.py OPERATION TABLE` for one catalog table; `lake_conn_id` names the lake,
    `spark_conn_id` the master."""

    template_fields: Sequence[str] = (
        *ConveyorSparkSubmitOperator.template_fields,
        "table",
        "catalog_path",
    )
    ui_color = "#eef6e8"
    operation = ""

    def __init__(
        self,
        *,
        table: str,
        catalog_path: str | None = None,
        lake_conn_id: str = connections.LAKE,
        spark_conn_id: str = connections.SPARK,
        **kwargs: Any,
    ) -> None:
        kwargs.setdefault("name", f"conveyor-{self.operation}")
        super().__init__(
            job="maintain.py",
            lake_conn_id=lake_conn_id,
            spark_conn_id=spark_conn_id,
            kafka_conn_id=None,  # maintenance never reaches Kafka: no principal, no secret
            **kwargs,
        )
        self.table = table
        self.catalog_path = catalog_path

    def resolve(self) -> tuple[Settings, Catalog, TableRef]:
        """Settings from the task's connections, the catalog and the task's table."""
        settings = self.job_settings()
        return (settings, *resolve_table(self.table, self.catalog_path, settings))

    def submit(self, context: Context, settings: Settings, *options: str) -> dict[str, Any]:
        """spark-submit the operation on the table, then report its run from the log."""
        from conveyor.maintenance.log import logged_runs

        run_id = uuid.uuid4().hex
        catalog = ["--catalog", self.catalog_path] if self.catalog_path else []
        self.application_args = [
            self.operation,
            self.table,
            *options,
            "--run-id",
            run_id,
            *catalog,
        ]
        super().execute(context)
        runs = logged_runs(settings, run_id)
        if not runs:
            raise AirflowSkipException(f"{self.operation} of {self.table}: nothing to do")
        return self.report(runs[0])

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
    operation = "compact"

    def __init__(
        self, *, zorder: bool | str = False, include_open: bool = False, **kwargs: Any
    ) -> None:
        super().__init__(**kwargs)
        self.zorder = zorder
        self.include_open = include_open

    def execute(self, context: Context) -> dict[str, Any]:  # type: ignore[override]  # the XCom
        settings, _, _ = self.resolve()
        options = ["--zorder"] if as_flag(self.zorder) else []
        if self.include_open:
            options.append("--include-open")
        return self.submit(context, settings, *options)


class VacuumTableOperator(_TableOperator):
    """VACUUM one catalog table at its safe retention.

    `when` (templated): `daily` vacuums only in the run whose logical date falls in hour
    `daily_at_hour` (UTC), `now` always, `never` not at all (the task is skipped).
    """

    template_fields: Sequence[str] = (*_TableOperator.template_fields, "when")
    operation = "vacuum"

    def __init__(self, *, when: str = "daily", daily_at_hour: int = 0, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.when = when
        self.daily_at_hour = daily_at_hour

    def due(self, context: Context) -> bool:
        return vacuum_due(str(self.when), context.get("logical_date"), self.daily_at_hour)

    def execute(self, context: Context) -> dict[str, Any]:  # type: ignore[override]  # the XCom
        from conveyor.catalog import table_uri
        from conveyor.delta_rs import open_table

        if not self.due(context):
            raise AirflowSkipException(
                f"vacuum of {self.table} runs daily at {self.daily_at_hour:02d}:00 UTC "
                f"(when={self.when!r}); trigger with vacuum=now to run it now"
            )
        settings, _, ref = self.resolve()
        if open_table(table_uri(settings, ref)) is None:
            raise AirflowSkipException(f"table {ref.name} does not exist yet")
        return self.submit(context, settings)
