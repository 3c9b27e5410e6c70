"""Clients of other languages, driven through a helper program written in the client's own
language.

The helper reads one call a line on its stdin, {"op": NAME, "args": {...}}, and answers
each with one line on its stdout: {"result": ...}, {"error": {"code": N, "message": ...}}
for an error code from the broker, {"unsupported": REASON} for what its library cannot do,
or {"failure": TEXT} for anything else. A call the helper does not know it answers as
unsupported. Records travel as {"key", "value", "headers": [[name, value]], "timestamp",
"partition", "offset"} with every byte string in hex. What the helper prints for people
goes to its stderr, which is the worker's.

Producer and group consumer sessions live in the helper under a handle that the open call
returns; the Python side keeps what `GroupConsumer` records (positions, rebalances).
"""

from __future__ import annotations

import json
import queue
import subprocess
import threading
import time
from collections.abc import Mapping, Sequence
from dataclasses import asdict
from typing import Any

from ..security import PLAINTEXT, ClientSecurity
from .base import (
    ASSIGNED,
    TIMEOUT_S,
    AclEntry,
    BrokerError,
    Client,
    Cluster,
    Committed,
    ConfigValue,
    Group,
    GroupConsumer,
    GroupMember,
    Membership,
    Partition,
    ProducerSession,
    Rebalance,
    Record,
    Unsupported,
)

# A helper bounds each call by TIMEOUT_S itself; this margin covers its own start-up.
CALL_MARGIN_S = 15.0


def _hex(data: bytes | None) -> str | None:
    return None if data is None else data.hex()


def _bytes(text: str | None) -> bytes | None:
    return None if text is None else bytes.fromhex(text)


def record_message(r: Record) -> dict[str, Any]:
    return {"key": _hex(r.key), "value": _hex(r.value), "headers": [[n, _hex(v)] for n, v in r.headers],
            "timestamp": r.timestamp, "partition": r.partition, "offset": r.offset}


def record_from(message: Mapping[str, Any]) -> Record:
    return Record(_bytes(message["key"]), _bytes(message["value"]),
                  tuple((n, _bytes(v)) for n, v in message["headers"]), message["timestamp"],
                  message["partition"], message["offset"])


class Helper:
    """The helper program, one call at a time."""

    def __init__(self, argv: Sequence[str], name: str) -> None:
        self.name = name
        self.process = subprocess.Popen(argv, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
        self._answers: queue.Queue[str] = queue.Queue()
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self) -> None:
        assert self.process.stdout is not None
        for line in self.process.stdout:
            self._answers.put(line)
        self._answers.put("")

    def call(self, op: str, **args: Any) -> Any:
        assert self.process.stdin is not None
        try:
            self.process.stdin.write(json.dumps({"op": op, "args": args}) + "\n")
            self.process.stdin.flush()
        except BrokenPipeError:
            raise AssertionError(f"the {self.name} helper exited with status {self.process.wait()}") from None
        deadline = time.monotonic() + TIMEOUT_S + CALL_MARGIN_S
        try:
            line = self._answers.get(timeout=max(0.0, deadline - time.monotonic()))
        except queue.Empty:
            raise AssertionError(f"the {self.name} helper did not answer {op} in time") from None
        if not line:
            raise AssertionError(f"the {self.name} helper exited with status {self.process.wait()} during {op}")
        answer = json.loads(line)
        if "result" in answer:
            return answer["result"]
        if "error" in answer:
            raise BrokerError(answer["error"]["code"], answer["error"]["message"])
        if "unsupported" in answer:
            raise Unsupported(f"{self.name} has no {answer['unsupported']}")
        raise AssertionError(f"{self.name} failed in {op}: {answer['failure']}")

    def close(self) -> None:
        if self.process.poll() is None:
            assert self.process.stdin is not None
            self.process.stdin.close()  # the helper exits at the end of its input
            try:
                self.process.wait(TIMEOUT_S)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()


class BridgedClient(Client):
    """A client whose calls its helper program makes; subclasses say how to start it."""

    @classmethod
    def helper_argv(cls) -> list[str]:
        raise NotImplementedError

    def __init__(self, bootstrap: str, security: ClientSecurity = PLAINTEXT) -> None:
        # Plaintext only (Adapter.speaks_security): the runner does not start it otherwise.
        super().__init__(bootstrap, security)
        self._helper: Helper | None = None

    @property
    def helper(self) -> Helper:
        if self._helper is None:
            self._helper = Helper([*self.helper_argv(), self.bootstrap], self.name)
        return self._helper

    def close(self) -> None:
        if self._helper is not None:
            self._helper.close()
            self._helper = None

    def api_versions(self) -> dict[int, tuple[int, int]]:
        return {int(key): (low, high) for key, (low, high) in self.helper.call("api_versions").items()}

    def cluster(self) -> Cluster:
        found = self.helper.call("cluster")
        return Cluster(found["cluster_id"], found["controller_id"],
                       {node: (host, port) for node, host, port in found["brokers"]})

    def topic_names(self) -> set[str]:
        return set(self.helper.call("topic_names"))

    def partitions(self, topic: str) -> list[Partition]:
        return [Partition(index, leader, tuple(replicas), tuple(isr))
                for index, leader, replicas, isr in self.helper.call("partitions", topic=topic)]

    def create_topic(self, topic: str, partitions: int, configs: Mapping[str, str] | None = None) -> None:
        self.helper.call("create_topic", topic=topic, partitions=partitions, configs=dict(configs or {}))

    def delete_topic(self, topic: str) -> None:
        self.helper.call("delete_topic", topic=topic)

    def create_partitions(self, topic: str, total: int) -> None:
        self.helper.call("create_partitions", topic=topic, total=total)

    def produce(self, topic: str, records: Sequence[Record], compression: str = "none") -> list[Record]:
        acked = self.helper.call("produce", topic=topic, records=[record_message(r) for r in records],
                                 compression=compression)
        return [record_from(r) for r in acked]

    def consume(self, topic: str, ends: Mapping[int, int], starts: Mapping[int, int] | None = None,
                isolation: str = "read_uncommitted") -> list[Record]:
        got = self.helper.call("consume", topic=topic, ends={str(p): e for p, e in ends.items()},
                               starts={str(p): s for p, s in (starts or {}).items()}, isolation=isolation)
        return [record_from(r) for r in got]

    def producer(self, transactional_id: str | None = None, transaction_timeout_ms: int | None = None) -> ProducerSession:
        handle = self.helper.call("producer_open", transactional_id=transactional_id,
                                  transaction_timeout_ms=transaction_timeout_ms)
        return _ProducerSession(self.helper, handle)

    def group_consumer(self, membership: Membership) -> GroupConsumer:
        return _GroupConsumer(self.helper, self.helper.call("group_open", membership=asdict(membership)), membership)

    def list_groups(self) -> dict[str, str]:
        return dict(self.helper.call("list_groups"))

    def describe_group(self, group: str) -> Group:
        found = self.helper.call("describe_group", group=group)
        members = tuple(GroupMember(member_id, instance_id, frozenset((t, p) for t, p in assignment))
                        for member_id, instance_id, assignment in found["members"])
        return Group(found["state"], found["assignor"], members)

    def group_offsets(self, group: str) -> dict[tuple[str, int], Committed]:
        return {(t, p): Committed(offset, metadata or "")
                for t, p, offset, metadata in self.helper.call("group_offsets", group=group)}

    def alter_group_offsets(self, group: str, offsets: Mapping[tuple[str, int], Committed]) -> None:
        self.helper.call("alter_group_offsets", group=group,
                         offsets=[[t, p, c.offset, c.metadata] for (t, p), c in offsets.items()])

    def delete_group(self, group: str) -> None:
        self.helper.call("delete_group", group=group)

    def watermarks(self, topic: str, partition: int) -> tuple[int, int]:
        low, high = self.helper.call("watermarks", topic=topic, partition=partition)
        return low, high

    def offset_for_time(self, topic: str, partition: int, timestamp: int) -> int | None:
        return self.helper.call("offset_for_time", topic=topic, partition=partition, timestamp=timestamp)

    def describe_configs(self, resource: tuple[str, str]) -> dict[str, ConfigValue]:
        found = self.helper.call("describe_configs", resource=list(resource))
        return {name: ConfigValue(value, source, read_only) for name, (value, source, read_only) in found.items()}

    def incremental_alter_configs(self, resource: tuple[str, str], ops: Sequence[tuple[str, str, str | None]]) -> None:
        self.helper.call("incremental_alter_configs", resource=list(resource), ops=[list(op) for op in ops])

    def alter_configs(self, resource: tuple[str, str], configs: Mapping[str, str]) -> None:
        self.helper.call("alter_configs", resource=list(resource), configs=dict(configs))

    def delete_records(self, topic: str, partition: int, before: int) -> int:
        return self.helper.call("delete_records", topic=topic, partition=partition, before=before)

    def create_acls(self, acls: Sequence[AclEntry]) -> None:
        self.helper.call("create_acls", acls=[asdict(a) for a in acls])

    def delete_acls(self, acls: Sequence[AclEntry]) -> None:
        self.helper.call("delete_acls", acls=[asdict(a) for a in acls])


class _ProducerSession(ProducerSession):
    def __init__(self, helper: Helper, handle: int) -> None:
        self.helper = helper
        self.handle = handle

    def produce(self, topic: str, records: Sequence[Record]) -> list[Record]:
        acked = self.helper.call("producer_produce", handle=self.handle, topic=topic,
                                 records=[record_message(r) for r in records])
        return [record_from(r) for r in acked]

    def begin(self) -> None:
        self.helper.call("producer_begin", handle=self.handle)

    def send_offsets(self, consumer: GroupConsumer, offsets: Mapping[int, int]) -> None:
        assert isinstance(consumer, _GroupConsumer)
        self.helper.call("producer_send_offsets", handle=self.handle, consumer=consumer.handle,
                         offsets={str(p): offset for p, offset in offsets.items()})

    def commit(self) -> None:
        self.helper.call("producer_commit", handle=self.handle)

    def abort(self) -> None:
        self.helper.call("producer_abort", handle=self.handle)

    def close(self) -> None:
        self.helper.call("producer_close", handle=self.handle)


class _GroupConsumer(GroupConsumer):
    def __init__(self, helper: Helper, handle: int, membership: Membership) -> None:
        super().__init__()
        self.helper = helper
        self.handle = handle
        self.topic = membership.topic

    def _held(self) -> set[int]:
        held: set[int] = set()
        for r in self.rebalances:
            held = held | r.partitions if r.kind == ASSIGNED else held - r.partitions
        return held

    def poll(self, timeout_s: float) -> list[Record]:
        found = self.helper.call("group_poll", handle=self.handle, timeout_ms=int(timeout_s * 1000))
        self.rebalances += [Rebalance(kind, frozenset(partitions)) for kind, partitions in found["rebalances"]]
        return self._consumed([record_from(r) for r in found["records"]])

    def commit(self, offsets: Mapping[int, Committed] | None = None) -> None:
        to_commit = self._to_commit(offsets, self._held())
        if to_commit:
            self.helper.call("group_commit", handle=self.handle,
                             offsets={str(p): [c.offset, c.metadata] for p, c in to_commit.items()})

    def member_id(self) -> str:
        return self.helper.call("group_member_id", handle=self.handle)

    def close(self) -> None:
        self.helper.call("group_close", handle=self.handle)
