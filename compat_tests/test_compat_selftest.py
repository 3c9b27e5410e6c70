"""The scenarios can fail: against a kafkapy with a feature disabled or a fault injected,
the scenarios that depend on it report FAIL, with a reason that names the cause, with
every client; a client that hangs fails at its deadline; a scenario that acts on the
broker is skipped on one the suite did not start, and one of authorization on a broker
without an authorizer."""

from __future__ import annotations

import os
import signal
from concurrent.futures import ThreadPoolExecutor

import pytest

from kafkapy.compat.adapters import ADAPTERS
from kafkapy.compat.adapters.base import TIMEOUT_S
from kafkapy.compat.outcome import Outcome, Status
from kafkapy.compat.runner import AUTHORIZER_OVERRIDES, EmbeddedBroker, ExternalBroker, run_matrix, run_one
from kafkapy.compat.scenarios import load
from kafkapy.testing.process import BrokerProcess

pytestmark = pytest.mark.kafkapy_internals

SCENARIOS = load()

# The clients that express every scenario the cases below break (the others answer some
# of them as unsupported, which says nothing of the suite's verdicts).
CLIENTS = [name for name in ("confluent-kafka", "kafka-python") if ADAPTERS[name].installed()]

BROKEN = {
    # Smaller than some single keyed records: a producer that splits refused batches still fails.
    "small message.max.bytes": ({"message.max.bytes": 300}, "produce.codec_none", "MESSAGE_TOO_LARGE"),
    "no auto-creation": ({"auto.create.topics.enable": "false"}, "metadata.auto_create_topic", "and did not create it"),
    "topics recompressed": ({"compression.type": "gzip"}, "produce.codec_zstd", "serves batches compressed with ['gzip'], not zstd"),
    "broker timestamps": ({"log.message.timestamp.type": "LogAppendTime"}, "list_offsets.by_time", "first offset at or after timestamp"),
    # The clients' principal made a super user, or no longer one.
    "everyone a super user": ({"super.users": "User:ANONYMOUS"}, "acls.producer_without_write", "but it accepted"),
    "no super user": ({"super.users": "User:nobody"}, "acls.super_user", "TOPIC_AUTHORIZATION_FAILED"),
}


@pytest.fixture(scope="module")
def broken_outcomes() -> dict[str, list[Outcome]]:
    """The outcomes of every case of BROKEN, made at once, each on a kafkapy of its own (the
    slowest case waits out the clients' own timeouts)."""

    def run(case: str) -> list[Outcome]:
        overrides, scenario, _ = BROKEN[case]
        with EmbeddedBroker(overrides) as target:
            return run_matrix(target, [(SCENARIOS[scenario], client) for client in CLIENTS], jobs=len(CLIENTS))

    with ThreadPoolExecutor(len(BROKEN)) as pool:
        return dict(zip(BROKEN, pool.map(run, BROKEN), strict=True))


@pytest.mark.parametrize("case", BROKEN)
def test_scenario_fails_with_its_cause_on_a_broker_that_breaks_it(broken_outcomes, case):
    reason = BROKEN[case][2]
    for outcome in broken_outcomes[case]:
        assert outcome.status is Status.FAIL, outcome
        assert reason in outcome.reason, f"{outcome.client}: {outcome.reason}"


def test_a_client_that_hangs_fails_at_its_deadline():
    deadline = 5.0
    with EmbeddedBroker() as target:
        # A stopped broker accepts connections and never answers: the client waits on it.
        os.kill(target.shared.process.pid, signal.SIGSTOP)
        try:
            outcomes = run_matrix(target, [(SCENARIOS["metadata.cluster"], c) for c in CLIENTS], len(CLIENTS), deadline=deadline)
        finally:
            os.kill(target.shared.process.pid, signal.SIGCONT)

    for outcome in outcomes:
        assert outcome.status is Status.FAIL, outcome
        assert f"no outcome within the {deadline:g}s deadline" in outcome.reason
        assert outcome.seconds < TIMEOUT_S, "the run waited for the client's own timeouts, not the deadline"


def test_a_scenario_that_acts_on_the_broker_is_skipped_on_an_external_one(broker):
    outcome = run_one(ExternalBroker(broker.bootstrap), SCENARIOS["broker.restart"], CLIENTS[0])

    assert outcome.status is Status.SKIPPED
    assert "only a broker the suite started" in outcome.reason


def test_authorization_scenarios_are_skipped_on_an_external_broker_without_an_authorizer(broker):
    pairs = [(SCENARIOS[name], client) for name in ("acls.producer_without_write", "acls.super_user") for client in CLIENTS]
    outcomes = run_matrix(ExternalBroker(broker.bootstrap), pairs, len(pairs))

    assert {(o.scenario, o.status) for o in outcomes} == {
        ("acls.producer_without_write", Status.SKIPPED), ("acls.super_user", Status.SKIPPED)}
    reasons = {o.scenario: o.reason for o in outcomes}
    assert "has no authorizer (CreateAcls answers SECURITY_DISABLED)" in reasons["acls.producer_without_write"]
    assert "super.users" in reasons["acls.super_user"]


def test_authorization_scenarios_pass_on_an_external_broker_with_an_authorizer(tmp_path):
    pairs = [(SCENARIOS[name], client) for name in ("acls.topic_visibility", "acls.super_user") for client in CLIENTS]
    with BrokerProcess(tmp_path, AUTHORIZER_OVERRIDES) as secured:
        outcomes = run_matrix(ExternalBroker(secured.bootstrap), pairs, len(pairs))

    assert {(o.scenario, o.status) for o in outcomes} == {
        ("acls.topic_visibility", Status.PASS), ("acls.super_user", Status.SKIPPED)}, outcomes
