"""The control channel refuses what does not come from the test that started the broker:
no token or a wrong one, a Host that is not 127.0.0.1 (DNS rebinding), a request from a
web page (Origin); malformed HTTP closes its one connection; and through all of it the
broker and the channel serve on."""

from __future__ import annotations

import json
import socket
import time
from urllib.parse import urlsplit

import pytest

from kafkapy.client.admin import AdminClient
from kafkapy.compat.raw import RawConnection
from kafkapy.metadata.records import RESOURCE_BROKER
from kafkapy.testing.process import BrokerProcess
from raw_client import assert_served

pytestmark = [pytest.mark.kafkapy_internals, pytest.mark.timeout(60)]


@pytest.fixture(scope="module")
def broker(tmp_path_factory: pytest.TempPathFactory):
    with BrokerProcess(tmp_path_factory.mktemp("control"), {"kafkapy.control.port": 0}) as process:
        yield process


def exchange(broker: BrokerProcess, raw: bytes) -> tuple[int, dict[str, str], bytes]:
    """Sends raw bytes to the channel; (status, headers, body) of its answer, read to the close."""
    with socket.create_connection(("127.0.0.1", urlsplit(broker.control_url).port), timeout=15) as sock:
        sock.sendall(raw)
        received = b""
        while chunk := sock.recv(65536):
            received += chunk
    head, _, body = received.partition(b"\r\n\r\n")
    status_line, *lines = head.decode("latin-1").split("\r\n")
    headers = {name.lower(): value.strip() for name, _, value in (line.partition(":") for line in lines)}
    return int(status_line.split()[1]), headers, body


def request(broker: BrokerProcess, method: str = "GET", path: str = "/", *, token: str | None = None,
            host: str | None = None, extra: str = "", body: bytes = b"") -> bytes:
    port = urlsplit(broker.control_url).port
    lines = [f"{method} {path} HTTP/1.1", f"Host: {host or f'127.0.0.1:{port}'}"]
    if token is not None:
        lines.append(f"Authorization: Bearer {token}")
    if body:
        lines.append(f"Content-Length: {len(body)}")
    return ("\r\n".join(lines) + "\r\n" + extra + "\r\n").encode() + body


def assert_still_serving(broker: BrokerProcess) -> None:
    status, _, body = exchange(broker, request(broker, token=broker.control_token))
    assert status == 200 and json.loads(body)["bootstrap"] == broker.bootstrap
    with RawConnection(broker.port) as kafka:
        assert_served(kafka)
    assert broker.process is not None and broker.process.poll() is None, broker.output


def test_with_the_token_printed_at_start_a_fault_is_added_and_listed(broker):
    spec = json.dumps({"kind": "error", "api_key": 0, "error": "NOT_LEADER_OR_FOLLOWER", "count": 1}).encode()
    status, _, body = exchange(broker, request(broker, "POST", "/faults", token=broker.control_token, body=spec))
    assert status == 201 and json.loads(body)["fault"]["error_name"] == "NOT_LEADER_OR_FOLLOWER"
    status, _, body = exchange(broker, request(broker, "GET", "/faults", token=broker.control_token))
    assert [f["error_name"] for f in json.loads(body)["faults"]] == ["NOT_LEADER_OR_FOLLOWER"]
    status, _, _ = exchange(broker, request(broker, "DELETE", "/faults", token=broker.control_token))
    assert status == 200


@pytest.mark.parametrize("token", [None, "", "wrong", "x" * 10_000], ids=["none", "empty", "wrong", "long"])
def test_a_request_without_the_token_is_unauthorized(broker, token):
    status, headers, _ = exchange(broker, request(broker, "DELETE", "/faults", token=token))
    assert status == 401
    assert headers["www-authenticate"].startswith("Bearer")
    assert_still_serving(broker)


@pytest.mark.parametrize("host", ["evil.example:80", "evil.example", "127.0.0.1:1", "127.0.0.1.nip.io"])
def test_a_host_other_than_the_channels_address_is_refused(broker, host):
    status, _, _ = exchange(broker, request(broker, token=broker.control_token, host=host))
    assert status == 403
    assert_still_serving(broker)


def test_a_request_from_a_web_page_is_refused_even_with_the_token(broker):
    status, _, _ = exchange(broker, request(broker, "POST", "/restart", token=broker.control_token,
                                            extra="Origin: https://evil.example\r\n"))
    assert status == 403
    assert_still_serving(broker)


MALFORMED = {
    "content length not a number": "Content-Length: abc\r\n",
    "negative content length": "Content-Length: -5\r\n",
    "two content lengths": "Content-Length: 3\r\nContent-Length: 4\r\n",
    "header without a colon": "Nonsense\r\n",
}


@pytest.mark.parametrize("extra", MALFORMED.values(), ids=MALFORMED.keys())
def test_malformed_http_is_a_400_and_the_connection_closes(broker, extra):
    status, _, _ = exchange(broker, request(broker, "POST", "/faults", token=broker.control_token, extra=extra))
    assert status == 400
    assert_still_serving(broker)


def test_a_body_over_the_limit_is_refused_before_it_is_read(broker):
    raw = request(broker, "POST", "/faults", token=broker.control_token, extra="Content-Length: 100000000\r\n")
    status, _, _ = exchange(broker, raw)
    assert status == 413
    assert_still_serving(broker)


def test_a_peer_that_hangs_up_or_stalls_mid_request_holds_nothing_up(broker):
    port = urlsplit(broker.control_url).port
    with socket.create_connection(("127.0.0.1", port), timeout=5) as gone:
        gone.sendall(b"POST /restart HTTP/1.1\r\nHost: 127.0.0.1")
    stalled = [socket.create_connection(("127.0.0.1", port), timeout=5) for _ in range(20)]
    try:
        for sock in stalled:
            sock.sendall(b"GET / HTTP/1.1\r\nHost: 127.0.0.1:")
        started = time.monotonic()
        assert_still_serving(broker)
        assert time.monotonic() - started < 5
    finally:
        for sock in stalled:
            sock.close()


def test_a_configured_token_is_used_and_never_shown(tmp_path):
    secret = "configured-secret-token"
    with BrokerProcess(tmp_path, {"kafkapy.control.port": 0, "kafkapy.control.token": secret}) as configured:
        status, _, _ = exchange(configured, request(configured, token=secret))
        assert status == 200
        with AdminClient(configured.bootstrap) as admin:
            [entry] = [e for e in admin.describe_configs(RESOURCE_BROKER, "1") if e.name == "kafkapy.control.token"]
        assert (entry.value, entry.sensitive) == (None, True)
        assert secret not in configured.output
