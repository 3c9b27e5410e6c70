"""The controller's broker lifecycle: registration, heartbeats, fencing, unfencing and
controlled shutdown, and the leader changes they bring (Kafka's rules)."""

from __future__ import annotations

import uuid

from kio.schema.errors import ErrorCode
from kio.static.primitive import i32

from kafkapy.metadata.brokers import NO_LEADER, BrokerLifecycle, Endpoint
from kafkapy.metadata.image import MetadataImage
from kafkapy.metadata.records import (
    BrokerRegistrationChangeRecord,
    PartitionRecord,
    TopicRecord,
    decode_record,
    encode_record,
)

SESSION_MS = 9_000
TOPIC_ID = uuid.uuid4()


class Controller:
    """The lifecycle plus the image its records build, as the active controller holds them."""

    def __init__(self) -> None:
        self.lifecycle = BrokerLifecycle(SESSION_MS)
        self.image = MetadataImage()

    def commit(self, records: list) -> None:
        self.image = self.image.apply(records, self.image.offset + len(records))

    def register(self, broker_id: int, now: int = 0, incarnation: uuid.UUID | None = None):
        answer, records = self.lifecycle.register(
            self.image, now, self.image.offset + 1, broker_id, incarnation or uuid.uuid4(),
            (Endpoint("PLAINTEXT", "127.0.0.1", 9090 + broker_id),), None,
        )
        self.commit(records)
        return answer

    def heartbeat(self, broker_id: int, now: int, *, offset: int | None = None, fence: bool = False, shut_down: bool = False):
        epoch = self.image.brokers[broker_id].epoch
        answer, records = self.lifecycle.heartbeat(
            self.image, now, broker_id, epoch, self.image.offset if offset is None else offset, fence, shut_down)
        self.commit(records)
        return answer

    def live(self, *broker_ids: int) -> None:
        for b in broker_ids:
            self.register(b)
        for b in broker_ids:
            assert not self.heartbeat(b, 0).is_fenced

    def partition(self, index: int, replicas: list[int]) -> None:
        if not self.image.topics:
            self.commit([TopicRecord(name="t", topic_id=TOPIC_ID)])
        self.commit([PartitionRecord(partition_id=i32(index), topic_id=TOPIC_ID, replicas=tuple(map(i32, replicas)),
                                     isr=tuple(map(i32, replicas)), leader=i32(replicas[0]), leader_epoch=i32(0),
                                     partition_epoch=i32(0))])

    def leader_and_isr(self, index: int) -> tuple[int, tuple[int, ...]]:
        p = self.image.topics["t"].partitions[index]
        return p.leader, p.isr


def test_a_broker_registers_fenced_and_is_unfenced_once_caught_up() -> None:
    c = Controller()
    registered = c.register(1)
    # On a new cluster the metadata.version record comes first: the registration is at offset 1.
    assert registered.error == ErrorCode.none and registered.broker_epoch == 1
    assert c.image.features["metadata.version"] == 21
    assert c.image.brokers[1].fenced
    behind = c.heartbeat(1, 100, offset=0)
    assert (behind.is_caught_up, behind.is_fenced) == (False, True) and c.image.brokers[1].fenced
    caught_up = c.heartbeat(1, 200, offset=1)
    assert (caught_up.is_caught_up, caught_up.is_fenced) == (True, False)
    assert not c.image.brokers[1].fenced


def test_a_heartbeat_with_an_old_broker_epoch_is_stale() -> None:
    c = Controller()
    c.register(1)
    answer, records = c.lifecycle.heartbeat(c.image, 0, 1, c.image.brokers[1].epoch - 1, 10, False, False)
    assert answer.error == ErrorCode.stale_broker_epoch and records == []


def test_a_silent_broker_is_fenced_after_the_session_timeout_and_its_leaderships_move() -> None:
    c = Controller()
    c.live(1, 2)
    c.partition(0, [1])      # replication factor 1 on broker 1
    c.partition(1, [1, 2])   # led by 1, follower 2
    c.partition(2, [2, 1])   # led by 2, follower 1
    assert c.lifecycle.expire(c.image, SESSION_MS) == []  # not yet
    c.heartbeat(2, SESSION_MS)
    c.commit(c.lifecycle.expire(c.image, SESSION_MS + 1))
    assert c.image.brokers[1].fenced and not c.image.brokers[2].fenced
    assert c.leader_and_isr(0) == (NO_LEADER, (1,))   # offline, ISR keeps its last member
    assert c.leader_and_isr(1) == (2, (2,))
    assert c.leader_and_isr(2) == (2, (2,))
    assert c.image.topics["t"].partitions[1].leader_epoch == 1  # a new leader, a new epoch


def test_a_fenced_broker_that_comes_back_leads_its_leaderless_partitions() -> None:
    c = Controller()
    c.live(1, 2)
    c.partition(0, [1])
    c.heartbeat(2, SESSION_MS)
    c.commit(c.lifecycle.expire(c.image, SESSION_MS + 1))
    assert c.leader_and_isr(0) == (NO_LEADER, (1,))
    answer = c.heartbeat(1, SESSION_MS + 500)
    assert not answer.is_fenced and not c.image.brokers[1].fenced
    assert c.leader_and_isr(0) == (1, (1,))


def test_controlled_shutdown_moves_leaderships_and_lets_the_broker_stop() -> None:
    c = Controller()
    c.live(1, 2)
    c.partition(0, [1, 2])
    c.partition(1, [1])
    answer = c.heartbeat(1, 100, shut_down=True)
    assert answer.should_shut_down
    assert c.image.brokers[1].in_controlled_shutdown
    assert c.leader_and_isr(0) == (2, (2,))
    assert c.leader_and_isr(1) == (NO_LEADER, (1,))


def test_a_second_incarnation_is_refused_while_the_first_is_alive() -> None:
    c = Controller()
    first = uuid.uuid4()
    c.register(1, incarnation=first)
    c.heartbeat(1, 0)
    assert c.register(1, now=1_000).error == ErrorCode.duplicate_broker_registration
    # The same incarnation retrying gets its epoch back; nothing is written.
    epoch = c.image.brokers[1].epoch
    assert c.register(1, now=1_000, incarnation=first).broker_epoch == epoch
    # Once its session has run out, a restarted broker registers again, fenced, with a new epoch.
    restarted = c.register(1, now=SESSION_MS + 1)
    assert restarted.error == ErrorCode.none and restarted.broker_epoch > epoch
    assert c.image.brokers[1].fenced


def test_a_new_active_controller_gives_every_broker_a_full_session() -> None:
    c = Controller()
    c.live(1)
    successor = BrokerLifecycle(SESSION_MS)
    successor.activate(50_000)
    assert successor.expire(c.image, 50_000 + SESSION_MS) == []
    assert successor.next_deadline(c.image) == 50_000 + SESSION_MS
    assert successor.expire(c.image, 50_001 + SESSION_MS) != []


def test_a_crashed_broker_registers_again_at_once_with_a_controller_that_never_heard_it() -> None:
    c = Controller()
    c.live(1)
    old_epoch = c.image.brokers[1].epoch
    c.lifecycle = BrokerLifecycle(SESSION_MS)  # the controller restarted too, or failed over
    c.lifecycle.activate(100)
    restarted = c.register(1, now=200)
    assert restarted.error == ErrorCode.none and restarted.broker_epoch > old_epoch


def test_the_registration_change_record_round_trips() -> None:
    record = BrokerRegistrationChangeRecord(broker_id=i32(3), broker_epoch=7, fenced=1, in_controlled_shutdown=1)  # type: ignore[arg-type]
    assert decode_record(encode_record(record)) == record
