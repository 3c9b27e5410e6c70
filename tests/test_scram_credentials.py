"""SCRAM credentials in the metadata image and the controller's decisions on them, as
Kafka's ScramControlManager and ScramImage make them; records round-trip through Kafka's
serde framing."""

from __future__ import annotations

from kio.schema.errors import ErrorCode

from kafkapy.metadata.image import MetadataImage
from kafkapy.metadata.records import RemoveUserScramCredentialRecord, UserScramCredentialRecord, decode_record, encode_record
from kafkapy.metadata.scram import ScramDeletion, ScramUpsertion, alter_scram_credentials, describe_scram_credentials
from kafkapy.security.scram import derive_keys, image_credential, salted_password

SHA256, SHA512 = 1, 2


def upsert(name: str, mechanism: int = SHA256, iterations: int = 4096, password: str = "secret") -> ScramUpsertion:
    salt = f"salt-{name}".encode()
    mechanism_name = {SHA256: "SCRAM-SHA-256", SHA512: "SCRAM-SHA-512"}.get(mechanism, "SCRAM-SHA-256")
    return ScramUpsertion(name, mechanism, iterations, salt, salted_password(mechanism_name, password, salt, 4096))


def alter(image: MetadataImage, deletions=(), upsertions=()):
    results, records = alter_scram_credentials(image.scram_credentials, list(deletions), list(upsertions), derive_keys)
    return {r.user: (r.error, r.message) for r in results}, image.apply(records, image.offset + len(records))


def test_upserted_credentials_are_stored_as_salted_keys_the_scram_server_accepts():
    results, image = alter(MetadataImage(), upsertions=[upsert("alice"), upsert("bob", SHA512, 8192)])
    assert results == {"alice": (ErrorCode.none, None), "bob": (ErrorCode.none, None)}
    record = image.scram_credentials["alice", SHA256]
    assert record.iterations == 4096 and record.salt == b"salt-alice"
    assert b"secret" not in record.stored_key + record.server_key
    expected = derive_keys("SCRAM-SHA-256", upsert("alice").salted_password, b"salt-alice", 4096)
    assert (record.stored_key, record.server_key) == expected
    credential = image_credential(image.scram_credentials, "bob", "SCRAM-SHA-512")
    assert credential is not None and credential.iterations == 8192
    assert image_credential(image.scram_credentials, "bob", "SCRAM-SHA-256") is None


def test_deleting_a_credential_removes_only_that_mechanism():
    _, image = alter(MetadataImage(), upsertions=[upsert("alice")])
    _, image = alter(image, upsertions=[upsert("carol", SHA512)])
    _, image = alter(image, upsertions=[upsert("alice", SHA512)])
    results, image = alter(image, deletions=[ScramDeletion("alice", SHA256)])
    assert results == {"alice": (ErrorCode.none, None)}
    assert set(image.scram_credentials) == {("alice", SHA512), ("carol", SHA512)}


def test_kafkas_refusals():
    _, image = alter(MetadataImage(), upsertions=[upsert("alice")])
    results, after = alter(image, deletions=[ScramDeletion("nobody", SHA256), ScramDeletion("alice", SHA512),
                                              ScramDeletion("x", 0)],
                           upsertions=[upsert("few", iterations=4095), upsert("many", iterations=16385), upsert("", SHA256),
                                       upsert("odd", 3)])
    assert results == {
        "nobody": (ErrorCode.resource_not_found, "Attempt to delete a user credential that does not exist"),
        "alice": (ErrorCode.resource_not_found, "Attempt to delete a user credential that does not exist"),
        "x": (ErrorCode.unsupported_sasl_mechanism, "Unknown SCRAM mechanism"),
        "few": (ErrorCode.unacceptable_credential, "Too few iterations"),
        "many": (ErrorCode.unacceptable_credential, "Too many iterations"),
        "": (ErrorCode.unacceptable_credential, "Username must not be empty"),
        "odd": (ErrorCode.unsupported_sasl_mechanism, "Unknown SCRAM mechanism"),
    }
    assert after.scram_credentials == image.scram_credentials


def test_a_user_twice_in_one_request_is_a_duplicate_and_left_unchanged():
    _, image = alter(MetadataImage(), upsertions=[upsert("alice"), upsert("bob")])
    results, after = alter(image, deletions=[ScramDeletion("alice", SHA256)],
                           upsertions=[upsert("alice", SHA512), upsert("bob", SHA512), upsert("bob", SHA256), upsert("carol")])
    twice = (ErrorCode.duplicate_resource, "A user credential cannot be altered twice in the same request")
    assert results == {"alice": twice, "bob": twice, "carol": (ErrorCode.none, None)}
    assert set(after.scram_credentials) == {("alice", SHA256), ("bob", SHA256), ("carol", SHA256)}


def test_describe_lists_each_users_mechanisms_and_refuses_unknown_and_repeated_users():
    _, image = alter(MetadataImage(), upsertions=[upsert("bob", SHA512, 8192), upsert("alice")])
    _, image = alter(image, upsertions=[upsert("alice", SHA512, 5000)])
    everyone = describe_scram_credentials(image.scram_credentials, None)
    assert [(d.user, d.error, d.credentials) for d in everyone] == [
        ("alice", ErrorCode.none, ((SHA256, 4096), (SHA512, 5000))), ("bob", ErrorCode.none, ((SHA512, 8192),))]
    assert describe_scram_credentials(image.scram_credentials, []) == everyone
    named = describe_scram_credentials(image.scram_credentials, ["bob", "nobody", "alice", "alice"])
    assert [(d.user, d.error, d.message) for d in named] == [
        ("bob", ErrorCode.none, None),
        ("nobody", ErrorCode.resource_not_found, "attemptToDescribeUserThatDoesNotExist: nobody"),
        ("alice", ErrorCode.duplicate_resource,
         "Cannot describe SCRAM credentials for the same user twice in a single request: alice"),
    ]


def test_credentials_are_in_the_images_records_and_survive_the_serde():
    _, image = alter(MetadataImage(), upsertions=[upsert("alice"), upsert("bob", SHA512)])
    records = [decode_record(encode_record(r)) for r in image.to_records()]
    assert all(isinstance(r, UserScramCredentialRecord) for r in records)
    assert MetadataImage().apply(records, image.offset) == image
    removal = decode_record(encode_record(RemoveUserScramCredentialRecord(name="alice", mechanism=SHA256)))
    assert set(image.apply([removal], image.offset + 1).scram_credentials) == {("bob", SHA512)}
