"""Every compatibility scenario with every client, through the runner that `kafkapy compat`
uses: each run in a worker process with a deadline. The clients pinned to old protocol
levels (profiles) run a representative few here, of produce and consume, groups and
admin; `kafkapy compat` runs them with every scenario.

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
PROFILE_SCENARIOS = ("topics.create_and_delete", "produce.codec_gzip", "produce.null_key_and_value", "groups.eager_range",
                     "groups.committed_offsets")
PAIRS = [(scenario, client) for scenario in SCENARIOS for client, adapter in ADAPTERS.items()
         if not adapter.pinned or scenario in PROFILE_SCENARIOS]


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
