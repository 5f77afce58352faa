"""Kafka ACLs the catalog implies: planned and applied with the topics, never deleted.

Per stream: the ingest principal may READ and DESCRIBE the topic, each declared producer may
WRITE and DESCRIBE it, each declared reader may READ and DESCRIBE it. Once per cluster: the
ingest principal may READ the consumer groups whose names start with `conveyor.` (the
monitoring groups and Spark's source). ACLs on the cluster that the catalog does not imply
are reported as drift and left alone.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from conveyor.catalog import Catalog
from conveyor.catalog.models import MONITORING_GROUP_PREFIX

if TYPE_CHECKING:
    from kafka import KafkaAdminClient


@dataclass(frozen=True, order=True)
class AclEntry:
    """One ALLOW rule for any host."""

    principal: str  # with its type, e.g. User:conveyor
    resource: str  # topic | group | cluster | transactional_id
    name: str
    pattern: str  # literal | prefixed
    operation: str  # read | write | describe | ...

    def __str__(self) -> str:
        star = "*" if self.pattern == "prefixed" else ""
        return f"{self.principal} may {self.operation.upper()} {self.resource} {self.name}{star}"

    def to_dict(self) -> dict[str, str]:
        return {
            "principal": self.principal,
            "resource": self.resource,
            "name": self.name,
            "pattern": self.pattern,
            "operation": self.operation,
        }


@dataclass(frozen=True)
class AclPlan:
    """ACLs to create, and ACLs on the cluster the catalog does not imply (drift).
    `enforced` is False on a cluster without an authorizer: nothing is planned there."""

    enforced: bool
    missing: tuple[AclEntry, ...] = ()
    drift: tuple[AclEntry, ...] = ()

    def to_dict(self) -> dict[str, Any]:
        return {
            "enforced": self.enforced,
            "missing": [str(a) for a in self.missing],
            "drift": [str(a) for a in self.drift],
        }


NO_ACLS = AclPlan(enforced=False)
"""The plan on a cluster without an authorizer."""


def wanted_acls(catalog: Catalog, ingest_principal: str | None) -> set[AclEntry]:
    """Every ALLOW rule the catalog implies (pure)."""
    wanted: set[AclEntry] = set()

    def allow(principal: str, resource: str, name: str, pattern: str, *ops: str) -> None:
        for op in ops:
            wanted.add(AclEntry(f"User:{principal}", resource, name, pattern, op))

    for spec in catalog.streams.values():
        topic = spec.topic.name
        readers = [*spec.topic.access.readers, *([ingest_principal] if ingest_principal else [])]
        for reader in readers:
            allow(reader, "topic", topic, "literal", "read", "describe")
        for producer in spec.topic.access.producers:
            allow(producer, "topic", topic, "literal", "write", "describe")
    if ingest_principal:
        allow(ingest_principal, "group", MONITORING_GROUP_PREFIX, "prefixed", "read")
    return wanted


def current_acls(admin: KafkaAdminClient) -> set[AclEntry] | None:
    """The cluster's ALLOW rules for any host, or None when it has no authorizer."""
    from kafka.admin import (
        ACLFilter,
        ACLOperation,
        ACLPermissionType,
        ACLResourcePatternType,
        ResourcePatternFilter,
        ResourceType,
    )
    from kafka.errors import SecurityDisabledError

    every = ACLFilter(
        None,
        None,
        ACLOperation.ANY,
        ACLPermissionType.ANY,
        ResourcePatternFilter(ResourceType.ANY, None, ACLResourcePatternType.ANY),
    )
    try:
        acls, error = admin.describe_acls(every)
    except SecurityDisabledError:
        return None
    if error is SecurityDisabledError or getattr(error, "errno", 0) == SecurityDisabledError.errno:
        return None
    return {
        AclEntry(
            acl.principal,
            acl.resource_pattern.resource_type.name.lower(),
            acl.resource_pattern.resource_name,
            acl.resource_pattern.pattern_type.name.lower(),
            acl.operation.name.lower(),
        )
        for acl in acls
        if acl.permission_type == ACLPermissionType.ALLOW and acl.host == "*"
    } | {
        # DENY rules and host-bound rules are never Conveyor's: always drift
        AclEntry(
            acl.principal,
            acl.resource_pattern.resource_type.name.lower(),
            acl.resource_pattern.resource_name,
            acl.resource_pattern.pattern_type.name.lower(),
            f"{acl.permission_type.name.lower()} {acl.operation.name.lower()} from {acl.host}",
        )
        for acl in acls
        if not (acl.permission_type == ACLPermissionType.ALLOW and acl.host == "*")
    }


def plan_acls(catalog: Catalog, admin: KafkaAdminClient, ingest_principal: str | None) -> AclPlan:
    """What `apply` would grant, and the drift; reads only."""
    current = current_acls(admin)
    if current is None:
        return AclPlan(enforced=False)
    wanted = wanted_acls(catalog, ingest_principal)
    return AclPlan(
        enforced=True,
        missing=tuple(sorted(wanted - current)),
        drift=tuple(sorted(current - wanted)),
    )


def create_acls(entries: tuple[AclEntry, ...], admin: KafkaAdminClient) -> list[str]:
    """Create the rules; returns one line per rule the broker refused (empty when all
    were created)."""
    from kafka.admin import (
        ACL,
        ACLOperation,
        ACLPermissionType,
        ACLResourcePatternType,
        ResourcePattern,
        ResourceType,
    )

    if not entries:
        return []
    acls = [
        ACL(
            entry.principal,
            "*",
            ACLOperation[entry.operation.upper()],
            ACLPermissionType.ALLOW,
            ResourcePattern(
                ResourceType[entry.resource.upper()],
                entry.name,
                ACLResourcePatternType[entry.pattern.upper()],
            ),
        )
        for entry in entries
    ]
    result = admin.create_acls(acls)
    return [f"{acl}: {error}" for acl, error in result.get("failed", [])]
