"""Produce, then consume, N records of a fixed size with confluent-kafka; print MB/s.
A quick single run; benchmarks/harness.py is the side-by-side measurement.

    python benchmarks/produce_consume.py --bootstrap 127.0.0.1:9092
    python benchmarks/produce_consume.py            # starts its own kafkapy process
    python benchmarks/produce_consume.py --tls      # and then one with a TLS listener

Without --bootstrap it starts a kafkapy broker on 127.0.0.1 in a temporary directory
(default flush policy: page cache, as Kafka) and stops it at the end. With --tls, a second
kafkapy serves the same run over TLS (throwaway certificates; fetches cannot use sendfile
there), and the closing line gives TLS's throughput as a share of plaintext's.
"""

from __future__ import annotations

import argparse
import shlex
import tempfile
import uuid
from pathlib import Path
from typing import Any

from brokers import KAFKAPY_TEMPLATE, BrokerSpec, RunningBroker, parse_broker
from kafkapy.testing.certificates import TestCertificates
from workloads import consume, produce


def run(bootstrap: str, args: argparse.Namespace, client: dict[str, Any] | None = None, label: str = "") -> dict[str, dict[str, Any]]:
    topic = f"bench-{uuid.uuid4().hex[:8]}"
    produced = produce(bootstrap, topic, args.count, args.size, args.acks, args.compression, args.partitions, deadline_s=120,
                       client=client)
    consumed = consume(bootstrap, topic, args.partitions, args.count, deadline_s=120, client=client)
    print(f"{label}records: {args.count} x {args.size} B, partitions: {args.partitions}, acks: {args.acks}, compression: {args.compression}")
    for name, result in (("produce", produced), ("consume", consumed)):
        print(f"{label}{name}: {result['mb_s']:8.1f} MB/s  ({result['records'] / result['seconds']:,.0f} records/s, {result['seconds']:.2f} s)")
    return {"produce": produced, "consume": consumed}


def run_kafkapy(spec: BrokerSpec, data: Path, args: argparse.Namespace, client: dict[str, Any] | None = None,
                label: str = "") -> dict[str, dict[str, Any]]:
    with RunningBroker(spec, data) as broker:
        try:
            return run(broker.bootstrap, args, client, label)
        except BaseException:
            print(broker.log_tail())
            raise


def tls_spec(certificates: TestCertificates) -> BrokerSpec:
    """kafkapy with its client listener over TLS, and a plaintext one to see it is ready."""
    return BrokerSpec("kafkapy-tls", template=KAFKAPY_TEMPLATE.replace(
        "listeners=PLAINTEXT://127.0.0.1:{port}", "listeners=SSL://127.0.0.1:{port},PLAINTEXT://127.0.0.1:{plain_port}",
    ) + f" --override ssl.keystore.type=PEM --override ssl.keystore.location={shlex.quote(str(certificates.server()))}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--bootstrap", help="HOST:PORT of a running broker (default: start a kafkapy)")
    parser.add_argument("--count", type=int, default=200_000)
    parser.add_argument("--size", type=int, default=1024)
    parser.add_argument("--partitions", type=int, default=1)
    parser.add_argument("--acks", default="all")
    parser.add_argument("--compression", default="none")
    parser.add_argument("--tls", action="store_true", help="then the same over TLS, and the ratio (needs kafkapy[testkit])")
    args = parser.parse_args()
    if args.bootstrap:
        run(args.bootstrap, args)
        return
    with tempfile.TemporaryDirectory() as data:
        plaintext = run_kafkapy(parse_broker("kafkapy"), Path(data) / "kafkapy", args, label="plaintext " if args.tls else "")
        if not args.tls:
            return
        certificates = TestCertificates(Path(data) / "certificates")
        client = {"security.protocol": "SSL", "ssl.ca.location": str(certificates.ca_path)}
        tls = run_kafkapy(tls_spec(certificates), Path(data) / "kafkapy-tls", args, client, label="TLS ")
        print("TLS / plaintext: " + ", ".join(f"{name} {tls[name]['mb_s'] / plaintext[name]['mb_s']:.2f}" for name in ("produce", "consume")))


if __name__ == "__main__":
    main()
