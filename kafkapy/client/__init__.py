"""A small synchronous Kafka client, for kafkapy's console tools.

It speaks the Kafka protocol to any broker: blocking sockets, one connection per broker,
one request at a time on each (a lock lets a group member's heartbeat thread share its
coordinator's). Requests are written once, as dicts naming the fields of every version
they may be sent at (`kafkapy.wire.build` keeps those of the version in use), and each
connection uses, per API, the highest version both the broker and kio know. TLS and SASL (PLAIN,
SCRAM) come from a file of Kafka's client properties (`security`). It is not a
general-purpose client: no pipelining, no idempotence or transactions, v2 record batches
only, and retries only where a console tool would otherwise fail needlessly.

`connection` holds one broker's connection and the errors; `cluster` the connections to
a cluster's brokers and its metadata; `admin`, `records` and `groups` the requests of
each kind, which `Client` brings together; `groups` also has a classic group's member.
"""

from __future__ import annotations

from ..wire.records import Record
from .admin import (
    BROKER_RESOURCE,
    TOPIC_CONFIG_SOURCE,
    TOPIC_RESOURCE,
    AdminClient,
    ApiVersionRange,
    BrokerVersions,
    ConfigEntry,
    LogDirInfo,
    QuorumInfo,
    QuorumReplica,
)
from .cluster import ClusterInfo, PartitionInfo, TopicInfo
from .connection import (
    API_KEYS,
    BrokerUnreachable,
    ClientError,
    Connection,
    KafkaError,
    SslAuthenticationFailed,
    check,
    error_explanation,
    parse_address,
)
from .groups import (
    HEARTBEAT_INTERVAL_S,
    REBALANCE_TIMEOUT_MS,
    RESETTABLE_STATES,
    SESSION_TIMEOUT_MS,
    GroupInfo,
    GroupListing,
    GroupMember,
    GroupMemberInfo,
    GroupsClient,
    decode_assignment,
    decode_subscription,
    encode_assignment,
    encode_subscription,
    range_assign,
)
from .records import EARLIEST, LATEST, FetchedPartition, RecordsClient, murmur2, partition_for_key
from .security import PLAINTEXT, ClientSecurity, SecurityConfigError
from .transactions import ProducerInfo, TransactionInfo, TransactionListing, TransactionsClient

__all__ = [
    "API_KEYS", "BROKER_RESOURCE", "EARLIEST", "PLAINTEXT", "HEARTBEAT_INTERVAL_S", "LATEST", "REBALANCE_TIMEOUT_MS", "RESETTABLE_STATES", "SESSION_TIMEOUT_MS",
    "TOPIC_CONFIG_SOURCE", "TOPIC_RESOURCE", "ApiVersionRange", "BrokerUnreachable", "BrokerVersions", "Client", "ClientError", "ClientSecurity", "ClusterInfo", "ConfigEntry",
    "Connection", "FetchedPartition", "GroupInfo", "GroupListing", "GroupMember", "GroupMemberInfo", "KafkaError", "LogDirInfo",
    "PartitionInfo", "ProducerInfo", "QuorumInfo", "QuorumReplica", "Record", "RecordsClient", "SecurityConfigError", "SslAuthenticationFailed", "TopicInfo", "TransactionInfo", "TransactionListing", "TransactionsClient", "check", "decode_assignment", "decode_subscription",
    "encode_assignment", "encode_subscription", "error_explanation", "murmur2", "parse_address", "partition_for_key",
    "range_assign",
]


class Client(AdminClient, TransactionsClient, GroupsClient):
    """Connections to a cluster's brokers, found from a bootstrap address, and the requests
    the console tools make of them."""
