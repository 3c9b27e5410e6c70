"""Produce, then consume, N records of a fixed size with confluent-kafka; print MB/s.
A quick single run; benchmarks/harness.py is the side-by-side measurement.

    python benchmarks/produce_consume.py --bootstrap 127.0.0.1:9092
    python benchmarks/produce_consume.py            # starts its own kafkapy process

Without --bootstrap it starts a kafkapy broker on 127.0.0.1 in a temporary directory
(default flush policy: page cache, as Kafka) and stops it at the end.
"""

from __future__ import annotations

import argparse
import tempfile
import uuid
from pathlib import Path

from brokers import RunningBroker, parse_broker
from workloads import consume, produce


def run(bootstrap: str, args: argparse.Namespace) -> None:
    topic = f"bench-{uuid.uuid4().hex[:8]}"
    produced = produce(bootstrap, topic, args.count, args.size, args.acks, args.compression, args.partitions, deadline_s=120)
    consumed = consume(bootstrap, topic, args.partitions, args.count, deadline_s=120)
    print(f"records: {args.count} x {args.size} B, partitions: {args.partitions}, acks: {args.acks}, compression: {args.compression}")
    for name, result in (("produce", produced), ("consume", consumed)):
        print(f"{name}: {result['mb_s']:8.1f} MB/s  ({result['records'] / result['seconds']:,.0f} records/s, {result['seconds']:.2f} s)")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--bootstrap", help="HOST:PORT of a running broker (default: start a kafkapy)")
    parser.add_argument("--count", type=int, default=200_000)
    parser.add_argument("--size", type=int, default=1024)
    parser.add_argument("--partitions", type=int, default=1)
    parser.add_argument("--acks", default="all")
    parser.add_argument("--compression", default="none")
    args = parser.parse_args()
    if args.bootstrap:
        run(args.bootstrap, args)
        return
    with tempfile.TemporaryDirectory() as data, RunningBroker(parse_broker("kafkapy"), Path(data) / "kafkapy") as broker:
        try:
            run(broker.bootstrap, args)
        except BaseException:
            print(broker.log_tail())
            raise


if __name__ == "__main__":
    main()
