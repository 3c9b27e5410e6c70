"""ListOffsets through each client: earliest, latest, and the first record at or after a time."""

from __future__ import annotations

from clients import Record

# Record timestamps in offset order, produced as three batches. They are not monotonic:
# offset 4 (5000) comes before offset 5 (4000).
BATCHES = [[1000, 2000, 2000], [3000, 5000], [4000, 6000]]
RECORD_COUNT = sum(map(len, BATCHES))

# Target timestamp -> the first offset whose timestamp is at or after it (None: none is).
FIRST_AT_OR_AFTER = {
    0: 0,
    1000: 0,  # exactly the first record
    1500: 1,  # between two records
    2000: 1,  # the first of two records with that timestamp
    2500: 3,  # between batches
    3000: 3,
    4000: 4,  # offset 4 (5000) is at or after 4000 and comes before offset 5 (4000) itself
    5500: 6,
    6000: 6,  # the last record
    6001: None,  # after the last record
}


def test_offsets_by_time_earliest_and_latest(client, topic_name):
    client.create_topic(topic_name, 1)
    offset = 0
    for timestamps in BATCHES:
        acked = client.produce(topic_name, [Record(b"k", b"%d" % ts, timestamp=ts, partition=0) for ts in timestamps])
        assert [r.offset for r in acked] == list(range(offset, offset + len(timestamps)))
        offset += len(timestamps)

    found = {target: client.offset_for_time(topic_name, 0, target) for target in FIRST_AT_OR_AFTER}

    assert found == FIRST_AT_OR_AFTER
    assert client.watermarks(topic_name, 0) == (0, RECORD_COUNT)


def test_offsets_of_an_empty_partition(client, topic_name):
    client.create_topic(topic_name, 1)

    assert client.watermarks(topic_name, 0) == (0, 0)
    assert client.offset_for_time(topic_name, 0, 0) is None
