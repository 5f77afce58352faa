"""Kafka topics from the catalog, as Airflow tasks: thin shells over `conveyor.kafka.topics`.

`TopicsPlanOperator` only reads the cluster: it logs the plan as a table and returns
`TopicPlan.to_dict()` (the XCom). `TopicsApplyOperator` plans again (the cluster may have moved
since), applies what is safe and fails the task when the catalog asks for something Kafka cannot do
in place. Both read the catalog when they run, never when the DAG is parsed; `catalog_path`
defaults to the settings' catalog (`CONVEYOR_CATALOG`, else `conveyor.yaml`).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from airflow.sdk import BaseOperator
from airflow.sdk.exceptions import AirflowException, AirflowFailException

from conveyor import connections
from conveyor.provider.hooks.kafka import ConveyorKafkaHook

if TYPE_CHECKING:
    from airflow.sdk import Context

    from conveyor.catalog import Catalog
    from conveyor.kafka.topics import ApplyResult, TopicPlan


class _TopicsOperator(BaseOperator):
    """What both operators share: the connection ids and the catalog to read. The ingest
    connection's principal is who the topics' ACLs let read (on a cluster with ACLs)."""

    template_fields: Sequence[str] = ("kafka_conn_id", "ingest_conn_id", "catalog_path")
    ui_color = "#e6f2ff"

    def __init__(
        self,
        *,
        kafka_conn_id: str = ConveyorKafkaHook.default_conn_name,
        ingest_conn_id: str = connections.KAFKA_INGEST,
        catalog_path: str | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.kafka_conn_id = kafka_conn_id
        self.ingest_conn_id = ingest_conn_id
        self.catalog_path = catalog_path

    def load_catalog(self) -> Catalog:
        """The catalog named by `catalog_path`, else the settings' one; raises CatalogError."""
        from conveyor.catalog import resolve_catalog
        from conveyor.settings import get_settings

        catalog = resolve_catalog(get_settings(), self.catalog_path)
        self.log.info("Read the catalog %s", catalog.source)
        return catalog

    def plan(self, hook: ConveyorKafkaHook) -> TopicPlan:
        """Compare the catalog with the cluster and log the plan as a table."""
        from conveyor.kafka.topics import plan_topics

        ingest = ConveyorKafkaHook(self.ingest_conn_id).settings.kafka_security("ingest")
        plan = plan_topics(self.load_catalog(), hook.get_conn(), ingest_principal=ingest.username)
        self.log.info("Plan:\n%s\n%s", plan_as_text(plan), plan.summary())
        return plan


class TopicsPlanOperator(_TopicsOperator):
    """Show how the cluster differs from the catalog; changes nothing. Returns the plan as a dict."""

    def execute(self, context: Context) -> dict[str, Any]:
        with ConveyorKafkaHook(self.kafka_conn_id) as hook:
            return self.plan(hook).to_dict()


class TopicsApplyOperator(_TopicsOperator):
    """Create missing topics, add partitions and set configs from the catalog; never deletes.

    Safe changes are always applied first. Then the task fails without retrying
    (AirflowFailException) when changes were refused (fewer partitions, another replication
    factor), and fails with retries (AirflowException) when the broker rejected a change.
    Returns `ApplyResult.to_dict()`.
    """

    def execute(self, context: Context) -> dict[str, Any]:
        from conveyor.kafka.topics import apply_plan

        with ConveyorKafkaHook(self.kafka_conn_id) as hook:
            result = apply_plan(self.plan(hook), hook.get_conn())
        self.report(result)
        if result.refused:
            raise AirflowFailException(
                f"{len(result.refused)} change(s) refused, the rest applied: "
                + "; ".join(result.refused)
            )
        if result.failed:
            raise AirflowException(
                f"{len(result.failed)} change(s) failed: " + "; ".join(result.failed)
            )
        return result.to_dict()

    def report(self, result: ApplyResult) -> None:
        """One log line per thing done, warned about, refused, failed or left alone."""
        for line in result.done:
            self.log.info("done: %s", line)
        for line in result.warnings:
            self.log.warning("warning: %s", line)
        for label, lines in (("refused", result.refused), ("failed", result.failed)):
            for line in lines:
                self.log.error("%s: %s", label, line)
        for name in result.unmanaged:
            self.log.info("drift: topic %r is not in the catalog (left alone)", name)
        self.log.info("Applied: %s", result.summary())


def plan_as_text(plan: TopicPlan, width: int = 140) -> str:
    """The plan's table as plain text (no colours), for task logs."""
    from io import StringIO

    from rich.console import Console

    buffer = StringIO()
    console = Console(file=buffer, width=width, color_system=None, force_terminal=False)
    console.print(plan.to_table())
    return buffer.getvalue().rstrip()
