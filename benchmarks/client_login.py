"""What a secured connection costs kafkapy.client (and so each console tool run and each
new console connection): a new connection to one embedded kafkapy per security (TCP,
then the TLS handshake, ApiVersions, the SASL login) followed by one Metadata request,
timed again and again in interleaved rounds; prints the median and 90th percentile of
each, and each as a multiple of plaintext's.

    .venv/bin/python benchmarks/client_login.py [--rounds 50]
"""

from __future__ import annotations

import argparse
import contextlib
import statistics
import time

from kafkapy.client import Client, ClientSecurity
from kafkapy.testing.embedded import Broker

USER, PASSWORD = "bench", "bench-secret"
# (label, test kit security, mechanism or None)
SETUPS = [("PLAINTEXT", "plaintext", None), ("SSL", "ssl", None), ("SASL_PLAINTEXT PLAIN", "sasl_plaintext", "PLAIN"),
          ("SASL_PLAINTEXT SCRAM-SHA-256", "sasl_plaintext", "SCRAM-SHA-256"),
          ("SASL_SSL SCRAM-SHA-256", "sasl_ssl", "SCRAM-SHA-256"), ("SASL_SSL SCRAM-SHA-512", "sasl_ssl", "SCRAM-SHA-512")]


def client_security(broker: Broker, mechanism: str | None) -> ClientSecurity:
    properties = {"security.protocol": broker.security.upper() if broker.security != "plaintext" else "PLAINTEXT"}
    if broker.certificates is not None:
        properties["ssl.truststore.location"] = str(broker.certificates.ca_path)
    if mechanism is not None:
        properties.update({"sasl.mechanism": mechanism, "sasl.username": USER, "sasl.password": PASSWORD})
    return ClientSecurity.from_properties(properties)


def connect_once(bootstrap: str, security: ClientSecurity) -> float:
    started = time.perf_counter()
    with Client(bootstrap, security=security) as client:
        client.metadata([])
    return time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=50)
    args = parser.parse_args()
    with contextlib.ExitStack() as stack:
        targets = []
        for label, security, mechanism in SETUPS:
            users = {USER: PASSWORD} if mechanism else None
            broker = stack.enter_context(Broker(security=security, users=users, mechanism=mechanism or "PLAIN"))
            targets.append((label, broker.bootstrap_servers, client_security(broker, mechanism)))
        times: dict[str, list[float]] = {label: [] for label, _, _ in targets}
        for _ in range(args.rounds):
            for label, bootstrap, security in targets:
                times[label].append(connect_once(bootstrap, security))
    plaintext = statistics.median(times["PLAINTEXT"])
    print(f"{'connection + Metadata':32} {'median ms':>10} {'p90 ms':>8} {'x plaintext':>12}")
    for label, samples in times.items():
        median = statistics.median(samples)
        p90 = statistics.quantiles(samples, n=10)[-1]
        print(f"{label:32} {median * 1000:10.2f} {p90 * 1000:8.2f} {median / plaintext:12.1f}")


if __name__ == "__main__":
    main()
