"""Run a Conveyor job with `spark-submit`, with the jars and settings the library computes.

`ConveyorSparkSubmitOperator` is the provider's `SparkSubmitOperator` with Conveyor's local jar
files and Spark settings filled in when the task runs (never when the DAG is parsed), so
`spark-submit` here and `conveyor spark-args` on a terminal submit exactly the same job.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from airflow.providers.apache.spark.operators.spark_submit import SparkSubmitOperator

if TYPE_CHECKING:
    from airflow.sdk import Context

SPARK_CONN_ID = "conveyor_spark"


class ConveyorSparkSubmitOperator(SparkSubmitOperator):
    """spark-submit a file from the repo's `jobs/` folder (e.g. `job="stream_ingest.py"`)."""

    def __init__(self, *, job: str, conn_id: str = SPARK_CONN_ID, **kwargs: Any) -> None:
        super().__init__(conn_id=conn_id, application="", **kwargs)
        self.job = job

    def execute(self, context: Context) -> None:
        from conveyor.settings import get_settings
        from conveyor.spark.session import spark_conf

        settings = get_settings()
        conf = spark_conf(settings)
        self.jars = conf.pop("spark.jars")
        self.conf = {**conf, **(self.conf or {})}
        self.application = str(settings.jobs_folder / self.job)
        super().execute(context)
