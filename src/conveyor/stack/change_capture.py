"""The embedded stack's optional CDC components (`conveyor stack up --with cdc`): a PostgreSQL
server with logical decoding on, and a Kafka Connect worker carrying Debezium's Postgres
connector.

Postgres is Debian's (`/usr/lib/postgresql/<version>/bin`). It refuses to run as root, so under
root it runs as `nobody`, keeping only the capability to search folders it does not own (a home
under a root-only folder, e.g. pytest's temp folder, stays reachable). Its superuser `conveyor`
has a random password that lives only in `$CONVEYOR_HOME/postgres/password` (0600).
"""

from __future__ import annotations

import json
import os
import pwd
import secrets
import shutil
import subprocess
import urllib.error
import urllib.request
from collections.abc import Mapping
from pathlib import Path

from conveyor.settings import LOOPBACK, PostgresConnection, Settings, write_secret
from conveyor.stack import config_files
from conveyor.stack.components import Launch, Topology, java, jvm_classpath, kafka_bootstrap
from conveyor.stack.process import ComponentStartError

CDC = "cdc"
CDC_COMPONENTS = ("postgres", "connect")
"""Start order: Connect's connectors read Postgres."""
OPTIONAL_SETS = {CDC: CDC_COMPONENTS}

POSTGRES_DATABASE = "conveyor"
POSTGRES_USER = "conveyor"
POSTGRES_RUN_AS = "nobody"
# what Debezium's pgoutput decoding needs (a slot and a WAL sender per connector)
POSTGRES_OPTIONS = {
    "wal_level": "logical",
    "max_replication_slots": "8",
    "max_wal_senders": "8",
}
DEBEZIUM_POSTGRES = "io.debezium.connector.postgresql.PostgresConnector"


def optional_components(sets: list[str]) -> list[str]:
    """The components of the named optional sets, in start order; ComponentStartError names an
    unknown set."""
    names = []
    for name in sets:
        if name not in OPTIONAL_SETS:
            raise ComponentStartError(
                f"no optional components named {name!r}: use one of {', '.join(OPTIONAL_SETS)}"
            )
        names += [c for c in OPTIONAL_SETS[name] if c not in names]
    return names


def endpoints(settings: Settings, ports: Mapping[str, int]) -> dict[str, str]:
    """The CDC endpoints recorded in stack.json (the password file's path, not the password)."""
    return {
        "postgres_host": LOOPBACK,
        "postgres_port": str(ports["postgres"]),
        "postgres_database": POSTGRES_DATABASE,
        "postgres_user": POSTGRES_USER,
        "postgres_password_file": str(postgres_password_file(settings)),
        "connect_url": f"http://{LOOPBACK}:{ports['connect']}",
    }


# ---------------------------------------------------------------- Postgres


def postgres_password_file(settings: Settings) -> Path:
    return settings.home / "postgres" / "password"


def postgres_bin(tool: str) -> Path:
    """A PostgreSQL program from the newest /usr/lib/postgresql/<version>/bin, else PATH."""
    versions = sorted(
        Path("/usr/lib/postgresql").glob(f"*/bin/{tool}"),
        key=lambda p: int(p.parts[-3]) if p.parts[-3].isdigit() else 0,
    )
    if versions:
        return versions[-1]
    found = shutil.which(tool)
    if found is None:
        raise ComponentStartError(
            f"postgres: {tool} not found in /usr/lib/postgresql/*/bin or on PATH: install "
            "Debian's postgresql package (`make tools`)"
        )
    return Path(found)


def _as_postgres_user(command: list[str]) -> list[str]:
    """Command run as `nobody` when this process is root (Postgres refuses root)."""
    if os.geteuid() != 0:
        return command
    user = pwd.getpwnam(POSTGRES_RUN_AS)
    return [
        "setpriv",
        f"--reuid={user.pw_uid}",
        f"--regid={user.pw_gid}",
        "--clear-groups",
        "--inh-caps=+dac_read_search",
        "--ambient-caps=+dac_read_search",
        *command,
    ]


def _owned_dir(path: Path) -> Path:
    """A 0700 folder owned by the user Postgres runs as."""
    path.mkdir(parents=True, exist_ok=True)
    if os.geteuid() == 0:
        user = pwd.getpwnam(POSTGRES_RUN_AS)
        os.chown(path, user.pw_uid, user.pw_gid)
    os.chmod(path, 0o700)
    return path


def _run(name: str, command: list[str], stdin: str | None = None) -> None:
    result = subprocess.run(
        _as_postgres_user(command), input=stdin, capture_output=True, text=True, check=False
    )
    if result.returncode != 0:
        tail = "\n".join((result.stdout + result.stderr).strip().splitlines()[-25:])
        raise ComponentStartError(f"postgres: {name} failed:\n{tail}")


def _init_postgres(settings: Settings, data: Path, sockets: Path) -> None:
    """initdb (superuser `conveyor`, scram-sha-256 everywhere, password from its file), then
    the `conveyor` database in single-user mode: no server, no network, no password on a
    command line."""
    password_file = postgres_password_file(settings)
    if not password_file.is_file():
        write_secret(password_file, secrets.token_urlsafe(24))
    _owned_dir(data)
    _run(
        "initdb",
        [
            str(postgres_bin("initdb")),
            "-D",
            str(data),
            "-U",
            POSTGRES_USER,
            f"--pwfile={password_file}",
            "--auth-local=scram-sha-256",
            "--auth-host=scram-sha-256",
            "--no-locale",
            "--encoding=UTF8",
        ],
    )
    _run(
        "creating the conveyor database",
        [
            str(postgres_bin("postgres")),
            "--single",
            "-D",
            str(data),
            "-c",
            f"unix_socket_directories={sockets}",
            "postgres",
        ],
        stdin=f"CREATE DATABASE {POSTGRES_DATABASE};\n",
    )


def postgres_launch(settings: Settings, ports: Mapping[str, int]) -> Launch:
    """Initialise the data folder on first start and describe the server."""
    root = settings.home / "postgres"
    data = root / "data"
    sockets = _owned_dir(root / "run")
    if not (data / "PG_VERSION").is_file():
        _init_postgres(settings, data, sockets)
    elif not postgres_password_file(settings).is_file():
        raise ComponentStartError(
            f"postgres: {data} exists but its password file {postgres_password_file(settings)} "
            "is gone: run `conveyor stack up --fresh --with cdc` (it deletes the stack's data)"
        )
    port = ports["postgres"]
    options = {
        "listen_addresses": LOOPBACK,
        "port": str(port),
        "unix_socket_directories": str(sockets),
        "shared_buffers": "64MB",
        **POSTGRES_OPTIONS,
    }
    command = [str(postgres_bin("postgres")), "-D", str(data)]
    for key, value in options.items():
        command += ["-c", f"{key}={value}"]
    return Launch(
        name="postgres",
        command=_as_postgres_user(command),
        env=dict(os.environ),
        log_file=settings.home / "logs" / "postgres.log",
        healthy=lambda: postgres_ready(_stack_connection(settings, port)),
        ports=(port,),
    )


def _stack_connection(settings: Settings, port: int) -> PostgresConnection:
    return PostgresConnection(
        host=LOOPBACK,
        port=port,
        database=POSTGRES_DATABASE,
        user=POSTGRES_USER,
        password=postgres_password_file(settings).read_text().strip(),
    )


def postgres_ready(connection: PostgresConnection) -> bool:
    """A real login (scram-sha-256 over TCP) into the database runs a query."""
    import psycopg

    try:
        with psycopg.connect(**connection.conninfo(), connect_timeout=3) as conn:
            return conn.execute("SELECT 1").fetchone() == (1,)
    except psycopg.Error:
        return False


# ---------------------------------------------------------------- Kafka Connect


def connect_values(
    bootstrap: str,
    replication: int,
    rest_port: int,
    plugin_path: str,
    bind_host: str = LOOPBACK,
    advertised_host: str = LOOPBACK,
) -> dict[str, object]:
    """The template values of connect-distributed.properties."""
    return {
        "bootstrap": bootstrap,
        "replication": replication,
        "bind_host": bind_host,
        "advertised_host": advertised_host,
        "rest_port": rest_port,
        "plugin_path": plugin_path,
    }


def connect_launch(settings: Settings, ports: Mapping[str, int], topology: Topology) -> Launch:
    """Render the worker's properties; Debezium's jars are on its classpath (no plugin folder
    to fill)."""
    root = settings.home / "connect"
    plugins = root / "plugins"
    plugins.mkdir(parents=True, exist_ok=True)
    port = ports["connect"]
    values = connect_values(
        kafka_bootstrap(ports, topology), topology.kafka_replication, port, str(plugins)
    )
    properties = config_files.write(
        "connect-distributed.properties", values, root / "connect-distributed.properties"
    )
    log4j = config_files.write("kafka-log4j2.properties", {}, root / "log4j2.properties")
    url = f"http://{LOOPBACK}:{port}"
    return Launch(
        name="connect",
        command=[
            java(),
            "-Xms64m",
            "-Xmx512m",
            "-XX:+UseSerialGC",
            f"-Dlog4j2.configurationFile={log4j}",
            "-cp",
            jvm_classpath(settings, "connect"),
            "org.apache.kafka.connect.cli.ConnectDistributed",
            str(properties),
        ],
        env=dict(os.environ),
        log_file=settings.home / "logs" / "connect.log",
        healthy=lambda: DEBEZIUM_POSTGRES in connector_plugins(url),
        ports=(port,),
    )


def connector_plugins(url: str) -> list[str]:
    """The connector classes the worker at url offers ([] while it does not answer)."""
    try:
        with urllib.request.urlopen(f"{url}/connector-plugins", timeout=3) as response:
            plugins = json.load(response)
    except (urllib.error.URLError, OSError, json.JSONDecodeError):
        return []
    return [p.get("class", "") for p in plugins if isinstance(p, dict)]
