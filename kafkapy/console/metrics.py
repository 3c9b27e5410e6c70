"""What the console's charts draw, sans I/O: samples of the cluster's offsets taken by the
console itself (each topic's log end offsets, each group's committed offsets and lag) kept
in a bounded history, turned into produce and consume rates per topic and lag per group,
and each series scaled into an SVG polyline."""

from __future__ import annotations

from collections import deque
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass

# Half an hour at the default interval: what a page open all day keeps.
MAX_SAMPLES = 360
DEFAULT_SAMPLE_INTERVAL_S = 5.0


@dataclass(frozen=True)
class Sample:
    at_ms: int
    """When it was taken, on a monotonic clock."""
    topic_ends: Mapping[str, int]
    """Each topic's log end offsets, summed over its partitions."""
    group_committed: Mapping[tuple[str, str], int]
    """Each (group, topic)'s committed offsets, summed over the partitions it committed."""
    group_lags: Mapping[str, int]
    """Each group's total lag: log end minus committed offset, over the partitions it committed."""


Point = tuple[int, float]


class History:
    def __init__(self, capacity: int = MAX_SAMPLES) -> None:
        self.samples: deque[Sample] = deque(maxlen=capacity)

    def add(self, sample: Sample) -> None:
        self.samples.append(sample)

    @property
    def topics(self) -> list[str]:
        return sorted({t for s in self.samples for t in s.topic_ends})

    @property
    def groups(self) -> list[str]:
        return sorted({g for s in self.samples for g in s.group_lags})

    def produce_rate(self, topic: str) -> list[Point]:
        """Records appended per second between consecutive samples."""
        return self._rates(lambda s: s.topic_ends.get(topic))

    def consume_rate(self, topic: str) -> list[Point]:
        """Records consumed per second, as the groups' committed offsets on the topic moved."""
        def committed(sample: Sample) -> int | None:
            offsets = [o for (_, t), o in sample.group_committed.items() if t == topic]
            return sum(offsets) if offsets else None

        return self._rates(committed)

    def lag(self, group: str) -> list[Point]:
        return [(s.at_ms, float(s.group_lags[group])) for s in self.samples if group in s.group_lags]

    def _rates(self, value: Callable[[Sample], int | None]) -> list[Point]:
        points = []
        for before, after in zip(self.samples, list(self.samples)[1:], strict=False):
            start, end = value(before), value(after)
            if start is None or end is None or after.at_ms <= before.at_ms:
                continue
            # Offsets that went back (a topic deleted and created again) count as no progress.
            points.append((after.at_ms, max(end - start, 0) * 1000 / (after.at_ms - before.at_ms)))
        return points


@dataclass(frozen=True)
class Chart:
    points: str
    """The polyline's points attribute, in a WIDTH x HEIGHT box."""
    values: list[float]
    peak: float
    latest: float | None
    span_s: float


WIDTH, HEIGHT = 480, 100


def chart(series: Iterable[Point]) -> Chart:
    """The series scaled into the chart's box: time across, from zero to the peak upwards."""
    points = list(series)
    if not points:
        return Chart("", [], 0.0, None, 0.0)
    first, last = points[0][0], points[-1][0]
    peak = max(v for _, v in points)
    span = max(last - first, 1)
    scaled = [(WIDTH * (t - first) / span if len(points) > 1 else WIDTH, HEIGHT - (HEIGHT * v / peak if peak else 0))
              for t, v in points]
    return Chart(" ".join(f"{x:.1f},{y:.1f}" for x, y in scaled), [v for _, v in points], peak, points[-1][1],
                 (last - first) / 1000)
