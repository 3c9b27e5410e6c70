"""Kill -9 of the active controller while a client creates topics in a loop, on kafkapy
processes: the scenario of the cluster's acceptance test (short, in `make test`) and of
benchmarks/cluster_failover.py (long, with Kafka's default timeouts).

A thread creates topics one after another with confluent-kafka's AdminClient; the
active controller is found with DescribeQuorum and killed with SIGKILL. The outcome
says how long after the kill the first creation succeeded, and which topics were
acknowledged, so that a caller can check that every one of them exists, once.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Protocol

from confluent_kafka.admin import AdminClient, NewTopic

from ..client import Client


class ClusterNode(Protocol):
    """A node the scenario can reach and kill: a BrokerProcess, or a node `make cluster` started."""

    @property
    def bootstrap(self) -> str: ...

    @property
    def running(self) -> bool: ...

    def kill(self) -> None:
        """kill -9."""


@dataclass
class FailoverOutcome:
    killed: int
    new_leader_after_s: float | None
    """From the kill to a survivor naming another leader (DescribeQuorum)."""
    first_success_after_kill_s: float | None
    """From the kill to the answer to the first creation asked after it that succeeded."""
    acknowledged: list[str] = field(default_factory=list)
    failed: int = 0


def active_controller(processes: Sequence[ClusterNode]) -> int:
    """The leader of the metadata quorum, as DescribeQuorum tells it (asked of any live node)."""
    for process in processes:
        if not process.running:
            continue
        try:
            with Client(process.bootstrap) as client:
                leader = client.describe_quorum().leader_id
            if leader > 0:
                return leader
        except Exception:  # that node is not answering: ask the next one
            continue
    raise RuntimeError("no node names an active controller")


def create_topics_through_a_controller_kill(
    processes: Sequence[ClusterNode], *, before_s: float = 1.0, after_s: float = 5.0, prefix: str = "t",
) -> FailoverOutcome:
    """Creates topics for `before_s`, kills the active controller with SIGKILL, and goes on
    for `after_s` more (through the survivors)."""
    stop = threading.Event()
    successes: list[tuple[float, float, str]] = []  # (asked at, answered at, name)
    failures = [0]

    def create_in_a_loop() -> None:
        admin = AdminClient({"bootstrap.servers": ",".join(p.bootstrap for p in processes)})
        i = 0
        while not stop.is_set():
            name = f"{prefix}-{i}"
            i += 1
            asked_at = time.monotonic()
            try:
                admin.create_topics([NewTopic(name, 1)], operation_timeout=2, request_timeout=3)[name].result(5)
            except Exception:  # not acknowledged: it may or may not exist afterwards
                failures[0] += 1
                continue
            successes.append((asked_at, time.monotonic(), name))

    creator = threading.Thread(target=create_in_a_loop, daemon=True)
    creator.start()
    time.sleep(before_s)  # the scenario: creations under way before the kill
    leader = active_controller(processes)
    killed_at = time.monotonic()
    processes[leader - 1].kill()  # node ids are 1, 2, 3... in the order of the processes
    new_leader_after: float | None = None
    deadline = killed_at + after_s
    while time.monotonic() < deadline:
        try:
            if active_controller(processes) != leader:
                new_leader_after = time.monotonic() - killed_at
                break
        except RuntimeError:
            pass  # no leader named yet
        time.sleep(0.05)
    time.sleep(max(0.0, deadline - time.monotonic()))  # the scenario: creations going on after it
    stop.set()
    creator.join(30)
    after = [answered for asked, answered, _ in successes if asked > killed_at]
    first = (after[0] - killed_at) if after else None
    return FailoverOutcome(leader, new_leader_after, first, [name for _, _, name in successes], failures[0])
