"""How Conveyor's Kafka clients are made: the options of a kafka-python client and of Spark's
Kafka source for one role (security included), and the one way to open an admin client.

A client's options carry its role's password unwrapped: building them installs a filter that
blanks it in the configuration kafka-python logs whole at DEBUG. Spark's source never sees the
password: it goes to a 0600 file that Kafka's FileConfigProvider reads.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any

from conveyor.errors import ConveyorError
from conveyor.settings import KafkaRole, Settings, write_secret

if TYPE_CHECKING:
    from kafka import KafkaAdminClient

REDACTED = "[redacted]"
SECRET_CLIENT_OPTIONS = ("sasl_plain_password", "ssl_password")
# kafka-python logs a client's whole configuration (password included) at DEBUG
KAFKA_CLIENT_LOGGERS = ("kafka.admin.client", "kafka.producer.kafka", "kafka.consumer.group")


class RedactClientSecrets(logging.Filter):
    """Blanks secrets in client configurations that libraries log whole."""

    def filter(self, record: logging.LogRecord) -> bool:
        if isinstance(record.args, Mapping):
            record.args = {
                k: REDACTED if k in SECRET_CLIENT_OPTIONS else v for k, v in record.args.items()
            }
        elif isinstance(record.args, tuple):
            record.args = tuple(_redacted(arg) for arg in record.args)
        return True


def _redacted(value: object) -> object:
    if isinstance(value, Mapping) and any(key in value for key in SECRET_CLIENT_OPTIONS):
        return {k: REDACTED if k in SECRET_CLIENT_OPTIONS else v for k, v in value.items()}
    return value


_REDACT = RedactClientSecrets()


_JAAS_MODULES = {
    "PLAIN": "org.apache.kafka.common.security.plain.PlainLoginModule",
    "SCRAM-SHA-256": "org.apache.kafka.common.security.scram.ScramLoginModule",
    "SCRAM-SHA-512": "org.apache.kafka.common.security.scram.ScramLoginModule",
}


def client_options(settings: Settings, role: KafkaRole = "ingest") -> dict[str, Any]:
    """Keyword arguments for role's kafka-python clients (security included, secrets
    unwrapped: never log them)."""
    security = settings.kafka_security(role)
    options: dict[str, Any] = {
        "bootstrap_servers": settings.kafka_servers.split(","),
        "security_protocol": security.protocol,
    }
    if security.mechanism:
        options["sasl_mechanism"] = security.mechanism
        options["sasl_plain_username"] = security.username
        if security.password is not None:
            options["sasl_plain_password"] = security.password.get_secret_value()
            for name in KAFKA_CLIENT_LOGGERS:
                logging.getLogger(name).addFilter(_REDACT)
    if security.cafile:
        options["ssl_cafile"] = str(security.cafile)
    return options


def spark_source_options(settings: Settings, role: KafkaRole = "ingest") -> dict[str, str]:
    """`kafka.*` options for Spark's Kafka source. A SASL password never appears in them:
    it is written to a 0600 file under `$CONVEYOR_HOME/secrets/` that Kafka's
    FileConfigProvider reads when each consumer starts (on a cluster, that path must
    exist on every executor)."""
    security = settings.kafka_security(role)
    options = {"kafka.security.protocol": security.protocol}
    if security.mechanism:
        options["kafka.sasl.mechanism"] = security.mechanism
        module = _JAAS_MODULES.get(security.mechanism, _JAAS_MODULES["PLAIN"])
        password = security.password.get_secret_value() if security.password else ""
        jaas = f'{module} required username="{security.username}" password="{password}";'
        secret = write_secret(
            settings.home / "secrets" / f"kafka-{role}.properties",
            "sasl.jaas.config=" + jaas.replace("\\", "\\\\") + "\n",
        )
        options["kafka.config.providers"] = "conveyorfile"
        options["kafka.config.providers.conveyorfile.class"] = (
            "org.apache.kafka.common.config.provider.FileConfigProvider"
        )
        options["kafka.sasl.jaas.config"] = f"${{conveyorfile:{secret}:sasl.jaas.config}}"
    if security.cafile:
        options["kafka.ssl.truststore.type"] = "PEM"
        options["kafka.ssl.truststore.location"] = str(security.cafile)
    return options


class KafkaAdminFailed(ConveyorError):
    """Kafka could not be reached, or refused an admin request."""


def open_admin(
    settings: Settings, role: KafkaRole = "admin", *, check: bool = True, **overrides: Any
) -> KafkaAdminClient:
    """An admin client for role (security included); the caller closes it. With `check`, a
    quick access check first, so a wrong password or CA file is one clear line
    (KafkaAccessError); without (a client kept for a run, monitoring), none."""
    from kafka import KafkaAdminClient
    from kafka.errors import KafkaError

    if check:
        from conveyor.kafka.access import check_access

        check_access(settings, role)
    options: dict[str, Any] = {
        **client_options(settings, role),
        "client_id": f"conveyor-{role}",
        "bootstrap_timeout_ms": 15000,
        **overrides,
    }
    try:
        return KafkaAdminClient(**options)
    except KafkaError as exc:
        raise KafkaAdminFailed(
            f"cannot reach Kafka at {settings.kafka_servers}: {exc} "
            "(set CONVEYOR_KAFKA_BOOTSTRAP or start the stack with `conveyor stack up`)"
        ) from None


@contextmanager
def admin_client(
    settings: Settings, role: KafkaRole = "admin", **overrides: Any
) -> Iterator[KafkaAdminClient]:
    """`open_admin` as a context manager that closes the client."""
    admin = open_admin(settings, role, **overrides)
    try:
        yield admin
    finally:
        admin.close()
