"""`kafkapy acls` end to end: run as a subprocess against a kafkapy broker process with an
authorizer; what it adds and removes is seen by the broker's decisions (every connection
here is User:ANONYMOUS)."""

from __future__ import annotations

import uuid
from collections.abc import Iterator

import pytest

from kafkapy.testing.process import BrokerProcess
from test_console_tools import json_of, kafkapy, ok

pytestmark = [pytest.mark.kafkapy_internals, pytest.mark.timeout(90)]

ME = "User:ANONYMOUS"


@pytest.fixture(scope="module")
def broker(tmp_path_factory: pytest.TempPathFactory) -> Iterator[BrokerProcess]:
    process = BrokerProcess(tmp_path_factory.mktemp("acls-tool"), {
        "authorizer.class.name": "org.apache.kafka.metadata.authorizer.StandardAuthorizer",
        "allow.everyone.if.no.acl.found": "true",
    })
    with process:
        yield process


def listed(broker: BrokerProcess, *args: str) -> set[tuple[str, ...]]:
    return {(a["resource_type"], a["resource_name"], a["pattern_type"], a["principal"], a["host"], a["operation"],
             a["permission"]) for a in json_of(broker, "acls", "list", *args)}


def test_added_acls_are_listed_by_filter_decide_and_go_when_removed(broker: BrokerProcess) -> None:
    topic = f"tool-{uuid.uuid4().hex[:8]}"
    other = f"{topic}-other"
    ok(broker, "topics", "create", topic)
    ok(broker, "topics", "create", other)
    ok(broker, "acls", "add", "--allow-principal", "User:alice", "--allow-host", "10.0.0.1", "--operation", "Read",
       "--operation", "describe", "--topic", topic, "--group", f"{topic}-group")
    ok(broker, "acls", "add", "--deny-principal", ME, "--operation", "WRITE", "--topic", f"{topic[:8]}",
       "--resource-pattern-type", "prefixed")
    alice_read = ("Topic", topic, "LITERAL", "User:alice", "10.0.0.1", "Read", "ALLOW")
    alice_describe = ("Topic", topic, "LITERAL", "User:alice", "10.0.0.1", "Describe", "ALLOW")
    deny_write = ("Topic", topic[:8], "PREFIXED", ME, "*", "Write", "DENY")
    group_read = ("Group", f"{topic}-group", "LITERAL", "User:alice", "10.0.0.1", "Read", "ALLOW")

    assert listed(broker, "--topic", topic) == {alice_read, alice_describe}
    assert listed(broker, "--topic", topic, "--resource-pattern-type", "match") == {alice_read, alice_describe, deny_write}
    assert listed(broker, "--principal", ME, "--topic", topic, "--resource-pattern-type", "match") == {deny_write}
    assert {group_read, deny_write} <= listed(broker)
    table = ok(broker, "acls", "list", "--group", f"{topic}-group")
    assert any(line.split() == ["Group", f"{topic}-group", "LITERAL", "User:alice", "10.0.0.1", "Read", "ALLOW"]
               for line in table.splitlines())

    # The DENY of WRITE for this very principal: producing is refused, then allowed once it
    # is removed, where no other ACL remains (alice's close the first topic to everyone else).
    refused = kafkapy(broker, "produce", "--topic", other, stdin="v\n")
    assert refused.returncode == 1 and "TOPIC_AUTHORIZATION_FAILED" in refused.stderr
    removed = kafkapy(broker, "acls", "remove", "--deny-principal", ME, "--topic", topic[:8],
                      "--resource-pattern-type", "prefixed", "--format", "json")
    assert removed.returncode == 0 and "Removed 1 ACL(s)" in removed.stderr
    assert kafkapy(broker, "produce", "--topic", other, stdin="v\n").returncode == 0
    still = kafkapy(broker, "produce", "--topic", topic, stdin="v\n")
    assert still.returncode == 1 and "TOPIC_AUTHORIZATION_FAILED" in still.stderr

    # Only the operation named goes; without a principal only --force removes the rest.
    ok(broker, "acls", "remove", "--allow-principal", "User:alice", "--operation", "Read", "--topic", topic)
    assert listed(broker, "--topic", topic) == {alice_describe}
    unforced = kafkapy(broker, "acls", "remove", "--topic", topic)
    assert unforced.returncode == 1 and "--force" in unforced.stderr
    ok(broker, "acls", "remove", "--topic", topic, "--group", f"{topic}-group", "--force")
    assert listed(broker, "--topic", topic) == set() and listed(broker, "--group", f"{topic}-group") == set()
    assert kafkapy(broker, "produce", "--topic", topic, stdin="v\n").returncode == 0


def test_what_kafka_acls_refuses_is_refused_before_asking_the_broker(broker: BrokerProcess) -> None:
    wrong_operation = kafkapy(broker, "acls", "add", "--allow-principal", "User:alice", "--operation", "Write", "--group", "g")
    assert wrong_operation.returncode == 1 and "Group only supports operations" in wrong_operation.stderr
    no_colon = kafkapy(broker, "acls", "add", "--allow-principal", "alice", "--topic", "t")
    assert no_colon.returncode == 2 and "Type:name" in no_colon.stderr
    no_principal = kafkapy(broker, "acls", "add", "--topic", "t")
    assert no_principal.returncode == 1 and "--allow-principal" in no_principal.stderr
    match_pattern = kafkapy(broker, "acls", "add", "--allow-principal", "User:a", "--topic", "t", "--resource-pattern-type", "match")
    assert match_pattern.returncode == 1 and "literal or prefixed" in match_pattern.stderr
    assert listed(broker, "--topic", "t", "--resource-pattern-type", "any") == set()


def test_a_broker_without_an_authorizer_answers_security_disabled(tmp_path) -> None:
    with BrokerProcess(tmp_path) as plain:
        result = kafkapy(plain, "acls", "list")
    assert result.returncode == 1 and "SECURITY_DISABLED" in result.stderr
