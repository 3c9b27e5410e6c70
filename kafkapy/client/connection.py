"""One connection to one broker (blocking socket, one request at a time, the API versions
negotiated on it, over TLS and authenticated with SASL when the cluster wants it), and
the errors the client reports."""

from __future__ import annotations

import ast
import inspect
import itertools
import socket
import ssl
import struct
import threading
import time
from collections.abc import Mapping
from functools import cache
from typing import TYPE_CHECKING, Any

from kio.schema.errors import ErrorCode
from kio.schema.index import api_key_map

from .. import __version__
from ..wire.build import build, ms
from ..wire.framing import recv_frame
from ..wire.protocol import decode_response, encode_request, kio_versions, request_type

if TYPE_CHECKING:
    from .security import ClientSecurity, Login

API_KEYS = {name: key for key, name in api_key_map.items()}
# Oldest versions whose features the client's requests rely on: null topics meaning "all"
# (Metadata, OffsetFetch), -1 for the broker's default partitions (CreateTopics), and
# resource pattern types (the ACL requests).
_OLDEST_USABLE = {API_KEYS["metadata"]: 1, API_KEYS["offset_fetch"]: 2, API_KEYS["create_topics"]: 4,
                  API_KEYS["describe_acls"]: 1, API_KEYS["create_acls"]: 1, API_KEYS["delete_acls"]: 1}
_SIZE = struct.Struct(">i")
_INT16 = struct.Struct(">h")
# Plainer words for codes whose description in Kafka is obscure at a console.
_PLAIN_EXPLANATIONS = {
    ErrorCode.unknown_topic_or_partition: "the topic or partition does not exist",
    ErrorCode.non_empty_group: "the group still has members",
    ErrorCode.group_id_not_found: "the group does not exist",
}


class ClientError(Exception):
    """What a console tool reports and exits on: a broker's refusal, a broker it cannot
    reach, or a request the broker cannot serve."""


class BrokerUnreachable(ClientError):
    """No connection to a broker's address, or a connection that broke."""


class SslAuthenticationFailed(ClientError):
    """The TLS handshake with a broker failed (Kafka's SslAuthenticationException): an
    untrusted certificate, a host name it does not name, or no TLS spoken there."""


class KafkaError(ClientError):
    """An error code in a broker's response, named as Kafka names it, with what it means:
    the broker's message, or else Kafka's description of the code."""

    def __init__(self, code: int, context: str, detail: str | None = None) -> None:
        try:
            self.code: int = ErrorCode(code)
            self.name = ErrorCode(code).name.upper()
        except ValueError:
            self.code, self.name = code, f"ERROR_CODE_{code}"
        # The broker's own message is the more specific; Kafka's general one stands in for it.
        explanation = detail or error_explanation(code)
        super().__init__(f"{context}: {self.name}" + (f" ({explanation})" if explanation else ""))

    @property
    def retriable(self) -> bool:
        # An unknown topic is retriable to Kafka's clients, waiting for metadata to spread;
        # at a console it is nearly always a typo, better reported at once.
        return getattr(self.code, "retriable", False) and self.code != ErrorCode.unknown_topic_or_partition


@cache
def _kafka_explanations() -> dict[str, str]:
    """Kafka's description of each error code: kio keeps them as docstrings of ErrorCode's members."""
    explanations: dict[str, str] = {}
    member = None
    for node in ast.parse(inspect.getsource(ErrorCode)).body[0].body:  # type: ignore[attr-defined]
        if isinstance(node, ast.Assign) and isinstance(node.targets[0], ast.Name):
            member = node.targets[0].id
        elif member and isinstance(node, ast.Expr) and isinstance(node.value, ast.Constant):
            explanations[member] = str(node.value.value)
            member = None
    return explanations


def error_explanation(code: int) -> str:
    try:
        error = ErrorCode(code)
    except ValueError:
        return "an error code this client does not know"
    return _PLAIN_EXPLANATIONS.get(error) or _kafka_explanations().get(error.name, "")


def check(code: int, context: str, detail: str | None = None) -> None:
    if code != ErrorCode.none:
        raise KafkaError(code, context, detail)


def parse_address(address: str) -> tuple[str, int]:
    host, _, port = address.strip().rpartition(":")
    if not host or not port.isdigit():
        raise ClientError(f"{address!r} is not a broker address of the form HOST:PORT")
    return host.strip("[]"), int(port)


def _reason(error: OSError) -> str:
    if isinstance(error, ConnectionRefusedError):
        return "connection refused (is a Kafka broker listening there?)"
    if isinstance(error, socket.gaierror):
        return "unknown host"
    if isinstance(error, TimeoutError):
        return "timed out"
    return error.strerror or str(error) or type(error).__name__


# The alerts of a broker that requires a client certificate (ssl.client.auth=required) it trusts.
_CLIENT_CERTIFICATE_ALERTS = ("TLSV13_ALERT_CERTIFICATE_REQUIRED", "SSLV3_ALERT_BAD_CERTIFICATE")


def _tls_reason(error: ssl.SSLError) -> str:
    if error.reason in _CLIENT_CERTIFICATE_ALERTS:
        return (f"{error.reason} (the broker requires a client certificate it trusts: ssl.keystore.location, "
                "or ssl.certificate.location and ssl.key.location)")
    return error.reason or str(error)


class Connection:
    """One socket to one broker, with the API versions negotiated on it: wrapped in TLS and
    logged in with SASL first when the security settings say so, as Kafka's clients do
    (ApiVersions, then SaslHandshake and SaslAuthenticate)."""

    def __init__(self, host: str, port: int, description: str, client_id: str, timeout: float,
                 security: ClientSecurity | None = None) -> None:
        self.address = f"{host}:{port}"
        self.timeout = timeout
        self.closed = False
        self._client_id = client_id
        self._lock = threading.Lock()
        self._correlation_ids = itertools.count(1)
        # When the broker ends the SASL session (KIP-368), as time.monotonic(); None: never.
        self._session_end: float | None = None
        try:
            self._sock = socket.create_connection((host, port), timeout=timeout)
        except OSError as e:
            raise BrokerUnreachable(f"cannot connect to {description} at {self.address}: {_reason(e)}") from None
        tls, login = (security.tls, security.login) if security is not None else (None, None)
        try:
            if tls is not None:
                self._sock = self._tls_handshake(tls, host)
            try:
                versions = self._negotiate_versions()
            except BrokerUnreachable as e:
                if tls is not None:
                    raise
                # What a TLS listener does with a plaintext request: it hangs up.
                raise BrokerUnreachable(f"{e} (does it listen with SSL there? then security.protocol=SSL or SASL_SSL)") from None
            self.versions = {key: high for key, (_, high) in versions.items()}
            if login is not None:
                self._sasl_login(login)
        except BaseException:
            self.close()
            raise

    @property
    def usable(self) -> bool:
        """Open, and within its SASL session: a connection past it would be closed by the
        broker at its next request, so the client opens a new one (re-authentication
        without a new connection is not implemented)."""
        return not self.closed and (self._session_end is None or time.monotonic() < self._session_end)

    def _tls_handshake(self, context: ssl.SSLContext, host: str) -> ssl.SSLSocket:
        try:
            return context.wrap_socket(self._sock, server_hostname=host)
        except ssl.SSLCertVerificationError as e:
            raise SslAuthenticationFailed(f"SSL handshake with the broker at {self.address} failed: "
                                          f"{e.verify_message or e.reason} (is ssl.truststore.location the cluster's CA, "
                                          "and the address one its certificate names?)") from None
        except ssl.SSLError as e:
            raise SslAuthenticationFailed(f"SSL handshake with the broker at {self.address} failed: {_tls_reason(e)}") from None
        except OSError as e:
            # A broker that speaks no TLS on this port often just hangs up on a ClientHello.
            raise SslAuthenticationFailed(f"SSL handshake with the broker at {self.address} failed: {_reason(e)} "
                                          "(does it listen with SSL or SASL_SSL there?)") from None

    def _sasl_login(self, login: Login) -> None:
        # Here, not at the top: a tool that logs in with no SASL does not load the mechanisms.
        from ..security.client_login import ClientLogin
        from ..security.scram_client import ScramClientError

        context = f"SASL authentication with the broker at {self.address}"
        if self.versions.get(API_KEYS["sasl_handshake"], 0) < 1:
            raise ClientError(f"{context}: the broker does not serve SaslHandshake v1 (is its listener SASL_PLAINTEXT or SASL_SSL?)")
        handshake = self.request("sasl_handshake", {"mechanism": login.mechanism})
        if handshake.error_code != ErrorCode.none:
            raise KafkaError(handshake.error_code, context, f"the broker enables {', '.join(handshake.mechanisms) or 'none'}")
        exchange = ClientLogin(login.mechanism, login.username, login.password)
        token: bytes | None = exchange.first_token()
        started = time.monotonic()
        while token is not None:
            answer = self.request("sasl_authenticate", {"auth_bytes": token})
            if answer.error_code != ErrorCode.none:
                raise KafkaError(answer.error_code, context, answer.error_message)
            lifetime_ms = ms(getattr(answer, "session_lifetime", None))
            if lifetime_ms > 0:
                # Kafka's clients re-authenticate at 85-95% of the lifetime; the client reconnects at 85%.
                self._session_end = started + lifetime_ms * 0.85 / 1000
            try:
                token = exchange.next_token(bytes(answer.auth_bytes))
            except ScramClientError as e:
                raise KafkaError(ErrorCode.sasl_authentication_failed, context, str(e)) from None

    def close(self) -> None:
        self.closed = True
        self._sock.close()

    def request(self, api: str, data: Mapping[str, Any], timeout: float | None = None) -> Any:
        """Sends the request `data` describes at the negotiated version; returns the response entity."""
        key = API_KEYS[api]
        version = self.versions.get(key)
        if version is None:
            raise ClientError(f"the broker at {self.address} does not support {api} in a version this client can use")
        frame = self._exchange(build(request_type(key, version), data), timeout)
        return decode_response(frame, key, version)[1]

    def _exchange(self, entity: Any, timeout: float | None = None) -> bytes:
        """The response frame (without its size) to a request entity."""
        with self._lock:
            if self.closed:
                raise BrokerUnreachable(f"the connection to the broker at {self.address} is closed")
            correlation_id = next(self._correlation_ids)
            try:
                self._sock.settimeout(timeout or self.timeout)
                self._sock.sendall(encode_request(entity, correlation_id, self._client_id))
                frame = recv_frame(self._sock)
            except ssl.SSLError as e:
                self.close()
                if e.reason not in _CLIENT_CERTIFICATE_ALERTS:
                    raise BrokerUnreachable(f"lost the connection to the broker at {self.address}: {_tls_reason(e)}") from None
                # TLS 1.3 tells a client the broker wanted its certificate only at its first read.
                raise SslAuthenticationFailed(f"SSL handshake with the broker at {self.address} failed: {_tls_reason(e)}") from None
            except OSError as e:
                self.close()
                raise BrokerUnreachable(f"lost the connection to the broker at {self.address}: {_reason(e)}") from None
            except BaseException:
                self.close()  # interrupted mid-frame: the stream can no longer be read
                raise
        (answered,) = _SIZE.unpack_from(frame)  # every response header starts with it
        if answered != correlation_id:
            self.close()
            raise ClientError(f"the broker at {self.address} answered request {correlation_id} with {answered}")
        return frame

    def _negotiate_versions(self) -> dict[int, tuple[int, int]]:
        """For each API both sides know, the range of versions both support."""
        key = API_KEYS["api_versions"]
        version = kio_versions(key)[1]  # type: ignore[index]
        while True:
            request = build(request_type(key, version), {
                "client_software_name": "kafkapy", "client_software_version": __version__,
            })
            frame = self._exchange(request)
            # A broker that does not know this version answers in version 0, with the versions
            # it knows; the error code comes first in every version, after the correlation id.
            (code,) = _INT16.unpack_from(frame, 4)
            if code != ErrorCode.unsupported_version or version == 0:
                break
            _, response = decode_response(frame, key, 0)
            version = min([version - 1] + [api.max_version for api in response.api_keys if api.api_key == key])
        _, response = decode_response(frame, key, version)
        check(response.error_code, f"ApiVersions with the broker at {self.address}")
        ranges = {}
        for api in response.api_keys:
            known = kio_versions(api.api_key)
            if known is None:
                continue
            low = max(known[0], api.min_version, _OLDEST_USABLE.get(api.api_key, 0))
            high = min(known[1], api.max_version)
            if low <= high:
                ranges[api.api_key] = (low, high)
        return ranges
