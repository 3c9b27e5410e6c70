"""`kafkapy users` end to end: run as a subprocess against a kafkapy broker process, it
sets, lists and deletes SCRAM users over the Kafka protocol, and what it sets is what a
SCRAM login on the broker's SASL listener then accepts."""

from __future__ import annotations

import base64
import hashlib
import hmac
import socket
import uuid
from collections.abc import Iterator

import pytest
from kio.schema.errors import ErrorCode
from kio.schema.sasl_authenticate.v2.request import SaslAuthenticateRequest
from kio.schema.sasl_handshake.v1.request import SaslHandshakeRequest

from kafkapy.compat.raw import RawConnection
from kafkapy.security.scram import HASHES, salted_password
from kafkapy.testing.process import BrokerProcess
from test_console_tools import json_of, kafkapy, ok

pytestmark = [pytest.mark.kafkapy_internals, pytest.mark.timeout(90)]


@pytest.fixture(scope="module")
def broker(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[BrokerProcess, int]]:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        sasl_port = s.getsockname()[1]
    process = BrokerProcess(tmp_path_factory.mktemp("users-tool"), {
        "listeners": f"PLAINTEXT://127.0.0.1:0,SASL_PLAINTEXT://127.0.0.1:{sasl_port}",
        "listener.name.sasl_plaintext.sasl.enabled.mechanisms": "SCRAM-SHA-256,SCRAM-SHA-512",
        "connection.failed.authentication.delay.ms": 10,
    })
    with process:
        yield process, sasl_port


def scram_login(port: int, mechanism: str, user: str, password: str) -> int:
    """The error code of a SCRAM login (RFC 5802's client side, written out)."""
    algorithm = HASHES[mechanism]
    with RawConnection(port) as connection:
        assert connection.request(SaslHandshakeRequest(mechanism=mechanism)).error_code == ErrorCode.none
        first_bare = f"n={user},r=clientnonce"
        server_first = connection.request(SaslAuthenticateRequest(auth_bytes=f"n,,{first_bare}".encode()))
        if server_first.error_code != ErrorCode.none:
            return server_first.error_code
        fields = dict(part.split("=", 1) for part in server_first.auth_bytes.decode().split(","))
        salted = salted_password(mechanism, password, base64.b64decode(fields["s"]), int(fields["i"]))
        client_key = hmac.new(salted, b"Client Key", algorithm).digest()
        final_without_proof = f"c=biws,r={fields['r']}"
        auth_message = f"{first_bare},{server_first.auth_bytes.decode()},{final_without_proof}".encode()
        signature = hmac.new(hashlib.new(algorithm, client_key).digest(), auth_message, algorithm).digest()
        proof = base64.b64encode(bytes(a ^ b for a, b in zip(client_key, signature, strict=True))).decode()
        final = connection.request(SaslAuthenticateRequest(auth_bytes=f"{final_without_proof},p={proof}".encode()))
        return final.error_code


def listed(broker: BrokerProcess, *args: str) -> list[tuple[str, str, int]]:
    return [(u["user"], u["mechanism"], u["iterations"]) for u in json_of(broker, "users", "list", *args)]


def test_set_list_change_and_delete_users(broker: tuple[BrokerProcess, int]) -> None:
    process, port = broker
    user = f"carol-{uuid.uuid4().hex[:6]}"
    ok(process, "users", "set", "--user", user, "--password", "first", "--mechanism", "SCRAM-SHA-256",
       "--mechanism", "SCRAM-SHA-512", "--iterations", "8192")
    assert listed(process, "--user", user) == [(user, "SCRAM-SHA-256", 8192), (user, "SCRAM-SHA-512", 8192)]
    assert (user, "SCRAM-SHA-256", 8192) in listed(process)
    assert scram_login(port, "SCRAM-SHA-512", user, "first") == ErrorCode.none
    assert scram_login(port, "SCRAM-SHA-256", user, "wrong") == ErrorCode.sasl_authentication_failed

    ok(process, "users", "set", "--user", user, "--password", "second")  # SCRAM-SHA-256, 4096 iterations
    assert listed(process, "--user", user) == [(user, "SCRAM-SHA-256", 4096), (user, "SCRAM-SHA-512", 8192)]
    assert scram_login(port, "SCRAM-SHA-256", user, "first") == ErrorCode.sasl_authentication_failed
    assert scram_login(port, "SCRAM-SHA-256", user, "second") == ErrorCode.none

    ok(process, "users", "delete", "--user", user, "--mechanism", "SCRAM-SHA-256")
    assert listed(process, "--user", user) == [(user, "SCRAM-SHA-512", 8192)]
    assert scram_login(port, "SCRAM-SHA-256", user, "second") == ErrorCode.sasl_authentication_failed
    ok(process, "users", "delete", "--user", user)
    missing = kafkapy(process, "users", "list", "--user", user)
    assert missing.returncode == 1 and "RESOURCE_NOT_FOUND" in missing.stderr


def test_kafkas_refusals_are_reported(broker: tuple[BrokerProcess, int]) -> None:
    process, _ = broker
    few = kafkapy(process, "users", "set", "--user", "dave", "--password", "x", "--iterations", "100")
    assert few.returncode == 1 and "UNACCEPTABLE_CREDENTIAL" in few.stderr
    nobody = kafkapy(process, "users", "delete", "--user", "nobody", "--mechanism", "SCRAM-SHA-512")
    assert nobody.returncode == 1 and "RESOURCE_NOT_FOUND" in nobody.stderr
