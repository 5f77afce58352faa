"""Ingest one catalog stream with `spark-submit jobs/stream_ingest.py STREAM --available-now`,
skipped without starting Spark when there is nothing to land.

"Nothing to land" is read from Kafka alone: the stream's monitoring group
(`conveyor.<stream>`, committed after each batch's ledger row) is at every partition's end
offset, or the topic is empty. A stream with records Kafka no longer holds, a batch whose
monitoring commit was lost, or a partition the group never saw all count as something to land:
the job then runs and decides, as without the check. On a cluster this saves an application per
idle stream and schedule interval (a JVM, and on YARN a container allocation).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from airflow.sdk.exceptions import AirflowSkipException

from conveyor.provider.operators.spark import ConveyorSparkSubmitOperator

if TYPE_CHECKING:
    from airflow.sdk import Context


class IngestStreamOperator(ConveyorSparkSubmitOperator):
    """Land everything Kafka holds beyond `stream`'s checkpoint (templated: a catalog stream
    name), exactly once; skipped when there is nothing to land and `skip_when_caught_up`."""

    template_fields: Sequence[str] = (
        *ConveyorSparkSubmitOperator.template_fields,
        "stream",
        "catalog_path",
    )

    def __init__(
        self,
        *,
        stream: str,
        catalog_path: str | None = None,
        skip_when_caught_up: bool = True,
        **kwargs: Any,
    ) -> None:
        kwargs.setdefault("name", "conveyor-ingest")
        super().__init__(job="stream_ingest.py", **kwargs)
        self.stream = stream
        self.catalog_path = catalog_path
        self.skip_when_caught_up = skip_when_caught_up

    def execute(self, context: Context) -> None:
        from conveyor.catalog import resolve_catalog
        from conveyor.ingest.monitor import partition_lag

        settings = self.job_settings()
        spec = resolve_catalog(settings, self.catalog_path).stream(self.stream)
        if self.skip_when_caught_up:
            lag = partition_lag(settings, spec)
            if lag and not any(lag.values()):  # a missing topic: the job says so itself
                raise AirflowSkipException(
                    f"stream {spec.name}: nothing to land (topic {spec.topic.name} holds no "
                    f"record beyond the last landed batch, over {len(lag)} partition(s))"
                )
            self.log.info("stream %s: %d record(s) to land", spec.name, sum(lag.values()))
        catalog = ["--catalog", self.catalog_path] if self.catalog_path else []
        self.application_args = [spec.name, "--available-now", *catalog]
        super().execute(context)
