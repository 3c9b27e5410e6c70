"""kill -9 while a producer is mid-stream: every acknowledged record survives, in place."""

from __future__ import annotations

import threading
import time
from collections import Counter

import confluent_kafka
import pytest

from kafkapy.compat.adapters.base import TIMEOUT_S, Record
from kafkapy.compat.checks import by_position
from kafkapy.testing.process import wait_until

pytestmark = pytest.mark.kafkapy_internals

PARTITIONS = 2
ACKED_BEFORE_KILL = 3_000


class AckRecordingProducer(threading.Thread):
    """Produces numbered values with acks=all until stopped, recording each acknowledged
    (partition, offset, value). When stopped it drops whatever is unacknowledged, so that
    nothing is delivered later, to a restarted broker."""

    def __init__(self, bootstrap: str, topic: str) -> None:
        super().__init__(daemon=True)
        self.topic = topic
        self.producer = confluent_kafka.Producer({
            "bootstrap.servers": bootstrap, "acks": "all", "linger.ms": 1, "queue.buffering.max.messages": 10_000,
        })
        self.acked: list[tuple[int, int, bytes]] = []
        self.sent = 0
        self.stopping = threading.Event()
        self.failure: BaseException | None = None

    def run(self) -> None:
        try:
            while not self.stopping.is_set():
                try:
                    self.producer.produce(self.topic, b"%09d" % self.sent, b"%d" % (self.sent % 16), on_delivery=self._on_delivery)
                    self.sent += 1
                    self.producer.poll(0)
                except BufferError:  # the local queue is full: wait for acknowledgements
                    self.producer.poll(0.05)
            self._drop_unacknowledged()
        except BaseException as e:  # reported by the test, which runs in another thread
            self.failure = e

    def _drop_unacknowledged(self) -> None:
        # A purge can miss messages that librdkafka moves between its queues as the
        # connection fails, so it is repeated until nothing is left.
        deadline = time.monotonic() + TIMEOUT_S
        self.producer.purge()
        while self.producer.flush(0.5):
            assert time.monotonic() < deadline, f"{len(self.producer)} unacknowledged records could not be purged"
            self.producer.purge()

    def _on_delivery(self, error: object, message: confluent_kafka.Message) -> None:
        if error is None:
            self.acked.append((message.partition(), message.offset(), message.value()))

    def stop(self) -> None:
        self.stopping.set()
        self.join(TIMEOUT_S)
        assert not self.is_alive(), "the producer thread did not stop"
        assert self.failure is None, self.failure


def test_acknowledged_records_survive_kill_9(own_broker, client_class, topic_name):
    own_broker.overrides["log.flush.interval.messages"] = 1
    own_broker.start()
    client_class(own_broker.bootstrap).create_topic(topic_name, PARTITIONS)
    producer = AckRecordingProducer(own_broker.bootstrap, topic_name)
    producer.start()
    try:
        wait_until(lambda: len(producer.acked) >= ACKED_BEFORE_KILL, timeout=TIMEOUT_S, message="acknowledgements")
        own_broker.kill()
    finally:
        producer.stop()
    acked = producer.acked
    assert producer.sent > len(acked), "every record was acknowledged: the kill did not land mid-stream"
    assert len({(p, o) for p, o, _ in acked}) == len(acked), "two acknowledgements for one offset"

    own_broker.start()
    client = client_class(own_broker.bootstrap)
    ends = {p: client.watermarks(topic_name, p)[1] for p in range(PARTITIONS)}
    consumed = client.consume(topic_name, ends)

    stored = by_position(consumed)
    for p in range(PARTITIONS):
        assert sorted(o for q, o in stored if q == p) == list(range(ends[p])), f"partition {p} has gaps"
    lost = [(p, o, v) for p, o, v in acked if (p, o) not in stored or stored[(p, o)].value != v]
    assert not lost, f"{len(lost)} acknowledged records lost or changed, first {lost[:3]}"
    copies = Counter(r.value for r in consumed)
    assert all(copies[v] == 1 for _, _, v in acked), "an acknowledged record is stored more than once"
    for p in range(PARTITIONS):
        in_offset_order = [v for q, _, v in sorted(acked) if q == p]
        assert in_offset_order == sorted(in_offset_order), f"partition {p} stores acknowledged records out of send order"
    appended = client.produce(topic_name, [Record(b"k", b"after recovery", partition=p) for p in range(PARTITIONS)])
    assert [(r.partition, r.offset) for r in appended] == [(p, ends[p]) for p in range(PARTITIONS)]
