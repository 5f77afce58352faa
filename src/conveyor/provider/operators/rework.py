"""Replay quarantined records or rebuild silver from bronze, through `spark-submit`, with the
arguments taken from the DAG run's params when the task runs (`jobs/rework.py`)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from conveyor.provider.operators.spark import ConveyorSparkSubmitOperator

if TYPE_CHECKING:
    from airflow.sdk import Context


class ReworkOperator(ConveyorSparkSubmitOperator):
    """`jobs/rework.py replay|rebuild` with the run's params (`conveyor.commands.rework.
    job_arguments` says which). A wrong param fails the task with the command's one-line
    message (exit 2) and writes nothing."""

    def __init__(self, *, operation: str, **kwargs: Any) -> None:
        super().__init__(job="rework.py", name=f"conveyor-{operation}", **kwargs)
        self.operation = operation

    def execute(self, context: Context) -> None:
        from conveyor.commands.rework import job_arguments

        self.application_args = job_arguments(self.operation, dict(context["params"]))
        self.log.info("conveyor %s %s", self.operation, " ".join(self.application_args[1:]))
        super().execute(context)
