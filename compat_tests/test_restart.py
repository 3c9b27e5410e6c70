"""A graceful stop (SIGTERM) and start loses nothing and changes nothing."""

from __future__ import annotations

import pytest

from kafkapy.compat.adapters.base import Record
from kafkapy.compat.checks import assert_same_records, end_offsets, keyed_records

pytestmark = pytest.mark.kafkapy_internals

PARTITIONS = 3


def test_records_identical_after_graceful_restart(own_broker, client_class, topic_name):
    own_broker.start()
    client = client_class(own_broker.bootstrap)
    client.create_topic(topic_name, PARTITIONS)
    acked = client.produce(topic_name, keyed_records(3_000), "gzip")
    ends = end_offsets(acked)
    assert set(ends) == set(range(PARTITIONS))
    before = client.consume(topic_name, ends)

    assert own_broker.stop() == 0, own_broker.output
    own_broker.start()

    assert {p: client.watermarks(topic_name, p) for p in range(PARTITIONS)} == {p: (0, ends[p]) for p in range(PARTITIONS)}
    after = client.consume(topic_name, ends)
    assert_same_records(after, before)
    assert_same_records(after, acked)
    appended = client.produce(topic_name, [Record(b"k", b"after restart", partition=p) for p in range(PARTITIONS)])
    assert [(r.partition, r.offset) for r in appended] == [(p, ends[p]) for p in range(PARTITIONS)]
