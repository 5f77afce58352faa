"""Can this role reach Kafka and log in? One quick probe, before any client or Spark starts.

kafka-python retries a refused login or a failed TLS handshake until its bootstrap timeout and
then says only "Unable to bootstrap". `check_access` speaks the few requests it needs itself
(TCP, TLS with the configured CA and hostname verification, SaslHandshake, SaslAuthenticate
with PLAIN or SCRAM) so a user's mistake gets one line naming the servers, the mechanism, the
principal or the CA file, within seconds. Passwords are never part of a message.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets
import socket
import ssl
import struct
from collections.abc import Callable

from conveyor.errors import ConveyorError
from conveyor.settings import KafkaRole, KafkaSecurity, Settings

TIMEOUT_S = 10.0
_CLIENT_ID = b"conveyor-access-check"
_SASL_HANDSHAKE, _SASL_AUTHENTICATE, _API_VERSIONS = 17, 36, 18
_UNSUPPORTED_MECHANISM = 33
_SCRAM_HASHES = {"SCRAM-SHA-256": "sha256", "SCRAM-SHA-512": "sha512"}


class KafkaAccessError(ConveyorError):
    """Kafka cannot be reached, the TLS handshake failed, or the login was refused."""


class KafkaLoginFailed(KafkaAccessError):
    """The broker refused the principal's credentials."""


class KafkaAccessDenied(KafkaAccessError):
    """Logged in, but an ACL denies the principal an operation it needs."""


def check_access(settings: Settings, role: KafkaRole = "ingest") -> KafkaSecurity:
    """Probe the first bootstrap server that answers: TLS and login as role's principal.
    Returns the security used; raises KafkaAccessError with one line saying what failed."""
    security = settings.kafka_security(role)
    servers = settings.kafka_servers
    unreachable = []
    for server in servers.split(","):
        host, _, port = server.strip().rpartition(":")
        try:
            raw = socket.create_connection((host, int(port)), timeout=TIMEOUT_S)
        except (OSError, ValueError) as exc:
            unreachable.append(f"{server}: {getattr(exc, 'strerror', None) or exc}")
            continue
        with raw:
            sock = _secure(raw, host, server, security) if "SSL" in security.protocol else raw
            with sock:
                sock.settimeout(TIMEOUT_S)
                _Session(sock, server, servers, security).run()
        return security
    raise KafkaAccessError(f"Kafka at {servers} did not answer ({'; '.join(unreachable)})")


def _secure(raw: socket.socket, host: str, server: str, security: KafkaSecurity) -> socket.socket:
    cafile = security.cafile
    try:
        context = ssl.create_default_context(cafile=str(cafile) if cafile else None)
    except (OSError, ssl.SSLError) as exc:
        raise KafkaAccessError(f"cannot read the Kafka CA file {cafile}: {exc}") from None
    trusted = f"the CA file {cafile}" if cafile else "the system's CA certificates"
    try:
        return context.wrap_socket(raw, server_hostname=host)
    except ssl.SSLCertVerificationError as exc:
        raise KafkaAccessError(
            f"TLS handshake with Kafka at {server} failed: its certificate is not trusted by "
            f"{trusted} ({exc.verify_message})"
        ) from None
    except (ssl.SSLError, OSError) as exc:
        raise KafkaAccessError(
            f"TLS handshake with Kafka at {server} failed ({getattr(exc, 'reason', None) or exc})"
            f" using {trusted}: is {server} a TLS listener?"
        ) from None


class _Session:
    """The few Kafka requests of the probe, on one connection."""

    def __init__(
        self, sock: socket.socket, server: str, servers: str, security: KafkaSecurity
    ) -> None:
        self.sock = sock
        self.server = server
        self.servers = servers
        self.security = security
        self.correlation = 0

    def run(self) -> None:
        if self.security.mechanism:
            self._login(self.security.mechanism)
        else:
            self._request(_API_VERSIONS, 0, b"")

    def _request(self, api_key: int, version: int, body: bytes) -> bytes:
        self.correlation += 1
        header = struct.pack(">hhih", api_key, version, self.correlation, len(_CLIENT_ID))
        payload = header + _CLIENT_ID + body
        try:
            self.sock.sendall(struct.pack(">i", len(payload)) + payload)
            size = struct.unpack(">i", self._read(4))[0]
            if not 4 <= size <= 16 * 1024 * 1024:
                raise ValueError(size)
            answer = self._read(size)
        except (OSError, ValueError, struct.error):
            expects = "TLS" if "SSL" not in self.security.protocol else "another security protocol"
            raise KafkaAccessError(
                f"Kafka at {self.server} closed the connection on a {self.security.protocol} "
                f"request: the listener expects {expects} (set CONVEYOR_KAFKA_SECURITY_PROTOCOL "
                "to what it speaks)"
            ) from None
        return answer[4:]  # drop the correlation id

    def _read(self, count: int) -> bytes:
        data = b""
        while len(data) < count:
            chunk = self.sock.recv(count - len(data))
            if not chunk:
                raise OSError("closed")
            data += chunk
        return data

    def _login(self, mechanism: str) -> None:
        name = mechanism.encode()
        answer = self._request(_SASL_HANDSHAKE, 1, struct.pack(">h", len(name)) + name)
        error = struct.unpack(">h", answer[:2])[0]
        if error == _UNSUPPORTED_MECHANISM:
            raise KafkaAccessError(
                f"Kafka at {self.servers} does not enable SASL {mechanism} "
                f"(it offers {', '.join(_strings(answer[2:])) or 'none'})"
            )
        if error:
            raise KafkaAccessError(
                f"Kafka at {self.server} refused the SASL handshake ({_error_name(error)}): is it "
                f"a SASL listener? (security protocol {self.security.protocol})"
            )
        user = self.security.username or ""
        password = self.security.password.get_secret_value() if self.security.password else ""
        if mechanism in _SCRAM_HASHES:
            _scram(self._authenticate, user, password, _SCRAM_HASHES[mechanism])
        else:
            self._authenticate(b"\0" + user.encode() + b"\0" + password.encode())

    def _authenticate(self, token: bytes) -> bytes:
        answer = self._request(_SASL_AUTHENTICATE, 1, struct.pack(">i", len(token)) + token)
        error, message_length = struct.unpack(">hh", answer[:4])
        message = answer[4 : 4 + max(message_length, 0)].decode(errors="replace")
        rest = answer[4 + max(message_length, 0) :]
        if error:
            reason = message or f"error {error}"
            raise KafkaLoginFailed(
                f"Kafka at {self.servers} refused the login of principal "
                f"{self.security.username!r} with {self.security.mechanism} over "
                f"{self.security.protocol}: {reason}"
            )
        length = struct.unpack(">i", rest[:4])[0]
        return rest[4 : 4 + max(length, 0)]


def _error_name(code: int) -> str:
    from kafka.errors import for_code

    return f"{for_code(code).__name__}, error {code}"


def _strings(data: bytes) -> list[str]:
    count = struct.unpack(">i", data[:4])[0]
    out, at = [], 4
    for _ in range(max(count, 0)):
        length = struct.unpack(">h", data[at : at + 2])[0]
        out.append(data[at + 2 : at + 2 + length].decode())
        at += 2 + length
    return out


def _scram(
    send: Callable[[bytes], bytes], user: str, password: str, name: str, nonce: str = ""
) -> None:
    """RFC 5802 client side: client-first, server-first, client-final (with proof); name is
    hashlib's name of the hash (sha512); nonce is random unless given (tests)."""
    nonce = nonce or base64.b64encode(secrets.token_bytes(18)).decode()
    safe_user = user.replace("=", "=3D").replace(",", "=2C")
    first_bare = f"n={safe_user},r={nonce}"
    server_first = send(("n,," + first_bare).encode()).decode()
    fields = dict(part.split("=", 1) for part in server_first.split(","))
    if not fields.get("r", "").startswith(nonce):
        raise KafkaAccessError("Kafka's SCRAM answer did not carry this client's nonce")
    salted = hashlib.pbkdf2_hmac(
        name, password.encode(), base64.b64decode(fields["s"]), int(fields["i"])
    )
    client_key = hmac.new(salted, b"Client Key", name).digest()
    stored_key = hashlib.new(name, client_key).digest()
    final_bare = f"c=biws,r={fields['r']}"
    auth_message = f"{first_bare},{server_first},{final_bare}".encode()
    signature = hmac.new(stored_key, auth_message, name).digest()
    proof = bytes(a ^ b for a, b in zip(client_key, signature, strict=True))
    send(f"{final_bare},p={base64.b64encode(proof).decode()}".encode())
