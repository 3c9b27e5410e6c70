"""SASL/SCRAM with real clients: confluent-kafka and kafka-python authenticate with
SCRAM-SHA-256 and SCRAM-SHA-512 over SASL_PLAINTEXT and SASL_SSL as users whose
credentials are metadata records; a wrong password and an unknown user are refused with
Kafka's message; confluent-kafka's admin client adds, describes and removes users with
AlterUserScramCredentials and DescribeUserScramCredentials, with Kafka's errors."""

from __future__ import annotations

import pytest
from confluent_kafka import KafkaException
from confluent_kafka.admin import (
    AdminClient,
    ScramCredentialInfo,
    ScramMechanism,
    UserScramCredentialDeletion,
    UserScramCredentialUpsertion,
)

import kafkapy
from test_sasl import confluent_error, kafka_python_refusals
from test_tls import confluent_round_trip, kafka_python_round_trip

pytestmark = pytest.mark.kafkapy_internals

USERS = {"alice": "alice-secret", "bob": "bob-secret"}
RECORDS = [f"record-{i}".encode() for i in range(20)]


def generic_failure(mechanism: str) -> str:
    return f"Authentication failed during authentication due to invalid credentials with SASL mechanism {mechanism}"


@pytest.fixture(scope="module", params=[("sasl_plaintext", "SCRAM-SHA-256"), ("sasl_ssl", "SCRAM-SHA-512"),
                                        ("sasl_plaintext", "SCRAM-SHA-512"), ("sasl_ssl", "SCRAM-SHA-256")],
                ids=lambda p: f"{p[0]}-{p[1]}")
def scram_broker(request):
    security, mechanism = request.param
    with kafkapy.Broker(security=security, users=USERS, mechanism=mechanism, group_initial_rebalance_delay_ms=0) as broker:
        yield broker


def test_confluent_kafka_produces_and_consumes_as_its_user(scram_broker):
    assert confluent_round_trip(scram_broker.client_config(user="alice")) == RECORDS


def test_kafka_python_produces_and_consumes_as_its_user(scram_broker):
    assert kafka_python_round_trip(scram_broker.client_config(user="bob", flavour="kafka-python")) == RECORDS


@pytest.mark.parametrize(("user", "password"), [("alice", "wrong"), ("mallory", "alice-secret")])
def test_confluent_kafka_is_refused_with_kafkas_message(scram_broker, user, password):
    settings = scram_broker.client_config(user="alice", password=password)
    settings["sasl.username"] = user
    error = confluent_error(settings)
    assert "SASL authentication error" in error and generic_failure(scram_broker.mechanism) in error, error


@pytest.mark.parametrize(("user", "password"), [("alice", "wrong"), ("mallory", "alice-secret")])
def test_kafka_python_is_refused_with_kafkas_message(scram_broker, user, password, caplog):
    settings = scram_broker.client_config(user="alice", flavour="kafka-python", password=password)
    settings["sasl_plain_username"] = user
    refusals = kafka_python_refusals(settings, caplog)
    assert refusals and all(generic_failure(scram_broker.mechanism) in m for m in refusals), refusals


@pytest.fixture(scope="module")
def admin_broker():
    with kafkapy.Broker(security="sasl_plaintext", users={"admin": "admin-secret"}, mechanism="SCRAM-SHA-256",
                        group_initial_rebalance_delay_ms=0) as broker:
        yield broker


def altered(admin: AdminClient, alterations: list) -> dict[str, str | None]:
    """Each user's outcome: None, or the error's name."""
    outcome: dict[str, str | None] = {}
    for user, future in admin.alter_user_scram_credentials(alterations, request_timeout=10).items():
        try:
            future.result(timeout=15)
            outcome[user] = None
        except KafkaException as e:
            outcome[user] = e.args[0].name()
    return outcome


def test_users_added_with_the_admin_client_authenticate_until_removed(admin_broker):
    admin = AdminClient(admin_broker.client_config(user="admin"))
    sha512 = ScramCredentialInfo(ScramMechanism.SCRAM_SHA_512, 8192)
    assert altered(admin, [
        UserScramCredentialUpsertion("carol", ScramCredentialInfo(ScramMechanism.SCRAM_SHA_256, 4096), b"carol-secret"),
        UserScramCredentialUpsertion("dave", sha512, b"dave-secret"),
    ]) == {"carol": None, "dave": None}
    described = admin.describe_user_scram_credentials(request_timeout=10).result(timeout=15)
    assert {user: sorted((i.mechanism, i.iterations) for i in d.scram_credential_infos) for user, d in described.items()} == {
        "admin": [(ScramMechanism.SCRAM_SHA_256, 4096)], "carol": [(ScramMechanism.SCRAM_SHA_256, 4096)],
        "dave": [(ScramMechanism.SCRAM_SHA_512, 8192)]}
    carol = {**admin_broker.client_config(user="admin"), "sasl.username": "carol", "sasl.password": "carol-secret"}
    assert confluent_round_trip(carol) == RECORDS

    assert altered(admin, [UserScramCredentialDeletion("carol", ScramMechanism.SCRAM_SHA_256)]) == {"carol": None}
    assert generic_failure("SCRAM-SHA-256") in confluent_error(carol)
    unknown = admin.describe_user_scram_credentials(["carol"], request_timeout=10)["carol"]
    with pytest.raises(KafkaException) as refused:
        unknown.result(timeout=15)
    assert refused.value.args[0].name() == "RESOURCE_NOT_FOUND"


def test_kafkas_errors_for_bad_alterations(admin_broker):
    admin = AdminClient(admin_broker.client_config(user="admin"))
    assert altered(admin, [
        UserScramCredentialUpsertion("few", ScramCredentialInfo(ScramMechanism.SCRAM_SHA_256, 4095), b"x"),
        UserScramCredentialUpsertion("many", ScramCredentialInfo(ScramMechanism.SCRAM_SHA_512, 16385), b"x"),
        UserScramCredentialDeletion("nobody", ScramMechanism.SCRAM_SHA_256),
    ]) == {"few": "UNACCEPTABLE_CREDENTIAL", "many": "UNACCEPTABLE_CREDENTIAL", "nobody": "RESOURCE_NOT_FOUND"}
