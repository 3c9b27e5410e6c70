"""The console's pure parts: how a value is shown (format detection, JSON, hex, cutting)
and downloaded (JSON lines), the filter applied while reading, the planning of an offset
reset, and a quorum replica's lag."""

from __future__ import annotations

import json
import uuid

import pytest

from kafkapy.client import QuorumInfo, QuorumReplica, Record
from kafkapy.console.export import exported_value, record_line
from kafkapy.console.forms import (
    FormError,
    config_changes,
    config_lines,
    format_size,
    format_timestamp,
    header_lines,
    integer,
    partition_list,
    timestamp_ms,
)
from kafkapy.console.metrics import HEIGHT, WIDTH, History, Sample, chart
from kafkapy.console.offsets import PartitionPosition, ResetPlanError, ResetStrategy, plan_reset
from kafkapy.console.reads import quorum_view
from kafkapy.console.values import SHOWN_BYTES, detect_format, hex_dump, record_matches, show_value


@pytest.mark.parametrize(("data", "expected"), [
    (None, "null"),
    (b"hello world", "text"),
    (b"", "text"),
    ("h\u00e9llo \u2603".encode(), "text"),
    (b"line one\nline two\ttabbed\r\n", "text"),
    (b'{"a": 1, "b": [1, 2]}', "json"),
    (b'  [1, 2, 3]\n', "json"),
    (b"{not json", "text"),
    (b"42", "text"),  # a bare JSON scalar reads better as text
    (b"\xff\xfe\x00\x01", "hex"),
    (b"abc\x00def", "hex"),
    (b"\x1b[31mred", "hex"),
])
def test_detect_format(data, expected):
    assert detect_format(data) == expected


def test_auto_shows_json_pretty_and_hex_as_offset_lines():
    shown = show_value(b'{"b":{"c":[1,2]},"a":"\xc3\xa9"}')
    assert shown.format == "json"
    assert json.loads(shown.text) == {"b": {"c": [1, 2]}, "a": "\u00e9"}
    assert shown.text.splitlines()[1] == '  "b": {'
    assert "\u00e9" in shown.text
    binary = bytes(range(20))
    shown = show_value(binary)
    assert shown.format == "hex"
    assert shown.text.splitlines() == [
        "00000000  00 01 02 03 04 05 06 07 08 09 0a 0b 0c 0d 0e 0f",
        "00000010  10 11 12 13",
    ]
    assert shown.size == 20


def test_chosen_format_overrides_detection():
    assert show_value(b'{"a":1}', "text").text == '{"a":1}'
    assert show_value(b"AB", "hex").text == "00000000  41 42"
    assert show_value(b"\xff", "text").text == "\\xff"
    not_json = show_value(b"plain", "json")
    assert (not_json.format, not_json.text) == ("text", "plain")
    assert "not valid JSON" in not_json.note
    assert show_value(None, "hex").format == "null"


def test_large_values_are_cut_with_a_note():
    big = b"x" * (SHOWN_BYTES + 10)
    shown = show_value(big)
    assert shown.format == "text"
    assert len(shown.text) == SHOWN_BYTES
    assert shown.size == SHOWN_BYTES + 10
    assert f"of {SHOWN_BYTES + 10} bytes" in shown.note
    assert len(show_value(big, "hex").text.splitlines()) == SHOWN_BYTES // 16
    assert show_value(b"small").note == ""


def test_hex_dump_of_nothing_is_empty():
    assert hex_dump(b"") == ""


@pytest.mark.parametrize(("needle", "field", "expected"), [
    ("", "any", True),
    ("ORDER", "any", True),  # case is ignored
    ("order", "key", True),
    ("order", "value", False),
    ("paid", "value", True),
    ("paid", "key", False),
    ("trace", "headers", True),  # a header's name
    ("abc123", "headers", True),  # a header's value
    ("abc123", "value", False),
    ("missing", "any", False),
])
def test_record_filter(needle, field, expected):
    headers = (("trace-id", b"abc123"), ("empty", None))
    assert record_matches(needle, field, b"order-7", b'{"status": "paid"}', headers) is expected


def test_record_filter_with_null_key_and_value():
    assert not record_matches("x", "any", None, None, ())


POSITIONS = {
    ("t", 0): PartitionPosition(log_start_offset=5, log_end_offset=20, committed=12, offset_at_timestamp=8),
    ("t", 1): PartitionPosition(log_start_offset=0, log_end_offset=3, committed=None, offset_at_timestamp=-1),
}


def _plan(strategy, amount=0, positions=POSITIONS):
    return {(p.topic, p.partition): (p.current, p.new, p.clamped) for p in plan_reset(strategy, positions, amount)}


def test_reset_to_earliest_and_latest():
    assert _plan(ResetStrategy.EARLIEST) == {("t", 0): (12, 5, False), ("t", 1): (None, 0, False)}
    assert _plan(ResetStrategy.LATEST) == {("t", 0): (12, 20, False), ("t", 1): (None, 3, False)}


def test_reset_to_offset_is_clamped_into_each_partition():
    assert _plan(ResetStrategy.OFFSET, 10) == {("t", 0): (12, 10, False), ("t", 1): (None, 3, True)}
    assert _plan(ResetStrategy.OFFSET, 0) == {("t", 0): (12, 5, True), ("t", 1): (None, 0, False)}


def test_reset_to_timestamp_without_a_later_record_goes_to_the_end():
    assert _plan(ResetStrategy.TIMESTAMP) == {("t", 0): (12, 8, False), ("t", 1): (None, 3, False)}


def test_shift_moves_from_the_committed_offset_within_range():
    only_committed = {("t", 0): POSITIONS[("t", 0)]}
    assert _plan(ResetStrategy.SHIFT, -3, only_committed) == {("t", 0): (12, 9, False)}
    assert _plan(ResetStrategy.SHIFT, -100, only_committed) == {("t", 0): (12, 5, True)}
    assert _plan(ResetStrategy.SHIFT, 100, only_committed) == {("t", 0): (12, 20, True)}
    with pytest.raises(ResetPlanError, match="t-1"):
        plan_reset(ResetStrategy.SHIFT, POSITIONS, 1)


def test_form_fields_configs_headers_and_times():
    assert config_lines("retention.ms=1000\n\n cleanup.policy = compact \n") == {"retention.ms": "1000", "cleanup.policy": "compact"}
    with pytest.raises(FormError, match="line 2"):
        config_lines("a=1\nnot a config")
    assert header_lines("trace: a:b\nflag\ntrace: c") == [("trace", b"a:b"), ("flag", None), ("trace", b"c")]
    with pytest.raises(FormError, match="no header name"):
        header_lines(": value")
    assert timestamp_ms("1700000000000") == 1_700_000_000_000
    assert timestamp_ms("2023-11-14T22:13:20Z") == 1_700_000_000_000
    assert timestamp_ms("2023-11-14T22:13:20") == 1_700_000_000_000  # UTC when no zone is named
    assert timestamp_ms("2023-11-15T00:13:20+02:00") == 1_700_000_000_000
    with pytest.raises(FormError, match="ISO 8601"):
        timestamp_ms("yesterday")
    assert format_timestamp(1_700_000_000_123) == "2023-11-14T22:13:20.123Z"
    assert format_timestamp(-1) == "-"
    with pytest.raises(FormError, match="Partitions: 'x' is not a whole number"):
        integer({"p": "x"}, "p", "Partitions")
    assert integer({}, "p", "Partitions", default=-1) == -1


def test_config_form_sets_what_differs_and_resets_what_is_ticked():
    current = {"retention.ms": "3600000", "cleanup.policy": "delete", "compression.type": None, "segment.ms": "60000"}
    fields = {"set.retention.ms": "3600000", "set.cleanup.policy": "compact", "set.compression.type": "",
              "set.segment.ms": "1", "reset.segment.ms": "on", "set.unknown.key": "x"}
    # Unchanged values and a null left empty are not sent; a ticked reset wins over its field;
    # a key the broker did not describe is sent for the broker to refuse.
    assert config_changes(fields, current) == ({"cleanup.policy": "compact", "unknown.key": "x"}, ["segment.ms"])
    assert config_changes({"set.retention.ms": "3600000"}, current) == ({}, [])


def test_chart_history_rates_lag_and_bound():
    history = History(capacity=3)
    history.add(Sample(1_000, {"orders": 10}, {("billing", "orders"): 0}, {"billing": 10}))
    history.add(Sample(3_000, {"orders": 30, "new": 5}, {("billing", "orders"): 10}, {"billing": 20}))
    history.add(Sample(4_000, {"orders": 30, "new": 9}, {("billing", "orders"): 30}, {"billing": 0}))
    # Records per second between consecutive samples, from the log end offsets...
    assert history.produce_rate("orders") == [(3_000, 10.0), (4_000, 0.0)]
    assert history.produce_rate("new") == [(4_000, 4.0)]
    # ... and from what the groups committed.
    assert history.consume_rate("orders") == [(3_000, 5.0), (4_000, 20.0)]
    assert history.consume_rate("new") == []
    assert history.lag("billing") == [(1_000, 10.0), (3_000, 20.0), (4_000, 0.0)]
    # Bounded: the oldest sample goes; offsets that went back count as no progress.
    history.add(Sample(5_000, {"orders": 2}, {}, {}))
    assert len(history.samples) == 3
    assert history.produce_rate("orders") == [(4_000, 0.0), (5_000, 0.0)]
    assert history.topics == ["new", "orders"] and history.groups == ["billing"]


def test_chart_scales_time_across_and_values_up_to_the_peak():
    drawn = chart([(1_000, 0.0), (2_000, 50.0), (3_000, 100.0)])
    assert drawn.points == f"0.0,{HEIGHT}.0 {WIDTH / 2:.1f},{HEIGHT / 2:.1f} {WIDTH}.0,0.0"
    assert (drawn.peak, drawn.latest, drawn.span_s, drawn.values) == (100.0, 100.0, 2.0, [0.0, 50.0, 100.0])
    assert chart([]).latest is None and chart([(5, 0.0)]).points == f"{WIDTH}.0,{HEIGHT}.0"


@pytest.mark.parametrize(("data", "chosen", "expected"), [
    (None, "auto", (None, "null")),
    (b'{"a": [1, 2]}', "auto", ({"a": [1, 2]}, "json")),
    (b'{"a": [1, 2]}', "json", ({"a": [1, 2]}, "json")),
    (b'{"a": [1, 2]}', "text", ('{"a": [1, 2]}', "text")),
    (b'{"a": [1, 2]}', "hex", ("eyJhIjogWzEsIDJdfQ==", "base64")),
    ("h\u00e9llo".encode(), "auto", ("h\u00e9llo", "text")),
    (b"not json", "json", ("not json", "text")),
    (b"\xff\x00", "text", ("/wA=", "base64")),  # bytes that are not text are never shown lossily
])
def test_exported_value_as_the_page_shows_it_or_base64(data, chosen, expected):
    assert exported_value(data, chosen) == expected


def test_record_line_is_one_whole_json_object():
    value = b"x" * (SHOWN_BYTES + 10)  # the page cuts it; the download does not
    record = Record(offset=7, timestamp=1_700_000_000_123, key=b"k", value=value, headers=(("h", None), ("i", b"\x80")))
    line = record_line(2, record, "auto")
    assert line.endswith("\n") and line.count("\n") == 1
    assert json.loads(line) == {
        "partition": 2, "offset": 7, "timestamp": 1_700_000_000_123, "timestamp_utc": "2023-11-14T22:13:20.123Z",
        "key": "k", "key_encoding": "text", "value": value.decode(), "value_encoding": "text",
        "headers": [{"name": "h", "value": None, "encoding": "null"}, {"name": "i", "value": "gA==", "encoding": "base64"}]}


def test_partition_list_and_sizes():
    assert partition_list(" 0, 2 5", "Partitions") == [0, 2, 5]
    assert partition_list("", "Partitions") == []
    for bad in ("one", "-1"):
        with pytest.raises(FormError, match="Partitions"):
            partition_list(bad, "Partitions")
    assert [format_size(n) for n in (0, 1023, 1536, 12 * 1024 ** 2, 3 * 1024 ** 4)] == [
        "0 B", "1023 B", "1.5 KiB", "12.0 MiB", "3.0 TiB"]


def test_quorum_lag_is_behind_the_leaders_log_end():
    def replica(replica_id, log_end_offset):
        return QuorumReplica(replica_id, uuid.UUID(int=0), log_end_offset, -1, -1)

    info = QuorumInfo(leader_id=2, leader_epoch=5, high_watermark=90, voters=[replica(1, 80), replica(2, 100), replica(3, 100)],
                      observers=[replica(7, 40)], endpoints={})
    view = quorum_view(info)
    assert [(r.replica.replica_id, r.lag) for r in view.voters] == [(1, 20), (2, 0), (3, 0)]
    assert [(r.replica.replica_id, r.lag) for r in view.observers] == [(7, 60)]
