"""pytest fixtures for code that talks to Kafka (registered through the `pytest11` entry point).

    def test_orders(kafka_bootstrap, kafka_topic):
        Producer({"bootstrap.servers": kafka_bootstrap}).produce(kafka_topic, b"order")

Fixtures: `kafka_broker` (one embedded kafkapy per session), `kafka_bootstrap` (its
HOST:PORT), `kafka_topic` (a fresh, uniquely named topic per test; partitions through
`@pytest.mark.kafka_topic(partitions=3)`), `kafka_admin` (a confluent-kafka AdminClient).
`pytest --kafka-bootstrap HOST:PORT` runs the same tests against another broker.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from typing import Any

import pytest


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption(
        "--kafka-bootstrap", metavar="HOST:PORT", default=None,
        help="use this Kafka-compatible broker instead of an embedded kafkapy",
    )


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "kafka_topic(partitions=1, config=None): how kafka_topic creates its topic")


@pytest.fixture(scope="session")
def kafka_broker(request: pytest.FixtureRequest) -> Iterator[Any]:
    """The embedded broker (None when --kafka-bootstrap names another one)."""
    if request.config.getoption("--kafka-bootstrap"):
        yield None
        return
    from .embedded import Broker

    # data_dir, clock, security, users and mechanism given, so that mypy does not match the overrides against them.
    with Broker(None, clock=None, security="plaintext", users=None, mechanism="PLAIN", **{"group.initial.rebalance.delay.ms": 0}) as broker:
        yield broker


@pytest.fixture(scope="session")
def kafka_bootstrap(request: pytest.FixtureRequest, kafka_broker: Any) -> str:
    return request.config.getoption("--kafka-bootstrap") or kafka_broker.bootstrap_servers


@pytest.fixture(scope="session")
def kafka_admin(kafka_bootstrap: str) -> Any:
    from confluent_kafka.admin import AdminClient

    return AdminClient({"bootstrap.servers": kafka_bootstrap})


@pytest.fixture
def kafka_topic(request: pytest.FixtureRequest, kafka_admin: Any) -> Iterator[str]:
    """A new topic for this test alone, deleted afterwards."""
    from confluent_kafka.admin import NewTopic

    marker = request.node.get_closest_marker("kafka_topic")
    options = marker.kwargs if marker else {}
    name = f"test-{request.node.name[:80].strip('[]').replace('[', '-').replace(']', '')}-{uuid.uuid4().hex[:8]}"
    name = "".join(c if c.isalnum() or c in "._-" else "-" for c in name)
    topic = NewTopic(name, options.get("partitions", 1), config=options.get("config") or {})
    kafka_admin.create_topics([topic])[name].result(30)
    yield name
    kafka_admin.delete_topics([name])[name].result(30)
