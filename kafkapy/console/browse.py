"""Reading a topic's records for the messages page: from the beginning, the end, an offset
or a timestamp, oldest or newest first, filtered while reading, within a bound on how many
records one page reads; and the records of a live tail."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field

from ..client import EARLIEST, LATEST, Client, Record, TopicInfo, check
from .values import ShownValue, record_matches, show_value

SEEKS = ("beginning", "end", "offset", "timestamp")
DEFAULT_LIMIT = 50
MAX_LIMIT = 500
# Records one page reads at most, filter or not: a filter that matches nothing in a long
# partition ends the page instead of reading it whole.
MAX_SCANNED = 100_000


@dataclass(frozen=True)
class BrowseQuery:
    partition: int | None = None
    """None: every partition of the topic."""
    seek: str = "beginning"
    offset: int = 0
    timestamp_ms: int = 0
    newest_first: bool = False
    limit: int = DEFAULT_LIMIT
    needle: str = ""
    field: str = "any"
    value_format: str = "auto"

    @property
    def backward(self) -> bool:
        """Reading back from the seek position: from the end, or newest first from an offset or timestamp."""
        return self.seek == "end" or (self.newest_first and self.seek in ("offset", "timestamp"))


@dataclass(frozen=True)
class ShownRecord:
    partition: int
    offset: int
    timestamp: int
    key: ShownValue
    value: ShownValue
    headers: list[tuple[str, str]]


@dataclass
class BrowseResult:
    records: list[ShownRecord] = field(default_factory=list)
    scanned: int = 0
    limited: bool = False
    """The page stopped at MAX_SCANNED records read, before finding `limit` that match."""
    next_offset: int | None = None
    """For one partition: where the next page starts (None when there is nothing further)."""
    read: list[tuple[int, Record]] = field(default_factory=list)
    """The records shown, as read (partition, record): what a download carries whole."""


def shown_record(partition: int, record: Record, value_format: str) -> ShownRecord:
    headers = [(name, "null" if v is None else v.decode("utf-8", errors="backslashreplace")) for name, v in record.headers]
    return ShownRecord(partition, record.offset, record.timestamp, show_value(record.key, value_format),
                       show_value(record.value, value_format), headers)


def _matches(query: BrowseQuery, record: Record) -> bool:
    return record_matches(query.needle, query.field, record.key, record.value, record.headers)


class _Reader:
    """One partition's records between two offsets, in fetches, counting what it reads."""

    def __init__(self, client: Client, info: TopicInfo, partition: int, result: BrowseResult) -> None:
        self.client, self.info, self.partition, self.result = client, info, partition, result

    def forward(self, position: int, end: int) -> Iterator[Record]:
        while position < end and self.result.scanned < MAX_SCANNED:
            fetched = self.client.fetch(self.info, {self.partition: position}, max_wait_ms=0)[self.partition]
            check(fetched.error, f"fetching {self.info.name}-{self.partition} at offset {position}")
            records = [r for r in fetched.records if r.offset < end]
            if not records:
                return  # only transaction markers left, or records deleted meanwhile
            for record in records:
                self.result.scanned += 1
                yield record
            position = records[-1].offset + 1
        if position < end:
            self.result.limited = True

    def backward(self, start: int, position: int, wanted: int, query: BrowseQuery) -> list[Record]:
        """Up to `wanted` matching records before `position` (down to `start`), newest first."""
        found: list[Record] = []
        chunk = max(wanted, 1)
        while len(found) < wanted and position > start and self.result.scanned < MAX_SCANNED:
            low = max(start, position - chunk)
            window = [r for r in self.forward(low, position) if _matches(query, r)]
            found.extend(reversed(window))
            position = low
            chunk *= 2  # a filter that matches rarely: read further back each round
        if len(found) < wanted and position > start:
            self.result.limited = True
        return found[:wanted]


def browse(client: Client, topic: str, query: BrowseQuery) -> BrowseResult:
    info = client.topic(topic)
    partitions = sorted(info.partitions) if query.partition is None else [query.partition]
    starts = client.list_offsets(topic, partitions, EARLIEST)
    ends = client.list_offsets(topic, partitions, LATEST)
    if query.seek == "offset":
        positions = {p: query.offset + (1 if query.backward else 0) for p in partitions}
    elif query.seek == "timestamp":
        at_time = client.list_offsets(topic, partitions, query.timestamp_ms)
        # No record at or after the time: the partition's end.
        positions = {p: ends[p] if at_time[p] < 0 else at_time[p] for p in partitions}
    else:
        positions = starts if query.seek == "beginning" else ends
    result = BrowseResult()
    picked: list[tuple[int, Record]] = []
    for p in partitions:
        reader = _Reader(client, info, p, result)
        position = min(max(positions[p], starts[p]), ends[p])
        if query.backward:
            records = reader.backward(starts[p], position, query.limit, query)
        else:
            records = []
            for record in reader.forward(position, ends[p]):
                if _matches(query, record):
                    records.append(record)
                    if len(records) == query.limit:
                        break
        picked += [(p, r) for r in records]
        if query.partition is not None and records:
            last = min(r.offset for r in records) - 1 if query.backward else max(r.offset for r in records) + 1
            result.next_offset = last if starts[p] <= last < ends[p] else None
    # Across partitions, the `limit` records nearest the seek position in time.
    picked.sort(key=lambda pr: (pr[1].timestamp, pr[0], pr[1].offset), reverse=query.backward)
    picked = picked[:query.limit]
    picked.sort(key=lambda pr: (pr[1].timestamp, pr[0], pr[1].offset), reverse=query.newest_first)
    result.read = picked
    result.records = [shown_record(p, r, query.value_format) for p, r in picked]
    return result


class Tail:
    """The records appended to a topic (or one partition) from now on, as they arrive."""

    def __init__(self, client: Client, topic: str, partition: int | None) -> None:
        self.client = client
        self.info = client.topic(topic)
        partitions = sorted(self.info.partitions) if partition is None else [partition]
        self.positions = client.list_offsets(topic, partitions, LATEST)

    def poll(self, max_wait_ms: int = 1000) -> list[tuple[int, Record]]:
        """What arrived since the last poll, waiting up to max_wait_ms for something."""
        arrived = []
        for p, fetched in self.client.fetch(self.info, self.positions, max_wait_ms).items():
            check(fetched.error, f"fetching {self.info.name}-{p}")
            if fetched.records:
                arrived += [(p, r) for r in fetched.records]
                self.positions[p] = fetched.records[-1].offset + 1
        return sorted(arrived, key=lambda pr: (pr[1].timestamp, pr[0], pr[1].offset))
