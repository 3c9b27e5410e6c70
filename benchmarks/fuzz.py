"""Coverage-guided fuzzing (atheris, libFuzzer) of the broker's request path: the bytes of
one connection go through the frame reader, request decoding, the handlers and response
encoding of a real broker running in this process (`kafkapy.Broker`, a topic with records
and a group with a commit in it).

    python benchmarks/fuzz.py --seconds 600 [--corpus DIR] [--artifacts DIR]

The seed corpus is generated, not committed: for every API and version the broker
advertises, its emptiest request and a few drawn by the hostile-request strategies of the
property tests, each as a framed stream. A crash (an exception the broker does not mean,
an answer that does not decode at its version), a hang (a request not answered within the
bound it did not ask to wait), or memory past --rss-limit-mb stops the run; libFuzzer saves
the input under --artifacts. Every one found so far is a regression test in
tests/test_request_fuzzing.py. At the end libFuzzer reports the executions run and the
coverage reached (edges as cov, features as ft).

Needs the `fuzz` extra (atheris).
"""

from __future__ import annotations

import argparse
import logging
import sys
import tempfile
import warnings
from pathlib import Path

import atheris

with atheris.instrument_imports(include=["kafkapy"]):
    import kafkapy
    from kafkapy.client.admin import AdminClient
    from kafkapy.client.groups import GroupsClient
    from kafkapy.client.records import RecordsClient
    from kafkapy.testing.request_target import RequestTarget
    from kafkapy.wire.build import error_response
    from kafkapy.wire.protocol import encode_request, request_type

TOPIC, GROUP = "fuzzed", "fuzzed-group"
SEEDS_PER_VERSION = 3


def write_seed_corpus(directory: Path, topic_id) -> int:
    """Framed requests of every advertised API and version; how many were written."""
    from hypothesis.errors import NonInteractiveExampleWarning

    from kafkapy.testing.request_strategies import ADVERTISED, KnownNames, entities

    known = KnownNames(topics=(TOPIC,), topic_ids=(topic_id,), groups=(GROUP,))
    written = 0
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", NonInteractiveExampleWarning)
        for api_key, version in ADVERTISED:
            cls = request_type(api_key, version)
            seeds = [error_response(cls, 0)] + [entities(cls, known).example() for _ in range(SEEDS_PER_VERSION)]
            for i, seed in enumerate(seeds):
                frame = encode_request(seed, i)
                if len(frame) <= 64 * 1024:  # libFuzzer's inputs stay small: the long ones are the tests' job
                    (directory / f"{api_key}-v{version}-{i}").write_bytes(frame)
                    written += 1
    return written


def prepare(broker: kafkapy.Broker):
    with AdminClient(broker.bootstrap_servers) as admin:
        admin.create_topic(TOPIC, partitions=3)
        topic_id = admin.topic(TOPIC).topic_id
    with RecordsClient(broker.bootstrap_servers) as records:
        records.produce(TOPIC, [(b"k", b"v")] * 5, partition=0)
    with GroupsClient(broker.bootstrap_servers) as groups:
        groups.commit_offsets(GROUP, {(TOPIC, 0): 2})
    return topic_id


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seconds", type=int, default=60, help="how long to fuzz")
    parser.add_argument("--corpus", type=Path, help="corpus directory (kept and grown); a fresh seeded one if absent")
    parser.add_argument("--artifacts", type=Path, default=Path("fuzz-artifacts"), help="where crashing inputs are saved")
    parser.add_argument("--bound", type=float, default=5.0, help="seconds a request may take unless it asked to wait")
    parser.add_argument("--rss-limit-mb", type=int, default=4096)
    args = parser.parse_args()
    # The broker's own log would drown libFuzzer's; its errors still fail an input through the target.
    logging.basicConfig(level=logging.CRITICAL)

    with kafkapy.Broker(**{"group.initial.rebalance.delay.ms": 0}) as broker:
        topic_id = prepare(broker)
        corpus = args.corpus or Path(tempfile.mkdtemp(prefix="kafkapy-fuzz-corpus-"))
        corpus.mkdir(parents=True, exist_ok=True)
        if not any(corpus.iterdir()):
            print(f"seed corpus: {write_seed_corpus(corpus, topic_id)} requests in {corpus}", flush=True)
        args.artifacts.mkdir(parents=True, exist_ok=True)
        target = RequestTarget(broker, args.bound)

        def one_input(data: bytes) -> None:
            target.send_stream(data)

        atheris.Setup([sys.argv[0], f"-max_total_time={args.seconds}", f"-timeout={int(args.bound + 30)}",
                       f"-rss_limit_mb={args.rss_limit_mb}", "-print_final_stats=1", "-max_len=65536",
                       f"-artifact_prefix={args.artifacts}/", str(corpus)], one_input)
        atheris.Fuzz()


if __name__ == "__main__":
    main()
