"""The compatibility scenarios with the clients, through the runner that `kafkapy compat`
uses: each run in a worker process with a deadline. confluent-kafka and kafka-python run
every scenario; the other clients run a representative scenario of each area they
express, and the clients pinned to old protocol levels (profiles) a few of produce,
consume and groups, which keeps `make test` short on 2 cores; `make compat` runs
every scenario with every client.

The runs selected for the session are made on first use, several at a time (as
`kafkapy compat` makes them), and each test then checks its own outcome; so the first
test's duration is that of all the runs.
"""

from __future__ import annotations

import pytest

from kafkapy.compat.adapters import ADAPTERS
from kafkapy.compat.outcome import Outcome, Status
from kafkapy.compat.runner import run_matrix
from kafkapy.compat.scenarios import load

SCENARIOS = load()

JOBS = 3
EVERY_SCENARIO_CLIENTS = ("confluent-kafka", "kafka-python")
# A scenario of each area that the other clients express (none expresses broker.restart).
REPRESENTATIVE = ("metadata.cluster", "produce.codec_gzip", "list_offsets.by_time", "configs.describe_topic",
                  "groups.committed_offsets", "transactions.commit_and_abort", "compaction.latest_values")
PROFILE_SCENARIOS = ("produce.codec_gzip", "groups.eager_range", "groups.committed_offsets")
PAIRS = [(scenario, client) for scenario in SCENARIOS for client, adapter in ADAPTERS.items()
         if client in EVERY_SCENARIO_CLIENTS or scenario in (PROFILE_SCENARIOS if adapter.pinned else REPRESENTATIVE)]


@pytest.fixture(scope="session")
def outcomes(request: pytest.FixtureRequest, compat_target) -> dict[tuple[str, str], Outcome]:
    selected = [(SCENARIOS[item.callspec.params["scenario"]], item.callspec.params["client"])
                for item in request.session.items if getattr(item, "originalname", None) == "test_scenario"]
    return {(o.scenario, o.client): o for o in run_matrix(compat_target, selected, JOBS)}


@pytest.mark.parametrize(("scenario", "client"), PAIRS, ids=[f"{s}[{c}]" for s, c in PAIRS])
def test_scenario(outcomes, scenario: str, client: str) -> None:
    outcome = outcomes[(scenario, client)]
    if outcome.status is Status.SKIPPED:
        pytest.skip(outcome.reason)
    # UNSUPPORTED is the adapter's word that the client library lacks the feature.
    assert outcome.status in (Status.PASS, Status.UNSUPPORTED), f"{outcome.reason}\n{outcome.detail}"
