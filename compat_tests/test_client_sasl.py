"""kafkapy.client's SASL connections to a kafkapy broker: SCRAM-SHA-512 (the tools' tests
log in with SCRAM-SHA-256 and PLAIN), the mechanism the broker does not enable named
with those it does, and a session lifetime (KIP-368) the client renews with a new login."""

from __future__ import annotations

import pytest

from kafkapy.client import Client, ClientSecurity, KafkaError
from kafkapy.client.security import Login
from kafkapy.testing.embedded import Broker
from waiting import until

pytestmark = [pytest.mark.kafkapy_internals, pytest.mark.timeout(60)]

SESSION_LIFETIME_MS = 1500


def scram_512(user: str, password: str) -> ClientSecurity:
    return ClientSecurity("SASL_PLAINTEXT", login=Login("SCRAM-SHA-512", user, password))


def test_scram_sha_512_logs_in_and_a_mechanism_the_broker_lacks_is_named() -> None:
    with Broker(security="sasl_plaintext", users={"erin": "erin-secret"}, mechanism="SCRAM-SHA-512") as broker:
        with Client(broker.bootstrap_servers, security=scram_512("erin", "erin-secret")) as client:
            client.create_topic("scram-512", 1, 1)
            assert list(client.metadata(None).topics) == ["scram-512"]

        plain = ClientSecurity("SASL_PLAINTEXT", login=Login("PLAIN", "erin", "erin-secret"))
        with Client(broker.bootstrap_servers, security=plain) as client, pytest.raises(KafkaError) as refused:
            client.metadata([])
        assert refused.value.name == "UNSUPPORTED_SASL_MECHANISM"
        assert str(refused.value) == (f"SASL authentication with the broker at {broker.bootstrap_servers}: "
                                      "UNSUPPORTED_SASL_MECHANISM (the broker enables SCRAM-SHA-512)")


def test_a_connection_near_the_end_of_its_session_is_replaced_by_a_new_login() -> None:
    with Broker(security="sasl_plaintext", users={"erin": "erin-secret"}, mechanism="SCRAM-SHA-512",
                **{"connections.max.reauth.ms": SESSION_LIFETIME_MS}) as broker:
        with Client(broker.bootstrap_servers, security=scram_512("erin", "erin-secret")) as client:
            first = client.any_broker()
            assert first.usable
            until(lambda: not first.usable, SESSION_LIFETIME_MS / 1000 * 5, "the session's end is near")
            assert not first.closed  # the client, not the broker, let it go

            assert client.metadata([]).brokers == {1: ("127.0.0.1", int(broker.bootstrap_servers.rpartition(":")[2]))}
            second = client.any_broker()
            assert second is not first and second.usable and first.closed
