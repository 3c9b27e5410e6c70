"""The broker's CPU per request, with the client's batching taken out of the picture.

A client library sizes its batches by how fast the broker answers, so a broker's CPU per
gigabyte under a real producer moves with its own speed. This sends the same requests
to every broker: Produce requests of one fixed batch for each of --partitions partitions
(acks=1, a window of requests in flight), then Fetch requests reading partition 0 back
from offset 0, over a bare connection, and reports the broker process's CPU per request
and per GB, in interleaved rounds, medians. With --acks 1,-1 each broker is measured at
each acks in turn, in every round (on one node, acks=all should cost what acks=1 does).

    python benchmarks/request_cost.py --broker kafkapy
    python benchmarks/request_cost.py --broker "after=sh -c 'cd A && exec python -m kafkapy ...'" \\
        --broker "before=sh -c 'cd B && exec python -m kafkapy ...'" --rounds 5

Broker syntax as in harness.py; the topic is created with kafkapy's admin client.
"""

from __future__ import annotations

import argparse
import datetime
import socket
import statistics
import struct
import tempfile
import time
from collections import deque
from pathlib import Path

from kio.schema.errors import ErrorCode
from kio.schema.fetch.v12.request import FetchPartition, FetchRequest, FetchTopic
from kio.schema.produce.v9.request import PartitionProduceData, ProduceRequest, TopicProduceData
from kio.schema.types import BrokerId
from kio.static.primitive import i8, i32

from brokers import RunningBroker, parse_broker
from kafkapy.client.admin import AdminClient
from kafkapy.wire.compression import Codec
from kafkapy.wire.protocol import decode_response, encode_request
from kafkapy.wire.records import Record, encode_batch, iter_headers

PRODUCE_KEY, PRODUCE_VERSION = 0, 9
FETCH_KEY, FETCH_VERSION = 1, 12
TOPIC = "request-cost"


class BareConnection:
    """Request frames out, response frames in, any number in flight."""

    def __init__(self, port: int) -> None:
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=60)
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

    def send(self, frame: bytes) -> None:
        self.sock.sendall(frame)

    def receive(self) -> bytes:
        (size,) = struct.unpack(">i", self._exactly(4))
        return self._exactly(size)

    def _exactly(self, n: int) -> bytes:
        buffer = bytearray(n)
        view, got = memoryview(buffer), 0
        while got < n:
            received = self.sock.recv_into(view[got:])
            if received == 0:
                raise ConnectionError("the broker closed the connection")
            got += received
        return bytes(buffer)

    def close(self) -> None:
        self.sock.close()


def produce_frames(requests: int, records: int, size: int, compression: str = "none", acks: int = 1,
                   partitions: int = 1) -> list[bytes]:
    batch = encode_batch([Record(i, 1_000_000 + i, None, bytes([i % 256]) * size) for i in range(records)],
                         codec=Codec.from_name(compression))
    body = ProduceRequest(
        transactional_id=None, acks=i8(acks), timeout=datetime.timedelta(seconds=30),
        topic_data=(TopicProduceData(name=TOPIC, partition_data=tuple(
            PartitionProduceData(index=i32(p), records=batch) for p in range(partitions))),),
    )
    return [encode_request(body, correlation_id=n) for n in range(requests)]


def fetch_frame(offset: int, max_bytes: int, correlation_id: int) -> bytes:
    partition = FetchPartition(partition=i32(0), current_leader_epoch=i32(-1), fetch_offset=offset,
                               last_fetched_epoch=i32(-1), log_start_offset=-1, partition_max_bytes=i32(max_bytes))
    body = FetchRequest(
        cluster_id=None, replica_id=BrokerId(-1), max_wait=datetime.timedelta(0), min_bytes=i32(1), max_bytes=i32(max_bytes),
        isolation_level=i8(0), session_id=i32(0), session_epoch=i32(-1),
        topics=(FetchTopic(topic=TOPIC, partitions=(partition,)),), forgotten_topics_data=(), rack_id="",
    )
    return encode_request(body, correlation_id=correlation_id)


def run_produce(connection: BareConnection, frames: list[bytes], in_flight: int, first_id: int) -> None:
    pending: deque[int] = deque()
    for n, frame in enumerate(frames, first_id):
        connection.send(frame)
        pending.append(n)
        if len(pending) >= in_flight:
            check_produce(connection.receive(), pending.popleft())
    while pending:
        check_produce(connection.receive(), pending.popleft())


def check_produce(frame: bytes, expected_id: int) -> None:
    correlation_id, response = decode_response(frame, PRODUCE_KEY, PRODUCE_VERSION)
    errors = {p.error_code for p in response.responses[0].partition_responses}
    if correlation_id != expected_id or errors != {ErrorCode.none}:
        raise RuntimeError(f"produce {expected_id}: answered {correlation_id} with {errors!r}")


def run_fetch(connection: BareConnection, end_offset: int, max_bytes: int) -> tuple[int, int]:
    """(requests, record bytes) to read the partition from 0 to end_offset."""
    offset = requests = total = 0
    while offset < end_offset:
        connection.send(fetch_frame(offset, max_bytes, requests))
        _, response = decode_response(connection.receive(), FETCH_KEY, FETCH_VERSION)
        partition = response.responses[0].partitions[0]
        if partition.error_code != ErrorCode.none or not partition.records:
            raise RuntimeError(f"fetch at {offset}: {partition.error_code!r}, {len(partition.records or b'')} bytes")
        headers = list(iter_headers(partition.records))
        offset = headers[-1][1].last_offset + 1
        total += len(partition.records)
        requests += 1
    return requests, total


def measure(broker: RunningBroker, frames: list[bytes], args: argparse.Namespace) -> dict[str, float]:
    with AdminClient(broker.bootstrap) as admin:
        admin.create_topic(TOPIC, partitions=args.partitions, replication_factor=1)
    connection = BareConnection(broker.port)
    try:
        warm_up = args.in_flight * 4
        run_produce(connection, frames[:warm_up], args.in_flight, 0)
        produce_frames_sent = frames[warm_up:]
        cpu, wall = broker.cpu_seconds(), time.perf_counter()
        run_produce(connection, produce_frames_sent, args.in_flight, warm_up)
        produce_cpu, produce_wall = broker.cpu_seconds() - cpu, time.perf_counter() - wall  # type: ignore[operator]
        cpu, wall = broker.cpu_seconds(), time.perf_counter()
        fetches, fetched = run_fetch(connection, len(frames) * args.records, args.fetch_max_bytes)
        fetch_cpu, fetch_wall = broker.cpu_seconds() - cpu, time.perf_counter() - wall  # type: ignore[operator]
    finally:
        connection.close()
    produced = len(produce_frames_sent) * len(frames[0])
    return {
        "produce_us_per_request": produce_cpu / len(produce_frames_sent) * 1e6,
        "produce_cpu_s_per_gb": produce_cpu / (produced / 1e9),
        "produce_mb_s": produced / 1e6 / produce_wall,
        "fetch_us_per_request": fetch_cpu / fetches * 1e6,
        "fetch_cpu_s_per_gb": fetch_cpu / (fetched / 1e9),
        "fetch_mb_s": fetched / 1e6 / fetch_wall,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--broker", action="append", required=True, help="kafkapy, NAME=HOST:PORT or NAME=COMMAND")
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--requests", type=int, default=2_000, help="Produce requests per round")
    parser.add_argument("--records", type=int, default=100, help="records per batch")
    parser.add_argument("--size", type=int, default=1024, help="bytes per record value")
    parser.add_argument("--compression", choices=["none", "gzip", "snappy", "lz4", "zstd"], default="none",
                        help="codec of the produced batches (the broker opens compressed ones to validate them)")
    parser.add_argument("--partitions", type=int, default=1, help="partitions each request writes a batch to")
    parser.add_argument("--acks", default="1", help="comma-separated: 1, -1 (all), or both")
    parser.add_argument("--in-flight", type=int, default=8)
    parser.add_argument("--fetch-max-bytes", type=int, default=256 * 1024)
    args = parser.parse_args()
    specs = [parse_broker(b) for b in args.broker]
    acks_values = [int(a) for a in args.acks.split(",")]
    frames = {acks: produce_frames(args.requests, args.records, args.size, args.compression, acks, args.partitions)
              for acks in acks_values}
    runs = [(spec, acks, spec.name if len(acks_values) == 1 else f"{spec.name} acks={acks}") for spec in specs for acks in acks_values]
    results: dict[str, list[dict[str, float]]] = {name: [] for _, _, name in runs}
    for round_number in range(args.rounds):
        for spec, acks, name in runs if round_number % 2 == 0 else reversed(runs):
            with tempfile.TemporaryDirectory() as data, RunningBroker(spec, Path(data) / "broker") as broker:
                result = measure(broker, frames[acks], args)
            results[name].append(result)
            print(f"round {round_number + 1} {name}: " + ", ".join(f"{k} {v:.1f}" for k, v in result.items()), flush=True)
    print(f"\n{args.requests} Produce requests of {args.records} x {args.size} B to each of {args.partitions} partition(s), "
          f"{args.compression} (acks={args.acks}, {args.in_flight} in flight), "
          f"then Fetch of {args.fetch_max_bytes} B each; medians of {args.rounds} rounds")
    keys = list(next(iter(results.values()))[0])
    print("| broker | " + " | ".join(keys) + " |")
    print("|---" * (len(keys) + 1) + "|")
    for name, rows in results.items():
        print(f"| {name} | " + " | ".join(f"{statistics.median(r[k] for r in rows):.1f}" for k in keys) + " |")


if __name__ == "__main__":
    main()
