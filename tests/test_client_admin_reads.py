"""The client's ApiVersions of one broker, DescribeLogDirs and OffsetDelete, against an
embedded kafkapy broker: what the console's cluster page and group page are built on."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from kio.schema.errors import ErrorCode

from kafkapy.client import API_KEYS, Client, KafkaError
from kafkapy.testing.embedded import Broker

pytestmark = pytest.mark.timeout(60)


@pytest.fixture(scope="module")
def client() -> Iterator[Client]:
    with Broker() as broker, Client(broker.bootstrap_servers) as connected:
        yield connected


def test_broker_versions_are_what_the_connection_negotiated_from(client: Client) -> None:
    [node] = client.metadata().brokers
    versions = client.broker_versions(node)
    by_key = {a.api_key: a for a in versions.apis}
    assert by_key[API_KEYS["produce"]].name == "produce"
    negotiated = client.broker(node).versions
    assert all(by_key[key].max_version >= high for key, high in negotiated.items())
    low, high = versions.finalized_features["metadata.version"]
    assert low == high and versions.supported_features["metadata.version"][1] >= high


def test_log_dirs_hold_each_partition_with_its_size(client: Client) -> None:
    client.create_topic("sized", 2, 1)
    client.produce("sized", [(b"k", b"v" * 500)] * 4, 0)
    [node] = client.metadata().brokers
    [log_dir] = client.describe_log_dirs(node)
    assert log_dir.error_code == ErrorCode.none
    assert log_dir.partition_sizes[("sized", 1)] == 0
    assert log_dir.partition_sizes[("sized", 0)] > 4 * 500
    assert log_dir.size >= log_dir.partition_sizes[("sized", 0)]


def test_delete_group_offsets_of_some_partitions_and_the_errors_of_others(client: Client) -> None:
    client.create_topic("committed", 3, 1)
    client.commit_offsets("offsets-group", {("committed", p): 0 for p in range(3)})
    client.delete_group_offsets("offsets-group", "committed", [0, 2])
    assert client.committed_offsets("offsets-group") == {("committed", 1): 0}
    with pytest.raises(KafkaError) as raised:
        client.delete_group_offsets("offsets-group", "no-such-topic", [0])
    assert raised.value.code == ErrorCode.unknown_topic_or_partition
    assert "no-such-topic-0" in str(raised.value)
    with pytest.raises(KafkaError) as raised:
        client.delete_group_offsets("no-such-group", "committed", [0])
    assert raised.value.code == ErrorCode.group_id_not_found
