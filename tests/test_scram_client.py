"""The client's side of SASL: SCRAM against RFC 7677's SCRAM-SHA-256 test vector and against
kafkapy's own server for both mechanisms."""

from __future__ import annotations

import pytest

from kafkapy.security.client_login import ClientLogin
from kafkapy.security.scram import ScramServer, new_credential
from kafkapy.security.scram_client import ScramClient, ScramClientError
from test_scram import CLIENT_FINAL, CLIENT_FIRST, SERVER_FINAL, SERVER_FIRST

CLIENT_NONCE = "rOprNGfwEbeRWgbNEkqO"


def test_rfc_7677_exchange():
    client = ScramClient("SCRAM-SHA-256", "user", "pencil", nonce=CLIENT_NONCE)

    assert client.first_message() == CLIENT_FIRST
    assert client.final_message(SERVER_FIRST) == CLIENT_FINAL
    client.check_server_final(SERVER_FINAL)


def test_a_server_that_does_not_know_the_credential_is_found_out():
    client = ScramClient("SCRAM-SHA-256", "user", "pencil", nonce=CLIENT_NONCE)
    client.final_message(SERVER_FIRST)

    with pytest.raises(ScramClientError):
        client.check_server_final(b"v=" + b"A" * 44)


def test_a_server_nonce_that_does_not_extend_the_clients_is_refused():
    client = ScramClient("SCRAM-SHA-256", "user", "pencil", nonce=CLIENT_NONCE)

    with pytest.raises(ScramClientError, match="nonce"):
        client.final_message(b"r=someone-elses-nonce,s=W22ZaJ0SNY7soEsUEjb6gQ==,i=4096")


@pytest.mark.parametrize("mechanism", ["SCRAM-SHA-256", "SCRAM-SHA-512"])
def test_kafkapys_server_accepts_the_client_and_proves_itself(mechanism):
    credential = new_credential(mechanism, "pa,ss=word")
    server = ScramServer(mechanism, lambda user, _: credential if user == "al=ice,x" else None)
    client = ScramClient(mechanism, "al=ice,x", "pa,ss=word")

    server_first = server.evaluate(client.first_message(), 0)
    client.check_server_final(server.evaluate(client.final_message(server_first), 0))

    assert server.complete and server.authorization_id == "al=ice,x"


def test_a_plain_login_is_one_token():
    login = ClientLogin("PLAIN", "alice", "secret")

    assert login.first_token() == b"\0alice\0secret"
    assert login.next_token(b"") is None


def test_a_scram_login_answers_the_server_then_checks_its_proof():
    credential = new_credential("SCRAM-SHA-512", "secret")
    server = ScramServer("SCRAM-SHA-512", lambda user, _: credential if user == "alice" else None)
    login = ClientLogin("SCRAM-SHA-512", "alice", "secret")

    final = login.next_token(server.evaluate(login.first_token(), 0))
    assert final is not None
    assert login.next_token(server.evaluate(final, 0)) is None
    assert server.complete
