"""The console tools (`kafkapy topics`, `produce`, `consume`, `groups`) end to end: run as
subprocesses against a kafkapy broker process, over the Kafka protocol only."""

from __future__ import annotations

import json
import signal
import socket
import subprocess
import sys
import threading
import uuid
from collections import defaultdict
from collections.abc import Iterator
from typing import Any

import pytest
from confluent_kafka import Producer

from kafkapy.client import API_KEYS, LATEST, TOPIC_CONFIG_SOURCE, TOPIC_RESOURCE, Client, Connection, GroupMember
from kafkapy.testing.process import BrokerProcess, wait_until
from kafkapy.wire.build import build
from kafkapy.wire.framing import recv_frame
from kafkapy.wire.protocol import encode_response, kio_versions, peek_header, response_type

pytestmark = [pytest.mark.kafkapy_internals, pytest.mark.timeout(60)]

TOOL_TIMEOUT_S = 30


@pytest.fixture(scope="module")
def broker(tmp_path_factory: pytest.TempPathFactory) -> Iterator[BrokerProcess]:
    # No initial rebalance delay: a group's first member is assigned its partitions at once.
    process = BrokerProcess(tmp_path_factory.mktemp("console-tools"), {"group.initial.rebalance.delay.ms": 0})
    with process:
        yield process


@pytest.fixture
def topic() -> str:
    return f"tools-{uuid.uuid4().hex[:10]}"


def kafkapy(broker: BrokerProcess, *args: str, stdin: str | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "kafkapy", *args, "--bootstrap", broker.bootstrap],
        input=stdin, capture_output=True, text=True, timeout=TOOL_TIMEOUT_S,
    )


def ok(broker: BrokerProcess, *args: str, stdin: str | None = None) -> str:
    """stdout of a tool run that must succeed."""
    result = kafkapy(broker, *args, stdin=stdin)
    assert result.returncode == 0, f"kafkapy {' '.join(args)} failed:\n{result.stderr}"
    return result.stdout


def json_of(broker: BrokerProcess, *args: str) -> Any:
    return json.loads(ok(broker, *args, "--format", "json"))


def consumed(broker: BrokerProcess, *args: str) -> list[dict[str, Any]]:
    return [json.loads(line) for line in ok(broker, "consume", *args, "--format", "json").splitlines()]


def by_partition(records: list[dict[str, Any]]) -> dict[int, list[tuple[int, str | None, str | None]]]:
    partitions: dict[int, list[tuple[int, str | None, str | None]]] = defaultdict(list)
    for r in records:
        partitions[r["partition"]].append((r["offset"], r["key"], r["value"]))
    return dict(partitions)


def test_topics_create_list_describe_alter_delete(broker: BrokerProcess, topic: str) -> None:
    assert ok(broker, "topics", "create", topic, "--partitions", "3", "--config", "retention.ms=3600000") == (
        f"Created topic {topic} with 3 partitions.\n"
    )
    assert {"name": topic, "partitions": 3, "internal": False} in [
        {k: t[k] for k in ("name", "partitions", "internal")} for t in json_of(broker, "topics", "list")
    ]
    assert any(line.split()[:2] == [topic, "3"] for line in ok(broker, "topics", "list").splitlines())

    [described] = json_of(broker, "topics", "describe", topic)
    assert described["partition_count"] == 3 and described["replication_factor"] == 1
    assert described["configs"] == {"retention.ms": "3600000"}
    assert [(p["partition"], p["leader"], p["replicas"], p["isr"], p["log_start_offset"], p["log_end_offset"])
            for p in described["partitions"]] == [(i, 1, [1], [1], 0, 0) for i in range(3)]

    assert ok(broker, "topics", "alter", topic, "--partitions", "5", "--config", "cleanup.policy=compact",
              "--delete-config", "retention.ms") == (
        f"Altered topic {topic}: 5 partitions, set cleanup.policy=compact, deleted retention.ms.\n"
    )
    text = ok(broker, "topics", "describe", topic)
    assert f"Topic: {topic}" in text and "PartitionCount: 5" in text and "Configs: cleanup.policy=compact" in text
    [described] = json_of(broker, "topics", "describe", topic)
    assert described["configs"] == {"cleanup.policy": "compact"}
    assert [p["partition"] for p in described["partitions"]] == [0, 1, 2, 3, 4]

    again = kafkapy(broker, "topics", "create", topic)
    assert again.returncode == 1
    assert f"creating topic '{topic}': TOPIC_ALREADY_EXISTS" in again.stderr
    assert ok(broker, "topics", "create", topic, "--if-not-exists") == f"Topic {topic} already exists.\n"

    assert ok(broker, "topics", "delete", topic) == f"Deleted topic {topic}.\n"
    assert topic not in [t["name"] for t in json_of(broker, "topics", "list")]
    gone = kafkapy(broker, "topics", "delete", topic)
    assert gone.returncode == 1 and f"deleting topic '{topic}': UNKNOWN_TOPIC_OR_PARTITION" in gone.stderr
    assert ok(broker, "topics", "delete", topic, "--if-exists") == ""


def test_produce_lines_round_robin_and_consume_them_back(broker: BrokerProcess, topic: str) -> None:
    ok(broker, "topics", "create", topic, "--partitions", "3")
    lines = [f"line {i}" for i in range(9)] + ["", "with: a colon"]
    produced = kafkapy(broker, "produce", "--topic", topic, stdin="\n".join(lines) + "\n")
    assert produced.returncode == 0, produced.stderr
    assert f"Produced 11 records to {topic} (partition 0: 4, partition 1: 4, partition 2: 3)" in produced.stderr

    records = consumed(broker, "--topic", topic, "--from-beginning", "--max-messages", "11")
    # Unkeyed records go round robin from partition 0, in order within each partition.
    assert by_partition(records) == {
        p: [(offset, None, lines[i]) for offset, i in enumerate(range(p, len(lines), 3))] for p in range(3)
    }
    values = ok(broker, "consume", "--topic", topic, "--partition", "1", "--offset", "2", "--max-messages", "2")
    assert values == "line 7\nwith: a colon\n"


def test_keyed_records_go_where_kafkas_partitioner_puts_them(broker: BrokerProcess, topic: str) -> None:
    reference = f"{topic}-reference"
    for name in (topic, reference):
        ok(broker, "topics", "create", name, "--partitions", "5")
    keys = [f"user-{i}" for i in range(30)] + ["", "ключ"]
    lines = [f"{key}:value {i}:{i}" for i, key in enumerate(keys)]
    ok(broker, "produce", "--topic", topic, "--parse-key", stdin="\n".join(lines))

    # librdkafka's murmur2_random is Java's default partitioner for keyed records.
    partition_of: dict[str, int] = {}
    producer = Producer({"bootstrap.servers": broker.bootstrap, "partitioner": "murmur2_random"})
    for key in keys:
        producer.produce(reference, b"", key.encode(),
                         on_delivery=lambda err, msg: partition_of.__setitem__(msg.key().decode(), msg.partition()))
    assert producer.flush(20) == 0

    records = consumed(broker, "--topic", topic, "--from-beginning", "--max-messages", str(len(keys)))
    assert len(records) == len(keys) and len(set(partition_of.values())) > 1
    assert {r["key"]: r["partition"] for r in records} == partition_of
    expected: dict[int, list[tuple[int, str, str]]] = defaultdict(list)
    for i, key in enumerate(keys):
        expected[partition_of[key]].append((len(expected[partition_of[key]]), key, f"value {i}:{i}"))
    assert by_partition(records) == expected

    key_value = ok(broker, "consume", "--topic", topic, "--partition", str(partition_of["ключ"]),
                   "--offset", "earliest", "--format", "key-value", "--separator", "=", "--timeout-ms", "1000")
    assert f"ключ=value {len(keys) - 1}:{len(keys) - 1}" in key_value.splitlines()

    missing_separator = kafkapy(broker, "produce", "--topic", topic, "--parse-key", stdin="a:1\nno separator\n")
    assert missing_separator.returncode == 1
    assert "line 2 has no key separator ':' (1 records were produced before it)" in missing_separator.stderr


def _committed(broker: BrokerProcess, group: str) -> dict[int, tuple[int, int, int]]:
    """(committed offset, log end offset, lag) of each partition, from `groups describe`."""
    described = json_of(broker, "groups", "describe", group)
    return {o["partition"]: (o["committed_offset"], o["log_end_offset"], o["lag"]) for o in described["offsets"]}


def test_consumer_group_commits_and_a_second_run_resumes(broker: BrokerProcess, topic: str) -> None:
    group = f"{topic}-group"
    ok(broker, "topics", "create", topic, "--partitions", "2")
    ok(broker, "produce", "--topic", topic, stdin="".join(f"m{i}\n" for i in range(10)))

    first = consumed(broker, "--topic", topic, "--group", group, "--from-beginning", "--max-messages", "4")
    assert len(first) == 4
    next_offsets = {p: (max(o for o, _, _ in rs) + 1 if rs else 0) for p, rs in by_partition(first).items()}
    assert _committed(broker, group) == {p: (next_offsets.get(p, 0), 5, 5 - next_offsets.get(p, 0)) for p in (0, 1)}

    second = consumed(broker, "--topic", topic, "--group", group, "--max-messages", "6")
    assert sorted(r["value"] for r in first + second) == sorted(f"m{i}" for i in range(10))
    assert _committed(broker, group) == {0: (5, 5, 0), 1: (5, 5, 0)}

    ok(broker, "produce", "--topic", topic, stdin="n0\nn1\nn2\n")  # round robin: 0, 1, 0
    assert _committed(broker, group) == {0: (5, 7, 2), 1: (5, 6, 1)}
    text = ok(broker, "groups", "describe", group).splitlines()
    assert text[0] == f"Group {group}: Empty, protocol consumer/-, 0 member(s)"
    assert [line.split()[:5] for line in text if line.startswith(topic)] == [
        [topic, "0", "5", "7", "2"], [topic, "1", "5", "6", "1"],
    ]


def test_groups_list_describe_a_live_member_and_reset_offsets(broker: BrokerProcess, topic: str) -> None:
    group = f"{topic}-group"
    ok(broker, "topics", "create", topic, "--partitions", "2")
    ok(broker, "produce", "--topic", topic, stdin="a\nb\nc\nd\n")
    consumer = subprocess.Popen(
        [sys.executable, "-m", "kafkapy", "consume", "--topic", topic, "--group", group, "--from-beginning",
         "--bootstrap", broker.bootstrap],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )
    try:
        def settled() -> dict[str, Any] | None:
            result = kafkapy(broker, "groups", "describe", group, "--format", "json")
            if result.returncode != 0:  # the consumer has not joined yet: no such group
                return None
            described = json.loads(result.stdout)
            caught_up = all(o["lag"] == 0 for o in described["offsets"]) and len(described["offsets"]) == 2
            return described if described["state"] == "Stable" and caught_up else None

        described = wait_until(settled, timeout=20, message="the consumer to join and commit")
        [member] = described["members"]
        assert (member["client_id"], member["assignment"]) == ("kafkapy", {topic: [0, 1]})
        assert {o["member_id"] for o in described["offsets"]} == {member["member_id"]}
        assert {"group_id": group, "state": "Stable", "protocol_type": "consumer"} in json_of(broker, "groups", "list")

        refused = kafkapy(broker, "groups", "reset-offsets", group, "--topic", topic, "--to-earliest")
        assert refused.returncode == 1
        assert "it is Stable with 1 member(s)" in refused.stderr and "stop its consumers first" in refused.stderr
    finally:
        consumer.send_signal(signal.SIGTERM)
        try:
            out, err = consumer.communicate(timeout=TOOL_TIMEOUT_S)
        except subprocess.TimeoutExpired:
            consumer.kill()
            consumer.communicate()
            raise
    assert consumer.returncode == 0, err
    assert sorted(out.split()) == ["a", "b", "c", "d"] and "Processed a total of 4 messages" in err
    # It left the group on its way out: no member lingers until its session times out.
    assert json_of(broker, "groups", "describe", group)["state"] == "Empty"

    dry_run = json_of(broker, "groups", "reset-offsets", group, "--topic", topic, "--to-earliest", "--dry-run")
    assert dry_run == [{"topic": topic, "partition": 0, "new_offset": 0}, {"topic": topic, "partition": 1, "new_offset": 0}]
    assert _committed(broker, group) == {0: (2, 2, 0), 1: (2, 2, 0)}
    ok(broker, "groups", "reset-offsets", group, "--topic", topic, "--to-earliest")
    assert _committed(broker, group) == {0: (0, 2, 2), 1: (0, 2, 2)}
    clamped = kafkapy(broker, "groups", "reset-offsets", group, "--topic", topic, "--to-offset", "7")
    assert clamped.returncode == 0 and f"offset 7 is outside {topic}-0's [0, 2]: using 2" in clamped.stderr
    assert _committed(broker, group) == {0: (2, 2, 0), 1: (2, 2, 0)}
    ok(broker, "groups", "reset-offsets", group, "--topic", topic, "--to-offset", "1")
    assert _committed(broker, group) == {0: (1, 2, 1), 1: (1, 2, 1)}
    resumed = consumed(broker, "--topic", topic, "--group", group, "--max-messages", "2")
    assert sorted((r["partition"], r["offset"]) for r in resumed) == [(0, 1), (1, 1)]


def test_a_refused_connection_names_the_address(broker: BrokerProcess) -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        address = f"127.0.0.1:{probe.getsockname()[1]}"  # bound, not listening: connections are refused
        for args in (["topics", "list"], ["consume", "--topic", "t"], ["groups", "list"]):
            result = subprocess.run([sys.executable, "-m", "kafkapy", *args, "--bootstrap", address],
                                    capture_output=True, text=True, timeout=TOOL_TIMEOUT_S)
            assert result.returncode == 1
            assert result.stderr == (f"kafkapy {' '.join(args[:2]) if args[0] != 'consume' else 'consume'}: error: "
                                     f"cannot connect to the bootstrap broker at {address}: connection refused "
                                     "(is a Kafka broker listening there?)\n")


def test_an_unknown_topic_is_named_with_kafkas_error(broker: BrokerProcess, topic: str) -> None:
    for args in (["consume", "--topic", topic], ["produce", "--topic", topic], ["topics", "describe", topic]):
        result = kafkapy(broker, *args, stdin="x\n")
        assert result.returncode == 1
        assert f"topic '{topic}': UNKNOWN_TOPIC_OR_PARTITION (the topic or partition does not exist)" in result.stderr
    unknown_group = kafkapy(broker, "groups", "describe", f"{topic}-group")
    assert unknown_group.returncode == 1 and f"consumer group '{topic}-group' does not exist" in unknown_group.stderr


@pytest.fixture
def oldest_versions(monkeypatch: pytest.MonkeyPatch) -> None:
    """Connections use the oldest version of each API both sides support, not the newest."""
    negotiate = Connection._negotiate_versions
    monkeypatch.setattr(Connection, "_negotiate_versions",
                        lambda self: {key: (low, low) for key, (low, _) in negotiate(self).items()})


@pytest.mark.usefixtures("oldest_versions")
def test_the_client_speaks_the_oldest_versions_too(broker: BrokerProcess, topic: str) -> None:
    """Each request is built for every version the client may negotiate; this runs them at the oldest."""
    group = f"{topic}-group"
    with Client(broker.bootstrap) as client:
        assert client.any_broker().versions[API_KEYS["produce"]] == 3  # this really is the oldest
        assert client.create_topic(topic, 2) in (2, -1)
        client.create_partitions(topic, 3)
        client.alter_configs(TOPIC_RESOURCE, topic, {"retention.ms": "60000"})
        configs = client.describe_configs(TOPIC_RESOURCE, topic)
        assert {c.name: c.value for c in configs if c.source == TOPIC_CONFIG_SOURCE} == {"retention.ms": "60000"}
        keys = [f"k{i}".encode() for i in range(6)]
        assert sum(client.produce(topic, [(k, b"v" + k) for k in keys]).values()) == 6
        assert sum(client.list_offsets(topic, [0, 1, 2], LATEST).values()) == 6

        member = GroupMember(client, group, [topic])
        assert member.join() == {topic: [0, 1, 2]}
        info = client.topic(topic)
        fetched = client.fetch(info, dict.fromkeys(range(3), 0))
        records = {r.key: (p, r.value) for p, f in fetched.items() for r in f.records}
        assert records == {k: (client.partition_for(info, k), b"v" + k) for k in keys}
        member.commit({(topic, p): len(f.records) for p, f in fetched.items()})
        described = client.describe_group(group)
        assert (described.state, [m.assignment for m in described.members]) == ("Stable", [{topic: [0, 1, 2]}])
        assert group in [g.group_id for g in client.list_groups()]
        member.close()
        assert client.committed_offsets(group) == {(topic, p): len(f.records) for p, f in fetched.items()}
        client.delete_topic(topic)


def test_api_versions_falls_back_to_a_version_the_broker_knows() -> None:
    """A broker that knows ApiVersions only up to v2 answers a newer request in v0 with
    UNSUPPORTED_VERSION and its range, as Kafka does; the client asks again at v2."""
    api_versions, metadata = API_KEYS["api_versions"], API_KEYS["metadata"]
    asked_versions = []

    def answer(server: socket.socket) -> None:
        connection, _ = server.accept()
        with connection:
            for _ in range(2):
                _, version, correlation_id = peek_header(recv_frame(connection))
                asked_versions.append(version)
                if version > 2:
                    response = build(response_type(api_versions, 0), {
                        "error_code": 35, "api_keys": [{"api_key": api_versions, "min_version": 0, "max_version": 2}],
                    })
                else:
                    response = build(response_type(api_versions, version), {"error_code": 0, "throttle_time": 0, "api_keys": [
                        {"api_key": api_versions, "min_version": 0, "max_version": 2},
                        {"api_key": metadata, "min_version": 0, "max_version": 9},
                    ]})
                chunks, _ = encode_response(correlation_id, response)
                connection.sendall(b"".join(chunks))

    with socket.create_server(("127.0.0.1", 0)) as server:
        broker = threading.Thread(target=answer, args=(server,), daemon=True)
        broker.start()
        connection = Connection("127.0.0.1", server.getsockname()[1], "the old broker", "test", 10)
        broker.join(10)
        connection.close()
    assert asked_versions == [kio_versions(api_versions)[1], 2]
    assert connection.versions == {api_versions: 2, metadata: 9}
