"""Produce and consume MB/s over PLAINTEXT, SSL and SASL_SSL in one run, and the ratios.

    python benchmarks/security_throughput.py                  # 3 rounds, 100,000 records of 1 KiB
    python benchmarks/security_throughput.py --rounds 5 --count 200000

Three kafkapy processes of this build, started together: one whose listener is PLAINTEXT,
one SSL, one SASL_SSL (SASL/PLAIN: the mechanism only costs at connection). A round
produces then consumes a fresh topic on each, in an order that rotates from round to
round, so that the machine's drift (other load, a warming page cache) falls on all three
alike. The table gives each protocol's median over the rounds and its share of
plaintext's. A fetch over TLS cannot use sendfile: the broker reads the segment's range
and encrypts it.
"""

from __future__ import annotations

import argparse
import shlex
import statistics
import tempfile
import uuid
from pathlib import Path
from typing import Any

from brokers import KAFKAPY_TEMPLATE, BrokerSpec, RunningBroker
from kafkapy.testing.certificates import TestCertificates
from workloads import consume, produce

PROTOCOLS = ("PLAINTEXT", "SSL", "SASL_SSL")
USER, PASSWORD = "bench", "bench-secret"


def broker_spec(protocol: str, certificates: TestCertificates) -> BrokerSpec:
    """kafkapy whose first listener speaks `protocol`, plus a plaintext one that tells when it is ready."""
    if protocol == "PLAINTEXT":
        return BrokerSpec("kafkapy-plaintext", template=KAFKAPY_TEMPLATE)
    jaas = f'org.apache.kafka.common.security.plain.PlainLoginModule required user_{USER}="{PASSWORD}";'
    overrides = {"ssl.keystore.type": "PEM", "ssl.keystore.location": str(certificates.server())}
    if protocol == "SASL_SSL":
        overrides |= {"sasl.enabled.mechanisms": "PLAIN", "listener.name.sasl_ssl.plain.sasl.jaas.config": jaas}
    template = KAFKAPY_TEMPLATE.replace("listeners=PLAINTEXT://127.0.0.1:{port}",
                                        f"listeners={protocol}://127.0.0.1:{{port}},PLAINTEXT://127.0.0.1:{{plain_port}}")
    return BrokerSpec(f"kafkapy-{protocol.lower()}",
                      template=template + "".join(f" --override {shlex.quote(f'{k}={v}')}" for k, v in overrides.items()))


def client_settings(protocol: str, certificates: TestCertificates) -> dict[str, Any]:
    if protocol == "PLAINTEXT":
        return {}
    settings: dict[str, Any] = {"security.protocol": protocol, "ssl.ca.location": str(certificates.ca_path)}
    if protocol == "SASL_SSL":
        settings |= {"sasl.mechanism": "PLAIN", "sasl.username": USER, "sasl.password": PASSWORD}
    return settings


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--count", type=int, default=100_000)
    parser.add_argument("--size", type=int, default=1024)
    parser.add_argument("--partitions", type=int, default=1)
    parser.add_argument("--acks", default="all")
    args = parser.parse_args()
    results: dict[str, dict[str, list[float]]] = {p: {"produce": [], "consume": []} for p in PROTOCOLS}
    with tempfile.TemporaryDirectory(prefix="kafkapy-security-bench-") as directory:
        root = Path(directory)
        certificates = TestCertificates(root / "certificates")
        brokers = {p: RunningBroker(broker_spec(p, certificates), root / p.lower()) for p in PROTOCOLS}
        try:
            for broker in brokers.values():
                broker.start()
            for round_index in range(args.rounds):
                order = PROTOCOLS[round_index % len(PROTOCOLS):] + PROTOCOLS[:round_index % len(PROTOCOLS)]
                for protocol in order:
                    bootstrap, client = brokers[protocol].bootstrap, client_settings(protocol, certificates)
                    topic = f"bench-{uuid.uuid4().hex[:8]}"
                    produced = produce(bootstrap, topic, args.count, args.size, args.acks, "none", args.partitions,
                                       deadline_s=300, client=client)
                    consumed = consume(bootstrap, topic, args.partitions, args.count, deadline_s=300, client=client)
                    results[protocol]["produce"].append(produced["mb_s"])
                    results[protocol]["consume"].append(consumed["mb_s"])
                    print(f"round {round_index + 1} {protocol:10} produce {produced['mb_s']:7.1f} MB/s  "
                          f"consume {consumed['mb_s']:7.1f} MB/s", flush=True)
        finally:
            for broker in brokers.values():
                broker.stop()
    print(f"\n{args.rounds} rounds of {args.count:,} records of {args.size} B, {args.partitions} partition(s), "
          f"acks={args.acks}; medians:\n")
    print("| protocol | produce MB/s | consume MB/s | produce / plaintext | consume / plaintext |")
    print("|---|---|---|---|---|")
    plain = {kind: statistics.median(values) for kind, values in results["PLAINTEXT"].items()}
    for protocol in PROTOCOLS:
        median = {kind: statistics.median(values) for kind, values in results[protocol].items()}
        print(f"| {protocol} | {median['produce']:.1f} | {median['consume']:.1f} | "
              f"{median['produce'] / plain['produce']:.2f} | {median['consume'] / plain['consume']:.2f} |")


if __name__ == "__main__":
    main()
