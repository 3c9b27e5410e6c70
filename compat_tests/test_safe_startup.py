"""Start-up never loses data and never starts on storage it cannot trust: what the
metadata does not name is set aside, not deleted; storage that contradicts itself or the
configuration, and checkpoint files that cannot be read, stop the start with a message
naming the file; names a directory could not hold are refused before they reach a disk."""

from __future__ import annotations

import pytest
from kio.schema.errors import ErrorCode

from kafkapy.compat.adapters.base import BrokerError, Record
from kafkapy.compat.adapters.confluent import ConfluentKafka

pytestmark = pytest.mark.kafkapy_internals


def test_create_topics_refuses_a_name_with_a_trailing_newline_and_the_broker_restarts(own_broker, client_class):
    own_broker.start()
    client = client_class(own_broker.bootstrap)

    with pytest.raises(BrokerError) as refused:
        client.create_topic("bad\n", 1)

    assert refused.value.code == ErrorCode.invalid_topic_exception
    client.close()
    assert own_broker.stop() == 0, own_broker.output
    own_broker.start()
    client = client_class(own_broker.bootstrap)
    assert not {"bad\n", "bad"} & client.topic_names()
    acked = client.produce("good", [Record(b"k", b"v", partition=0)])
    assert [(r.partition, r.offset) for r in acked] == [(0, 0)]
    client.close()


def test_create_topics_applies_kafkas_whole_name_rule(broker):
    client = ConfluentKafka(broker.bootstrap)
    for name in ("bad\nname", "\nbad", ".", "..", "x" * 250, "bad name", "bad/name"):
        with pytest.raises(BrokerError) as refused:
            client.create_topic(name, 1)
        assert refused.value.code == ErrorCode.invalid_topic_exception, name
    longest = "x" * 249
    client.create_topic(longest, 1)
    assert longest in client.topic_names()
    client.close()
