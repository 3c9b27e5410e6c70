"""Re-authentication soak: a confluent-kafka producer authenticates with OAUTHBEARER (signed
RS256 tokens checked against a JWKS file, or unsecured ones) to an embedded kafkapy whose
sessions last `--session-ms`, and produces for `--seconds`, re-authenticating all along;
reports records delivered, errors the client saw, re-authentications the broker counted,
and the broker's cost of validating one token. The short form is
compat_tests/test_reauthentication_clients.py.

    .venv/bin/python benchmarks/reauth_soak.py --seconds 60 --session-ms 2000
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
import timeit
import uuid
from pathlib import Path

from confluent_kafka import Producer

import kafkapy
from kafkapy.security.jws import KeySet, SignedTokenRules, SignedValidator, parse_jwks
from kafkapy.testing.oauth import SigningKey, write_jwks

SIGNED = "org.apache.kafka.common.security.oauthbearer.OAuthBearerValidatorCallbackHandler"


def validation_cost_us(key: SigningKey, jwks_path: Path) -> float:
    """Microseconds the broker spends validating one signed token (best of 5 runs of 200)."""
    key_set = KeySet(parse_jwks(jwks_path.read_text()))
    validator = SignedValidator(lambda: key_set, SignedTokenRules())
    token = key.user_token("alice")
    now_ms = int(time.time() * 1000)
    return min(timeit.repeat(lambda: validator(token, now_ms), number=200, repeat=5)) / 200 * 1e6


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seconds", type=float, default=30.0, help="how long the producer runs (default 30)")
    parser.add_argument("--session-ms", type=int, default=2000, help="connections.max.reauth.ms (default 2000)")
    parser.add_argument("--algorithm", choices=("RS256", "ES256"), default="RS256")
    args = parser.parse_args()

    key = SigningKey(args.algorithm)
    with tempfile.TemporaryDirectory(prefix="kafkapy-reauth-") as directory:
        jwks = Path(directory) / "jwks.json"
        url = write_jwks(jwks, [key])
        print(f"{args.algorithm} token validation: {validation_cost_us(key, jwks):.0f} us")
        with kafkapy.Broker(security="sasl_plaintext", mechanism="OAUTHBEARER", connections_max_reauth_ms=args.session_ms, **{
                "listener.name.sasl_plaintext.oauthbearer.sasl.server.callback.handler.class": SIGNED,
                "sasl.oauthbearer.jwks.endpoint.url": url}) as broker:
            errors: list[str] = []
            delivered = 0

            def on_delivery(err: object, _msg: object) -> None:
                nonlocal delivered
                delivered += err is None

            producer = Producer({**broker.client_config(token=lambda: key.user_token("alice")),
                                 "error_cb": lambda e: errors.append(str(e)), "linger.ms": 5})
            topic = f"reauth-{uuid.uuid4().hex[:8]}"
            sent = 0
            end = time.monotonic() + args.seconds
            while time.monotonic() < end:
                producer.produce(topic, f"record-{sent}".encode(), on_delivery=on_delivery)
                sent += 1
                producer.poll(0.001)
            unsent = producer.flush(30)
            print(f"{args.seconds:.0f} s with sessions of {args.session_ms} ms: {sent} records sent, {delivered} delivered, "
                  f"{unsent} undelivered, {broker.reauthentications()} re-authentications on open connections, "
                  f"{len(errors)} client errors {errors[:3]}")
            return 0 if delivered == sent and not errors else 1


if __name__ == "__main__":
    sys.exit(main())
