"""The secured path's pure logic: the SCRAM proof, the ACLs a catalog implies, how each role's
Kafka security is resolved, and that a password never lands in Spark's options."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from pydantic import SecretStr

from conveyor.kafka.access import _scram
from conveyor.kafka.acls import AclEntry, wanted_acls
from conveyor.kafka.clients import client_options, spark_source_options
from conveyor.settings import Settings, SettingsError
from conveyor.stack import security
from tests.catalogs import catalog_variant


def test_scram_client_final_message_matches_rfc_7677() -> None:
    # RFC 7677, section 3: SCRAM-SHA-256, user "user", password "pencil"
    server_first = (
        "r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,s=W22ZaJ0SNY7soEsUEjb6gQ==,i=4096"
    )
    sent: list[bytes] = []

    def send(token: bytes) -> bytes:
        sent.append(token)
        return server_first.encode() if len(sent) == 1 else b"v=..."

    _scram(send, "user", "pencil", "sha256", nonce="rOprNGfwEbeRWgbNEkqO")
    assert sent[0] == b"n,,n=user,r=rOprNGfwEbeRWgbNEkqO"
    assert sent[1] == (
        b"c=biws,r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,"
        b"p=dHzbZapWIk4jUhN+Ute9ytag9zjfMHgsqmmiz7AndVQ="
    )


def test_the_catalog_implies_read_for_ingest_and_write_for_producers(tmp_path: Path) -> None:
    def access(data: dict[str, object]) -> None:
        streams = data["streams"]
        assert isinstance(streams, dict)
        first, second = streams.values()
        first["topic"]["access"] = {"producers": ["User:web"], "readers": ["analysts"]}
        second["topic"]["access"] = {}

    catalog = catalog_variant(tmp_path, suffix="acl", edit=access)
    first, second = (spec.topic.name for spec in catalog.streams.values())
    wanted = wanted_acls(catalog, "conveyor")
    rule = AclEntry
    assert wanted == {
        rule("User:conveyor", "topic", first, "literal", "read"),
        rule("User:conveyor", "topic", first, "literal", "describe"),
        rule("User:analysts", "topic", first, "literal", "read"),
        rule("User:analysts", "topic", first, "literal", "describe"),
        rule("User:web", "topic", first, "literal", "write"),
        rule("User:web", "topic", first, "literal", "describe"),
        rule("User:conveyor", "topic", second, "literal", "read"),
        rule("User:conveyor", "topic", second, "literal", "describe"),
        rule("User:conveyor", "group", "conveyor.", "prefixed", "read"),
    }
    assert str(rule("User:conveyor", "group", "conveyor.", "prefixed", "read")) == (
        "User:conveyor may READ group conveyor.*"
    )


def _secured_stack(home: Path) -> Path:
    """A stack.json as `stack up --secure` writes it, and its credentials file."""
    credentials = security.write_secret(
        home / "security" / "credentials.json",
        json.dumps({"admin": "a-pw", "conveyor": "c-pw", "producer": "p-pw"}),
    )
    endpoints = {
        "kafka_bootstrap": "127.0.0.1:9",
        "kafka_security_protocol": "SASL_SSL",
        "kafka_sasl_mechanism": "SCRAM-SHA-512",
        "kafka_ca_file": str(home / "security" / "ca.pem"),
        "kafka_credentials_file": str(credentials),
        **{f"kafka_{r}_username": p for r, p in security.ROLE_PRINCIPALS.items()},
    }
    (home / "stack.json").write_text(json.dumps({"endpoints": endpoints}))
    return credentials


def test_each_role_logs_in_as_its_principal_on_the_secured_stack(tmp_path: Path) -> None:
    _secured_stack(tmp_path)
    settings = Settings(home=tmp_path)
    for role, principal, password in (
        ("admin", "admin", "a-pw"),
        ("ingest", "conveyor", "c-pw"),
        ("produce", "producer", "p-pw"),
    ):
        options = client_options(settings, role)  # type: ignore[arg-type]
        assert options["security_protocol"] == "SASL_SSL"
        assert (options["sasl_plain_username"], options["sasl_plain_password"]) == (
            principal,
            password,
        )
        assert options["ssl_cafile"].endswith("ca.pem")
    # an explicit principal wins; its password still comes from the credentials file
    assert Settings(home=tmp_path, kafka_sasl_username="producer").kafka_security().username == (
        "producer"
    )
    with pytest.raises(SettingsError, match="no password for Kafka principal 'nobody'"):
        Settings(home=tmp_path, kafka_sasl_username="nobody").kafka_security()
    # an explicit cluster ignores the local stack's security
    elsewhere = Settings(home=tmp_path, kafka_bootstrap="broker:9092").kafka_security()
    assert (elsewhere.protocol, elsewhere.mechanism, elsewhere.username) == (
        "PLAINTEXT",
        None,
        None,
    )


def test_a_password_file_is_read_and_a_missing_one_is_named(tmp_path: Path) -> None:
    secret = security.write_secret(tmp_path / "pw", "from-a-file\n")
    base = {
        "home": tmp_path,
        "kafka_bootstrap": "broker:9093",
        "kafka_security_protocol": "SASL_SSL",
        "kafka_sasl_mechanism": "SCRAM-SHA-512",
        "kafka_sasl_username": "conveyor",
    }
    found = Settings(**base, kafka_sasl_password_file=secret).kafka_security()
    assert found.password == SecretStr("from-a-file")
    with pytest.raises(SettingsError, match="CONVEYOR_KAFKA_SASL_PASSWORD_FILE: cannot read"):
        Settings(**base, kafka_sasl_password_file=tmp_path / "missing").kafka_security()


def test_spark_gets_the_password_through_a_0600_file_never_an_option(tmp_path: Path) -> None:
    _secured_stack(tmp_path)
    options = spark_source_options(Settings(home=tmp_path))
    assert not any("c-pw" in value for value in options.values())
    assert options["kafka.security.protocol"] == "SASL_SSL"
    assert options["kafka.ssl.truststore.type"] == "PEM"
    reference = options["kafka.sasl.jaas.config"]
    assert reference.startswith("${conveyorfile:") and reference.endswith(":sasl.jaas.config}")
    path = Path(reference.removeprefix("${conveyorfile:").split(":")[0])
    assert path.stat().st_mode & 0o777 == 0o600
    assert 'username="conveyor" password="c-pw"' in path.read_text()
    assert options["kafka.config.providers.conveyorfile.class"].endswith("FileConfigProvider")


def test_jvm_argument_files_quote_every_argument() -> None:
    assert security.argfile_quote('SCRAM-SHA-512=[name=a,password=p"q\\r]') == (
        '"SCRAM-SHA-512=[name=a,password=p\\"q\\\\r]"'
    )


def test_the_secured_listeners_are_sasl_ssl_for_clients_and_tls_for_controllers() -> None:
    assert security.listener_values(True) == {
        "client_listener": "SASL_SSL",
        "controller_protocol": "SSL",
    }
    assert security.listener_values(False) == {
        "client_listener": "PLAINTEXT",
        "controller_protocol": "PLAINTEXT",
    }
