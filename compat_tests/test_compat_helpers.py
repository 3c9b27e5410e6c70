"""The clients of other languages: their helper programs' answers as the scenarios see
them, and a client that cannot run here reported as skipped, with why, not failed."""

from __future__ import annotations

import sys
import textwrap

import pytest

from kafkapy.compat.adapters import ADAPTERS, Adapter
from kafkapy.compat.adapters.base import BrokerError, Record, Unsupported
from kafkapy.compat.adapters.bridge import Helper, record_from, record_message
from kafkapy.compat.adapters.kafkajs import KafkaJs
from kafkapy.compat.outcome import Status
from kafkapy.compat.runner import ExternalBroker, run_one
from kafkapy.compat.scenarios import load

# A helper program that answers each call by its name, as a real helper answers.
FAKE_HELPER = textwrap.dedent("""
    import json, sys
    answers = {
        "echo": lambda args: {"result": args},
        "refused": lambda args: {"error": {"code": 10, "message": "too large"}},
        "lacking": lambda args: {"unsupported": "way to do that"},
        "broken": lambda args: {"failure": "TypeError: oops"},
    }
    for line in sys.stdin:
        call = json.loads(line)
        if call["op"] == "exit":
            sys.exit(3)
        print(json.dumps(answers[call["op"]](call["args"])), flush=True)
""")


@pytest.fixture
def helper():
    program = Helper([sys.executable, "-c", FAKE_HELPER], "fake-client")
    yield program
    program.close()


def test_a_helper_answer_becomes_the_result_or_the_error_a_scenario_sees(helper):
    assert helper.call("echo", topic="t", partitions=[0, 1]) == {"topic": "t", "partitions": [0, 1]}
    with pytest.raises(BrokerError) as refused:
        helper.call("refused")
    assert (refused.value.code, refused.value.name) == (10, "MESSAGE_TOO_LARGE")
    with pytest.raises(Unsupported, match="^fake-client has no way to do that$"):
        helper.call("lacking")
    with pytest.raises(AssertionError, match="fake-client failed in broken: TypeError: oops"):
        helper.call("broken")


def test_a_helper_that_exits_fails_the_call_with_its_status(helper):
    with pytest.raises(AssertionError, match="exited with status 3 during exit"):
        helper.call("exit")


def test_records_cross_to_a_helper_and_back_unchanged():
    records = [
        Record(None, b"", (("h", None), ("h", b"\x00\xff"), ("", b"")), 1_700_000_000_000, 2, 41),
        Record(b"k", None),
    ]
    assert [record_from(record_message(r)) for r in records] == records


def test_a_client_whose_helper_cannot_run_is_skipped_with_the_reason(monkeypatch, tmp_path):
    monkeypatch.setenv("PATH", str(tmp_path))  # no node on it

    reason = ADAPTERS["kafkajs"].unavailable()
    outcome = run_one(ExternalBroker("127.0.0.1:1"), load("metadata")["metadata.cluster"], "kafkajs")

    assert reason == KafkaJs.unavailable() and reason is not None and "Node.js" in reason
    assert (outcome.status, outcome.reason) == (Status.SKIPPED, reason)


def test_a_python_client_not_installed_is_named_with_its_import():
    missing = Adapter("no-such-client", ".no_such_client", "NoSuchClient", "kafkapy_no_such_client_library")

    assert missing.unavailable() == "no-such-client is not installed (import kafkapy_no_such_client_library)"
    assert not missing.installed()
