"""The server side of a SASL exchange on one connection, sans-IO, as Kafka's
SaslServerAuthenticator: frames in (Kafka requests, or raw length-prefixed tokens after a
SaslHandshake v0), and for each a step saying what to send, whether to hand the frame to
the broker (ApiVersions), when authentication completed, or why and when to close.

Before authentication a client may send ApiVersions (once, first) and SaslHandshake; any
other request fails the authentication. A failed authentication is answered, as Kafka
does, only after `connection.failed.authentication.delay.ms`, and then the connection
closes.

Re-authentication (KIP-368): once a session has a lifetime (connections.max.reauth.ms, or a
credential that expires), a SaslHandshake on the authenticated connection begins a new
exchange with the same mechanism, which must yield the same principal; any request that
arrives after the session expired closes the connection instead, as Kafka's processor does."""

from __future__ import annotations

import enum
import struct
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Protocol

from kio.schema.errors import ErrorCode

from ..wire.build import build, error_response
from ..wire.protocol import (
    Chunk,
    InvalidRequest,
    api_name,
    codec_versions,
    decode_request,
    encode_response,
    peek_header,
    response_type,
)
from .principal import user_principal

API_VERSIONS_KEY = 18
SASL_HANDSHAKE_KEY = 17
SASL_AUTHENTICATE_KEY = 36
# Kafka's sasl.server.max.receive.size: frames larger than this are refused before authentication.
MAX_RECEIVE_SIZE = 524_288
# Kafka's KafkaChannel: a re-authentication begun sooner after the last one is not one (the
# SaslHandshake goes to the broker, which answers ILLEGAL_SASL_STATE).
MIN_REAUTHENTICATION_INTERVAL_MS = 1000
_SIZE = struct.Struct(">i")


class SaslAuthenticationFailed(Exception):
    """A failure whose message the client may see (Kafka's SaslAuthenticationException)."""


class SaslRejected(Exception):
    """A failure whose detail must not reach the client (it could tell whether a user
    exists): the client gets Kafka's generic message instead."""


class MechanismServer(Protocol):
    """One authentication with one mechanism: evaluate the client's tokens until complete."""

    def evaluate(self, token: bytes, now_ms: int) -> bytes:
        """The challenge for a client token; raises SaslAuthenticationFailed or SaslRejected."""
        ...

    @property
    def complete(self) -> bool: ...

    @property
    def authorization_id(self) -> str: ...

    @property
    def credential_expiry_ms(self) -> int | None:
        """When the credential presented expires (a token's), None if it does not."""
        ...


MechanismFactory = Callable[[], MechanismServer]


@dataclass(frozen=True)
class Close:
    reason: str
    delay_ms: int = 0  # wait this long (connection.failed.authentication.delay.ms) ...
    response: list[Chunk] | None = None  # ... then send this, and close


@dataclass
class SaslStep:
    send: list[Chunk] | None = None
    dispatch: bool = False  # the frame is an ApiVersions request for the broker to answer
    principal: str | None = None  # set once authentication completes
    session_lifetime_ms: int = 0
    close: Close | None = None


class _State(enum.Enum):
    HANDSHAKE_OR_VERSIONS = "handshake or versions"
    HANDSHAKE = "handshake"
    AUTHENTICATE = "authenticate"
    COMPLETE = "complete"
    FAILED = "failed"


@dataclass
class SaslListener:
    """What the connections of one SASL listener share: its enabled mechanisms, in the
    order configured, each with a way to start an authentication."""

    mechanisms: dict[str, MechanismFactory]
    failed_authentication_delay_ms: int = 100
    # connections.max.reauth.ms by mechanism (0: sessions do not expire)
    max_reauth_ms: dict[str, int] = field(default_factory=dict)


class SaslAuthenticator:
    def __init__(self, listener: SaslListener) -> None:
        self.listener = listener
        self._state = _State.HANDSHAKE_OR_VERSIONS
        self._raw_tokens = False  # SaslHandshake v0: tokens come without Kafka headers
        self._mechanism_name = ""
        self._mechanism: MechanismServer | None = None
        self.supports_reauthentication = False  # the client sent SaslAuthenticate v1+
        self.session_expiry_ms: int | None = None
        self.principal: str | None = None
        self.reauthentications = 0  # completed on this connection
        self._reauthentication_started_ms: int | None = None
        self._reauthenticating = False
        self._bad_mechanism: str | None = None  # why the re-authentication under way fails at its next token

    @property
    def complete(self) -> bool:
        return self._state is _State.COMPLETE

    @property
    def mechanism(self) -> str:
        return self._mechanism_name

    def after_authentication(self, frame: bytes | bytearray, now_ms: int) -> SaslStep | None:
        """For a frame on an authenticated connection: None to hand it to the broker, the
        step of the re-authentication it begins, or a close when the session has expired."""
        if self.session_expiry_ms is not None and now_ms > self.session_expiry_ms:
            return SaslStep(close=Close("SASL session expired without re-authentication"))
        api_key, version, correlation_id = peek_header(frame)
        if api_key != SASL_HANDSHAKE_KEY or self.session_expiry_ms is None:
            return None
        last = self._reauthentication_started_ms
        if last is not None and now_ms - last < MIN_REAUTHENTICATION_INTERVAL_MS:
            return None
        self._reauthentication_started_ms = now_ms
        self._reauthenticating = True
        self._state = _State.HANDSHAKE
        return self._handshake(frame, version, correlation_id)

    def received(self, frame: bytes | bytearray, now_ms: int) -> SaslStep:
        """The step for one frame (without its size prefix). Raises InvalidRequest for a
        frame that is not a request Kafka could parse: close the connection at once."""
        if self._state in (_State.COMPLETE, _State.FAILED):
            raise InvalidRequest(f"SASL exchange already {self._state.value}")
        if self._state is _State.AUTHENTICATE and self._bad_mechanism is not None:
            return self._fail(self._bad_mechanism)  # as Kafka, without an answer
        if self._state is _State.AUTHENTICATE and self._raw_tokens:
            return self._raw_token(bytes(frame), now_ms)
        api_key, version, correlation_id = peek_header(frame)
        if self._state is _State.AUTHENTICATE:
            return self._authenticate(frame, api_key, version, correlation_id, now_ms)
        if api_key == API_VERSIONS_KEY and self._state is _State.HANDSHAKE_OR_VERSIONS:
            versions = codec_versions(API_VERSIONS_KEY)
            if versions is not None and version <= versions[1]:
                self._state = _State.HANDSHAKE  # a client told its version is unsupported may ask again
            return SaslStep(dispatch=True)
        if api_key != SASL_HANDSHAKE_KEY:
            return self._fail(f"Unexpected Kafka request of type {api_name(api_key).upper()} during SASL handshake.")
        return self._handshake(frame, version, correlation_id)

    def _handshake(self, frame: bytes | bytearray, version: int, correlation_id: int) -> SaslStep:
        _, request = decode_request(frame, SASL_HANDSHAKE_KEY, version)
        enabled = list(self.listener.mechanisms)
        mechanism = request.mechanism
        if mechanism not in self.listener.mechanisms:
            response = _response(SASL_HANDSHAKE_KEY, version, correlation_id,
                                 {"error_code": ErrorCode.unsupported_sasl_mechanism, "mechanisms": enabled})
            return self._fail(f"Unsupported SASL mechanism {mechanism}", response)
        if self._reauthenticating and mechanism != self._mechanism_name:
            self._bad_mechanism = (f"SASL mechanism '{mechanism}' requested by client is not supported for "
                                   f"re-authentication of mechanism '{self._mechanism_name}'")
        self._raw_tokens = version == 0
        self._mechanism_name = mechanism
        self._mechanism = self.listener.mechanisms[mechanism]()
        self._state = _State.AUTHENTICATE
        return SaslStep(send=_response(SASL_HANDSHAKE_KEY, version, correlation_id,
                                       {"error_code": ErrorCode.none, "mechanisms": enabled}))

    def _raw_token(self, token: bytes, now_ms: int) -> SaslStep:
        assert self._mechanism is not None
        try:
            challenge = self._mechanism.evaluate(token, now_ms)
            self._check_principal_unchanged()
        except SaslAuthenticationFailed as e:
            return self._fail(str(e))
        except SaslRejected as e:
            return self._fail(f"{self._generic_failure()} ({e})")
        step = SaslStep(send=[_SIZE.pack(len(challenge)) + challenge])
        if self._mechanism.complete:
            self._completed(step, now_ms)
        return step

    def _authenticate(self, frame: bytes | bytearray, api_key: int, version: int, correlation_id: int, now_ms: int) -> SaslStep:
        assert self._mechanism is not None
        if api_key != SASL_AUTHENTICATE_KEY:
            decode_request(frame, api_key, version)  # a request Kafka cannot parse closes at once
            return self._fail(f"Unexpected Kafka request of type {api_name(api_key).upper()} during SASL authentication.",
                              _error_response(api_key, version, correlation_id, ErrorCode.illegal_sasl_state))
        _, request = decode_request(frame, api_key, version)
        self.supports_reauthentication = self.supports_reauthentication or version > 0
        try:
            challenge = self._mechanism.evaluate(request.auth_bytes, now_ms)
            self._check_principal_unchanged()
        except (SaslAuthenticationFailed, SaslRejected) as e:
            message = str(e) if isinstance(e, SaslAuthenticationFailed) else self._generic_failure()
            response = _response(api_key, version, correlation_id, {
                "error_code": ErrorCode.sasl_authentication_failed, "error_message": message, "auth_bytes": b""})
            return self._fail(message if isinstance(e, SaslAuthenticationFailed) else f"{message} ({e})", response)
        step = SaslStep()
        if self._mechanism.complete:
            self._completed(step, now_ms)
        step.send = _response(api_key, version, correlation_id, {
            "error_code": ErrorCode.none, "error_message": None, "auth_bytes": challenge,
            "session_lifetime": step.session_lifetime_ms})
        return step

    def _check_principal_unchanged(self) -> None:
        assert self._mechanism is not None
        if not (self._reauthenticating and self._mechanism.complete):
            return
        principal = user_principal(self._mechanism.authorization_id)
        if principal != self.principal:
            before, after = (str(p).replace(":", ".", 1) for p in (self.principal, principal))
            raise SaslAuthenticationFailed(f"Cannot change principals during re-authentication from {before}: {after}")

    def _completed(self, step: SaslStep, now_ms: int) -> None:
        """Kafka's session lifetime: the sooner of the credential's expiry and
        connections.max.reauth.ms, if either is set."""
        assert self._mechanism is not None
        self._state = _State.COMPLETE
        if self._reauthenticating:
            self.reauthentications += 1
            self._reauthenticating = False
        step.principal = self.principal = user_principal(self._mechanism.authorization_id)
        expiry = self._mechanism.credential_expiry_ms
        max_reauth = self.listener.max_reauth_ms.get(self._mechanism_name, 0)
        lifetimes = ([expiry - now_ms] if expiry is not None else []) + ([max_reauth] if max_reauth > 0 else [])
        self.session_expiry_ms = None
        if lifetimes:
            step.session_lifetime_ms = max(0, min(lifetimes))
            self.session_expiry_ms = now_ms + step.session_lifetime_ms

    def _generic_failure(self) -> str:
        during = "re-authentication" if self._reauthenticating else "authentication"
        return f"Authentication failed during {during} due to invalid credentials with SASL mechanism {self._mechanism_name}"

    def _fail(self, reason: str, response: list[Chunk] | None = None) -> SaslStep:
        self._state = _State.FAILED
        return SaslStep(close=Close(reason, self.listener.failed_authentication_delay_ms, response))


def _response(api_key: int, version: int, correlation_id: int, data: dict[str, Any]) -> list[Chunk]:
    return encode_response(correlation_id, build(response_type(api_key, version), data))[0]


def _error_response(api_key: int, version: int, correlation_id: int, error: ErrorCode) -> list[Chunk] | None:
    body = response_type(api_key, version)
    return None if body is None else encode_response(correlation_id, error_response(body, error))[0]
