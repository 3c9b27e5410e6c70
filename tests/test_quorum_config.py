"""process.roles, node.id, controller.quorum.voters and controller.listener.names: checked
at start as Apache Kafka 4's KRaft validation checks them for combined, broker-only and
controller-only nodes, and what kafkapy cannot run yet (a dynamic quorum, metadata
snapshot keys on a Raft quorum) refused."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import pytest

from kafkapy.client import Client
from kafkapy.config import BrokerConfig, ConfigError
from kafkapy.kraft_config import QuorumVoter, parse_quorum_voters
from kafkapy.listener_config import inter_broker_listener_name
from kafkapy.testing.embedded import Broker

# A combined node whose controller listener is in `listeners`, as Kafka's own
# config/server.properties has it; each case changes some of these keys.
COMBINED = {
    "process.roles": "broker,controller",
    "node.id": "1",
    "listeners": "PLAINTEXT://127.0.0.1:9092,CONTROLLER://127.0.0.1:9093",
    "controller.listener.names": "CONTROLLER",
}
THREE_VOTERS = "1@127.0.0.1:9093,2@127.0.0.1:9094,3@127.0.0.1:9095"


def refusal(changes: Mapping[str, str | None]) -> str:
    """The message of the ConfigError that COMBINED with these changes (None removes a
    key) is refused with."""
    values = {key: value for key, value in {**COMBINED, **changes}.items() if value is not None}
    with pytest.raises(ConfigError) as refused:
        BrokerConfig(values)
    return str(refused.value)


def test_the_default_is_a_combined_node_that_is_its_own_single_voter() -> None:
    config = BrokerConfig()
    assert config.get("process.roles") == ["broker", "controller"]
    assert config.quorum_voters == ()
    # The implicit voter has no controller endpoint: `listeners` needs no controller listener.
    assert BrokerConfig({"listeners": "PLAINTEXT://127.0.0.1:0"}).quorum_voters == ()


def test_a_single_explicit_voter_naming_this_node_is_accepted() -> None:
    config = BrokerConfig({**COMBINED, "controller.quorum.voters": "1@127.0.0.1:9093"})
    assert config.quorum_voters == (QuorumVoter(1, "127.0.0.1", 9093),)
    reordered = BrokerConfig({**COMBINED, "process.roles": "controller,broker", "node.id": "7",
                              "controller.quorum.voters": "7@[::1]:9093"})
    assert reordered.quorum_voters == (QuorumVoter(7, "::1", 9093),)
    assert str(reordered.quorum_voters[0]) == "7@[::1]:9093"


@pytest.mark.timeout(60)
def test_a_broker_with_one_explicit_voter_serves_as_the_quorum_of_one(tmp_path: Path) -> None:
    overrides: dict[str, Any] = {**COMBINED, "node.id": "3", "controller.quorum.voters": "3@127.0.0.1:9093",
                                 "listeners": "PLAINTEXT://127.0.0.1:0,CONTROLLER://127.0.0.1:9093"}
    with Broker(tmp_path, **overrides) as broker:
        client = Client(broker.bootstrap_servers)
        try:
            cluster = client.metadata()
        finally:
            client.close()
        assert cluster.controller == 3
        assert cluster.brokers == {3: ("127.0.0.1", broker.port)}


def test_voters_parse_as_kafka_reads_them() -> None:
    assert parse_quorum_voters(["1@localhost:9093", "2@kafka-2.example:19093", "+3@10.0.0.3:9093"]) == (
        QuorumVoter(1, "localhost", 9093),
        QuorumVoter(2, "kafka-2.example", 19093),
        QuorumVoter(3, "10.0.0.3", 9093),
    )


FORM = "Each entry should be in the form `{id}@{host}:{port}`."


@pytest.mark.parametrize(
    ("entries", "message"),
    [
        (["1"], f"Invalid configuration value for controller.quorum.voters. {FORM}"),
        (["1@h:1@h:2"], f"Invalid configuration value for controller.quorum.voters. {FORM}"),
        # Java's split drops the trailing empty string, so "1@" has no address part at all.
        (["1@"], f"Invalid configuration value for controller.quorum.voters. {FORM}"),
        (["one@localhost:9093"], "Failed to parse voter ID as an integer from one"),
        (["99999999999@localhost:9093"], "Failed to parse voter ID as an integer from 99999999999"),
        (["1@localhost"], f"Failed to parse host name from entry 1@localhost for the configuration controller.quorum.voters. {FORM}"),
        (["1@:9093"], f"Failed to parse host name from entry 1@:9093 for the configuration controller.quorum.voters. {FORM}"),
        (["1@local host:9093"], f"Failed to parse host name from entry 1@local host:9093 for the configuration controller.quorum.voters. {FORM}"),
        (["1@localhost:70000"], f"Failed to parse host port from entry 1@localhost:70000 for the configuration controller.quorum.voters. {FORM}"),
        (["1@0.0.0.0:9093"], "Host string (0.0.0.0) is not routeable"),
        (["1@a:9093", "1@b:9093"], "Duplicate voter id 1 in controller.quorum.voters: 1@b:9093 and 1@a:9093"),
    ],
)
def test_bad_voter_entries_are_refused(entries: list[str], message: str) -> None:
    with pytest.raises(ConfigError) as refused:
        parse_quorum_voters(entries)
    assert str(refused.value) == message
    # The same refusal at start, through the config key.
    assert refusal({"controller.quorum.voters": ",".join(entries)}) == message


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"process.roles": "broker,broker,controller"},
         "Duplicate role names found in `process.roles`: [broker, broker, controller]"),
        ({"process.roles": "broker,zookeeper"},
         "Invalid value broker,zookeeper for configuration process.roles: Value must be one of ['broker', 'controller']"),
        ({"process.roles": ""}, "process.roles must be set: kafkapy runs in KRaft mode only, as Kafka 4 does"),
        ({"node.id": None, "broker.id": "-1"},
         "Missing configuration `node.id` which is required when `process.roles` is defined (i.e. when running in KRaft mode)."),
        # A controller must be one of the voters.
        ({"controller.quorum.voters": "2@127.0.0.1:9093"},
         "If process.roles contains the 'controller' role, the node id 1 must be included in the set of voters "
         "controller.quorum.voters={2}"),
        # With an explicit quorum, the controller listener must be one of `listeners`.
        ({"controller.quorum.voters": "1@127.0.0.1:9093", "listeners": "PLAINTEXT://127.0.0.1:9092"},
         "controller.listener.names must contain at least one value appearing in the 'listeners' configuration "
         "when running the KRaft controller role"),
        ({"controller.quorum.voters": "1@127.0.0.1:9093", "controller.listener.names": "CONTROLLER,CONTROLLER2"},
         "controller.listener.names must only contain values appearing in the 'listeners' configuration "
         "when running the KRaft controller role"),
        ({"controller.listener.names": ""},
         "controller.listener.names must contain at least one value appearing in the 'listeners' configuration "
         "when running the KRaft controller role"),
        ({"listeners": "CONTROLLER://127.0.0.1:9093"},
         "There must be at least one broker advertised listener. Perhaps all listeners appear in controller.listener.names?"),
    ],
)
def test_kafkas_kraft_checks(changes: dict[str, str | None], message: str) -> None:
    assert refusal(changes) == message


def test_a_broker_only_node_is_checked_as_kafka_does() -> None:
    broker_only = {"process.roles": "broker", "node.id": "4", "listeners": "PLAINTEXT://127.0.0.1:9092"}
    assert refusal(broker_only) == (
        "If using process.roles, either controller.quorum.bootstrap.servers must contain the set of bootstrap "
        "controllers or controller.quorum.voters must contain a parseable set of controllers.")
    assert refusal({**broker_only, "controller.quorum.voters": "4@127.0.0.1:9093"}) == (
        "If process.roles contains just the 'broker' role, the node id 4 must not be included in the set of voters "
        "controller.quorum.voters={4}")
    assert refusal({**broker_only, "listeners": COMBINED["listeners"], "controller.quorum.voters": "1@127.0.0.1:9093"}) == (
        "controller.listener.names must not contain a value appearing in the 'listeners' configuration "
        "when running KRaft with just the broker role")
    # Valid: it follows the quorum of the voters named, as an observer.
    config = BrokerConfig({**broker_only, "controller.quorum.voters": "1@127.0.0.1:9093"})
    assert [v.node_id for v in config.quorum_voters] == [1]
    # It keeps metadata snapshots of its own, so their keys are accepted there too.
    observer = BrokerConfig({**broker_only, "controller.quorum.voters": "1@127.0.0.1:9093", "metadata.max.retention.ms": "1"})
    assert observer.int("metadata.max.retention.ms") == 1


CONTROLLER_ONLY = {"process.roles": "controller", "node.id": "1", "controller.quorum.voters": THREE_VOTERS,
                   "listeners": "CONTROLLER://127.0.0.1:9093"}


def test_a_controller_only_node_with_only_its_controller_listener_is_accepted() -> None:
    config = BrokerConfig(CONTROLLER_ONLY)
    assert config.get("process.roles") == ["controller"]
    assert [v.node_id for v in config.quorum_voters] == [1, 2, 3]
    # Several controller listeners, all named in controller.listener.names, are as good.
    two = BrokerConfig({**CONTROLLER_ONLY, "listeners": "CONTROLLER://127.0.0.1:9093,CONTROLLER2://127.0.0.1:9094",
                        "controller.listener.names": "CONTROLLER,CONTROLLER2"})
    assert two.strings("controller.listener.names") == ["CONTROLLER", "CONTROLLER2"]
    # A quorum of one controller (its brokers elsewhere) is a quorum all the same.
    assert BrokerConfig({**CONTROLLER_ONLY, "controller.quorum.voters": "1@127.0.0.1:9093"}).quorum_voters[0].node_id == 1
    # It keeps its metadata log as every node does: snapshots and retention.
    assert BrokerConfig({**CONTROLLER_ONLY, "metadata.max.retention.ms": "1000"}).int("metadata.max.retention.ms") == 1000


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        # A broker listener on a controller-only node, beside the controller's or alone.
        ({"listeners": "PLAINTEXT://127.0.0.1:9092,CONTROLLER://127.0.0.1:9093"},
         "The listeners config must only contain KRaft controller listeners from controller.listener.names "
         "when process.roles=controller"),
        ({"listeners": "PLAINTEXT://127.0.0.1:9092"},
         "The listeners config must only contain KRaft controller listeners from controller.listener.names "
         "when process.roles=controller"),
        ({"inter.broker.listener.name": "CONTROLLER"},
         "controller.listener.names must not contain an explicitly set inter.broker.listener.name configuration "
         "value when process.roles=controller"),
        # It must be a voter: it has no other way into the quorum.
        ({"node.id": "4"},
         "If process.roles contains the 'controller' role, the node id 4 must be included in the set of voters "
         "controller.quorum.voters={1, 2, 3}"),
        ({"controller.quorum.voters": None},
         "If using process.roles, either controller.quorum.bootstrap.servers must contain the set of bootstrap "
         "controllers or controller.quorum.voters must contain a parseable set of controllers."),
        ({"listeners": ""},
         "controller.listener.names must contain at least one value appearing in the 'listeners' configuration "
         "when running the KRaft controller role"),
        ({"controller.listener.names": "CONTROLLER,CONTROLLER2"},
         "controller.listener.names must only contain values appearing in the 'listeners' configuration "
         "when running the KRaft controller role"),
    ],
)
def test_a_controller_only_node_is_checked_as_kafka_does(changes: dict[str, str | None], message: str) -> None:
    values = {key: value for key, value in {**CONTROLLER_ONLY, **changes}.items() if value is not None}
    with pytest.raises(ConfigError) as refused:
        BrokerConfig(values)
    assert str(refused.value) == message


def test_three_voters_are_a_cluster() -> None:
    voters = {"controller.quorum.voters": THREE_VOTERS, "listeners": "PLAINTEXT://127.0.0.1:9092,CONTROLLER://127.0.0.1:9093"}
    assert [v.node_id for v in BrokerConfig(voters).quorum_voters] == [1, 2, 3]


def test_a_dynamic_quorum_is_refused() -> None:
    assert refusal({"controller.quorum.bootstrap.servers": "127.0.0.1:9093"}) == (
        "kafkapy does not run a dynamic quorum (controller.quorum.bootstrap.servers, KIP-853) yet: "
        "remove it, and leave controller.quorum.voters unset or name only this node in it")


@pytest.mark.timeout(60)
def test_the_kafkapy_command_refuses_a_cluster_member_whose_storage_is_not_formatted(tmp_path: Path) -> None:
    data = tmp_path / "data"
    properties = tmp_path / "server.properties"
    properties.write_text(
        "process.roles=broker,controller\nnode.id=1\n"
        f"controller.quorum.voters={THREE_VOTERS}\n"
        "listeners=PLAINTEXT://127.0.0.1:0,CONTROLLER://127.0.0.1:0\ncontroller.listener.names=CONTROLLER\n"
        f"log.dirs={data}\n"
    )
    # A refused config exits before it binds or serves; the timeout bounds a regression
    # that would start a broker instead.
    result = subprocess.run([sys.executable, "-m", "kafkapy", str(properties)],
                            capture_output=True, text=True, timeout=30)
    assert result.returncode == 2, result.stderr
    assert result.stderr.splitlines()[-1].startswith(
        "kafkapy: configuration error: the log directories are not formatted: the nodes of a cluster share one cluster id")
    assert not data.exists(), "nothing is written before the storage is formatted"


@pytest.mark.parametrize("key", [
    "metadata.log.max.record.bytes.between.snapshots", "metadata.log.max.snapshot.interval.ms",
    "metadata.max.retention.bytes", "metadata.max.retention.ms",
])
def test_metadata_snapshot_keys_are_kept_by_a_single_voter_and_a_cluster_alike(key: str) -> None:
    assert BrokerConfig({**COMBINED, "controller.quorum.voters": THREE_VOTERS, key: "1000"}).int(key) == 1000
    assert BrokerConfig({**COMBINED, "controller.quorum.voters": "1@127.0.0.1:9093", key: "1000"}).int(key) == 1000


def test_a_metadata_log_segment_below_the_minimum_is_refused_as_kafka_does() -> None:
    assert refusal({"metadata.log.segment.bytes": "1000"}) == "Cannot set metadata.log.segment.bytes below 8388608: 1000"
    # The internal minimum lowers it, for tests.
    config = BrokerConfig({**COMBINED, "metadata.log.segment.bytes": "1000", "metadata.log.segment.min.bytes": "1000"})
    assert config.int("metadata.log.segment.bytes") == 1000


TWO_BROKER_LISTENERS = {
    "controller.quorum.voters": THREE_VOTERS,
    "listeners": "PLAINTEXT://127.0.0.1:9092,INTERNAL://127.0.0.1:9094,CONTROLLER://127.0.0.1:9093",
    "listener.security.protocol.map": "PLAINTEXT:PLAINTEXT,INTERNAL:SSL,CONTROLLER:PLAINTEXT",
    "listener.name.internal.ssl.keystore.type": "PEM", "listener.name.internal.ssl.keystore.location": "/k.pem",
}


@pytest.mark.parametrize(("keys", "listener"), [
    ({}, "PLAINTEXT"),  # Kafka's default: security.inter.broker.protocol=PLAINTEXT names its listener
    ({"inter.broker.listener.name": "INTERNAL"}, "INTERNAL"),  # not the first broker listener
    ({"listeners": "INTERNAL://127.0.0.1:9094,PLAINTEXT://127.0.0.1:9092,CONTROLLER://127.0.0.1:9093"}, "PLAINTEXT"),
    ({"security.inter.broker.protocol": "PLAINTEXT"}, "PLAINTEXT"),
])
def test_the_inter_broker_listener_is_the_one_kafka_picks(keys: dict[str, str], listener: str) -> None:
    assert inter_broker_listener_name(BrokerConfig({**TWO_BROKER_LISTENERS, **keys})) == listener


@pytest.mark.parametrize(("keys", "message"), [
    ({"inter.broker.listener.name": "CONTROLLER"},
     "inter.broker.listener.name must be a listener name defined in advertised.listeners. The valid options based on "
     "currently configured listeners are PLAINTEXT,INTERNAL"),
    ({"inter.broker.listener.name": "EXTERNAL"},
     "Listener with name EXTERNAL defined in inter.broker.listener.name not found in listener.security.protocol.map."),
    # SSL names a listener called SSL, which this node does not have (INTERNAL is its SSL listener).
    ({"security.inter.broker.protocol": "SSL"},
     "inter.broker.listener.name must be a listener name defined in advertised.listeners. The valid options based on "
     "currently configured listeners are PLAINTEXT,INTERNAL"),
    ({"security.inter.broker.protocol": "PLAINTEXT", "inter.broker.listener.name": "INTERNAL"},
     "Only one of inter.broker.listener.name and security.inter.broker.protocol should be set."),
    # What a broker registers is what it listens on.
    ({"advertised.listeners": "PLAINTEXT://kafka-1.example:9092,EXTERNAL://kafka-1.example:9096",
      "listener.security.protocol.map": "PLAINTEXT:PLAINTEXT,INTERNAL:SSL,EXTERNAL:PLAINTEXT,CONTROLLER:PLAINTEXT"},
     "advertised.listeners listener names must be equal to or a subset of the ones defined in listeners. Found "
     "PLAINTEXT,EXTERNAL. The valid options based on the current configuration are PLAINTEXT,INTERNAL,CONTROLLER"),
])
def test_an_inter_broker_listener_that_is_not_a_broker_listener_is_refused(keys: dict[str, str], message: str) -> None:
    with pytest.raises(ConfigError) as refused:
        BrokerConfig({**TWO_BROKER_LISTENERS, **keys})
    assert str(refused.value) == message
