"""Compatibility tests: real clients against a real broker over real sockets.

`pytest compat_tests --bootstrap HOST:PORT` runs the scenarios against that broker and
skips the tests marked kafkapy_internals, which start and break kafkapy brokers of their
own; without --bootstrap, kafkapy brokers are started on 127.0.0.1. `--security FILE`
gives the clients the settings of a secured --bootstrap broker, as `kafkapy compat` does.
"""

from __future__ import annotations

import uuid

import pytest

from kafkapy.compat.adapters import ADAPTERS, Client
from kafkapy.compat.runner import EmbeddedBroker, ExternalBroker
from kafkapy.compat.security import PLAINTEXT, ClientSecurity
from kafkapy.testing.process import BrokerProcess


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption("--bootstrap", metavar="HOST:PORT", help="run the compatibility scenarios against this broker")
    parser.addoption("--security", metavar="FILE", help="the clients' settings for a secured --bootstrap broker "
                                                        "(a properties file of librdkafka's keys, as kafkapy compat takes)")


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "kafkapy_internals: starts, restarts or breaks kafkapy brokers; skipped with --bootstrap")


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    bootstrap = config.getoption("--bootstrap")
    if bootstrap:
        skip = pytest.mark.skip(reason=f"needs kafkapy's internals; --bootstrap {bootstrap} is another broker")
        for item in items:
            if item.get_closest_marker("kafkapy_internals"):
                item.add_marker(skip)


@pytest.fixture(scope="session")
def compat_target(request: pytest.FixtureRequest):
    """The broker the scenarios run against: --bootstrap's, or kafkapy brokers of the suite's own."""
    bootstrap, security = request.config.getoption("--bootstrap"), request.config.getoption("--security")
    if security and not bootstrap:
        raise pytest.UsageError("--security configures the clients of a --bootstrap broker")
    external = ExternalBroker(bootstrap, ClientSecurity.read(security) if security else PLAINTEXT) if bootstrap else None
    with external or EmbeddedBroker() as target:
        yield target


@pytest.fixture(scope="session")
def broker(tmp_path_factory: pytest.TempPathFactory):
    """One kafkapy shared by the kafkapy_internals tests that only need a working broker."""
    with BrokerProcess(tmp_path_factory.mktemp("broker")) as process:
        yield process


@pytest.fixture
def own_broker(tmp_path):
    """A kafkapy of the test's own, for tests that restart or kill it; started by the test."""
    process = BrokerProcess(tmp_path / "data")
    yield process
    if process.process is not None:
        process.kill()


@pytest.fixture
def topic_name() -> str:
    return f"t-{uuid.uuid4().hex[:12]}"


@pytest.fixture(params=[a for a in ADAPTERS.values() if not a.pinned and a.reads_everything and a.installed()],
                ids=lambda adapter: adapter.name)
def client_class(request: pytest.FixtureRequest) -> type[Client]:
    """Each installed client library that reads records back whole (headers included), at
    its newest protocol level, in turn."""
    return request.param.load()
