"""The scenario registry and what a scenario is given when it runs.

A scenario is a function of a `Context`, registered once with `@scenario` under a dotted
name whose first part is its area ("topics.create_partitions"), and run with every
client. It fails by raising AssertionError with a message that says what differed; the
adapter raises Unsupported when the client lacks a feature. A scenario that acts on the
broker itself (restart, fault injection) is registered with needs_broker_control: it
gets `ctx.broker` and runs only on a broker the suite started, never on an external one.

A scenario of authorization is registered with needs_authorizer: the suite runs it on a
kafkapy of its own with an authorizer, and against an external broker it is skipped when
that broker has none (the scenario raises NotApplicable on SECURITY_DISABLED). One that
needs its client's principal to be a super user (as_super_user) runs only on the suite's
own broker, whose super.users it sets.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Protocol

from .adapters.base import Client, Unsupported

DEFAULT_DEADLINE_S = 90.0


class NotApplicable(Exception):
    """The broker lacks what the scenario checks (an authorizer): the run is skipped."""


class BrokerControl(Protocol):
    def restart(self) -> None:
        """A graceful stop and start of the broker, on the same address and data."""


@dataclass
class Context:
    scenario: str
    client: Client
    broker: BrokerControl | None = None
    # The other installed clients (at their newest protocol level), made on first use:
    # records produced by the client under test must read the same through each of them.
    make_others: Callable[[], list[Client]] = list
    _others: list[Client] | None = field(default=None, init=False)

    @property
    def others(self) -> list[Client]:
        if self._others is None:
            self._others = self.make_others()
        return self._others

    def topic(self) -> str:
        """A topic name of this run's own ('-' only: Kafka refuses names that differ from
        an existing one only by '.' against '_')."""
        return f"compat-{self.scenario.replace('.', '-').replace('_', '-')}-{uuid.uuid4().hex[:10]}"

    def create_topic(self, topic: str, partitions: int, configs: Mapping[str, str] | None = None) -> None:
        """Creates a topic that the scenario needs but does not test: with the client under
        test, or, when its protocol level has no CreateTopics (before Kafka 0.10.1, topics
        were made with the administrator's tools), with another client."""
        try:
            self.client.create_topic(topic, partitions, configs)
            return
        except Unsupported as lacking:
            for other in self.others:
                try:
                    other.create_topic(topic, partitions, configs)
                    return
                except Unsupported:
                    continue
            raise lacking


@dataclass(frozen=True)
class Scenario:
    name: str
    summary: str
    run: Callable[[Context], None]
    needs_broker_control: bool = False
    deadline: float = DEFAULT_DEADLINE_S
    needs_authorizer: bool = False
    as_super_user: bool = False

    @property
    def area(self) -> str:
        return self.name.split(".", 1)[0]


SCENARIOS: dict[str, Scenario] = {}


def scenario(name: str, *, summary: str | None = None, needs_broker_control: bool = False,
             deadline: float = DEFAULT_DEADLINE_S, needs_authorizer: bool = False,
             as_super_user: bool = False) -> Callable[[Callable[[Context], None]], Callable[[Context], None]]:
    """Registers a scenario; its summary is the function's docstring unless given."""

    def register(run: Callable[[Context], None]) -> Callable[[Context], None]:
        if name in SCENARIOS:
            raise ValueError(f"scenario {name} is registered twice")
        text = summary or (run.__doc__ or "").strip().split("\n\n")[0]
        SCENARIOS[name] = Scenario(name, " ".join(text.split()), run, needs_broker_control, deadline,
                                   needs_authorizer or as_super_user, as_super_user)
        return run

    return register
