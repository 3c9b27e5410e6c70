"""SCRAM on the server: RFC 7677's example exchange, and the refusals of Kafka's ScramSaslServer."""

from __future__ import annotations

import base64
import hashlib
import hmac

import pytest

from kafkapy.security.sasl import SaslAuthenticationFailed, SaslRejected
from kafkapy.security.scram import ScramServer, new_credential, salted_password

# RFC 7677, section 3: user "user", password "pencil".
SALT = base64.b64decode("W22ZaJ0SNY7soEsUEjb6gQ==")
CLIENT_FIRST = b"n,,n=user,r=rOprNGfwEbeRWgbNEkqO"
SERVER_FIRST = b"r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,s=W22ZaJ0SNY7soEsUEjb6gQ==,i=4096"
CLIENT_FINAL = b"c=biws,r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,p=dHzbZapWIk4jUhN+Ute9ytag9zjfMHgsqmmiz7AndVQ="
SERVER_FINAL = b"v=6rriTRBi23WpRR/wtup+mMhUZUn/dB5nLTJRsjl95G4="
CREDENTIAL = new_credential("SCRAM-SHA-256", "pencil", 4096, SALT)


def rfc_server(credentials=None) -> ScramServer:
    lookup = credentials or (lambda user, mechanism: CREDENTIAL if (user, mechanism) == ("user", "SCRAM-SHA-256") else None)
    return ScramServer("SCRAM-SHA-256", lookup, server_nonce=lambda: "%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0")


def test_rfc_7677_exchange():
    server = rfc_server()
    assert server.evaluate(CLIENT_FIRST, 0) == SERVER_FIRST
    assert not server.complete
    assert server.evaluate(CLIENT_FINAL, 0) == SERVER_FINAL
    assert server.complete and server.authorization_id == "user"


def client_final(mechanism: str, password: str, client_first_bare: str, server_first: str, nonce: str) -> bytes:
    algorithm = {"SCRAM-SHA-256": "sha256", "SCRAM-SHA-512": "sha512"}[mechanism]
    fields = dict(part.split("=", 1) for part in server_first.split(","))
    salted = salted_password(mechanism, password, base64.b64decode(fields["s"]), int(fields["i"]))
    client_key = hmac.new(salted, b"Client Key", algorithm).digest()
    without_proof = f"c=biws,r={nonce}"
    auth_message = f"{client_first_bare},{server_first},{without_proof}".encode()
    signature = hmac.new(hashlib.new(algorithm, client_key).digest(), auth_message, algorithm).digest()
    proof = bytes(a ^ b for a, b in zip(client_key, signature, strict=True))
    return f"{without_proof},p={base64.b64encode(proof).decode()}".encode()


@pytest.mark.parametrize("mechanism", ["SCRAM-SHA-256", "SCRAM-SHA-512"])
@pytest.mark.parametrize(("password", "accepted"), [("s3cret", True), ("wrong", False)])
def test_sha_256_and_512_with_a_stored_credential(mechanism, password, accepted):
    credential = new_credential(mechanism, "s3cret", 8192)
    server = ScramServer(mechanism, lambda user, m: credential if (user, m) == ("a,b=c", mechanism) else None)
    server_first = server.evaluate(b"n,,n=a=2Cb=3Dc,r=clientnonce", 0).decode()
    nonce = server_first.split(",")[0][2:]
    assert nonce.startswith("clientnonce") and len(nonce) > len("clientnonce") + 16
    final = client_final(mechanism, password, "n=a=2Cb=3Dc,r=clientnonce", server_first, nonce)
    if accepted:
        assert server.evaluate(final, 0).startswith(b"v=") and server.authorization_id == "a,b=c"
    else:
        with pytest.raises(SaslRejected, match="Invalid client credentials"):
            server.evaluate(final, 0)


@pytest.mark.parametrize(("first", "error", "message"), [
    (b"n,,n=nobody,r=abc", SaslRejected, "Invalid user credentials"),
    (b"y,,n=user,r=abc", SaslRejected, "Invalid SCRAM client first message"),
    (b"n,,n=user,r=abc,tokenauth=true", SaslRejected, "Some extensions are not supported"),
    (b"n,a=admin,n=user,r=abc", SaslAuthenticationFailed, "authorization id that is different from username"),
    (b"\xff", SaslRejected, "not UTF-8"),
])
def test_refused_first_messages(first, error, message):
    with pytest.raises(error, match=message):
        rfc_server().evaluate(first, 0)


def test_a_final_message_with_another_nonce_is_refused():
    server = rfc_server()
    server.evaluate(CLIENT_FIRST, 0)
    with pytest.raises(SaslRejected, match="Invalid client nonce"):
        server.evaluate(CLIENT_FINAL.replace(b"k0,p=", b"k1,p="), 0)


def test_a_credential_below_the_minimum_iterations_is_refused():
    weak = new_credential("SCRAM-SHA-256", "pencil", 1000, SALT)
    with pytest.raises(SaslRejected, match="Iterations 1000 is less than the minimum 4096 for SCRAM-SHA-256"):
        rfc_server(lambda user, mechanism: weak).evaluate(CLIENT_FIRST, 0)
