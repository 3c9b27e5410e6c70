"""The old-protocol profiles of the compatibility matrix speak the versions of their
release: each produces and consumes through a proxy that notes the API key and version of
every request on its way to a kafkapy that advertises the proxy, so that the client's
every connection passes it. A profile that sent a newer version than its release had
would not be proving what the matrix says it proves. (kafka-python pinned still sends
the ApiVersions of its release, and keeps to its release's versions whatever the answer;
librdkafka at 0.9.0 sends none, as no broker before 0.10 had it.)"""

from __future__ import annotations

import socket
import struct
import threading
import uuid
from collections.abc import Iterator

import pytest

from kafkapy.compat.adapters import ADAPTERS
from kafkapy.compat.adapters.base import Record
from kafkapy.testing.process import BrokerProcess

pytestmark = pytest.mark.kafkapy_internals

PRODUCE, FETCH, METADATA, API_VERSIONS = 0, 1, 3, 18
# The highest version of each API the release's clients send (None: not sent): what a
# profile must send, and nothing newer.
RELEASE_VERSIONS = {
    "confluent-kafka@0.9": {PRODUCE: 1, FETCH: 1, METADATA: 0, API_VERSIONS: None},
    "kafka-python@0.10": {PRODUCE: 2, FETCH: 2, METADATA: 1, API_VERSIONS: 0},
    "kafka-python@1.0": {PRODUCE: 5, FETCH: 6, METADATA: 5, API_VERSIONS: 1},
    "kafka-python@2.0": {PRODUCE: 6, FETCH: 8, METADATA: 6, API_VERSIONS: 2},
}
_SIZE = struct.Struct(">i")
_HEADER = struct.Struct(">hh")


class RecordingProxy:
    """Forwards connections on 127.0.0.1 to upstream_port, noting (api key, version) of
    each request frame."""

    def __init__(self) -> None:
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.port = self.listener.getsockname()[1]
        self.upstream_port = 0
        self.requests: list[tuple[int, int]] = []
        self._sockets: list[socket.socket] = [self.listener]
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while True:
            try:
                client, _ = self.listener.accept()
            except OSError:
                return  # closed
            upstream = socket.create_connection(("127.0.0.1", self.upstream_port))
            self._sockets += [client, upstream]
            threading.Thread(target=self._requests, args=(client, upstream), daemon=True).start()
            threading.Thread(target=self._copy, args=(upstream, client), daemon=True).start()

    def _requests(self, source: socket.socket, sink: socket.socket) -> None:
        try:
            while size := _read(source, _SIZE.size):
                frame = _read(source, _SIZE.unpack(size)[0])
                self.requests.append(_HEADER.unpack_from(frame))
                sink.sendall(size + frame)
        except OSError:
            pass
        finally:
            sink.close()

    @staticmethod
    def _copy(source: socket.socket, sink: socket.socket) -> None:
        try:
            while data := source.recv(65536):
                sink.sendall(data)
        except OSError:
            pass
        finally:
            sink.close()

    def highest_versions(self) -> dict[int, int]:
        highest: dict[int, int] = {}
        for key, version in list(self.requests):
            highest[key] = max(version, highest.get(key, version))
        return highest

    def close(self) -> None:
        for s in self._sockets:
            s.close()


def _read(source: socket.socket, count: int) -> bytes:
    """count bytes, or b"" if the connection ends first."""
    data = b""
    while len(data) < count:
        chunk = source.recv(count - len(data))
        if not chunk:
            return b""
        data += chunk
    return data


@pytest.fixture
def proxy_and_broker(tmp_path) -> Iterator[tuple[RecordingProxy, BrokerProcess]]:
    proxy = RecordingProxy()
    try:
        with BrokerProcess(tmp_path / "data", {"advertised.listeners": f"PLAINTEXT://127.0.0.1:{proxy.port}"}) as broker:
            proxy.upstream_port = broker.port
            yield proxy, broker
    finally:
        proxy.close()


PROFILES = [name for name, adapter in ADAPTERS.items() if adapter.pinned and adapter.installed()]


def test_every_profile_has_its_release_versions():
    assert sorted(name for name, adapter in ADAPTERS.items() if adapter.pinned) == sorted(RELEASE_VERSIONS)


@pytest.mark.parametrize("profile", PROFILES)
def test_a_profile_sends_the_versions_of_its_release(proxy_and_broker, profile):
    proxy, _ = proxy_and_broker
    client = ADAPTERS[profile].connect(f"127.0.0.1:{proxy.port}")
    topic = f"profile-{uuid.uuid4().hex[:10]}"  # created by the producer's Metadata request
    try:
        [acked] = client.produce(topic, [Record(b"k", b"v", partition=0)])
        [consumed] = client.consume(topic, {0: acked.offset + 1}, {0: acked.offset})  # type: ignore[operator]
    finally:
        client.close()

    assert (consumed.key, consumed.value) == (b"k", b"v")
    highest = proxy.highest_versions()
    assert {key: highest.get(key) for key in RELEASE_VERSIONS[profile]} == RELEASE_VERSIONS[profile]
