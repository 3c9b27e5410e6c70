"""Compatibility tests: real clients against a real kafkapy process over real sockets."""

from __future__ import annotations

import uuid

import pytest
from clients import CLIENTS, Client

from kafkapy.testing.process import BrokerProcess


@pytest.fixture(scope="session")
def broker(tmp_path_factory: pytest.TempPathFactory):
    """One broker shared by the tests that only need a working broker."""
    with BrokerProcess(tmp_path_factory.mktemp("broker")) as process:
        yield process


@pytest.fixture
def own_broker(tmp_path):
    """A broker of the test's own, for tests that restart or kill it; started by the test."""
    process = BrokerProcess(tmp_path / "data")
    yield process
    if process.process is not None:
        process.kill()


@pytest.fixture
def topic_name() -> str:
    return f"t-{uuid.uuid4().hex[:12]}"


@pytest.fixture(params=CLIENTS, ids=lambda cls: cls.name)
def client_class(request: pytest.FixtureRequest) -> type[Client]:
    """Each client library in turn, for scenarios that are the same with both."""
    return request.param


@pytest.fixture
def client(client_class: type[Client], broker: BrokerProcess) -> Client:
    return client_class(broker.bootstrap)
