"""TLS listeners: the SSLContext an SSL listener's settings describe, and the TLS session of
one connection, which encrypts through memory buffers (ssl.SSLObject) so that the socket
stays the connection's own non-blocking one. Files cannot be sent with sendfile through
TLS: their slices are read in bounded pieces and encrypted."""

from __future__ import annotations

import logging
import os
import re
import socket
import ssl
import tempfile
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import cast

import anyio

from ..config import BrokerConfig, ConfigError
from ..kraft_config import parse_listeners
from ..listener_config import (
    TLS_VERSIONS,
    controller_listener_name,
    inter_broker_listener_name,
    listener_setting,
    security_protocol_map,
    ssl_listener_names,
)
from ..security.principal import ANONYMOUS, NoMatchingRule, SslPrincipalMapper, user_principal
from ..security.x500 import CertificateError, subject_rfc2253
from ..wire.protocol import Chunk, FileSlice

log = logging.getLogger(__name__)

_TLS_VERSION = dict(zip(TLS_VERSIONS, (ssl.TLSVersion.TLSv1, ssl.TLSVersion.TLSv1_1, ssl.TLSVersion.TLSv1_2,
                                       ssl.TLSVersion.TLSv1_3), strict=True))
_NO_VERSION_OPTION = dict(zip(TLS_VERSIONS, (ssl.OP_NO_TLSv1, ssl.OP_NO_TLSv1_1, ssl.OP_NO_TLSv1_2, ssl.OP_NO_TLSv1_3), strict=True))
_VERIFY_MODE = {"none": ssl.CERT_NONE, "requested": ssl.CERT_OPTIONAL, "required": ssl.CERT_REQUIRED}
# Ciphertext read from the socket at a time, and file bytes encrypted at a time: large
# enough for few system calls per MB, small enough to hold per connection.
_RAW_READ_BYTES = 65_536
_FILE_PIECE_BYTES = 262_144
_PEM_BLOCK = re.compile(r"-----BEGIN ([A-Z0-9 ]+)-----(.*?)-----END \1-----", re.DOTALL)
# IANA cipher suite names (Java's) in the forms OpenSSL has them too.
_IANA_SUITE = re.compile(r"TLS_(?:(ECDHE|DHE)_)?(RSA|ECDSA)_WITH_(AES_128|AES_256|CHACHA20_POLY1305)(?:_(GCM|CBC))?(?:_(SHA|SHA256|SHA384))?")


SendAll = Callable[[memoryview], Awaitable[None]]


@dataclass(frozen=True)
class ListenerTls:
    """What the connections of one SSL listener share."""

    listener: str
    context: ssl.SSLContext
    principal_mapper: SslPrincipalMapper
    handshake_timeout_s: float

    def session(self, sock: socket.socket, peer: str) -> TlsSession:
        return TlsSession(self, sock, peer)

    def principal_of(self, certificate: bytes | None) -> str:
        """The principal of a peer's certificate (DER), or ANONYMOUS without one. Raises
        NoMatchingRule or CertificateError when its subject maps to no principal."""
        if certificate is None:
            return ANONYMOUS
        return user_principal(self.principal_mapper.name(subject_rfc2253(certificate)))


def listener_tls(config: BrokerConfig) -> dict[str, ListenerTls]:
    """Each SSL broker listener's TLS, by listener name. Reads key and trust stores: run it
    in a worker thread. A store that cannot be read is a ConfigError."""
    timeout_s = config.int("kafkapy.ssl.handshake.timeout.ms") / 1000
    out = {}
    for name in ssl_listener_names(config):
        def setting(key: str, name: str = name) -> object:
            return listener_setting(config, name, key)

        mapper = SslPrincipalMapper(str(setting("ssl.principal.mapping.rules")))
        out[name] = ListenerTls(name, _context(name, setting), mapper, timeout_s)
    return out


@dataclass(frozen=True)
class QuorumTls:
    """The TLS of a node's part in the quorum, when the controller listener speaks it: the
    controller listener's own (None on a node that has none) and the context it connects
    to the controllers with."""

    listener: ListenerTls | None
    client: ssl.SSLContext


def quorum_tls(config: BrokerConfig) -> QuorumTls | None:
    """None when the controller listener is PLAINTEXT. Reads the stores: run it in a worker thread."""
    client = controller_client_tls(config)
    if client is None:
        return None
    name = controller_listener_name(config)
    if name not in {lst.name for lst in parse_listeners(config.strings("listeners"))}:
        return QuorumTls(None, client)

    def setting(key: str) -> object:
        return listener_setting(config, name, key)

    mapper = SslPrincipalMapper(str(setting("ssl.principal.mapping.rules")))
    listener = ListenerTls(name, _context(name, setting), mapper, config.int("kafkapy.ssl.handshake.timeout.ms") / 1000)
    return QuorumTls(listener, client)


def controller_client_tls(config: BrokerConfig) -> ssl.SSLContext | None:
    """The TLS context of this node's connections to the controllers (Raft, the controller
    channel) when their listener is SSL, from that listener's settings as for the brokers'.
    Reads the stores: run it in a worker thread."""
    name = controller_listener_name(config)
    if security_protocol_map(config).get(name) != "SSL":
        return None
    return _context(name, lambda key: listener_setting(config, name, key), client=True)


def inter_broker_client_tls(config: BrokerConfig) -> ssl.SSLContext | None:
    """The TLS context of this broker's connections to the other brokers' inter-broker
    listener, when that listener speaks TLS: the listener's own settings, as Kafka's
    SslFactory in client mode takes them (its key store is the certificate this broker
    presents, its trust store what it trusts, host names checked). Reads the stores: run
    it in a worker thread."""
    name = inter_broker_listener_name(config)
    if name is None or name not in ssl_listener_names(config):
        return None
    return _context(name, lambda key: listener_setting(config, name, key), client=True)


def _context(listener: str, setting: Callable[[str], object], client: bool = False) -> ssl.SSLContext:
    where = f"SSL listener {listener}" + (" (as the client of the other brokers)" if client else "")
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT if client else ssl.PROTOCOL_TLS_SERVER)
    # Renegotiation is a way to make a server do handshakes for nothing; Kafka's JVM refuses it.
    context.options |= ssl.OP_NO_RENEGOTIATION
    key_password = setting("ssl.key.password")
    try:
        location = setting("ssl.keystore.location")
        if client and location is None and setting("ssl.keystore.key") is None:
            pass  # a client without a key store presents no certificate
        elif location is not None:
            context.load_cert_chain(str(location), password=None if key_password is None else str(key_password))
        else:
            with tempfile.TemporaryDirectory(prefix="kafkapy-keystore-") as directory:
                # The ssl module loads keys from files only: a private file, gone once read.
                path = Path(directory) / "keystore.pem"
                fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
                with os.fdopen(fd, "w") as f:
                    f.write(_normal_pem(str(setting("ssl.keystore.key"))) + _normal_pem(str(setting("ssl.keystore.certificate.chain"))))
                context.load_cert_chain(str(path), password=None if key_password is None else str(key_password))
    except (OSError, ssl.SSLError) as e:
        raise ConfigError(f"{where}: cannot load its key store (ssl.keystore.*): {e}") from None
    client_auth = str(setting("ssl.client.auth"))
    try:
        trust_location, trust_certificates = setting("ssl.truststore.location"), setting("ssl.truststore.certificates")
        if trust_location is not None:
            context.load_verify_locations(cafile=str(trust_location))
        elif trust_certificates is not None:
            context.load_verify_locations(cadata=_normal_pem(str(trust_certificates)))
        elif client:
            context.load_default_certs(ssl.Purpose.SERVER_AUTH)
        elif client_auth != "none":
            context.load_default_certs(ssl.Purpose.CLIENT_AUTH)
    except (OSError, ssl.SSLError) as e:
        raise ConfigError(f"{where}: cannot load its trust store (ssl.truststore.*): {e}") from None
    if not client:  # a client context verifies the server and its host name, as Kafka's default ("https") does
        context.verify_mode = _VERIFY_MODE[client_auth]
    enabled = sorted(setting("ssl.enabled.protocols"), key=TLS_VERSIONS.index)  # type: ignore[call-overload]
    newest = enabled[-1]
    protocol = str(setting("ssl.protocol"))
    if protocol in TLS_VERSIONS and TLS_VERSIONS.index(protocol) < TLS_VERSIONS.index(newest):
        newest = protocol  # an SSLContext for TLSv1.2 does not speak TLSv1.3, however enabled
    suites: list[str] = setting("ssl.cipher.suites")  # type: ignore[assignment]
    if suites:
        newest, oldest = _restrict_ciphers(where, context, suites, enabled[0], newest)
    else:
        oldest = enabled[0]
    usable = [v for v in enabled if TLS_VERSIONS.index(oldest) <= TLS_VERSIONS.index(v) <= TLS_VERSIONS.index(newest)]
    if not usable:
        raise ConfigError(f"{where}: no TLS version is left to speak: ssl.enabled.protocols={','.join(enabled)}, "
                          f"ssl.protocol={protocol}, ssl.cipher.suites={','.join(suites)}")
    try:
        context.minimum_version, context.maximum_version = _TLS_VERSION[usable[0]], _TLS_VERSION[usable[-1]]
    except ValueError as e:
        raise ConfigError(f"{where}: this Python's OpenSSL cannot offer {','.join(usable)}: {e}") from None
    for version in TLS_VERSIONS[TLS_VERSIONS.index(usable[0]):TLS_VERSIONS.index(usable[-1]) + 1]:
        if version not in usable:
            context.options |= _NO_VERSION_OPTION[version]
    return context


def _restrict_ciphers(where: str, context: ssl.SSLContext, suites: list[str], oldest: str, newest: str) -> tuple[str, str]:
    """Applies ssl.cipher.suites; returns the TLS versions they leave (newest, oldest). The
    ssl module cannot narrow TLS 1.3's suites, so a list must name all of them or none (which
    leaves TLS 1.3 out, as it does in Java)."""
    available = context.get_ciphers()
    tls13 = {c["name"] for c in available if c["protocol"] == "TLSv1.3"}
    names = {c["name"] for c in available if c["protocol"] != "TLSv1.3"}
    listed13 = {s for s in suites if s in tls13}
    if listed13 and listed13 != tls13:
        raise ConfigError(f"{where}: ssl.cipher.suites names some TLS 1.3 suites but not all ({', '.join(sorted(tls13))}): "
                          "kafkapy cannot narrow TLS 1.3's suites; list all of them or none")
    openssl_names = []
    for suite in suites:
        if suite in tls13:
            continue
        name = _openssl_name(suite)
        if name not in names:
            raise ConfigError(f"{where}: cipher suite {suite} in ssl.cipher.suites is unknown or not available")
        openssl_names.append(name)
    if openssl_names:
        context.set_ciphers(":".join(openssl_names))
    else:
        oldest = "TLSv1.3"
    if not listed13:
        newest = min(newest, "TLSv1.2", key=TLS_VERSIONS.index)
    return newest, oldest


def _openssl_name(suite: str) -> str:
    """OpenSSL's name of an IANA cipher suite name (an OpenSSL name is kept)."""
    match = _IANA_SUITE.fullmatch(suite)
    if match is None:
        return suite
    exchange, auth, cipher, mode, mac = match.groups()
    prefix = f"{exchange}-{auth}-" if exchange else ("" if auth == "RSA" else f"{auth}-")
    if cipher == "CHACHA20_POLY1305":
        return prefix + "CHACHA20-POLY1305"
    cipher = cipher.replace("_", "")
    return prefix + (f"{cipher}-GCM-{mac}" if mode == "GCM" else f"{cipher}-{mac}")


def _normal_pem(text: str) -> str:
    """PEM blocks as OpenSSL reads them: a value written on one line in a properties file
    has its base64 re-wrapped (a block with headers, an old encrypted key, is kept as is)."""
    blocks = []
    for match in _PEM_BLOCK.finditer(text):
        label, body = match.group(1), match.group(2)
        if ":" not in body:
            compact = "".join(body.split())
            body = "\n" + "\n".join(compact[i:i + 64] for i in range(0, len(compact), 64)) + "\n"
        blocks.append(f"-----BEGIN {label}-----{body}-----END {label}-----\n")
    return "".join(blocks)


class TlsSession:
    """TLS over one connection's non-blocking socket. `recv_into` is synchronous and raises
    BlockingIOError when it needs ciphertext the socket does not have yet, as the socket's
    own recv_into does, so the connection reads both alike. Ciphertext goes out through the
    connection's `sendall`, which also marks the connection active."""

    def __init__(self, tls: ListenerTls, sock: socket.socket, peer: str) -> None:
        self.tls = tls
        self.sock = sock
        self.peer = peer
        self._incoming = ssl.MemoryBIO()
        self._outgoing = ssl.MemoryBIO()
        self._ssl = tls.context.wrap_bio(self._incoming, self._outgoing, server_side=True)
        self._raw = bytearray(_RAW_READ_BYTES)
        self._unsent = b""  # produced while reading (TLS 1.3 key updates), sent with the next response

    async def handshake(self, sendall: SendAll) -> str:
        """Completes the TLS handshake within the listener's deadline; returns the client's
        principal. Raises ConnectionError (logged) when the client does not make it."""
        try:
            with anyio.fail_after(self.tls.handshake_timeout_s):
                while True:
                    try:
                        self._ssl.do_handshake()
                        break
                    except ssl.SSLWantReadError:
                        await self._flush(sendall)
                        if not await self._receive():
                            raise ConnectionError("closed by the client") from None
                await self._flush(sendall)
            return self._principal()
        except TimeoutError:
            log.info("TLS handshake from %s on %s: none within %.0f s; closing", self.peer, self.tls.listener,
                     self.tls.handshake_timeout_s)
            raise ConnectionError("TLS handshake timed out") from None
        except (ssl.SSLError, NoMatchingRule, CertificateError) as e:
            # The client sees its handshake refused (or closed, when its certificate maps to no principal).
            self._flush_quietly()
            log.info("TLS handshake from %s on %s failed: %s", self.peer, self.tls.listener, e)
            raise ConnectionError(f"TLS handshake failed: {e}") from None

    def _principal(self) -> str:
        return self.tls.principal_of(self._ssl.getpeercert(binary_form=True))

    async def _receive(self) -> bool:
        """Ciphertext from the socket into the session; False at end of stream."""
        while True:
            try:
                n = self.sock.recv_into(self._raw)
            except BlockingIOError:
                await anyio.wait_readable(self.sock)
                continue
            if n:
                self._incoming.write(memoryview(self._raw)[:n])
            return n > 0

    def recv_into(self, buffer: memoryview) -> int:
        while True:
            try:
                n = cast(int, self._ssl.read(len(buffer), buffer))  # with a buffer it answers a count
            except ssl.SSLWantReadError:
                n = self.sock.recv_into(self._raw)  # BlockingIOError: the connection waits
                if n == 0:
                    return 0
                self._incoming.write(memoryview(self._raw)[:n])
                continue
            except ssl.SSLZeroReturnError:  # the client's close_notify
                return 0
            if self._outgoing.pending:
                self._unsent += self._outgoing.read()
            return n

    async def send(self, chunks: list[Chunk], sendall: SendAll) -> None:
        for chunk in chunks:
            if type(chunk) is FileSlice:
                await self._send_file(chunk, sendall)
            elif chunk:
                self._ssl.write(chunk)
                if self._outgoing.pending >= _FILE_PIECE_BYTES:
                    await self._flush(sendall)
        await self._flush(sendall)

    async def _send_file(self, piece: FileSlice, sendall: SendAll) -> None:
        buffer = memoryview(bytearray(min(piece.length, _FILE_PIECE_BYTES)))
        offset, remaining = piece.position, piece.length
        while remaining:
            n = os.preadv(piece.fd, [buffer[:min(remaining, len(buffer))]], offset)
            if n == 0:
                # The file is shorter than the response said: the stream cannot be repaired.
                raise ConnectionError("segment file shrank while being sent")
            self._ssl.write(buffer[:n])
            offset += n
            remaining -= n
            await self._flush(sendall)

    async def _flush(self, sendall: SendAll) -> None:
        data = self._outgoing.read()
        if self._unsent:
            data, self._unsent = self._unsent + data, b""
        if data:
            await sendall(memoryview(data))

    def _flush_quietly(self) -> None:
        """Sends what the session has to say (an alert), if the socket takes it now."""
        try:
            self.sock.send(self._outgoing.read())
        except OSError:
            pass
