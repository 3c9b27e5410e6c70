"""A bare Kafka protocol connection, for what no client library shows: requests are kio
entities or raw bytes, responses are kio entities. It speaks TLS and authenticates with
SASL (PLAIN, SCRAM, OAUTHBEARER with an unsecured token) when the security settings say so,
as a client library would."""

from __future__ import annotations

import datetime
import socket
from typing import Any

from kio.schema.errors import ErrorCode
from kio.schema.fetch.v12.request import FetchPartition, FetchRequest, FetchTopic
from kio.schema.find_coordinator.v4.request import FindCoordinatorRequest
from kio.schema.metadata.v12.request import MetadataRequest, MetadataRequestTopic
from kio.schema.offset_commit.v8.request import OffsetCommitRequest, OffsetCommitRequestPartition, OffsetCommitRequestTopic
from kio.schema.sasl_authenticate.v2.request import SaslAuthenticateRequest
from kio.schema.sasl_handshake.v1.request import SaslHandshakeRequest
from kio.schema.types import GroupId, TopicName
from kio.static.primitive import i8, i32, i32Timedelta, i64

from ..security.client_login import ClientLogin
from ..wire.framing import recv_frame
from ..wire.protocol import decode_response, encode_request
from ..wire.records import BatchHeader, iter_headers
from .adapters.base import TIMEOUT_S, BrokerError
from .security import PLAINTEXT, ClientSecurity

# Kafka's numbering of the codec in a batch's attributes.
CODEC_NAMES = {0: "none", 1: "gzip", 2: "snappy", 3: "lz4", 4: "zstd"}


class RawConnection:
    def __init__(self, port: int, host: str = "127.0.0.1", security: ClientSecurity = PLAINTEXT) -> None:
        self.sock = socket.create_connection((host, port), timeout=TIMEOUT_S)
        self.correlation_id = 0
        try:
            if security.tls:
                self.sock = security.ssl_context().wrap_socket(self.sock, server_hostname=host)
            if security.sasl:
                self.authenticate(security)
        except BaseException:
            self.sock.close()
            raise

    def authenticate(self, security: ClientSecurity) -> None:
        """SASL authentication with the settings' mechanism and credentials; BrokerError
        with the broker's error and message if it refuses them."""
        assert security.mechanism is not None
        handshake = self.request(SaslHandshakeRequest(mechanism=security.mechanism))
        if handshake.error_code != ErrorCode.none:
            raise BrokerError(handshake.error_code, f"SaslHandshake for {security.mechanism}; "
                                                    f"enabled: {', '.join(handshake.mechanisms)}")
        if security.mechanism == "OAUTHBEARER":
            # RFC 7628: a refused token is answered with an error challenge, which the client
            # acknowledges with 0x01 to be told the failure.
            if self._sasl_token(f"n,,\x01auth=Bearer {security.unsecured_token()}\x01\x01".encode()):
                self._sasl_token(b"\x01")
            return
        assert security.username is not None and security.password is not None
        login = ClientLogin(security.mechanism, security.username, security.password)
        token: bytes | None = login.first_token()
        while token is not None:
            token = login.next_token(self._sasl_token(token))

    def _sasl_token(self, token: bytes) -> bytes:
        answer = self.request(SaslAuthenticateRequest(auth_bytes=token))
        if answer.error_code != ErrorCode.none:
            raise BrokerError(answer.error_code, answer.error_message)
        return bytes(answer.auth_bytes)

    def __enter__(self) -> RawConnection:
        return self

    def __exit__(self, *exc: object) -> None:
        self.sock.close()

    def send(self, data: bytes) -> None:
        self.sock.sendall(data)

    def request(self, entity: Any) -> Any:
        self.correlation_id += 1
        self.send(encode_request(entity, self.correlation_id))
        return self.response(entity.__api_key__, entity.__version__, self.correlation_id)

    def response(self, api_key: int, version: int, correlation_id: int) -> Any:
        answered, body = decode_response(recv_frame(self.sock), api_key, version)
        assert answered == correlation_id, f"response to correlation id {answered}, expected {correlation_id}"
        return body

    def closed_by_broker(self) -> bool:
        """Whether the broker closes the connection, without answering, within the timeout."""
        try:
            return self.sock.recv(1) == b""
        except ConnectionResetError:
            return True
        except TimeoutError:
            return False


def _leader(bootstrap: str, topic: str, partition: int, security: ClientSecurity) -> tuple[str, int]:
    host, port = bootstrap.rsplit(":", 1)
    with RawConnection(int(port), host, security) as connection:
        metadata = connection.request(MetadataRequest(
            topics=(MetadataRequestTopic(topic_id=None, name=TopicName(topic)),), allow_auto_topic_creation=False,
            include_topic_authorized_operations=False,
        ))
    [found] = metadata.topics
    if found.error_code != ErrorCode.none:
        raise BrokerError(found.error_code, f"metadata of {topic}")
    [leader] = [p.leader_id for p in found.partitions if p.partition_index == partition]
    [address] = [(b.host, b.port) for b in metadata.brokers if b.node_id == leader]
    return address


def served_batches(bootstrap: str, topic: str, partition: int, security: ClientSecurity = PLAINTEXT) -> list[BatchHeader]:
    """The headers of the batches the partition's leader serves, from offset 0 to the end."""
    host, port = _leader(bootstrap, topic, partition, security)
    batches: list[BatchHeader] = []
    offset = 0
    with RawConnection(port, host, security) as connection:
        while True:
            response = connection.request(FetchRequest(
                max_wait=i32Timedelta.parse(datetime.timedelta(0)), min_bytes=i32(0), max_bytes=i32(8 << 20), forgotten_topics_data=(),
                topics=(FetchTopic(topic=TopicName(topic), partitions=(FetchPartition(
                    partition=i32(partition), fetch_offset=i64(offset), partition_max_bytes=i32(8 << 20)),)),),
            ))
            [data] = response.responses[0].partitions
            if data.error_code != ErrorCode.none:
                raise BrokerError(data.error_code, f"fetch of {topic}-{partition} at offset {offset}")
            headers = [h for _, h in iter_headers(data.records or b"")]
            batches += headers
            if headers:
                offset = headers[-1].next_offset
            if not headers or offset >= data.high_watermark:
                return batches


def served_codecs(bootstrap: str, topic: str, partition: int, security: ClientSecurity = PLAINTEXT) -> set[str]:
    """The codecs of the batches the partition's leader serves."""
    return {CODEC_NAMES.get(h.codec, f"codec {h.codec}") for h in served_batches(bootstrap, topic, partition, security)}


def _coordinator(bootstrap: str, group: str, security: ClientSecurity) -> tuple[str, int]:
    host, port = bootstrap.rsplit(":", 1)
    with RawConnection(int(port), host, security) as connection:
        [found] = connection.request(FindCoordinatorRequest(key_type=i8(0), coordinator_keys=(group,))).coordinators
    if found.error_code != ErrorCode.none:
        raise BrokerError(found.error_code, f"coordinator of group {group}")
    return found.host, found.port


def commit_as_member(bootstrap: str, group: str, member_id: str, generation: int, topic: str, partition: int, offset: int,
                     security: ClientSecurity = PLAINTEXT) -> None:
    """An OffsetCommit that says it comes from member_id in the given generation of the group;
    BrokerError with the partition's error, if any."""
    host, port = _coordinator(bootstrap, group, security)
    with RawConnection(port, host, security) as connection:
        response = connection.request(OffsetCommitRequest(
            group_id=GroupId(group), generation_id_or_member_epoch=i32(generation), member_id=member_id,
            topics=(OffsetCommitRequestTopic(name=TopicName(topic), partitions=(OffsetCommitRequestPartition(
                partition_index=i32(partition), committed_offset=i64(offset), committed_metadata=""),)),),
        ))
    [answer] = response.topics[0].partitions
    if answer.error_code != ErrorCode.none:
        raise BrokerError(answer.error_code, f"commit to group {group} as member {member_id} of generation {generation}")
