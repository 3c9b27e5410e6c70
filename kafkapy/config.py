"""Broker and topic configuration, with Apache Kafka's key names, types and defaults.

One table per scope. A topic config's default comes from its broker synonym (for
example `retention.ms` from `log.retention.ms`, itself derived from
`log.retention.hours`), exactly as Kafka resolves it.
"""

from __future__ import annotations

import enum
import re
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, cast

if TYPE_CHECKING:
    from .kraft_config import QuorumVoter

LONG_MAX = 2**63 - 1
INT_MAX = 2**31 - 1


class ConfigError(ValueError):
    """A configuration key or value that Kafka would refuse."""


class ConfigType(enum.IntEnum):
    # Codes of DescribeConfigs' config_type field.
    BOOLEAN = 1
    STRING = 2
    INT = 3
    SHORT = 4
    LONG = 5
    DOUBLE = 6
    LIST = 7
    CLASS = 8
    PASSWORD = 9


class ConfigSource(enum.IntEnum):
    # Codes of DescribeConfigs' config_source field.
    UNKNOWN = 0
    DYNAMIC_TOPIC_CONFIG = 1
    DYNAMIC_BROKER_CONFIG = 2
    DYNAMIC_DEFAULT_BROKER_CONFIG = 3
    STATIC_BROKER_CONFIG = 4
    DEFAULT_CONFIG = 5
    DYNAMIC_BROKER_LOGGER_CONFIG = 6
    CLIENT_METRICS_CONFIG = 7


# A validator sees a value already parsed to its ConfigDef's type: a number, a list, ...
Validator = Callable[[Any], str | None]


def at_least(low: float) -> Validator:
    return lambda v: None if v is None or v >= low else f"Value must be at least {low}"


def between(low: float, high: float) -> Validator:
    return lambda v: None if low <= v <= high else f"Value must be in [{low}, {high}]"


def one_of(*allowed: str) -> Validator:
    def check(v: object) -> str | None:
        values = v if isinstance(v, list) else [v]
        bad = [x for x in values if x not in allowed]
        return f"Value must be one of {list(allowed)}" if bad else None

    return check


STANDARD_AUTHORIZER = "org.apache.kafka.metadata.authorizer.StandardAuthorizer"


def _known_authorizer(name: str) -> str | None:
    if not name or name == STANDARD_AUTHORIZER:
        return None
    return f"kafkapy implements {STANDARD_AUTHORIZER} only (leave it empty for no authorization)"


def _principal_list(value: str) -> str | None:
    bad = [p for p in value.split(";") if p.strip() and ":" not in p]
    return f"'{bad[0].strip()}' is not a principal of the form Type:name, such as User:admin" if bad else None


@dataclass(frozen=True)
class ConfigDef:
    name: str
    type: ConfigType
    default: object
    doc: str
    validator: Validator | None = None
    synonyms: tuple[str, ...] = ()
    read_only: bool = False

    def parse(self, text: object) -> object:
        """Turns a string (or an already typed value) into this key's type, validated."""
        value = _parse_typed(self, text)
        problem = self.validator(value) if self.validator and value is not None else None
        if problem:
            raise ConfigError(f"Invalid value {text} for configuration {self.name}: {problem}")
        return value

    @property
    def sensitive(self) -> bool:
        return self.type is ConfigType.PASSWORD

    def render(self, value: object) -> str | None:
        """The string form DescribeConfigs reports: none for a secret, as Kafka."""
        if value is None or self.sensitive:
            return None
        if self.type is ConfigType.BOOLEAN:
            return "true" if value else "false"
        if self.type is ConfigType.LIST:
            return ",".join(value)  # type: ignore[arg-type]
        return str(value)


def _parse_typed(d: ConfigDef, text: object) -> object:
    if text is None:
        return None
    if not isinstance(text, str):
        if d.type is ConfigType.LIST and isinstance(text, (list, tuple)):
            return [str(x) for x in text]
        text = str(text).lower() if isinstance(text, bool) else str(text)
    s = text.strip()
    try:
        match d.type:
            case ConfigType.BOOLEAN:
                if s.lower() not in ("true", "false"):
                    raise ValueError
                return s.lower() == "true"
            case ConfigType.INT | ConfigType.SHORT | ConfigType.LONG:
                n = int(s)
                bound = LONG_MAX if d.type is ConfigType.LONG else INT_MAX
                if not -bound - 1 <= n <= bound:
                    raise ValueError
                return n
            case ConfigType.DOUBLE:
                return float(s)
            case ConfigType.LIST:
                return [x.strip() for x in s.split(",") if x.strip()]
            case _:
                return s
    except ValueError:
        raise ConfigError(
            f"Invalid value {text} for configuration {d.name}: "
            f"expected a value of type {d.type.name}"
        ) from None


def _table(defs: Iterable[ConfigDef]) -> dict[str, ConfigDef]:
    return {d.name: d for d in defs}


# One letter each keeps the rows of the tables below short.
B, S, I, L, D, LST, P = (  # noqa: E741
    ConfigType.BOOLEAN,
    ConfigType.STRING,
    ConfigType.INT,
    ConfigType.LONG,
    ConfigType.DOUBLE,
    ConfigType.LIST,
    ConfigType.PASSWORD,
)

# Topic-level configs: name, type, default, doc, validator, broker synonyms.
TOPIC_CONFIGS: dict[str, ConfigDef] = _table(
    [
        ConfigDef("cleanup.policy", LST, ["delete"], "Retention policy for old segments: delete, compact, or both.", one_of("delete", "compact"), ("log.cleanup.policy",)),
        ConfigDef("compression.type", S, "producer", "Final compression of the topic's data; 'producer' keeps the producer's codec.", one_of("uncompressed", "zstd", "lz4", "snappy", "gzip", "producer"), ("compression.type",)),
        ConfigDef("compression.gzip.level", I, -1, "Compression level for gzip.", lambda v: None if v == -1 or 1 <= v <= 9 else "Value must be -1 or in [1, 9]", ("compression.gzip.level",)),
        ConfigDef("compression.lz4.level", I, 9, "Compression level for lz4.", between(1, 17), ("compression.lz4.level",)),
        ConfigDef("compression.zstd.level", I, 3, "Compression level for zstd.", between(-131072, 22), ("compression.zstd.level",)),
        ConfigDef("delete.retention.ms", L, 86_400_000, "How long tombstones are kept in a compacted topic.", at_least(0), ("log.cleaner.delete.retention.ms",)),
        ConfigDef("file.delete.delay.ms", L, 60_000, "Wait before deleting a file from the filesystem.", at_least(0), ("log.segment.delete.delay.ms",)),
        ConfigDef("flush.messages", L, LONG_MAX, "Force an fsync after this many messages.", at_least(1), ("log.flush.interval.messages",)),
        ConfigDef("flush.ms", L, LONG_MAX, "Force an fsync after this much time.", at_least(0), ("log.flush.interval.ms", "log.flush.scheduler.interval.ms")),
        ConfigDef("follower.replication.throttled.replicas", LST, [], "Replicas whose log replication is throttled on the follower side.", None),
        ConfigDef("index.interval.bytes", I, 4096, "Bytes of log between offset index entries.", at_least(0), ("log.index.interval.bytes",)),
        ConfigDef("leader.replication.throttled.replicas", LST, [], "Replicas whose log replication is throttled on the leader side.", None),
        ConfigDef("local.retention.bytes", L, -2, "Local retention size when tiered storage is enabled.", at_least(-2), ("log.local.retention.bytes",)),
        ConfigDef("local.retention.ms", L, -2, "Local retention time when tiered storage is enabled.", at_least(-2), ("log.local.retention.ms",)),
        ConfigDef("max.compaction.lag.ms", L, LONG_MAX, "Longest time a message stays ineligible for compaction.", at_least(1), ("log.cleaner.max.compaction.lag.ms",)),
        ConfigDef("max.message.bytes", I, 1_048_588, "Largest record batch size allowed, after compression.", at_least(0), ("message.max.bytes",)),
        ConfigDef("message.downconversion.enable", B, True, "Whether fetches older than message format v2 (Fetch v0-3) get this topic's records converted; if not, they are answered UNSUPPORTED_VERSION.", None, ("log.message.downconversion.enable",)),
        ConfigDef("message.timestamp.after.max.ms", L, LONG_MAX, "How far a record's timestamp may be ahead of the broker's time.", at_least(0), ("log.message.timestamp.after.max.ms",)),
        ConfigDef("message.timestamp.before.max.ms", L, LONG_MAX, "How far a record's timestamp may be behind the broker's time.", at_least(0), ("log.message.timestamp.before.max.ms",)),
        ConfigDef("message.timestamp.difference.max.ms", L, LONG_MAX, "Deprecated (Kafka 3.6, gone in 4.0): stands in for whichever of message.timestamp.before.max.ms and .after.max.ms is unset.", at_least(0), ("log.message.timestamp.difference.max.ms",)),
        ConfigDef("message.timestamp.type", S, "CreateTime", "Whether record timestamps are the producer's (CreateTime) or the broker's (LogAppendTime).", one_of("CreateTime", "LogAppendTime"), ("log.message.timestamp.type",)),
        ConfigDef("min.cleanable.dirty.ratio", D, 0.5, "Minimum dirty share of the log before it is compacted.", between(0, 1), ("log.cleaner.min.cleanable.ratio",)),
        ConfigDef("min.compaction.lag.ms", L, 0, "Shortest time a message stays uncompacted.", at_least(0), ("log.cleaner.min.compaction.lag.ms",)),
        ConfigDef("min.insync.replicas", I, 1, "Minimum in-sync replicas for acks=all writes.", at_least(1), ("min.insync.replicas",)),
        ConfigDef("preallocate", B, False, "Preallocate the file when creating a new segment.", None, ("log.preallocate",)),
        ConfigDef("remote.log.copy.disable", B, False, "Stop copying segments to tiered storage.", None),
        ConfigDef("remote.log.delete.on.disable", B, False, "Delete tiered data when tiered storage is turned off.", None),
        ConfigDef("remote.storage.enable", B, False, "Enable tiered storage for the topic.", None),
        ConfigDef("retention.bytes", L, -1, "Largest size a partition may grow to before old segments are deleted; -1 for no limit.", None, ("log.retention.bytes",)),
        ConfigDef("retention.ms", L, 604_800_000, "Longest time a segment is kept before it is deleted; -1 for no limit.", at_least(-1), ("log.retention.ms", "log.retention.minutes", "log.retention.hours")),
        ConfigDef("segment.bytes", I, 1_073_741_824, "Size of a segment file.", at_least(14), ("log.segment.bytes",)),
        ConfigDef("segment.index.bytes", I, 10_485_760, "Size of a segment's offset index.", at_least(4), ("log.index.size.max.bytes",)),
        ConfigDef("segment.jitter.ms", L, 0, "Random jitter subtracted from segment.ms.", at_least(0), ("log.roll.jitter.ms", "log.roll.jitter.hours")),
        ConfigDef("segment.ms", L, 604_800_000, "Time after which a segment is rolled even if not full.", at_least(1), ("log.roll.ms", "log.roll.hours")),
        ConfigDef("unclean.leader.election.enable", B, False, "Allow out-of-sync replicas to become leader.", None, ("unclean.leader.election.enable",)),
    ]
)

# Broker keys that are topic-config synonyms, in units other than the topic's.
_HOURS = 3_600_000
_MINUTES = 60_000

BROKER_CONFIGS: dict[str, ConfigDef] = _table(
    [
        ConfigDef("node.id", I, 1, "This node's id in the cluster.", at_least(0), read_only=True),
        ConfigDef("broker.id", I, None, "Older name of node.id.", at_least(-1), read_only=True),
        ConfigDef("process.roles", LST, ["broker", "controller"], "Roles of this node: broker, controller or both.", one_of("broker", "controller"), read_only=True),
        ConfigDef("controller.quorum.voters", LST, [], "The metadata quorum's voters as id@host:port; empty for kafkapy's implicit single voter, this node. kafkapy runs a quorum of one voter only.", None, read_only=True),
        ConfigDef("controller.quorum.bootstrap.servers", LST, [], "Bootstrap controllers of a dynamic quorum (KIP-853) as host:port; kafkapy refuses it at start.", None, read_only=True),
        ConfigDef("broker.heartbeat.interval.ms", I, 2000, "How often a broker heartbeats to the active controller.", at_least(1), read_only=True),
        ConfigDef("broker.session.timeout.ms", I, 9000, "How long the controller waits for a broker's heartbeat before fencing it.", at_least(1), read_only=True),
        ConfigDef("controller.listener.names", LST, ["CONTROLLER"], "Listener names used by the controller.", None, read_only=True),
        ConfigDef("listeners", LST, ["PLAINTEXT://127.0.0.1:9092"], "Addresses to listen on, as NAME://host:port.", None, read_only=True),
        ConfigDef("advertised.listeners", LST, None, "Addresses given to clients; defaults to listeners.", None, read_only=True),
        ConfigDef("listener.security.protocol.map", LST, ["PLAINTEXT:PLAINTEXT", "SSL:SSL", "SASL_PLAINTEXT:SASL_PLAINTEXT", "SASL_SSL:SASL_SSL"], "Security protocol of each listener name, as NAME:PROTOCOL; unless it is set, a controller listener is PLAINTEXT. kafkapy's controller listeners are PLAINTEXT.", None, read_only=True),
        ConfigDef("inter.broker.listener.name", S, None, "Listener used between brokers (replica fetchers, transaction markers); unless set, the one named after security.inter.broker.protocol.", None, read_only=True),
        ConfigDef("security.inter.broker.protocol", S, "PLAINTEXT", "Security protocol between brokers, naming their listener when inter.broker.listener.name is not set; only one of the two may be set.", None, read_only=True),
        # TLS listeners; each key may be set for one listener as listener.name.<listener>.<key>.
        ConfigDef("ssl.keystore.type", S, "JKS", "Format of the key store; kafkapy reads PEM only.", None, read_only=True),
        ConfigDef("ssl.keystore.location", S, None, "A PEM file holding the listener's private key and certificate chain.", None, read_only=True),
        ConfigDef("ssl.keystore.password", P, None, "Password of a JKS or PKCS12 key store; not allowed with PEM.", None, read_only=True),
        ConfigDef("ssl.keystore.certificate.chain", P, None, "The certificate chain in PEM, in the value itself.", None, read_only=True),
        ConfigDef("ssl.keystore.key", P, None, "The private key in PEM, in the value itself.", None, read_only=True),
        ConfigDef("ssl.key.password", P, None, "Password of an encrypted private key.", None, read_only=True),
        ConfigDef("ssl.truststore.type", S, "JKS", "Format of the trust store; kafkapy reads PEM only.", None, read_only=True),
        ConfigDef("ssl.truststore.location", S, None, "A PEM file of the certificates trusted to sign client certificates; the system's when unset.", None, read_only=True),
        ConfigDef("ssl.truststore.password", P, None, "Password of a JKS or PKCS12 trust store; not allowed with PEM.", None, read_only=True),
        ConfigDef("ssl.truststore.certificates", P, None, "Trusted certificates in PEM, in the value itself.", None, read_only=True),
        ConfigDef("ssl.client.auth", S, "none", "Whether clients must present a certificate: required, requested or none.", one_of("required", "requested", "none"), read_only=True),
        ConfigDef("ssl.protocol", S, "TLSv1.3", "The newest TLS version offered (TLS for no limit).", None, read_only=True),
        ConfigDef("ssl.enabled.protocols", LST, ["TLSv1.2", "TLSv1.3"], "TLS versions a listener accepts.", None, read_only=True),
        ConfigDef("ssl.cipher.suites", LST, [], "Cipher suites allowed (IANA or OpenSSL names); empty for the defaults.", None, read_only=True),
        ConfigDef("ssl.principal.mapping.rules", S, "DEFAULT", "Rules mapping a client certificate's subject to a principal name: DEFAULT, or RULE:pattern/replacement/[LU], in order.", None, read_only=True),
        # SASL listeners; sasl.* keys may be set per listener, and sasl.jaas.config,
        # sasl.server.callback.handler.class and connections.max.reauth.ms per listener and
        # mechanism (listener.name.<listener>.<mechanism>.<key>).
        ConfigDef("sasl.enabled.mechanisms", LST, ["GSSAPI"], "SASL mechanisms a SASL listener accepts; kafkapy serves PLAIN, SCRAM-SHA-256 and SCRAM-SHA-512 (users from UserScramCredentialRecord metadata records) and OAUTHBEARER.", None, read_only=True),
        ConfigDef("sasl.jaas.config", P, None, "JAAS login module configuration of a SASL mechanism, as Kafka reads it (for PLAIN, PlainLoginModule's user_<name>=\"<password>\" options).", None, read_only=True),
        ConfigDef("sasl.server.callback.handler.class", S, None, "For OAUTHBEARER: unset (or Kafka's unsecured validator) for unsecured JWS tokens, org.apache.kafka.common.security.oauthbearer.OAuthBearerValidatorCallbackHandler for tokens signed by a key of sasl.oauthbearer.jwks.endpoint.url; kafkapy loads no other class.", None, read_only=True),
        ConfigDef("sasl.oauthbearer.jwks.endpoint.url", S, None, "Where the JSON Web Key Set that signs OAUTHBEARER tokens is: an https (or http) URL, fetched off the event loop, or a file: URL.", None, read_only=True),
        ConfigDef("sasl.oauthbearer.jwks.endpoint.refresh.ms", L, 3_600_000, "How often the JWKS is read again (it is also read as soon as a token names a kid it lacks, once a minute at most per kid); 0: only then.", at_least(0), read_only=True),
        ConfigDef("sasl.oauthbearer.expected.audience", LST, [], "Audiences of which a signed token must name one (aud); empty: a token that names an audience is refused.", None, read_only=True),
        ConfigDef("sasl.oauthbearer.expected.issuer", S, None, "The issuer (iss) a signed token must name, if set.", None, read_only=True),
        ConfigDef("sasl.oauthbearer.sub.claim.name", S, "sub", "The claim of a signed token that names its principal.", None, read_only=True),
        ConfigDef("sasl.oauthbearer.scope.claim.name", S, "scope", "The claim of a signed token that holds its scope.", None, read_only=True),
        ConfigDef("sasl.oauthbearer.clock.skew.seconds", I, 30, "Clock skew allowed between the broker and the token issuer when checking exp and nbf.", at_least(0), read_only=True),
        ConfigDef("sasl.mechanism.inter.broker.protocol", S, "GSSAPI", "SASL mechanism a broker authenticates with to the other brokers on a SASL inter-broker listener (PLAIN or SCRAM-SHA-256/512 in kafkapy), with the username and password of that listener's sasl.jaas.config for it.", None, read_only=True),
        ConfigDef("connection.failed.authentication.delay.ms", I, 100, "How long a connection whose authentication failed is held before the failure is answered and the connection closed.", at_least(0), read_only=True),
        ConfigDef("connections.max.reauth.ms", L, 0, "Lifetime of a SASL session, after which a client must re-authenticate (KIP-368); 0 for sessions without end.", None, read_only=True),
        ConfigDef("kafkapy.ssl.handshake.timeout.ms", I, 10_000, "kafkapy's own: how long a TLS handshake may take before the connection is closed.", at_least(1), read_only=True),
        ConfigDef("log.dirs", LST, None, "Directories holding log data; defaults to log.dir.", None, read_only=True),
        ConfigDef("log.dir", S, "kafkapy-data", "Directory holding log data when log.dirs is not set.", None, read_only=True),
        ConfigDef("num.partitions", I, 1, "Default number of partitions of an auto-created topic.", at_least(1)),
        ConfigDef("default.replication.factor", I, 1, "Default replication factor of auto-created topics.", at_least(1)),
        ConfigDef("auto.leader.rebalance.enable", B, True, "The active controller moves leaderships back to preferred replicas in the ISR when a broker leads too few of its own.", None, read_only=True),
        ConfigDef("leader.imbalance.per.broker.percentage", I, 10, "Share of a broker's preferred partitions it may not lead before the controller rebalances them.", at_least(0), read_only=True),
        ConfigDef("leader.imbalance.check.interval.seconds", L, 300, "How often the active controller checks leader imbalance.", at_least(1), read_only=True),
        ConfigDef("broker.rack", S, None, "This broker's rack, for rack-aware replica placement.", None, read_only=True),
        ConfigDef("auto.create.topics.enable", B, True, "Create a topic when a client asks for its metadata.", None, read_only=True),
        ConfigDef("delete.topic.enable", B, True, "Allow topics to be deleted.", None, read_only=True),
        ConfigDef("message.max.bytes", I, 1_048_588, "Largest record batch size allowed.", at_least(0)),
        ConfigDef("socket.request.max.bytes", I, 104_857_600, "Largest request the broker reads.", at_least(1), read_only=True),
        ConfigDef("fetch.max.bytes", I, 57_671_680, "Bytes a Fetch response holds at most, whatever the request asks (at least one batch).", at_least(1024), read_only=True),
        ConfigDef("socket.send.buffer.bytes", I, 102_400, "SO_SNDBUF of server sockets; -1 for the OS default.", None, read_only=True),
        ConfigDef("socket.receive.buffer.bytes", I, 102_400, "SO_RCVBUF of server sockets; -1 for the OS default.", None, read_only=True),
        ConfigDef("connections.max.idle.ms", L, 600_000, "Close a connection after this long without a byte received or sent (a request the broker is working on does not count); a negative value never closes them.", None, read_only=True),
        ConfigDef("queued.max.request.bytes", L, -1, "Request bytes the broker holds at most, across connections, before it stops reading requests; -1 for no limit.", None, read_only=True),
        ConfigDef("max.connections", I, INT_MAX, "Connections the broker serves at most; further ones wait to be accepted until one closes.", at_least(0), read_only=True),
        ConfigDef("max.connections.per.ip", I, INT_MAX, "Connections served at most from one address; further ones are closed as they are accepted.", at_least(0), read_only=True),
        ConfigDef("max.connections.per.ip.overrides", S, "", "Per-address exceptions to max.connections.per.ip, as host:count pairs separated by commas (a host name counts for the address it resolves to).", None, read_only=True),
        ConfigDef("log.segment.bytes", I, 1_073_741_824, "Size of a segment file.", at_least(14)),
        ConfigDef("log.roll.ms", L, None, "Time after which a segment is rolled; overrides log.roll.hours.", None),
        ConfigDef("log.roll.hours", I, 168, "Time in hours after which a segment is rolled.", at_least(1)),
        ConfigDef("log.roll.jitter.ms", L, None, "Jitter subtracted from log.roll.ms.", None),
        ConfigDef("log.roll.jitter.hours", I, 0, "Jitter in hours subtracted from log.roll.hours.", at_least(0)),
        ConfigDef("log.index.size.max.bytes", I, 10_485_760, "Size of a segment's offset index.", at_least(4)),
        ConfigDef("log.index.interval.bytes", I, 4096, "Bytes of log between offset index entries.", at_least(0)),
        ConfigDef("log.flush.interval.messages", L, LONG_MAX, "Force an fsync after this many messages.", at_least(1)),
        ConfigDef("log.flush.interval.ms", L, None, "Force an fsync after this much time; defaults to log.flush.scheduler.interval.ms.", None),
        ConfigDef("log.flush.scheduler.interval.ms", L, LONG_MAX, "How often the flusher checks whether a log needs an fsync.", None),
        ConfigDef("log.flush.offset.checkpoint.interval.ms", I, 60_000, "How often recovery points are written.", at_least(0), read_only=True),
        ConfigDef("log.flush.start.offset.checkpoint.interval.ms", I, 60_000, "How often log start offsets are written.", at_least(0), read_only=True),
        ConfigDef("log.retention.ms", L, None, "Retention time in ms; overrides minutes and hours.", None),
        ConfigDef("log.retention.minutes", I, None, "Retention time in minutes; overrides hours.", None),
        ConfigDef("log.retention.hours", I, 168, "Retention time in hours.", None),
        ConfigDef("log.retention.bytes", L, -1, "Largest size a partition may grow to.", None),
        ConfigDef("log.retention.check.interval.ms", L, 300_000, "How often retention is checked.", at_least(1), read_only=True),
        ConfigDef("log.cleanup.policy", LST, ["delete"], "Default cleanup policy.", one_of("delete", "compact")),
        ConfigDef("log.cleaner.enable", B, True, "Run the log cleaner for compacted topics.", None, read_only=True),
        ConfigDef("log.cleaner.backoff.ms", L, 15_000, "Sleep of the cleaner when there is nothing to clean.", at_least(0)),
        ConfigDef("log.cleaner.threads", I, 1, "Number of cleaner threads.", at_least(0)),
        ConfigDef("log.cleaner.delete.retention.ms", L, 86_400_000, "How long tombstones are kept.", at_least(0)),
        ConfigDef("log.cleaner.min.cleanable.ratio", D, 0.5, "Minimum dirty ratio before cleaning.", between(0, 1)),
        ConfigDef("log.cleaner.min.compaction.lag.ms", L, 0, "Shortest time a message stays uncompacted.", at_least(0)),
        ConfigDef("log.cleaner.max.compaction.lag.ms", L, LONG_MAX, "Longest time a message stays ineligible for compaction.", at_least(1)),
        ConfigDef("log.segment.delete.delay.ms", L, 60_000, "Wait before deleting a file.", at_least(0)),
        ConfigDef("log.preallocate", B, False, "Preallocate new segment files.", None),
        ConfigDef("log.message.downconversion.enable", B, True, "Default of message.downconversion.enable.", None),
        ConfigDef("log.message.timestamp.type", S, "CreateTime", "Default timestamp type.", one_of("CreateTime", "LogAppendTime")),
        ConfigDef("log.message.timestamp.before.max.ms", L, LONG_MAX, "How far a timestamp may be behind.", at_least(0)),
        ConfigDef("log.message.timestamp.after.max.ms", L, LONG_MAX, "How far a timestamp may be ahead.", at_least(0)),
        ConfigDef("log.message.timestamp.difference.max.ms", L, LONG_MAX, "Deprecated default of message.timestamp.difference.max.ms.", at_least(0)),
        ConfigDef("log.local.retention.ms", L, -2, "Local retention time with tiered storage.", at_least(-2)),
        ConfigDef("log.local.retention.bytes", L, -2, "Local retention size with tiered storage.", at_least(-2)),
        ConfigDef("min.insync.replicas", I, 1, "Minimum in-sync replicas for acks=all writes.", at_least(1)),
        ConfigDef("unclean.leader.election.enable", B, False, "Allow out-of-sync replicas to become leader.", None),
        ConfigDef("compression.type", S, "producer", "Default compression of topics.", one_of("uncompressed", "zstd", "lz4", "snappy", "gzip", "producer")),
        ConfigDef("compression.gzip.level", I, -1, "Default gzip level.", None),
        ConfigDef("compression.lz4.level", I, 9, "Default lz4 level.", between(1, 17)),
        ConfigDef("compression.zstd.level", I, 3, "Default zstd level.", between(-131072, 22)),
        ConfigDef("num.network.threads", I, 3, "Accepted for compatibility; kafkapy serves all connections on one event loop.", at_least(1), read_only=True),
        ConfigDef("num.io.threads", I, 8, "Accepted for compatibility; kafkapy serves all connections on one event loop.", at_least(1), read_only=True),
        ConfigDef("num.recovery.threads.per.data.dir", I, 1, "Accepted for compatibility.", at_least(1), read_only=True),
        ConfigDef("offsets.topic.num.partitions", I, 50, "Partitions of __consumer_offsets.", at_least(1), read_only=True),
        ConfigDef("offsets.topic.replication.factor", I, 3, "Replication factor of __consumer_offsets; on a quorum of one voter, capped by the number of registered brokers.", at_least(1), read_only=True),
        ConfigDef("offsets.topic.segment.bytes", I, 104_857_600, "Segment size of __consumer_offsets.", at_least(1), read_only=True),
        ConfigDef("offsets.retention.minutes", I, 10_080, "How long committed offsets of an empty group are kept.", at_least(1), read_only=True),
        ConfigDef("offsets.retention.check.interval.ms", L, 600_000, "How often expired offsets are looked for.", at_least(1), read_only=True),
        ConfigDef("offsets.commit.timeout.ms", I, 5000, "Timeout of an offset commit.", at_least(1), read_only=True),
        ConfigDef("group.initial.rebalance.delay.ms", I, 3000, "Wait for more members before the first rebalance of an empty group.", None, read_only=True),
        ConfigDef("group.min.session.timeout.ms", I, 6000, "Smallest session timeout a member may ask for.", None, read_only=True),
        ConfigDef("group.max.session.timeout.ms", I, 1_800_000, "Largest session timeout a member may ask for.", None, read_only=True),
        ConfigDef("group.max.size", I, INT_MAX, "Largest number of members of a classic group.", at_least(1), read_only=True),
        ConfigDef("group.coordinator.rebalance.protocols", LST, ["classic", "consumer"], "Group protocols the coordinator accepts.", one_of("classic", "consumer", "share", "streams"), read_only=True),
        ConfigDef("group.consumer.session.timeout.ms", I, 45_000, "Session timeout of consumer-protocol members.", at_least(1), read_only=True),
        ConfigDef("group.consumer.heartbeat.interval.ms", I, 5000, "Heartbeat interval of consumer-protocol members.", at_least(1), read_only=True),
        ConfigDef("group.consumer.max.size", I, INT_MAX, "Largest number of members of a consumer-protocol group.", at_least(1), read_only=True),
        ConfigDef("group.consumer.assignors", LST, ["uniform", "range"], "Server-side assignors, the first being the default.", one_of("uniform", "range"), read_only=True),
        ConfigDef("transaction.max.timeout.ms", I, 900_000, "Largest transaction timeout a producer may ask for.", at_least(1), read_only=True),
        ConfigDef("transactional.id.expiration.ms", I, 604_800_000, "How long an idle transactional id is remembered.", at_least(1), read_only=True),
        ConfigDef("transaction.state.log.num.partitions", I, 50, "Partitions of __transaction_state.", at_least(1), read_only=True),
        ConfigDef("transaction.state.log.replication.factor", I, 3, "Replication factor of __transaction_state; on a quorum of one voter, capped by the number of registered brokers.", at_least(1), read_only=True),
        ConfigDef("transaction.state.log.min.isr", I, 2, "min.insync.replicas of __transaction_state.", at_least(1), read_only=True),
        ConfigDef("transaction.state.log.segment.bytes", I, 104_857_600, "Segment size of __transaction_state.", at_least(1), read_only=True),
        ConfigDef("transaction.abort.timed.out.transaction.cleanup.interval.ms", I, 10_000, "How often timed-out transactions are looked for.", at_least(1), read_only=True),
        ConfigDef("transaction.partition.verification.enable", B, True, "Whether a partition leader asks the transaction coordinator (KIP-890) that a transactional producer's first batch belongs to its ongoing transaction before appending it.", None),
        ConfigDef("request.timeout.ms", I, 30_000, "How long a broker waits for another broker to answer its request (transaction markers, transaction verification).", at_least(1), read_only=True),
        # The Raft timeouts of Kafka's QuorumConfig, with its defaults.
        ConfigDef("controller.quorum.election.timeout.ms", I, 1000, "How long a voter waits without a leader before it stands for election (randomised up to twice this).", at_least(1), read_only=True),
        ConfigDef("controller.quorum.fetch.timeout.ms", I, 2000, "How long a follower waits without a successful fetch before it stands for election; 1.5 times this without fetches from a majority makes a leader resign.", at_least(1), read_only=True),
        ConfigDef("controller.quorum.election.backoff.max.ms", I, 1000, "Longest wait before a new election after one failed.", at_least(1), read_only=True),
        ConfigDef("controller.quorum.request.timeout.ms", I, 2000, "How long a Raft request, or a broker's request to the controller, may go unanswered.", at_least(1), read_only=True),
        ConfigDef("controller.quorum.retry.backoff.ms", I, 20, "Wait before retrying a failed Raft request.", at_least(0), read_only=True),
        ConfigDef("metadata.log.max.record.bytes.between.snapshots", L, 20_971_520, "Bytes of metadata log committed since the latest snapshot that make a new snapshot due.", at_least(1), read_only=True),
        ConfigDef("metadata.log.max.snapshot.interval.ms", L, 3_600_000, "Longest wait before a snapshot of committed metadata records not yet in one; 0 turns the timer off.", at_least(0), read_only=True),
        ConfigDef("metadata.max.retention.bytes", L, 104_857_600, "Combined size of the metadata log and snapshots above which old snapshots and the log they cover are deleted; a soft limit (the newest snapshot stays), -1 for none.", None, read_only=True),
        ConfigDef("metadata.max.retention.ms", L, 604_800_000, "Age of a metadata snapshot after which it and the log it covers are deleted; a soft limit (the newest snapshot stays), -1 for none.", None, read_only=True),
        ConfigDef("metadata.log.segment.bytes", I, 1_073_741_824, "Size of a metadata log segment file.", at_least(12), read_only=True),
        ConfigDef("metadata.log.segment.min.bytes", I, 8_388_608, "Internal, for tests: the smallest metadata.log.segment.bytes accepted.", at_least(12), read_only=True),
        ConfigDef("metadata.log.segment.ms", L, 604_800_000, "Time after which a metadata log segment is rolled even if not full.", at_least(1), read_only=True),
        ConfigDef("kafkapy.control.port", I, -1, "kafkapy's own: the port of its fault-injection control channel (HTTP/JSON on 127.0.0.1); -1 turns it off, 0 picks a free port.", at_least(-1), read_only=True),
        ConfigDef("kafkapy.control.token", P, None, "kafkapy's own: the bearer token every control channel request must carry; unset, one is made at start and printed with the channel's address.", read_only=True),
        ConfigDef("kafkapy.log.max.open.segment.files", I, 1000, "kafkapy's own: log files of segments other than the active ones kept open at most, over every partition; the least recently read are closed and opened again on demand.", at_least(1), read_only=True),
        ConfigDef("kafkapy.console.port", I, -1, "kafkapy's own: the port of the web console served beside the broker (on 127.0.0.1, a client of the broker's PLAINTEXT listener); -1 turns it off, 0 picks a free port.", at_least(-1), read_only=True),
        ConfigDef("kafkapy.clock", S, "system", "kafkapy's own: 'system', or 'manual' for a clock that moves only when the control channel advances it.", one_of("system", "manual"), read_only=True),
        # Partition replication, as Kafka's ReplicaManager and ReplicaFetcherThread read them.
        ConfigDef("replica.lag.time.max.ms", L, 30_000, "How long a follower may go without catching up to the leader's log end before it leaves the ISR.", at_least(1), read_only=True),
        ConfigDef("max.incremental.fetch.session.cache.slots", I, 1000, "Incremental fetch sessions (KIP-227) kept at most; kafkapy keeps them for followers.", at_least(0), read_only=True),
        ConfigDef("num.replica.fetchers", I, 1, "Fetchers per source broker that a follower copies partitions with.", at_least(1), read_only=True),
        ConfigDef("replica.fetch.max.bytes", I, 1_048_576, "Bytes a follower fetches per partition at most (at least one batch).", at_least(0), read_only=True),
        ConfigDef("replica.fetch.response.max.bytes", I, 10_485_760, "Bytes a follower's fetch response holds at most (at least one batch).", at_least(0), read_only=True),
        ConfigDef("replica.fetch.wait.max.ms", I, 500, "How long the leader may hold a follower's fetch waiting for data.", at_least(0), read_only=True),
        ConfigDef("replica.fetch.min.bytes", I, 1, "Bytes the leader waits for before it answers a follower's fetch.", at_least(0), read_only=True),
        ConfigDef("replica.fetch.backoff.ms", I, 1000, "Wait of a follower after a failed fetch.", at_least(0), read_only=True),
        ConfigDef("replica.socket.timeout.ms", I, 30_000, "How long a follower waits for a fetch response; more than replica.fetch.wait.max.ms.", at_least(1), read_only=True),
        ConfigDef("replica.high.watermark.checkpoint.interval.ms", L, 5000, "How often high watermarks are written to replication-offset-checkpoint.", at_least(1), read_only=True),
        # Authorization, as Kafka's StandardAuthorizer reads it.
        ConfigDef("authorizer.class.name", S, "", "The authorizer: empty for none, or org.apache.kafka.metadata.authorizer.StandardAuthorizer for Kafka's ACLs kept in the metadata log.", _known_authorizer, read_only=True),
        ConfigDef("super.users", S, None, "Principals allowed everything by the authorizer, separated by ';' (User:admin;User:broker).", _principal_list, read_only=True),
        ConfigDef("allow.everyone.if.no.acl.found", B, False, "With the authorizer on: a resource no ACL mentions is open to every principal.", None, read_only=True),
        ConfigDef("producer.id.expiration.ms", I, 86_400_000, "How long an idle producer id's state is kept.", at_least(1)),
    ]
)

# How a broker key with another unit feeds a millisecond synonym.
_SCALED_SYNONYMS = {
    "log.retention.minutes": _MINUTES,
    "log.retention.hours": _HOURS,
    "log.roll.hours": _HOURS,
    "log.roll.jitter.hours": _HOURS,
}


def _applicable(dynamic: Mapping[str, str]) -> dict[str, object]:
    values: dict[str, object] = {}
    for key, text in dynamic.items():
        d = BROKER_CONFIGS.get(key)
        if d is None or d.read_only:
            continue
        try:
            values[key] = d.parse(text)
        except ConfigError:
            continue
    return values


LISTENER_PREFIX = "listener.name."


def listener_override(key: str) -> tuple[str, str] | None:
    """(listener name, key) of a per-listener override `listener.name.<listener>.<key>`,
    None for any other key."""
    if not key.startswith(LISTENER_PREFIX):
        return None
    listener, dot, rest = key[len(LISTENER_PREFIX):].partition(".")
    return (listener, rest) if dot and listener and rest else None


# Keys a listener may override for one of its SASL mechanisms: listener.name.<l>.<mechanism>.<key>.
PER_MECHANISM_KEYS = ("sasl.jaas.config", "sasl.server.callback.handler.class", "connections.max.reauth.ms")


def _definition(key: str) -> ConfigDef | None:
    """A broker key's definition; a per-listener override of an ssl.* or sasl.* key (or of a
    per-mechanism key) is read as that key."""
    d = BROKER_CONFIGS.get(key)
    if d is None and (override := listener_override(key)) is not None:
        rest = override[1]
        if rest.startswith(("ssl.", "sasl.")):
            d = BROKER_CONFIGS.get(rest)
        else:
            _, dot, mechanism_key = rest.partition(".")
            if dot and mechanism_key in PER_MECHANISM_KEYS:
                d = BROKER_CONFIGS.get(mechanism_key)
    return d


def load_properties(text: str) -> dict[str, str]:
    """Parses a server.properties-style file: key=value or key: value, # and ! comments, and
    as in Java's Properties a line ending in a backslash continued on the next (a JAAS
    configuration is often written over several)."""
    props: dict[str, str] = {}
    pending = ""
    for raw in text.splitlines():
        line = pending + raw.lstrip()
        pending = ""
        if not line or line[0] in "#!":
            continue
        continued = len(line) - len(line.rstrip("\\"))
        if continued % 2:
            pending = line[:-1]
            continue
        _put_property(props, line)
    if pending:
        _put_property(props, pending)
    return props


def _put_property(props: dict[str, str], line: str) -> None:
    parts = re.split(r"\s*[=:]\s*|\s+", line.strip(), maxsplit=1)
    props[parts[0]] = parts[1] if len(parts) > 1 else ""


class BrokerConfig:
    """The broker's configuration: dynamic values (per broker, then cluster-wide) over
    static ones (file and overrides) over Kafka's defaults."""

    def __init__(self, values: Mapping[str, object] | None = None) -> None:
        self.explicit: dict[str, object] = {}
        for key, raw in (values or {}).items():
            d = _definition(key)
            if d is None:
                hint = ": kafkapy takes ssl.* and sasl.* keys per listener" if listener_override(key) else ""
                raise ConfigError(f"Unknown configuration key '{key}'{hint}")
            self.explicit[key] = d.parse(raw)
        self.dynamic_node: dict[str, object] = {}
        self.dynamic_default: dict[str, object] = {}
        if self.get("node.id") is None:
            raise ConfigError("node.id must be set")
        from .kraft_config import validate_roles_and_quorum  # it raises this module's ConfigError

        validate_roles_and_quorum(self)
        from .listener_config import validate_listener_security  # it raises this module's ConfigError

        validate_listener_security(self)
        if self.int("kafkapy.console.port") >= 0:
            from .listener_config import console_listener  # it raises this module's ConfigError

            console_listener(self)
        # KafkaConfig's checks of the replica fetcher's timeouts.
        if self.int("replica.socket.timeout.ms") < self.int("replica.fetch.wait.max.ms"):
            raise ConfigError("replica.socket.timeout.ms should always be at least replica.fetch.wait.max.ms to prevent unnecessary socket timeouts")
        if self.int("replica.fetch.wait.max.ms") > self.int("replica.lag.time.max.ms"):
            raise ConfigError("replica.fetch.wait.max.ms should always be less than or equal to replica.lag.time.max.ms to prevent frequent changes in ISR")
        # KafkaConfig's checks of the connection limits.
        queued = self.int("queued.max.request.bytes")
        if 0 < queued < self.int("socket.request.max.bytes"):
            raise ConfigError("queued.max.request.bytes must be larger or equal to socket.request.max.bytes")
        overrides = self.connections_per_ip_overrides  # parsed here so that a malformed one is refused at start
        if self.int("max.connections.per.ip") == 0 and not overrides:
            raise ConfigError("max.connections.per.ip can be zero only if max.connections.per.ip.overrides is set")

    @classmethod
    def from_sources(cls, properties_file: str | Path | None, overrides: Iterable[str]) -> BrokerConfig:
        values: dict[str, object] = {}
        if properties_file is not None:
            values.update(load_properties(Path(properties_file).read_text()))
        for item in overrides:
            key, sep, value = item.partition("=")
            if not sep:
                raise ConfigError(f"Override '{item}' is not of the form key=value")
            values[key.strip()] = value.strip()
        return cls(values)

    def with_overrides(self, **overrides: object) -> BrokerConfig:
        merged: dict[str, object] = dict(self.explicit)
        merged.update(overrides)
        return BrokerConfig(merged)

    def with_dynamic(self, cluster_default: Mapping[str, str], node: Mapping[str, str]) -> BrokerConfig:
        """This configuration under dynamic broker configs. As Kafka, a stored value it
        cannot apply (unknown, not dynamic, or invalid) is ignored rather than fatal."""
        copy = BrokerConfig.__new__(BrokerConfig)
        copy.explicit = self.explicit
        copy.dynamic_default = _applicable(cluster_default)
        copy.dynamic_node = _applicable(node)
        return copy

    def _layers(self) -> tuple[tuple[ConfigSource, dict[str, object]], ...]:
        """Where values are set, most specific first."""
        return (
            (ConfigSource.DYNAMIC_BROKER_CONFIG, self.dynamic_node),
            (ConfigSource.DYNAMIC_DEFAULT_BROKER_CONFIG, self.dynamic_default),
            (ConfigSource.STATIC_BROKER_CONFIG, self.explicit),
        )

    def lookup(self, key: str) -> tuple[object, ConfigSource] | None:
        """The value set for key and where it was set, or None if it was not set anywhere."""
        for source, layer in self._layers():
            if key in layer:
                return layer[key], source
        return None

    def get(self, key: str) -> object:
        found = self.lookup(key)
        if found is not None:
            return found[0]
        match key:
            case "node.id" if self.lookup("broker.id"):
                return self.get("broker.id")
            case "log.retention.ms":
                return self._first_ms("log.retention.minutes", "log.retention.hours")
            case "log.roll.ms":
                return self._first_ms("log.roll.hours")
            case "log.roll.jitter.ms":
                return self._first_ms("log.roll.jitter.hours")
            case "log.flush.interval.ms":
                return self.get("log.flush.scheduler.interval.ms")
            case "log.dirs":
                return [self.get("log.dir")]
            case "advertised.listeners":
                return self.get("listeners")
        return BROKER_CONFIGS[key].default

    def _first_ms(self, *keys: str) -> int:
        for key in keys:
            found = self.lookup(key)
            if found is not None:
                return int(found[0]) * _SCALED_SYNONYMS[key]  # type: ignore[call-overload]
        last = keys[-1]
        return int(BROKER_CONFIGS[last].default) * _SCALED_SYNONYMS[last]  # type: ignore[call-overload]

    def source_of(self, key: str) -> ConfigSource:
        found = self.lookup(key)
        return found[1] if found else ConfigSource.DEFAULT_CONFIG

    # Typed accessors for what the broker uses most.
    @property
    def node_id(self) -> int:
        return int(self.get("node.id"))  # type: ignore[call-overload]

    @property
    def quorum_voters(self) -> tuple[QuorumVoter, ...]:
        """The voters of controller.quorum.voters. Empty means kafkapy's implicit quorum, this
        node as its single voter."""
        from .kraft_config import parse_quorum_voters  # it raises this module's ConfigError

        return parse_quorum_voters(self.strings("controller.quorum.voters"))

    @property
    def log_dirs(self) -> list[Path]:
        return [Path(p) for p in self.strings("log.dirs")]

    @property
    def connections_per_ip_overrides(self) -> dict[str, int]:
        """max.connections.per.ip.overrides as {host: count}; the host is split off at the
        last colon, as Kafka parses such maps."""
        overrides: dict[str, int] = {}
        for entry in str(self.get("max.connections.per.ip.overrides")).split(","):
            if not entry.strip():
                continue
            host, sep, count = entry.rpartition(":")
            try:
                if not sep or not host.strip():
                    raise ValueError
                overrides[host.strip()] = int(count)
            except ValueError:
                raise ConfigError(f"Invalid value {entry.strip()!r} in max.connections.per.ip.overrides: expected host:count") from None
            if overrides[host.strip()] < 0:
                raise ConfigError(f"Invalid value {entry.strip()!r} in max.connections.per.ip.overrides: the count must be at least 0")
        return overrides

    def int(self, key: str) -> int:
        return int(self.get(key))  # type: ignore[call-overload]

    def bool(self, key: str) -> bool:
        return bool(self.get(key))

    def string_or_none(self, key: str) -> str | None:
        value = self.get(key)
        return None if value is None else str(value)

    def strings(self, key: str) -> list[str]:
        """A LIST config's value (parsing makes it a list of str)."""
        return cast("list[str]", self.get(key))

    def topic_default(self, name: str) -> tuple[object, ConfigSource, str | None]:
        """A topic config's value when the topic does not override it: (value, source, broker key)."""
        d = TOPIC_CONFIGS[name]
        for synonym in d.synonyms:
            found = self.lookup(synonym)
            if found is not None:
                return d.parse(self._in_topic_units(synonym, found[0])), found[1], synonym
        if d.synonyms:
            return d.parse(self.get(d.synonyms[0])), ConfigSource.DEFAULT_CONFIG, d.synonyms[0]
        return d.default, ConfigSource.DEFAULT_CONFIG, None

    @staticmethod
    def _in_topic_units(synonym: str, value: object) -> object:
        return int(value) * _SCALED_SYNONYMS[synonym] if synonym in _SCALED_SYNONYMS else value  # type: ignore[call-overload]

    def broker_synonyms(self, names: Iterable[str]) -> list[tuple[str, object, ConfigSource]]:
        """(key, value, source) of each of these broker keys that has a value, most specific first."""
        out: list[tuple[str, object, ConfigSource]] = []
        for name in names:
            for source, layer in self._layers():
                if name in layer:
                    out.append((name, layer[name], source))
            default = BROKER_CONFIGS[name].default if name in BROKER_CONFIGS else None
            if default is not None:
                out.append((name, default, ConfigSource.DEFAULT_CONFIG))
        return out


def parse_topic_configs(configs: Mapping[str, str | None]) -> dict[str, object]:
    """Validates topic config overrides given as strings; raises ConfigError."""
    parsed: dict[str, object] = {}
    for name, value in configs.items():
        d = TOPIC_CONFIGS.get(name)
        if d is None:
            raise ConfigError(f"Unknown topic config name: {name}")
        if value is None:
            raise ConfigError(f"Null value not supported for topic configs: {name}")
        parsed[name] = d.parse(value)
    return parsed


def effective_topic_configs(overrides: Mapping[str, str], broker: BrokerConfig) -> dict[str, object]:
    """Every topic config's value for a topic with these (string) overrides."""
    values = {name: broker.topic_default(name)[0] for name in TOPIC_CONFIGS}
    values.update(parse_topic_configs(overrides))
    return values
