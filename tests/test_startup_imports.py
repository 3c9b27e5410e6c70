"""What a broker imports to start and answer its first requests, and what it leaves for
first use: each test runs a fresh interpreter, since this process has imported it all."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

# Imported once a client needs them, never to start and answer Metadata.
LEFT_FOR_FIRST_USE = (
    "hypothesis",
    "kafkapy.coordinator.group_coordinator",
    "kafkapy.schema.group_coordinator",
    "kafkapy.coordinator.transaction_coordinator",
    "kafkapy.schema.transaction_coordinator",
    "kafkapy.server.tls",
    "kafkapy.log.cleaner",
    "cramjam",
    "zstandard",
    "kafkapy.handlers.groups",
    "kafkapy.handlers.txn",
    "kafkapy.handlers.acls",
    "kafkapy.console",
    "kafkapy.compat",
)

_FRESH_BROKER = """
import json, socket, struct, sys
from kafkapy import Broker

def ask(port, frame):
    with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
        sock.sendall(frame)
        size = struct.unpack(">i", sock.recv(4, socket.MSG_WAITALL))[0]
        return sock.recv(size, socket.MSG_WAITALL)

def loaded():
    return sorted(name for name in json.loads(sys.argv[1]) if name in sys.modules)

with Broker() as broker:
    from kio.schema.find_coordinator.v4.request import FindCoordinatorRequest
    from kio.schema.metadata.v12.request import MetadataRequest
    from kafkapy.wire.protocol import encode_request
    ask(broker.port, encode_request(MetadataRequest(topics=(), allow_auto_topic_creation=False,
                                                    include_topic_authorized_operations=False), 1))
    after_metadata = loaded()
    ask(broker.port, encode_request(FindCoordinatorRequest(key_type=0, coordinator_keys=("a-group",)), 2))
    print(json.dumps({"after_metadata": after_metadata, "after_find_coordinator": loaded()}))
"""


def _fresh(code: str, *args: str) -> str:
    done = subprocess.run([sys.executable, "-c", code, *args], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    return done.stdout.strip().splitlines()[-1]


@pytest.mark.timeout(90)
def test_a_fresh_broker_answers_metadata_without_what_it_loads_on_first_use() -> None:
    loaded = json.loads(_fresh(_FRESH_BROKER, json.dumps(LEFT_FOR_FIRST_USE)))
    assert loaded["after_metadata"] == []
    # Looking for a group's coordinator is its first use: then it is there.
    assert "kafkapy.coordinator.group_coordinator" in loaded["after_find_coordinator"]


_STRATEGIES_AFTER_KAFKAPY = """
import sys
import kafkapy.wire.protocol
from kio.static.primitive import i16
from kio.schema.types import TopicName
assert "hypothesis" not in sys.modules
from hypothesis import strategies as st
print(min(st.from_type(i16).example() for _ in range(20)) >= -2**15, isinstance(st.from_type(TopicName).example(), str))
"""


@pytest.mark.timeout(60)
def test_kio_strategies_are_registered_when_hypothesis_comes_after_kafkapy() -> None:
    assert _fresh(_STRATEGIES_AFTER_KAFKAPY) == "True True"
