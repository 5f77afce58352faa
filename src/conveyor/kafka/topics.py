"""Kafka topics from the catalog: plan what differs, apply what is safe, refuse what is not.

`plan_topics` only reads the cluster. `apply_plan` creates missing topics, adds partitions and
sets the catalog's topic configs with incremental alters (other keys are left alone). Kafka
cannot remove partitions and Conveyor does not reassign replicas, so those changes are refused.
Nothing is ever deleted: topics the catalog does not name are reported as drift.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from kafka import KafkaAdminClient
from kafka.admin import ConfigResource, ConfigResourceType
from kafka.errors import (
    InvalidPartitionsError,
    KafkaError,
    TopicAlreadyExistsError,
    for_code,
)
from rich.table import Table

from conveyor.catalog import Catalog, CatalogError
from conveyor.errors import ConveyorError
from conveyor.kafka.acls import NO_ACLS, AclPlan, create_acls, plan_acls
from conveyor.kafka.clients import KafkaAdminFailed, admin_client
from conveyor.kafka.internal import CONNECT_INTERNAL_TOPICS
from conveyor.settings import KafkaRole, Settings

log = logging.getLogger(__name__)

INTERNAL_PREFIX = "__"


class TopicMissing(ConveyorError):
    """A stream's topic does not exist on the broker."""


def require_topic(
    settings: Settings,
    topic: str,
    role: KafkaRole = "admin",
    *,
    needs: tuple[str, ...] = ("DESCRIBE",),
    group: str | None = None,
) -> None:
    """Raise unless role's principal can use `topic`: TopicMissing (with the command that
    creates it), or KafkaAccessDenied naming the operation (e.g. READ) on the topic, or READ on
    `group`, that no ACL allows. Kafka reports what the principal may do, so nothing is read
    or written to find out."""
    from kafka.errors import (
        GroupAuthorizationFailedError,
        TopicAuthorizationFailedError,
        UnknownTopicOrPartitionError,
    )

    from conveyor.kafka.access import KafkaAccessDenied
    from conveyor.kafka.retry import while_retriable

    principal = settings.kafka_security(role).username
    where = f"Kafka at {settings.kafka_servers}"

    def denied(operation: str, resource: str) -> KafkaAccessDenied:
        return KafkaAccessDenied(
            f"{where} denied principal {principal!r} {operation} on {resource}: no ACL allows "
            "it (`conveyor topics apply` grants what the catalog declares)"
        )

    with admin_client(settings, role) as admin:
        meta = admin.describe_topics([topic])[0]
        code = meta.get("error_code", 0)
        if code == TopicAuthorizationFailedError.errno:
            raise denied("DESCRIBE", f"topic '{topic}'")
        if code == UnknownTopicOrPartitionError.errno:
            raise TopicMissing(
                f"topic '{topic}' does not exist on {where}: "
                "create it with `conveyor topics apply` (or the conveyor_provision_topics DAG)"
            )
        if code:
            raise KafkaAdminFailed(f"{where} could not describe topic '{topic}': {for_code(code)}")
        allowed = meta.get("authorized_operations") or needs
        for operation in needs:
            if operation not in allowed:
                raise denied(operation, f"topic '{topic}'")
        if group:
            try:
                while_retriable(lambda: admin.list_group_offsets({group: None}))
            except GroupAuthorizationFailedError:
                raise denied("READ", f"consumer group '{group}'") from None


# --- the plan ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class ConfigChange:
    """One topic config that differs from the catalog (`old` None: the key is unknown)."""

    key: str
    old: str | None
    new: str

    def __str__(self) -> str:
        return f"{self.key}: {self.old} -> {self.new}"


@dataclass(frozen=True)
class TopicChange:
    """What the catalog wants for one topic and how the broker differs from it."""

    stream: str
    topic: str
    partitions: int
    replication_factor: int
    configs: Mapping[str, str]
    current_partitions: int | None = None  # None: the topic does not exist
    current_replication_factor: int | None = None
    config_changes: tuple[ConfigChange, ...] = ()
    refused: tuple[str, ...] = ()

    @property
    def create(self) -> bool:
        return self.current_partitions is None

    @property
    def add_partitions(self) -> bool:
        return self.current_partitions is not None and self.current_partitions < self.partitions

    @property
    def changed(self) -> bool:
        """True when applying would change something on the broker."""
        return self.create or self.add_partitions or bool(self.config_changes)

    def steps(self) -> list[tuple[str, str]]:
        """(action, detail) pairs, in the order `apply_plan` performs them."""
        if self.create:
            configs = ", ".join(f"{k}={v}" for k, v in sorted(self.configs.items()))
            detail = f"{self.partitions} partitions, replication {self.replication_factor}"
            return [("create", f"{detail}; {configs}")]
        steps: list[tuple[str, str]] = []
        if self.add_partitions:
            steps.append(("add partitions", f"{self.current_partitions} -> {self.partitions}"))
        steps += [("set config", str(change)) for change in self.config_changes]
        steps += [("refused", reason) for reason in self.refused]
        return steps

    def to_dict(self) -> dict[str, Any]:
        return {
            "stream": self.stream,
            "topic": self.topic,
            "action": "create" if self.create else ("update" if self.changed else "none"),
            "partitions": {"current": self.current_partitions, "wanted": self.partitions},
            "replication_factor": {
                "current": self.current_replication_factor,
                "wanted": self.replication_factor,
            },
            "configs": dict(self.configs),
            "config_changes": [
                {"key": c.key, "old": c.old, "new": c.new} for c in self.config_changes
            ],
            "refused": list(self.refused),
        }


@dataclass(frozen=True)
class TopicPlan:
    """Per-topic differences between the catalog and the cluster, plus unmanaged topics."""

    topics: tuple[TopicChange, ...]
    unmanaged: tuple[str, ...] = ()
    acls: AclPlan = NO_ACLS

    @property
    def has_changes(self) -> bool:
        return any(topic.changed for topic in self.topics) or bool(self.acls.missing)

    @property
    def refused(self) -> tuple[str, ...]:
        return tuple(reason for topic in self.topics for reason in topic.refused)

    def topic(self, name: str) -> TopicChange:
        """The entry for topic `name`; raises KeyError when the catalog does not name it."""
        for change in self.topics:
            if change.topic == name:
                return change
        raise KeyError(name)

    def summary(self) -> str:
        """One line a person reads at the end of `plan` or `apply`."""
        changes = sum(len(t.steps()) - len(t.refused) for t in self.topics if t.changed)
        parts = [f"{changes} change(s)" if changes else "no changes"]
        if self.refused:
            parts.append(f"{len(self.refused)} refused")
        if self.unmanaged:
            parts.append(f"{len(self.unmanaged)} topic(s) not in the catalog")
        if self.acls.missing:
            parts.append(f"{len(self.acls.missing)} ACL(s) to grant")
        if self.acls.drift:
            parts.append(f"{len(self.acls.drift)} ACL(s) not in the catalog")
        return ", ".join(parts)

    def to_dict(self) -> dict[str, Any]:
        return {
            "topics": [topic.to_dict() for topic in self.topics],
            "unmanaged": list(self.unmanaged),
            "acls": self.acls.to_dict(),
            "has_changes": self.has_changes,
            "refused": list(self.refused),
            "summary": self.summary(),
        }

    def to_table(self) -> Table:
        """The plan as a rich table: one row per step, `ok` for topics already as declared."""
        table = Table(title="Kafka topics: catalog vs cluster")
        for column in ("stream", "topic", "action", "detail"):
            table.add_column(column)
        colours = {"create": "green", "add partitions": "green", "set config": "yellow"}
        for topic in self.topics:
            for action, detail in topic.steps() or [("ok", "as declared")]:
                colour = colours.get(action, "red" if action == "refused" else "dim")
                table.add_row(topic.stream, topic.topic, f"[{colour}]{action}[/]", detail)
        for name in self.unmanaged:
            table.add_row("-", name, "[magenta]drift[/]", "not in the catalog (left alone)")
        for acl in self.acls.missing:
            table.add_row("-", acl.name, "[green]grant[/]", str(acl))
        for acl in self.acls.drift:
            table.add_row("-", acl.name, "[magenta]drift[/]", f"{acl} (ACL not in the catalog)")
        return table


def _is_internal(meta: Mapping[str, Any]) -> bool:
    """Kafka's own topics and Kafka Connect's: never the catalog's, never drift."""
    name = str(meta["name"])
    return (
        bool(meta.get("is_internal"))
        or name.startswith(INTERNAL_PREFIX)
        or name in CONNECT_INTERNAL_TOPICS
    )


def plan_topics(
    catalog: Catalog,
    admin: KafkaAdminClient,
    *,
    broker_count: int | None = None,
    ingest_principal: str | None = None,
) -> TopicPlan:
    """Compare the catalog with the cluster, ACLs included on a cluster with an authorizer
    (ingest_principal: who ingests, see `conveyor.kafka.acls`); reads only.

    Raises CatalogError when a replication factor exceeds the broker count (asked from the
    cluster unless given), and KafkaAdminFailed when Kafka does not answer.
    """
    try:
        if broker_count is None:
            broker_count = len(admin.describe_cluster()["brokers"])
        _check_replication(catalog, broker_count)
        existing = {
            meta["name"]: meta for meta in admin.describe_topics() if not _is_internal(meta)
        }
        wanted = {spec.topic.name: spec for spec in catalog.streams.values()}
        current_configs = _describe_configs(
            admin,
            {
                name: list(spec.topic.configs.to_kafka())
                for name, spec in wanted.items()
                if name in existing
            },
        )
        acls = plan_acls(catalog, admin, ingest_principal)
    except KafkaError as exc:
        raise KafkaAdminFailed(f"Kafka did not answer while planning topics: {exc}") from None
    changes = []
    for name, spec in wanted.items():
        configs = spec.topic.configs.to_kafka()
        change = TopicChange(
            stream=spec.name,
            topic=name,
            partitions=spec.topic.partitions,
            replication_factor=spec.topic.replication_factor,
            configs=configs,
        )
        if name in existing:
            change = _compare(catalog, change, existing[name], current_configs.get(name, {}))
        changes.append(change)
    unmanaged = tuple(sorted(set(existing) - set(wanted)))
    return TopicPlan(topics=tuple(changes), unmanaged=unmanaged, acls=acls)


def _check_replication(catalog: Catalog, broker_count: int) -> None:
    problems = [
        catalog.problem(
            f"streams.{spec.name}.topic.replication_factor",
            f"must be <= the number of brokers ({broker_count}), "
            f"got {spec.topic.replication_factor}",
        )
        for spec in catalog.streams.values()
        if spec.topic.replication_factor > broker_count
    ]
    if problems:
        raise CatalogError(problems)


def _describe_configs(
    admin: KafkaAdminClient, keys: Mapping[str, list[str]]
) -> dict[str, dict[str, str | None]]:
    """Current values of the given keys per topic, defaults included (config_filter='all')."""
    if not keys:
        return {}
    resources = [ConfigResource(ConfigResourceType.TOPIC, name, ks) for name, ks in keys.items()]
    described = admin.describe_configs(resources, config_filter="all").get("topic", {})
    return {
        name: {key: entry.get("value") for key, entry in configs.items()}
        for name, configs in described.items()
    }


def _compare(
    catalog: Catalog, change: TopicChange, meta: Mapping[str, Any], current: Mapping[str, Any]
) -> TopicChange:
    partitions = meta.get("partitions") or []
    current_partitions = len(partitions)
    current_rf = max((len(p.get("replica_nodes") or []) for p in partitions), default=0)
    at = f"streams.{change.stream}.topic"
    refused = []
    if current_partitions > change.partitions:
        refused.append(
            catalog.problem(
                f"{at}.partitions",
                f"topic {change.topic!r} has {current_partitions} partitions, the catalog asks "
                f"for {change.partitions}: Kafka cannot remove partitions (set it back to "
                f"{current_partitions}, or recreate the topic by hand)",
            )
        )
    if current_rf != change.replication_factor:
        refused.append(
            catalog.problem(
                f"{at}.replication_factor",
                f"topic {change.topic!r} has replication factor {current_rf}, the catalog asks "
                f"for {change.replication_factor}: changing it needs a partition reassignment "
                "(kafka-reassign-partitions.sh), which Conveyor does not do",
            )
        )
    config_changes = tuple(
        ConfigChange(key, current.get(key), value)
        for key, value in change.configs.items()
        if not _same_config(key, current.get(key), value)
    )
    return TopicChange(
        stream=change.stream,
        topic=change.topic,
        partitions=change.partitions,
        replication_factor=change.replication_factor,
        configs=change.configs,
        current_partitions=current_partitions,
        current_replication_factor=current_rf,
        config_changes=config_changes,
        refused=tuple(refused),
    )


def _same_config(key: str, current: str | None, wanted: str) -> bool:
    if current is None:
        return False
    if key == "cleanup.policy":  # a list: "compact,delete" == "delete,compact"
        return sorted(current.replace(" ", "").split(",")) == sorted(wanted.split(","))
    return current.strip() == wanted


# --- applying ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class ApplyResult:
    """What `apply_plan` did, what it refused, and what went wrong."""

    done: tuple[str, ...] = ()
    refused: tuple[str, ...] = ()
    warnings: tuple[str, ...] = ()
    failed: tuple[str, ...] = ()
    unmanaged: tuple[str, ...] = ()
    drift: tuple[str, ...] = ()

    @property
    def changed(self) -> bool:
        return bool(self.done)

    def summary(self) -> str:
        """One line a person reads at the end of `apply`."""
        parts = [f"{len(self.done)} change(s) applied" if self.done else "no changes"]
        for label, items in (
            ("refused", self.refused),
            ("failed", self.failed),
            ("warning(s)", self.warnings),
            ("topic(s) not in the catalog", self.unmanaged),
            ("ACL(s) not in the catalog", self.drift),
        ):
            if items:
                parts.append(f"{len(items)} {label}")
        return ", ".join(parts)

    def to_dict(self) -> dict[str, Any]:
        return {
            "done": list(self.done),
            "refused": list(self.refused),
            "warnings": list(self.warnings),
            "failed": list(self.failed),
            "unmanaged": list(self.unmanaged),
            "drift": list(self.drift),
            "summary": self.summary(),
        }


@dataclass
class _Outcome:
    done: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    failed: list[str] = field(default_factory=list)


def apply_plan(plan: TopicPlan, admin: KafkaAdminClient) -> ApplyResult:
    """Create topics, add partitions, set configs; never deletes, never lowers partitions.

    A topic created concurrently by someone else is a warning, not a failure. Raises
    KafkaAdminFailed only when Kafka does not answer at all.
    """
    outcome = _Outcome()
    try:
        _create_topics([t for t in plan.topics if t.create], admin, outcome)
        _add_partitions([t for t in plan.topics if t.add_partitions], admin, outcome)
        _alter_configs([t for t in plan.topics if t.config_changes], admin, outcome)
        refused_acls = create_acls(plan.acls.missing, admin)
        outcome.failed += refused_acls
        outcome.done += [f"granted: {a}" for a in plan.acls.missing if not refused_acls]
    except KafkaError as exc:
        raise KafkaAdminFailed(
            f"Kafka did not answer while applying topics: {exc}; done so far: "
            f"{'; '.join(outcome.done) or 'nothing'}"
        ) from None
    return ApplyResult(
        done=tuple(outcome.done),
        refused=plan.refused,
        warnings=tuple(outcome.warnings),
        failed=tuple(outcome.failed),
        unmanaged=plan.unmanaged,
        drift=tuple(str(a) for a in plan.acls.drift),
    )


def _create_topics(topics: list[TopicChange], admin: KafkaAdminClient, outcome: _Outcome) -> None:
    if not topics:
        return
    specs = {
        t.topic: {
            "num_partitions": t.partitions,
            "replication_factor": t.replication_factor,
            "configs": dict(t.configs),
        }
        for t in topics
    }
    response = admin.create_topics(specs, raise_errors=False)
    created = []
    for result in response["topics"]:
        name, code = result["name"], result["error_code"]
        if code == 0:
            created.append(name)
            wanted = specs[name]
            outcome.done.append(
                f"created topic {name!r} ({wanted['num_partitions']} partitions, "
                f"replication {wanted['replication_factor']})"
            )
        elif code == TopicAlreadyExistsError.errno:
            outcome.warnings.append(
                f"topic {name!r} was created by someone else meanwhile; run the plan again "
                "to compare its settings with the catalog"
            )
        else:
            outcome.failed.append(f"creating topic {name!r} failed: {_broker_error(result)}")
    if created:
        # The broker acknowledges before every partition has a leader; producers need one.
        admin.wait_for_topics(created, timeout_ms=30000)


def _add_partitions(topics: list[TopicChange], admin: KafkaAdminClient, outcome: _Outcome) -> None:
    if not topics:
        return
    response = admin.create_partitions({t.topic: t.partitions for t in topics}, raise_errors=False)
    by_name = {t.topic: t for t in topics}
    for result in response.results:
        topic = by_name[result.name]
        if result.error_code == 0:
            outcome.done.append(
                f"topic {topic.topic!r}: partitions {topic.current_partitions} -> "
                f"{topic.partitions}"
            )
        elif result.error_code == InvalidPartitionsError.errno:
            # Someone else raised the count meanwhile; the broker's message says to what.
            outcome.warnings.append(f"topic {topic.topic!r}: {result.error_message}")
        else:
            outcome.failed.append(
                f"adding partitions to {topic.topic!r} failed: {result.error_message}"
            )


def _alter_configs(topics: list[TopicChange], admin: KafkaAdminClient, outcome: _Outcome) -> None:
    if not topics:
        return
    # Incremental alters (brokers >= 2.3, picked by the client) set only these keys.
    resources = [
        ConfigResource(ConfigResourceType.TOPIC, t.topic, {c.key: c.new for c in t.config_changes})
        for t in topics
    ]
    results = admin.alter_configs(resources).get("topic", {})
    for topic in topics:
        result = results.get(topic.topic, "no answer from the broker")
        changes = ", ".join(str(c) for c in topic.config_changes)
        if result == "OK":
            outcome.done.append(f"topic {topic.topic!r}: {changes}")
        else:
            outcome.failed.append(f"setting configs of {topic.topic!r} failed: {result}")


def _broker_error(result: Mapping[str, Any]) -> str:
    name = for_code(result["error_code"]).__name__
    return f"{name}: {result.get('error_message') or 'no message from the broker'}"
