"""Debezium connectors from the catalog: one per cdc stream, registered on Kafka Connect.

`plan_connectors` compares what each cdc stream needs with what Connect runs (through its REST
API) and with the source table in Postgres; `apply_connectors` makes the table ready
(`REPLICA IDENTITY FULL`, so a delete or an update carries the whole old row and no value is
left out as an unchanged TOAST value) and creates or updates the connector, then waits until
its task runs. Both are idempotent.

The connector writes the stream's own topic (a RegexRouter renames Debezium's
`<prefix>.<schema>.<table>`), in plain JSON, with the settings `conveyor.ingest.landings.changes` reads
exactly: decimals as strings, timestamps in microseconds, bytes as base64. The database
password never enters the connector's config (Connect stores that in a topic): the config
refers to the password file (`postgres_password_file`, a path the worker sees too), which the
worker's DirectoryConfigProvider reads.
"""

from __future__ import annotations

import json
import time
import urllib.error
import urllib.parse
import urllib.request
from dataclasses import dataclass, field
from typing import Any

from conveyor.catalog import Catalog, StreamSpec
from conveyor.errors import ConveyorError
from conveyor.settings import PostgresConnection, Settings

DEBEZIUM_POSTGRES = "io.debezium.connector.postgresql.PostgresConnector"
UNAVAILABLE = "__debezium_unavailable_value"
"""What the connector writes for an unchanged TOAST value it was not sent (a table without
REPLICA IDENTITY FULL); the ingest quarantines a column holding it, never lands it."""
CONNECTOR_PREFIX = "conveyor-"
PASSWORD_KEY = "database.password"
RUNNING_TIMEOUT_S = 120.0


class ConnectError(ConveyorError):
    """Kafka Connect or the source database refused or could not be reached."""


def connector_name(stream: StreamSpec) -> str:
    return CONNECTOR_PREFIX + stream.name


def slot_name(stream: StreamSpec) -> str:
    """The replication slot (and publication) of the stream's connector: Postgres allows
    lower-case letters, digits and underscores."""
    return "conveyor_" + "".join(c if c.isalnum() else "_" for c in stream.name.lower())


def password_reference(settings: Settings) -> str:
    """The connector's `database.password`: a reference the Connect worker resolves from the
    password file (its folder and name), so the password is never in the connector's config."""
    path = settings.postgres_password_path()
    return f"${{dir:{path.parent}:{path.name}}}"


def connector_config(
    stream: StreamSpec, database: PostgresConnection, password: str
) -> dict[str, str]:
    """The Debezium Postgres connector's config for a cdc stream."""
    schema, table = stream.cdc_spec.schema_and_table
    slot = slot_name(stream)
    return {
        "connector.class": DEBEZIUM_POSTGRES,
        "tasks.max": "1",
        "plugin.name": "pgoutput",
        "database.hostname": database.host,
        "database.port": str(database.port),
        "database.user": database.user,
        PASSWORD_KEY: password,
        "database.dbname": database.database,
        "topic.prefix": slot,
        "table.include.list": f"{schema}.{table}",
        "slot.name": slot,
        "publication.name": slot,
        "publication.autocreate.mode": "filtered",
        "snapshot.mode": "initial",
        "decimal.handling.mode": "string",
        "time.precision.mode": "adaptive_time_microseconds",
        "binary.handling.mode": "base64",
        "tombstones.on.delete": "true",
        "unavailable.value.placeholder": UNAVAILABLE,
        "key.converter": "org.apache.kafka.connect.json.JsonConverter",
        "key.converter.schemas.enable": "false",
        "value.converter": "org.apache.kafka.connect.json.JsonConverter",
        "value.converter.schemas.enable": "false",
        "transforms": "route",
        "transforms.route.type": "org.apache.kafka.connect.transforms.RegexRouter",
        "transforms.route.regex": ".*",
        "transforms.route.replacement": stream.topic.name,
    }


# ------------------------------------------------------------------ Connect's REST API


def _call(base: str, method: str, path: str, body: Any = None) -> tuple[int, Any]:
    data = None if body is None else json.dumps(body).encode()
    request = urllib.request.Request(
        base.rstrip("/") + path,
        data=data,
        method=method,
        headers={"Content-Type": "application/json", "Accept": "application/json"},
    )
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            text = response.read().decode()
            return response.status, json.loads(text) if text else None
    except urllib.error.HTTPError as exc:
        text = exc.read().decode(errors="replace")
        try:
            payload = json.loads(text)
        except ValueError:
            payload = {"message": text}
        return exc.code, payload
    except (urllib.error.URLError, OSError) as exc:
        reason = getattr(exc, "reason", exc)
        raise ConnectError(f"Kafka Connect at {base} is unreachable: {reason}") from None


def _message(payload: Any) -> str:
    if isinstance(payload, dict) and payload.get("message"):
        return str(payload["message"]).splitlines()[0]
    return str(payload)[:300]


def running_config(base: str, name: str) -> dict[str, str] | None:
    """The connector's config as Connect holds it, or None when it has no such connector."""
    status, payload = _call(base, "GET", f"/connectors/{urllib.parse.quote(name)}/config")
    if status == 404:
        return None
    if status != 200:
        raise ConnectError(f"Kafka Connect at {base}: reading {name}: {_message(payload)}")
    return {k: str(v) for k, v in payload.items() if k != "name"}


def connector_state(base: str, name: str) -> tuple[str, list[str]]:
    """(the connector's state, one line per task that is not RUNNING)."""
    status, payload = _call(base, "GET", f"/connectors/{urllib.parse.quote(name)}/status")
    if status != 200:
        return "UNKNOWN", [_message(payload)]
    problems = []
    for task in payload.get("tasks", []):
        if task.get("state") != "RUNNING":
            trace = str(task.get("trace") or "").splitlines()
            problems.append(
                f"task {task.get('id')}: {task.get('state')} {trace[0] if trace else ''}"
            )
    if not payload.get("tasks"):
        problems.append("no task yet")
    return str(payload.get("connector", {}).get("state", "UNKNOWN")), problems


# ------------------------------------------------------------------ the source table


def _connect_db(database: PostgresConnection) -> Any:
    import psycopg

    try:
        return psycopg.connect(**database.conninfo(), connect_timeout=10)
    except psycopg.OperationalError as exc:
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise ConnectError(f"PostgreSQL {database.describe()}: {first}") from None


def table_columns(database: PostgresConnection, stream: StreamSpec) -> dict[str, str] | None:
    """The source table's columns and their Postgres types, None when it does not exist."""
    schema, table = stream.cdc_spec.schema_and_table
    with _connect_db(database) as conn:
        rows = conn.execute(
            "SELECT column_name, data_type FROM information_schema.columns "
            "WHERE table_schema = %s AND table_name = %s ORDER BY ordinal_position",
            (schema, table),
        ).fetchall()
    return {str(name): str(kind) for name, kind in rows} or None


def replica_identity(database: PostgresConnection, stream: StreamSpec) -> str:
    schema, table = stream.cdc_spec.schema_and_table
    with _connect_db(database) as conn:
        row = conn.execute(
            "SELECT c.relreplident FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace "
            "WHERE n.nspname = %s AND c.relname = %s",
            (schema, table),
        ).fetchone()
    return {"f": "full", "d": "default", "n": "nothing", "i": "index"}.get(
        str(row[0]) if row else "", "unknown"
    )


# ------------------------------------------------------------------ plan and apply


@dataclass
class ConnectorChange:
    """What one cdc stream's connector needs."""

    stream: str
    connector: str
    action: str  # create, update, unchanged
    changed_keys: list[str] = field(default_factory=list)
    replica_identity: str = "full"
    notes: list[str] = field(default_factory=list)

    def describe(self) -> str:
        what = {
            "create": f"create connector {self.connector}",
            "update": f"update connector {self.connector} ({', '.join(self.changed_keys)})",
            "unchanged": f"connector {self.connector} is up to date",
        }[self.action]
        if self.replica_identity != "full":
            what += f"; set REPLICA IDENTITY FULL (now {self.replica_identity})"
        return f"{self.stream}: {what}"


@dataclass
class ConnectorPlan:
    changes: list[ConnectorChange] = field(default_factory=list)

    @property
    def pending(self) -> list[ConnectorChange]:
        return [c for c in self.changes if c.action != "unchanged" or c.replica_identity != "full"]

    def to_dict(self) -> dict[str, Any]:
        return {
            "changes": [c.__dict__ for c in self.changes],
            "pending": len(self.pending),
        }


def cdc_streams(catalog: Catalog, names: list[str] | None = None) -> list[StreamSpec]:
    """The catalog's cdc streams (those named, each checked to be a cdc stream)."""
    if names:
        streams = [catalog.stream(n) for n in names]
        for s in streams:
            if s.cdc is None:
                raise ConveyorError(f"stream {s.name!r} is not of kind cdc (it has no connector)")
        return streams
    return [s for s in catalog.streams.values() if s.cdc is not None]


def plan_connectors(
    settings: Settings, catalog: Catalog, names: list[str] | None = None
) -> ConnectorPlan:
    """What each cdc stream's connector and source table need; changes nothing. Raises
    ConnectError naming a source table that is missing or lacks a declared column."""
    database = settings.postgres_connection()
    base = settings.connect_rest
    plan = ConnectorPlan()
    for stream in cdc_streams(catalog, names):
        schema, table = stream.cdc_spec.schema_and_table
        columns = table_columns(database, stream)
        where = f"stream {stream.name!r}: source table {schema}.{table}"
        if columns is None:
            raise ConnectError(f"{where} does not exist in {database.describe()}")
        missing = [c for c in stream.event_schema.fields if c not in columns]
        if missing:
            raise ConnectError(
                f"{where} has no column {', '.join(repr(c) for c in missing)} that "
                f"{catalog.source.name} declares"
            )
        notes = [
            f"column {c!r} is not in the catalog: kept in _unknown until declared"
            for c in columns
            if c not in stream.event_schema.fields
        ]
        wanted = connector_config(stream, database, password_reference(settings))
        name = connector_name(stream)
        running = running_config(base, name)
        if running is None:
            action, keys = "create", sorted(wanted)
        else:
            keys = sorted(k for k in set(wanted) | set(running) if wanted.get(k) != running.get(k))
            action = "update" if keys else "unchanged"
        plan.changes.append(
            ConnectorChange(
                stream=stream.name,
                connector=name,
                action=action,
                changed_keys=keys if action == "update" else [],
                replica_identity=replica_identity(database, stream),
                notes=notes,
            )
        )
    return plan


def apply_connectors(
    settings: Settings,
    catalog: Catalog,
    names: list[str] | None = None,
    *,
    timeout_s: float = RUNNING_TIMEOUT_S,
) -> ConnectorPlan:
    """Make each cdc stream's source table and connector as the plan says and wait until every
    connector's task runs; ConnectError names a connector Connect refused or that failed."""
    from conveyor.kafka.topics import require_topic

    plan = plan_connectors(settings, catalog, names)
    database = settings.postgres_connection()
    base = settings.connect_rest
    for change in plan.changes:
        stream = catalog.stream(change.stream)
        require_topic(settings, stream.topic.name, "admin")
        if change.replica_identity != "full":
            schema, table = stream.cdc_spec.schema_and_table
            with _connect_db(database) as conn:
                conn.execute(f'ALTER TABLE "{schema}"."{table}" REPLICA IDENTITY FULL')
        if change.action == "unchanged":
            continue
        config = connector_config(stream, database, password_reference(settings))
        status, payload = _call(
            base, "PUT", f"/connectors/{urllib.parse.quote(change.connector)}/config", config
        )
        if status not in (200, 201):
            raise ConnectError(
                f"Kafka Connect refused connector {change.connector}: {_message(payload)}"
            )
    for change in plan.changes:
        wait_running(base, change.connector, timeout_s)
    return plan


def wait_running(base: str, name: str, timeout_s: float = RUNNING_TIMEOUT_S) -> None:
    """Poll until the connector and its task run; ConnectError with the task's reason."""
    deadline = time.monotonic() + timeout_s
    state, problems = connector_state(base, name)
    while time.monotonic() < deadline:
        state, problems = connector_state(base, name)
        if state == "RUNNING" and not problems:
            return
        if any("FAILED" in p for p in problems) or state == "FAILED":
            break
        time.sleep(1.0)
    raise ConnectError(f"connector {name} is {state}: {'; '.join(problems) or 'not running'}")
