"""Run a Conveyor job with `spark-submit`, with the jars and settings the library computes.

`ConveyorSparkSubmitOperator` is the provider's `SparkSubmitOperator` with Conveyor's local jar
files and Spark settings filled in when the task runs (never when the DAG is parsed), so
`spark-submit` here and `conveyor spark-args` on a terminal submit exactly the same job. The job
reaches Kafka and the lake through the operator's connections: their settings travel to the
spark-submit process as `CONVEYOR_*` environment variables (never on its command line, except
in YARN and Kubernetes modes, where the provider passes them as driver `--conf`). A password
travels in neither: the task writes it to a 0600 file in a private temporary folder, passes
the file's path (`CONVEYOR_KAFKA_SASL_PASSWORD_FILE`) and deletes the folder when the job ends.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

from airflow.providers.apache.spark.operators.spark_submit import SparkSubmitOperator

from conveyor import connections

if TYPE_CHECKING:
    from airflow.sdk import Context

    from conveyor.settings import Settings


class ConveyorSparkSubmitOperator(SparkSubmitOperator):
    """spark-submit a file from the repo's `jobs/` folder (e.g. `job="stream_ingest.py"`).

    `spark_conn_id` names the master (as for the provider's operator), `kafka_conn_id` the Kafka
    principal the job reads with (None: a job that never reaches Kafka, which then gets none of
    its settings or secrets), `lake_conn_id` the lake it writes."""

    def __init__(
        self,
        *,
        job: str,
        spark_conn_id: str = connections.SPARK,
        kafka_conn_id: str | None = connections.KAFKA_INGEST,
        lake_conn_id: str = connections.LAKE,
        **kwargs: Any,
    ) -> None:
        super().__init__(conn_id=spark_conn_id, application="", **kwargs)
        self.job = job
        self.kafka_conn_id = kafka_conn_id
        self.lake_conn_id = lake_conn_id

    def job_settings(self) -> Settings:
        """The worker's settings with the Kafka and lake parts of the task's connections."""
        from conveyor.provider.hooks.connections import pipeline_settings

        return pipeline_settings(kafka_conn_id=self.kafka_conn_id, lake_conn_id=self.lake_conn_id)

    def job_environment(self, settings: Settings, secrets_dir: Path) -> dict[str, str]:
        """The `CONVEYOR_*` variables of the job's Kafka and lake settings (secrets as 0600
        files in secrets_dir), with the task's own `env_vars` over them."""
        from conveyor.connections import KAFKA_FIELDS, LAKE_FIELDS, settings_env

        fields = (*(KAFKA_FIELDS if self.kafka_conn_id else ()), *LAKE_FIELDS)
        return {**settings_env(settings, fields, secrets_dir), **(self.env_vars or {})}

    def execute(self, context: Context) -> None:
        import shutil
        import tempfile

        from conveyor.spark.session import spark_conf

        settings = self.job_settings()
        conf = spark_conf(settings)
        self.jars = conf.pop("spark.jars")
        self.conf = {**conf, **(self.conf or {})}
        self.application = str(settings.jobs_folder / self.job)
        secrets_dir = Path(tempfile.mkdtemp(prefix="conveyor-task-"))  # mode 0700
        try:
            self.env_vars = self.job_environment(settings, secrets_dir)
            super().execute(context)
        finally:
            shutil.rmtree(secrets_dir, ignore_errors=True)
