import struct

from kafkapy.log.index import OffsetIndex, TimeIndex


def test_offset_lookup_finds_the_last_entry_at_or_before(tmp_path):
    index = OffsetIndex(tmp_path / "0.index", 100)
    for offset, position in [(100, 0), (110, 500), (125, 900)]:
        index.append(offset, position)
    assert [index.lookup(o) for o in (99, 100, 109, 110, 124, 125, 10**6)] == [0, 0, 0, 500, 500, 900, 900]


def test_offset_index_file_is_kafkas_layout_and_loads_back(tmp_path):
    index = OffsetIndex(tmp_path / "0.index", 100)
    index.append(110, 500)
    index.append(125, 900)
    index.write()
    assert index.path.read_bytes() == struct.pack(">iiii", 10, 500, 25, 900)
    loaded = OffsetIndex(index.path, 100)
    assert loaded.load(log_size=1_000)
    assert (list(loaded.offsets), list(loaded.positions)) == ([110, 125], [500, 900])


def test_offset_index_pointing_past_the_log_does_not_load(tmp_path):
    index = OffsetIndex(tmp_path / "0.index", 0)
    index.append(10, 500)
    index.write()
    assert not OffsetIndex(index.path, 0).load(log_size=500)


def test_time_lookup_starts_after_everything_older(tmp_path):
    index = TimeIndex(tmp_path / "0.timeindex", 100)
    for timestamp, offset in [(1_000, 104), (1_000, 106), (2_000, 120), (1_500, 130)]:
        index.maybe_append(timestamp, offset)
    assert list(index.timestamps) == [1_000, 2_000]  # only ever larger timestamps
    assert [index.lookup(t) for t in (999, 1_000, 1_001, 2_000, 2_001)] == [100, 100, 104, 104, 120]
