"""Which endpoint of a broker registered with several listeners a response gives, and where
the other brokers reach it: the one of the request's listener, or of the inter-broker
listener, as Kafka's metadata cache picks them."""

from __future__ import annotations

import uuid

from kio.schema.errors import ErrorCode

from kafkapy.broker.broker_peers import peer_address
from kafkapy.config import BrokerConfig
from kafkapy.handlers.metadata import alive_endpoint, brokers, listener_leader_error
from kafkapy.kraft_config import parse_listeners
from kafkapy.listener_config import security_protocol_id
from kafkapy.metadata.brokers import BrokerLifecycle
from kafkapy.metadata.image import Endpoint, MetadataImage

# Broker 1 serves PLAINTEXT (internal) and SASL_SSL (external); broker 2 only PLAINTEXT.
ENDPOINTS = {
    1: (Endpoint("PLAINTEXT", "10.0.0.1", 9092, 0), Endpoint("SASL_SSL", "kafka-1.example", 9094, 3)),
    2: (Endpoint("PLAINTEXT", "10.0.0.2", 9092, 0),),
}


def registered(fenced: frozenset[int] = frozenset()) -> MetadataImage:
    """An image with both brokers registered through the controller's own records."""
    lifecycle = BrokerLifecycle(9000)
    image = MetadataImage()
    for broker_id, endpoints in ENDPOINTS.items():
        _, records = lifecycle.register(image, 0, image.offset + 1, broker_id, uuid.uuid4(), endpoints, None)
        image = image.apply(records, image.offset + len(records))
        answer, records = lifecycle.heartbeat(image, 0, broker_id, image.brokers[broker_id].epoch, image.offset,
                                              want_fence=broker_id in fenced, want_shut_down=False)
        image = image.apply(records, image.offset + len(records))
    return image


def test_the_registration_keeps_every_listener_and_a_snapshot_too() -> None:
    image = registered()
    assert image.brokers[1].endpoints == ENDPOINTS[1]
    rebuilt = MetadataImage().apply(image.to_records(), image.offset)
    assert rebuilt.brokers[1].endpoints == ENDPOINTS[1]


def test_metadata_lists_each_broker_at_the_requests_listener_and_leaves_out_those_without_it() -> None:
    image = registered()
    assert [(b["node_id"], b["host"], b["port"]) for b in brokers(image, "PLAINTEXT")] == [
        (1, "10.0.0.1", 9092), (2, "10.0.0.2", 9092)]
    assert [(b["node_id"], b["host"], b["port"]) for b in brokers(image, "SASL_SSL")] == [(1, "kafka-1.example", 9094)]


def test_a_fenced_broker_has_no_endpoint_for_clients() -> None:
    image = registered(fenced=frozenset({2}))
    assert alive_endpoint(image, 2, "PLAINTEXT") is None
    assert [b["node_id"] for b in brokers(image, "PLAINTEXT")] == [1]
    assert alive_endpoint(image, 1, "SASL_SSL") == ENDPOINTS[1][1]


def test_a_leader_without_the_requests_listener_is_not_given_to_the_client() -> None:
    image = registered()
    assert listener_leader_error(image, "SASL_SSL", 12)(1) == ErrorCode.none
    assert listener_leader_error(image, "SASL_SSL", 12)(2) == ErrorCode.listener_not_found
    assert listener_leader_error(image, "SASL_SSL", 5)(2) == ErrorCode.leader_not_available
    # A leader that is not registered (or none, -1) is the election's business, not the listener's.
    assert listener_leader_error(image, "SASL_SSL", 12)(-1) == ErrorCode.none


def test_brokers_reach_each_other_at_the_inter_broker_listeners_endpoint() -> None:
    image = registered()
    assert peer_address(image, 1, "SASL_SSL", {}) == ("kafka-1.example", 9094)
    assert peer_address(image, 1, "PLAINTEXT", {}) == ("10.0.0.1", 9092)
    assert peer_address(image, 2, "SASL_SSL", {}) is None  # registered without it
    assert peer_address(image, 1, "PLAINTEXT", {1: ("127.0.0.1", 4000)}) == ("127.0.0.1", 4000)


def test_a_registration_carries_the_security_protocol_of_each_listener() -> None:
    config = BrokerConfig({"listeners": "PLAINTEXT://127.0.0.1:9092,CLIENTS://127.0.0.1:9094",
                           "listener.security.protocol.map": "PLAINTEXT:PLAINTEXT,CLIENTS:SASL_PLAINTEXT,CONTROLLER:PLAINTEXT",
                           "sasl.enabled.mechanisms": "PLAIN",
                           "sasl.jaas.config": 'org.apache.kafka.common.security.plain.PlainLoginModule required user_a="b";'})
    assert [security_protocol_id(config, lst) for lst in parse_listeners(config.strings("listeners"))] == [0, 2]
