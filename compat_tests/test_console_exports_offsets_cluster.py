"""The console's download of the records shown, its deletion of a group's offsets, and its
cluster page's quorum, API versions, features and log dir sizes, in Debian's chromium
against a kafkapy broker process (the fixtures of test_console)."""

from __future__ import annotations

import base64
import json
import re
import uuid
from pathlib import Path
from typing import Any

import pytest

import test_console
from kafkapy.client import Client, GroupMember
from test_console import ConsoleProcess, cells, checked, open_page

pytestmark = [pytest.mark.kafkapy_internals, pytest.mark.timeout(120)]

broker = test_console.broker
browser = test_console.browser


def test_download_carries_the_records_the_page_shows_as_json_lines(broker: Any, browser: Any) -> None:
    topic = f"download-{uuid.uuid4().hex[:8]}"
    binary = bytes(range(250, 256)) + b"\x00\x01"
    with Client(broker.bootstrap) as client:
        client.create_topic(topic, 2, 1)
        client.produce(topic, [(b"k-json", b'{"n": 1, "tags": ["a"]}')], 0, headers=[("trace", b"t-1"), ("raw", b"\xff\x00")])
        client.produce(topic, [(b"k-text", b"plain text"), (None, binary), (b"k-skip", b"not wanted")], 0)
        client.produce(topic, [(b"other", b"in partition one")], 1)
    console = ConsoleProcess(broker.bootstrap)
    try:
        page = open_page(browser, console)
        page.goto(f"{console.url}/topics/{topic}/messages?partition=0&seek=beginning&limit=3")
        assert cells(page, "#records tbody tr td:nth-child(2)") == ["0", "1", "2"]
        with page.expect_download() as downloading:
            page.click("#download")
        download = downloading.value
        assert download.suggested_filename == f"{topic}.jsonl"
        lines = [json.loads(line) for line in Path(download.path()).read_text("utf-8").splitlines()]
        assert [(r["partition"], r["offset"]) for r in lines] == [(0, 0), (0, 1), (0, 2)]  # the page's limit
        first, second, third = lines
        assert (first["key"], first["key_encoding"]) == ("k-json", "text")
        assert (first["value"], first["value_encoding"]) == ({"n": 1, "tags": ["a"]}, "json")
        assert first["headers"] == [{"name": "trace", "value": "t-1", "encoding": "text"},
                                    {"name": "raw", "value": base64.b64encode(b"\xff\x00").decode(), "encoding": "base64"}]
        assert (second["value"], second["value_encoding"]) == ("plain text", "text")
        assert (third["key"], third["key_encoding"]) == (None, "null")
        assert base64.b64decode(third["value"]) == binary and third["value_encoding"] == "base64"
        assert first["timestamp"] > 0 and first["timestamp_utc"].endswith("Z")

        # The same filter and format as the page: JSON asked to show as text stays text.
        filtered = page.request.get(f"{console.url}/topics/{topic}/messages.jsonl?seek=beginning&q=k-&field=key&format=text")
        assert filtered.headers["content-type"].startswith("application/x-ndjson")
        rows = [json.loads(line) for line in filtered.text().splitlines()]
        assert [(r["key"], r["value"], r["value_encoding"]) for r in rows] == [
            ("k-json", '{"n": 1, "tags": ["a"]}', "text"), ("k-text", "plain text", "text"), ("k-skip", "not wanted", "text")]
        newest = page.request.get(f"{console.url}/topics/{topic}/messages.jsonl?seek=end&limit=2")
        assert sorted((r["partition"], r["offset"]) for r in map(json.loads, newest.text().splitlines())) == [(0, 3), (1, 0)]
    finally:
        console.stop()


def test_deleting_a_groups_offsets_for_a_topic_or_its_partitions(broker: Any, browser: Any) -> None:
    topic, other, group = (f"{kind}-{uuid.uuid4().hex[:8]}" for kind in ("offsets", "kept", "group"))
    with Client(broker.bootstrap) as client:
        client.create_topic(topic, 3, 1)
        client.create_topic(other, 1, 1)
        client.commit_offsets(group, {(topic, 0): 0, (topic, 1): 0, (topic, 2): 0, (other, 0): 0})
    console = ConsoleProcess(broker.bootstrap)
    try:
        page = open_page(browser, console)
        page.goto(f"{console.url}/groups/{group}")
        page.fill("#o-topic", topic)
        page.fill("#o-partitions", "0, 2")
        page.click("#delete-offsets button[type=submit]")
        page.wait_for_url(re.compile(r"done=Deleted"))
        assert page.locator(".notice").inner_text() == f"Deleted the offsets of group {group} for {topic} partition(s) 0, 2"
        with Client(broker.bootstrap) as client:
            assert client.committed_offsets(group) == {(topic, 1): 0, (other, 0): 0}
        checked(page, "group-offsets-deleted")

        page.fill("#o-topic", topic)
        page.click("#delete-offsets button[type=submit]")
        page.wait_for_url(re.compile(r"done=Deleted"))
        with Client(broker.bootstrap) as client:
            assert client.committed_offsets(group) == {(other, 0): 0}

        # A member subscribed to the topic: Kafka refuses, and the page says why in words.
        with Client(broker.bootstrap) as client:
            member = GroupMember(client, group, [other])
            try:
                member.join()
                response = page.request.post(f"{console.url}/groups/{group}/offsets/delete", form={"topic": other})
                assert response.status == 400
                page.set_content(response.text())
                assert page.locator("#error-code").inner_text() == "Kafka error code 86 (GROUP_SUBSCRIBED_TO_TOPIC)"
                assert client.committed_offsets(group) == {(other, 0): 0}
            finally:
                member.close()
    finally:
        console.stop()


def test_cluster_page_shows_the_quorum_versions_features_and_log_dir_sizes(broker: Any, browser: Any) -> None:
    topic = f"sized-{uuid.uuid4().hex[:8]}"
    with Client(broker.bootstrap) as client:
        client.create_topic(topic, 2, 1)
        client.produce(topic, [(b"k", b"v" * 1000)] * 5, 0)
        [node] = client.metadata().brokers
        quorum = client.describe_quorum()
        versions = client.broker_versions(node)
        topic_bytes = sum(size for d in client.describe_log_dirs(node) for (t, _), size in d.partition_sizes.items() if t == topic)
    assert topic_bytes > 5000
    console = ConsoleProcess(broker.bootstrap)
    try:
        page = open_page(browser, console)
        page.goto(console.url + "/")
        assert page.locator("#quorum-leader").inner_text() == str(quorum.leader_id)
        assert page.locator("#quorum-epoch").inner_text() == str(quorum.leader_epoch)
        assert int(page.locator("#quorum-high-watermark").inner_text()) >= quorum.high_watermark
        assert page.locator("#quorum tbody tr").evaluate_all("rows => rows.map(r => r.dataset.replica)") == [
            str(r.replica_id) for r in quorum.voters + quorum.observers]
        assert cells(page, "#quorum tbody tr td:nth-child(2)")[0] == "leader"
        assert cells(page, "#quorum tbody tr td[data-lag]") == ["0"]  # the leader, of itself
        assert int(page.locator("#log-dir-size").get_attribute("data-bytes")) >= topic_bytes

        details = page.locator(f"#versions-{node}")
        assert not details.locator("table.api-versions").is_visible()  # collapsed until opened
        details.locator("summary").click()
        produce = details.locator('tr[data-api="produce"] td')
        expected_produce = next(a for a in versions.apis if a.name == "produce")
        assert produce.all_inner_texts() == ["0", "produce", str(expected_produce.min_version), str(expected_produce.max_version)]
        assert details.locator("table.api-versions tbody tr").count() == len(versions.apis)
        low, high = versions.finalized_features["metadata.version"]
        assert details.locator('table[data-kind=finalized] tr[data-feature="metadata.version"] td').all_inner_texts() == [
            "metadata.version", str(low), str(high)]
        checked(page, "cluster-quorum-versions")

        page.goto(f"{console.url}/topics?q={topic}")
        assert page.locator(f'#topics tr[data-topic="{topic}"] td[data-size]').get_attribute("data-size") == str(topic_bytes)
    finally:
        console.stop()


def test_read_only_console_offers_no_offset_deletion_and_refuses_it(broker: Any, browser: Any) -> None:
    topic, group = f"ro-offsets-{uuid.uuid4().hex[:8]}", f"ro-group-{uuid.uuid4().hex[:8]}"
    with Client(broker.bootstrap) as client:
        client.create_topic(topic, 1, 1)
        client.produce(topic, [(b"k", b"v")], 0)
        client.commit_offsets(group, {(topic, 0): 1})
    console = ConsoleProcess(broker.bootstrap, "--read-only")
    try:
        page = open_page(browser, console)
        page.goto(f"{console.url}/groups/{group}")
        assert page.locator("#read-only").is_visible()
        assert page.locator("#delete-offsets").count() == 0
        assert page.locator("form[method=post]").count() == 0
        response = page.request.post(f"{console.url}/groups/{group}/offsets/delete", form={"topic": topic})
        assert response.status == 403 and "read-only" in response.text()
        with Client(broker.bootstrap) as client:
            assert client.committed_offsets(group) == {(topic, 0): 1}
        # Downloading changes nothing: a read-only console offers it.
        page.goto(f"{console.url}/topics/{topic}/messages")
        lines = page.request.get(f"{console.url}/topics/{topic}/messages.jsonl").text().splitlines()
        assert [json.loads(line)["value"] for line in lines] == ["v"]
        assert page.locator("#download").is_visible()
    finally:
        console.stop()
