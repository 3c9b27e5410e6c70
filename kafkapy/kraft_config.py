"""KRaft's start-up checks of a node's roles, listeners and metadata quorum, as Apache
Kafka 4's KafkaConfig.validateValues and QuorumConfig make them, and kafkapy's refusal
of what it does not run yet."""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass
from typing import TYPE_CHECKING

from .config import INT_MAX, ConfigError

if TYPE_CHECKING:
    from .config import BrokerConfig


@dataclass(frozen=True)
class Listener:
    name: str
    host: str
    port: int


def parse_listeners(values: list[str]) -> list[Listener]:
    listeners = []
    for value in values:
        name, sep, address = value.partition("://")
        host, colon, port = address.rpartition(":")
        if not sep or not colon or not port.isdigit():
            raise ConfigError(f"Invalid listener '{value}': expected NAME://host:port")
        listeners.append(Listener(name, host.strip("[]"), int(port)))
    return listeners


@dataclass(frozen=True)
class QuorumVoter:
    """One entry of controller.quorum.voters: a controller of the metadata quorum."""

    node_id: int
    host: str
    port: int

    def __str__(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"{self.node_id}@{host}:{self.port}"


_VOTERS = "controller.quorum.voters"
_VOTER_FORM = "Each entry should be in the form `{id}@{host}:{port}`."
# Kafka's host:port pattern (Utils.getHost/getPort): an optional scheme, a host of these
# characters, optionally in brackets for IPv6, and a port of digits.
_HOST_PORT = re.compile(r"(?:[0-9a-zA-Z\-%._]*://)?\[?([0-9a-zA-Z\-%._:]*)]?:([0-9]+)")
_JAVA_INT = re.compile(r"[+-]?[0-9]+")


def parse_quorum_voters(entries: Iterable[str]) -> tuple[QuorumVoter, ...]:
    """controller.quorum.voters as Kafka's QuorumConfig.parseVoterConnections reads it, with
    its messages. Two things Kafka lets through are refused: a repeated id (Kafka keeps the
    last entry, so the other is silently dropped) and an empty host."""
    voters: dict[int, QuorumVoter] = {}
    for entry in entries:
        parts = entry.split("@")
        # Java's String.split drops trailing empty strings: "1@" is one part, not two.
        while len(parts) > 1 and not parts[-1]:
            parts.pop()
        if len(parts) != 2:
            raise ConfigError(f"Invalid configuration value for {_VOTERS}. {_VOTER_FORM}")
        id_text, address = parts
        if not _JAVA_INT.fullmatch(id_text) or not -(2**31) <= int(id_text) <= INT_MAX:
            raise ConfigError(f"Failed to parse voter ID as an integer from {id_text}")
        match = _HOST_PORT.fullmatch(address)
        if match is None or not match.group(1):
            raise ConfigError(f"Failed to parse host name from entry {entry} for the configuration {_VOTERS}. {_VOTER_FORM}")
        host, port = match.group(1), int(match.group(2))
        if port > 65535:
            raise ConfigError(f"Failed to parse host port from entry {entry} for the configuration {_VOTERS}. {_VOTER_FORM}")
        # Kafka requires routable voter addresses when it starts its Raft client.
        if host == "0.0.0.0":
            raise ConfigError(f"Host string ({host}) is not routeable")
        node_id = int(id_text)
        if node_id in voters:
            raise ConfigError(f"Duplicate voter id {node_id} in {_VOTERS}: {entry} and {voters[node_id]}")
        voters[node_id] = QuorumVoter(node_id, host, port)
    return tuple(voters.values())


def validate_roles_and_quorum(config: BrokerConfig) -> None:
    """KRaft's start-up checks of process.roles, node.id, the quorum and the controller
    listeners (KafkaConfig.validateValues and parseProcessRoles in Apache Kafka 4), then
    kafkapy's refusal of what it cannot run yet: a dynamic quorum."""
    roles: list[str] = config.get("process.roles")  # type: ignore[assignment]
    if len(set(roles)) != len(roles):
        raise ConfigError(f"Duplicate role names found in `process.roles`: [{', '.join(roles)}]")
    if not roles:
        raise ConfigError("process.roles must be set: kafkapy runs in KRaft mode only, as Kafka 4 does")
    node_id = config.node_id
    if node_id < 0:
        raise ConfigError("Missing configuration `node.id` which is required when `process.roles` is defined "
                          "(i.e. when running in KRaft mode).")
    voters = config.quorum_voters
    voter_ids = "{" + ", ".join(str(v.node_id) for v in voters) + "}"
    bootstrap = config.get("controller.quorum.bootstrap.servers")
    controller_names: list[str] = config.get("controller.listener.names")  # type: ignore[assignment]
    listener_names = [lst.name for lst in parse_listeners(config.get("listeners"))]  # type: ignore[arg-type]
    is_broker, is_controller = "broker" in roles, "controller" in roles
    # kafkapy's one departure from Kafka: with no voters and no bootstrap servers, a
    # combined node is the single voter of its own quorum (Kafka requires one or the other).
    implicit_single_voter = is_broker and is_controller and not voters and not bootstrap

    if not voters and not bootstrap and not implicit_single_voter:
        raise ConfigError(f"If using process.roles, either controller.quorum.bootstrap.servers must contain the set "
                          f"of bootstrap controllers or {_VOTERS} must contain a parseable set of controllers.")
    if is_controller:
        if not is_broker:
            _check_controller_only_listeners(config, controller_names, listener_names)
        if voters and all(v.node_id != node_id for v in voters):
            raise ConfigError(f"If process.roles contains the 'controller' role, the node id {node_id} must be "
                              f"included in the set of voters {_VOTERS}={voter_ids}")
        # The implicit voter has no controller endpoint, so its controller listener need
        # not be in `listeners`; an explicit quorum is held to Kafka's rules.
        in_listeners = [name for name in controller_names if name in listener_names]
        if not controller_names or (not implicit_single_voter and not in_listeners):
            raise ConfigError("controller.listener.names must contain at least one value appearing in the "
                              "'listeners' configuration when running the KRaft controller role")
        if not implicit_single_voter and len(in_listeners) != len(controller_names):
            raise ConfigError("controller.listener.names must only contain values appearing in the "
                              "'listeners' configuration when running the KRaft controller role")
    else:
        if any(v.node_id == node_id for v in voters):
            raise ConfigError(f"If process.roles contains just the 'broker' role, the node id {node_id} must not be "
                              f"included in the set of voters {_VOTERS}={voter_ids}")
        if not controller_names:
            raise ConfigError("controller.listener.names must contain at least one value when running KRaft with "
                              "just the broker role")
        if any(name in controller_names for name in listener_names):
            raise ConfigError("controller.listener.names must not contain a value appearing in the 'listeners' "
                              "configuration when running KRaft with just the broker role")
    if is_broker:
        advertised = parse_listeners(config.get("advertised.listeners"))  # type: ignore[arg-type]
        if all(lst.name in controller_names for lst in advertised):
            raise ConfigError("There must be at least one broker advertised listener. "
                              "Perhaps all listeners appear in controller.listener.names?")

    segment_bytes, segment_min_bytes = config.int("metadata.log.segment.bytes"), config.int("metadata.log.segment.min.bytes")
    if segment_bytes < segment_min_bytes:
        raise ConfigError(f"Cannot set metadata.log.segment.bytes below {segment_min_bytes}: {segment_bytes}")

    # What Kafka would run but kafkapy cannot yet.
    if bootstrap:
        raise ConfigError("kafkapy does not run a dynamic quorum (controller.quorum.bootstrap.servers, KIP-853) yet: "
                          f"remove it, and leave {_VOTERS} unset or name only this node in it")


def _check_controller_only_listeners(config: BrokerConfig, controller_names: list[str], listener_names: list[str]) -> None:
    """A controller-only node opens its controller listeners and nothing else (Kafka's
    ControllerServer has no broker listener)."""
    if any(name not in controller_names for name in listener_names):
        raise ConfigError("The listeners config must only contain KRaft controller listeners from "
                          "controller.listener.names when process.roles=controller")
    inter_broker = config.get("inter.broker.listener.name")
    if inter_broker is not None and inter_broker in controller_names:
        raise ConfigError("controller.listener.names must not contain an explicitly set inter.broker.listener.name "
                          "configuration value when process.roles=controller")
