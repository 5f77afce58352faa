"""The secured embedded stack's material: a local CA, the broker's keystore, the principals.

Made once per install under `$CONVEYOR_HOME/security/` (mode 700) with the JDK's `keytool`:
nothing is downloaded. Every file that holds a secret is 0600, and no secret is ever passed on
a command line: keytool reads its store passwords from files (`-storepass:file`).

- `ca.pem`: the CA certificate every client trusts (hostname verification stays on);
- `broker.p12`: the brokers' key and certificate (CN=conveyor-broker, SAN 127.0.0.1 and
  localhost), also their client certificate on the TLS controller listener;
- `credentials.json`: `{"principal": "password"}` for the SCRAM principals.
"""

from __future__ import annotations

import json
import os
import secrets
import subprocess
from dataclasses import dataclass
from pathlib import Path

from conveyor import jars
from conveyor.settings import write_secret
from conveyor.stack.process import ComponentStartError

MECHANISM = "SCRAM-SHA-512"
PROTOCOL = "SASL_SSL"
BROKER_DN = "CN=conveyor-broker"
BROKER_PRINCIPAL = f"User:{BROKER_DN}"

ADMIN = "admin"
"""Super user: provisioning (topics, ACLs) and inter-broker traffic."""
INGEST = "conveyor"
"""Reads the catalog's topics and commits the monitoring groups `conveyor.*`."""
PRODUCER = "producer"
"""Writes the catalog's topics."""
PRINCIPALS = (ADMIN, INGEST, PRODUCER)
ROLE_PRINCIPALS = {"admin": ADMIN, "ingest": INGEST, "produce": PRODUCER}
"""Which principal each of Conveyor's Kafka roles uses on the secured stack."""


@dataclass(frozen=True)
class SecurityFiles:
    """Where the secured stack keeps its TLS material and credentials."""

    root: Path

    @property
    def ca_pem(self) -> Path:
        return self.root / "ca.pem"

    @property
    def ca_store(self) -> Path:
        return self.root / "ca.p12"

    @property
    def broker_store(self) -> Path:
        return self.root / "broker.p12"

    @property
    def store_password_file(self) -> Path:
        return self.root / "store.password"

    @property
    def credentials_file(self) -> Path:
        return self.root / "credentials.json"

    def store_password(self) -> str:
        return self.store_password_file.read_text().strip()

    def credentials(self) -> dict[str, str]:
        data: dict[str, str] = json.loads(self.credentials_file.read_text())
        return data

    def ready(self) -> bool:
        return all(
            p.is_file()
            for p in (
                self.ca_pem,
                self.broker_store,
                self.store_password_file,
                self.credentials_file,
            )
        )


def security_files(home: Path) -> SecurityFiles:
    return SecurityFiles(home / "security")


def ensure(home: Path) -> SecurityFiles:
    """Make the CA, the broker keystore and the principals' passwords unless they exist
    (under home/security)."""
    return ensure_in(security_files(home))


def ensure_in(files: SecurityFiles, hosts: tuple[str, ...] = ()) -> SecurityFiles:
    """`ensure` for any folder (the compose stack's secrets volume); the broker certificate
    is valid for 127.0.0.1, localhost and `hosts`."""
    if files.ready():
        return files
    files.root.mkdir(parents=True, exist_ok=True)
    os.chmod(files.root, 0o700)
    for stale in (files.ca_store, files.broker_store, files.ca_pem):
        stale.unlink(missing_ok=True)
    write_secret(files.store_password_file, secrets.token_urlsafe(24) + "\n")
    _make_certificates(files, hosts)
    write_secret(
        files.credentials_file,
        json.dumps({name: secrets.token_urlsafe(18) for name in PRINCIPALS}, indent=2) + "\n",
    )
    write_broker_secrets(files)
    return files


def _keytool() -> str:
    java = jars.java_binary()
    if java is None:
        raise ComponentStartError("java is not installed (JAVA_HOME unset and no java on PATH)")
    keytool = Path(java).parent / "keytool"
    if not keytool.is_file():
        raise ComponentStartError(f"keytool is missing next to {java}: a full JDK is needed")
    return str(keytool)


def _run(args: list[str], stdin: bytes | None = None) -> bytes:
    result = subprocess.run([_keytool(), *args], input=stdin, capture_output=True, check=False)
    if result.returncode != 0:
        out = (result.stdout + result.stderr).decode(errors="replace").strip()
        raise ComponentStartError(f"keytool {args[0]} failed: {out}")
    return result.stdout


def _make_certificates(files: SecurityFiles, hosts: tuple[str, ...]) -> None:
    store = ["-storetype", "PKCS12", "-storepass:file", str(files.store_password_file)]
    key = ["-keyalg", "RSA", "-keysize", "2048"]
    san = "SAN=" + ",".join(["ip:127.0.0.1", "dns:localhost", *(f"dns:{h}" for h in hosts)])
    ca = ["-keystore", str(files.ca_store), *store]
    broker = ["-keystore", str(files.broker_store), *store]
    ca_name = ["-dname", "CN=Conveyor local CA", "-ext", "bc:c", "-validity", "3650"]
    _run(["-genkeypair", "-alias", "ca", *key, *ca_name, *ca])
    files.ca_pem.write_bytes(_run(["-exportcert", "-alias", "ca", "-rfc", *ca]))
    _run(["-genkeypair", "-alias", "broker", *key, "-dname", BROKER_DN, "-ext", san, *broker])
    request = _run(["-certreq", "-alias", "broker", *broker])
    usage = ["-ext", "ku:c=digitalSignature,keyEncipherment", "-ext", "eku=serverAuth,clientAuth"]
    signed = _run(
        ["-gencert", "-alias", "ca", "-rfc", "-validity", "825", "-ext", san, *usage, *ca],
        stdin=request,
    )
    chain = signed + files.ca_pem.read_bytes()
    _run(["-importcert", "-alias", "ca", "-noprompt", "-file", str(files.ca_pem), *broker])
    _run(["-importcert", "-alias", "broker", "-noprompt", *broker], stdin=chain)
    for path in (files.ca_store, files.broker_store):
        os.chmod(path, 0o600)


def listener_values(secure: bool) -> dict[str, object]:
    """The listener placeholders of kafka-server.properties: PLAINTEXT everywhere, or SASL_SSL
    for clients and brokers with TLS between controllers."""
    if secure:
        return {"client_listener": PROTOCOL, "controller_protocol": "SSL"}
    return {"client_listener": "PLAINTEXT", "controller_protocol": "PLAINTEXT"}


def kafka_security_values(root: Path | str) -> dict[str, object]:
    """The placeholders of kafka-security.properties for material in folder root (this
    install's, or a container's mount of it)."""
    folder = Path(root)
    return {
        "admin_user": ADMIN,
        "broker_secrets": folder / "broker.properties",
        "keystore": folder / "broker.p12",
        "ca_file": folder / "ca.pem",
        "broker_principal": BROKER_PRINCIPAL,
    }


def write_broker_secrets(files: SecurityFiles) -> Path:
    """The broker's own secrets (inter-broker login, keystore password), 0600, for Kafka's
    FileConfigProvider."""
    jaas = (
        "org.apache.kafka.common.security.scram.ScramLoginModule required "
        f'username="{ADMIN}" password="{files.credentials()[ADMIN]}";'
    )
    store = files.store_password()
    return write_secret(
        files.root / "broker.properties",
        f"inter.broker.jaas={jaas}\nstore.password={store}\n",
    )


def scram_arguments(files: SecurityFiles) -> list[str]:
    """`kafka-storage format` arguments that store every principal's SCRAM credential (secret:
    pass them in an argument file, never on a command line)."""
    arguments = []
    for name, password in files.credentials().items():
        arguments += ["--add-scram", f"{MECHANISM}=[name={name},password={password}]"]
    return arguments


def client_options(files: SecurityFiles, principal: str) -> dict[str, object]:
    """kafka-python options for principal on the secured stack (the password unwrapped)."""
    return {
        "security_protocol": PROTOCOL,
        "sasl_mechanism": MECHANISM,
        "sasl_plain_username": principal,
        "sasl_plain_password": files.credentials()[principal],
        "ssl_cafile": str(files.ca_pem),
    }


def argfile_quote(argument: str) -> str:
    """One argument of a JVM argument file: quoted, backslashes and quotes escaped."""
    return '"' + argument.replace("\\", "\\\\").replace('"', '\\"') + '"'


def write_argfile(path: Path, arguments: list[str]) -> Path:
    """A 0600 JVM argument file (`java ... @path`): the main class and its arguments, so
    secrets among them never show on a command line."""
    return write_secret(path, "\n".join(argfile_quote(a) for a in arguments) + "\n")


def admin_client_properties(files: SecurityFiles) -> Path:
    """A 0600 client config for Kafka's own tools (`--command-config`) logging in as admin."""
    jaas = (
        "org.apache.kafka.common.security.scram.ScramLoginModule required "
        f'username="{ADMIN}" password="{files.credentials()[ADMIN]}";'
    )
    return write_secret(
        files.root / "admin-client.properties",
        f"security.protocol={PROTOCOL}\nsasl.mechanism={MECHANISM}\nsasl.jaas.config={jaas}\n"
        f"ssl.truststore.type=PEM\nssl.truststore.location={files.ca_pem}\n",
    )
