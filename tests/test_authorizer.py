"""The authorizer's decision table (Kafka's StandardAuthorizer), and the ACL records'
way through the metadata image and the controller's decisions."""

from __future__ import annotations

import uuid

import pytest
from kio.schema.errors import ErrorCode

from kafkapy.config import BrokerConfig, ConfigError
from kafkapy.metadata.acls import (
    CLUSTER_NAME,
    Acl,
    AclFilter,
    AclImage,
    AclOperation,
    AclPermission,
    PatternType,
    ResourceType,
    create_acls,
    delete_acls,
)
from kafkapy.metadata.image import MetadataImage
from kafkapy.metadata.records import decode_record, encode_record
from kafkapy.security.authorizer import TOPIC_ACL_OPERATIONS, Authorizer, operations_bitfield
from kafkapy.security.envelope_principal import decode_principal, encode_principal

ALICE, BOB = "User:alice", "User:bob"
HOST = "10.0.0.1"
ALLOW, DENY = AclPermission.ALLOW, AclPermission.DENY
TOPIC, GROUP = ResourceType.TOPIC, ResourceType.GROUP
LITERAL, PREFIXED = PatternType.LITERAL, PatternType.PREFIXED
Op = AclOperation
CONCRETE_OPERATIONS = [op for op in AclOperation if op not in (Op.UNKNOWN, Op.ANY, Op.ALL)]
RESOURCE_TYPES = [ResourceType.TOPIC, ResourceType.GROUP, ResourceType.CLUSTER, ResourceType.TRANSACTIONAL_ID,
                  ResourceType.DELEGATION_TOKEN, ResourceType.USER]


def acl(operation: AclOperation, permission: AclPermission = ALLOW, *, name: str = "orders", pattern: PatternType = LITERAL,
        resource_type: ResourceType = TOPIC, principal: str = ALICE, host: str = "*") -> Acl:
    return Acl(resource_type, name, pattern, principal, host, operation, permission)


def image(*acls: Acl) -> AclImage:
    return AclImage({uuid.uuid4(): a for a in acls})


def allowed(acls: AclImage, operation: AclOperation, name: str = "orders", *, resource_type: ResourceType = TOPIC,
            principal: str = ALICE, host: str = HOST, authorizer: Authorizer | None = None) -> bool:
    return (authorizer or Authorizer()).authorize(acls, principal, host, operation, resource_type, name)


IMPLIED = {
    Op.DESCRIBE: {Op.READ, Op.WRITE, Op.DELETE, Op.ALTER, Op.DESCRIBE},
    Op.DESCRIBE_CONFIGS: {Op.ALTER_CONFIGS, Op.DESCRIBE_CONFIGS},
}


@pytest.mark.parametrize("resource_type", RESOURCE_TYPES)
@pytest.mark.parametrize("pattern", [LITERAL, PREFIXED])
@pytest.mark.parametrize("granted", CONCRETE_OPERATIONS + [Op.ALL])
def test_an_allow_grants_its_operation_what_it_implies_and_nothing_else(
        resource_type: ResourceType, pattern: PatternType, granted: AclOperation) -> None:
    name = "orders" if pattern == LITERAL else "ord"
    acls = image(acl(granted, name=name, pattern=pattern, resource_type=resource_type))
    for wanted in CONCRETE_OPERATIONS:
        expected = granted in (Op.ALL, wanted) or granted in IMPLIED.get(wanted, set())
        assert allowed(acls, wanted, resource_type=resource_type) is expected, (granted, wanted)


@pytest.mark.parametrize("pattern", [LITERAL, PREFIXED])
@pytest.mark.parametrize("denied", CONCRETE_OPERATIONS + [Op.ALL])
def test_a_deny_overrides_an_allow_of_all_for_its_operation_only_and_implies_nothing(
        pattern: PatternType, denied: AclOperation) -> None:
    acls = image(acl(Op.ALL, name="*"), acl(denied, DENY, name="orders" if pattern == LITERAL else "or", pattern=pattern))
    for wanted in CONCRETE_OPERATIONS:
        assert allowed(acls, wanted) is not (denied in (Op.ALL, wanted)), (denied, wanted)


def test_patterns_literal_wildcard_and_prefixed_match_the_names_they_cover() -> None:
    acls = image(acl(Op.READ, name="orders"), acl(Op.WRITE, name="pay", pattern=PREFIXED), acl(Op.DELETE, name="*"))
    assert allowed(acls, Op.READ, "orders") and not allowed(acls, Op.READ, "orders2")
    assert allowed(acls, Op.WRITE, "payments") and allowed(acls, Op.WRITE, "pay") and not allowed(acls, Op.WRITE, "xpay")
    assert allowed(acls, Op.DELETE, "anything")
    # A prefixed "*" is a prefix like any other, not a wildcard.
    assert not allowed(image(acl(Op.READ, name="*", pattern=PREFIXED)), Op.READ, "orders")
    # A literal name is not a prefix.
    assert not allowed(image(acl(Op.READ, name="ord")), Op.READ, "orders")


def test_principal_must_match_or_be_the_wildcard_principal() -> None:
    assert not allowed(image(acl(Op.READ, principal=BOB)), Op.READ)
    assert allowed(image(acl(Op.READ, principal="User:*")), Op.READ, principal=BOB)
    assert not allowed(image(acl(Op.READ, principal="Group:*")), Op.READ)


def test_host_must_match_exactly_or_be_the_wildcard() -> None:
    assert allowed(image(acl(Op.READ, host=HOST)), Op.READ, host=HOST)
    assert not allowed(image(acl(Op.READ, host=HOST)), Op.READ, host="10.0.0.2")
    assert allowed(image(acl(Op.READ, host="*")), Op.READ, host="10.0.0.2")
    # A DENY for another host does not deny this one.
    assert allowed(image(acl(Op.READ), acl(Op.READ, DENY, host="10.0.0.2")), Op.READ, host=HOST)


def test_resource_types_are_separate() -> None:
    acls = image(acl(Op.READ, name="orders", resource_type=GROUP))
    assert allowed(acls, Op.READ, resource_type=GROUP) and not allowed(acls, Op.READ, resource_type=TOPIC)


def test_super_users_pass_even_a_deny() -> None:
    authorizer = Authorizer(super_users=frozenset({"User:admin"}))
    acls = image(acl(Op.ALL, DENY, name="*", principal="User:*"))
    assert allowed(acls, Op.WRITE, principal="User:admin", authorizer=authorizer)
    assert not allowed(acls, Op.WRITE, principal=ALICE, authorizer=authorizer)


def test_allow_everyone_if_no_acl_found_applies_only_to_resources_without_any_acl() -> None:
    open_broker = Authorizer(allow_everyone_if_no_acl_found=True)
    assert allowed(image(), Op.WRITE, authorizer=open_broker)
    assert not allowed(image(), Op.WRITE)
    # An ACL for someone else on the resource closes it to everyone else.
    acls = image(acl(Op.READ, principal=BOB))
    assert not allowed(acls, Op.WRITE, authorizer=open_broker)
    assert allowed(acls, Op.WRITE, "other", authorizer=open_broker)
    # So does a prefixed or wildcard ACL covering it.
    assert not allowed(image(acl(Op.READ, principal=BOB, name="*")), Op.WRITE, authorizer=open_broker)
    assert not allowed(image(acl(Op.READ, principal=BOB, name="o", pattern=PREFIXED)), Op.WRITE, authorizer=open_broker)


def test_authorize_by_resource_type_as_kafka_idempotent_write_check() -> None:
    authorizer = Authorizer()
    by_type = lambda acls: authorizer.authorize_by_resource_type(acls, ALICE, HOST, Op.WRITE, TOPIC)  # noqa: E731
    assert not by_type(image())
    assert by_type(image(acl(Op.WRITE, name="orders")))
    assert by_type(image(acl(Op.ALL, name="x", pattern=PREFIXED)))
    # Denied by a literal deny of the same name, or a prefix deny covering it.
    assert not by_type(image(acl(Op.WRITE, name="orders"), acl(Op.WRITE, DENY, name="orders")))
    assert not by_type(image(acl(Op.WRITE, name="orders"), acl(Op.WRITE, DENY, name="or", pattern=PREFIXED)))
    assert not by_type(image(acl(Op.WRITE, name="*"), acl(Op.WRITE, DENY, name="*")))
    # A literal deny elsewhere leaves the allow standing; implications do not count.
    assert by_type(image(acl(Op.WRITE, name="orders"), acl(Op.WRITE, DENY, name="other")))
    assert Authorizer(allow_everyone_if_no_acl_found=True).authorize_by_resource_type(image(), ALICE, HOST, Op.WRITE, TOPIC)


def test_authorized_operations_bitfield() -> None:
    authorizer = Authorizer()
    acls = image(acl(Op.READ), acl(Op.ALTER_CONFIGS))
    field = authorizer.authorized_operations(acls, ALICE, HOST, TOPIC, "orders", TOPIC_ACL_OPERATIONS)
    assert field == operations_bitfield([Op.READ, Op.DESCRIBE, Op.DESCRIBE_CONFIGS, Op.ALTER_CONFIGS])
    assert field == (1 << 3) | (1 << 8) | (1 << 10) | (1 << 11)


def test_filters_match_as_kafka_acl_binding_filters() -> None:
    literal, prefixed, wildcard = acl(Op.READ, name="orders"), acl(Op.WRITE, name="ord", pattern=PREFIXED), acl(Op.ALL, name="*")
    acls = image(literal, prefixed, wildcard, acl(Op.READ, resource_type=GROUP))

    def select(resource_type: int = ResourceType.ANY, name: str | None = None, pattern: int = PatternType.ANY,
               principal: str | None = None, operation: int = Op.ANY, permission: int = AclPermission.ANY) -> set[Acl]:
        return set(acls.matching(AclFilter.from_codes(resource_type, name, pattern, principal, None, operation, permission)))

    assert len(select()) == 4
    assert select(TOPIC, "orders", PatternType.MATCH) == {literal, prefixed, wildcard}
    assert select(TOPIC, "orders", PatternType.ANY) == {literal}
    assert select(TOPIC, "ord", PatternType.PREFIXED) == {prefixed}
    assert select(TOPIC, None, PatternType.LITERAL) == {literal, wildcard}
    assert select(TOPIC, operation=Op.WRITE) == {prefixed}
    assert select(TOPIC, principal=BOB) == set()
    assert AclFilter.from_codes(ResourceType.UNKNOWN, None, 1, None, None, 1, 1).invalid_reason() == "Unknown patternFilter."
    assert AclFilter.from_codes(1, None, 1, None, None, 0, 1).invalid_reason() == "Unknown entryFilter."


def test_create_and_delete_acls_decisions_and_records_through_the_image() -> None:
    good = acl(Op.READ)
    results, records = create_acls(image(), [
        good, good, acl(Op.ANY), acl(Op.READ, pattern=PatternType.MATCH), acl(Op.READ, name=""),
        acl(Op.ALTER, resource_type=ResourceType.CLUSTER, name="other"), acl(Op.READ, principal="alice"),
    ])
    assert [r.error for r in results] == [ErrorCode.none, ErrorCode.none] + [ErrorCode.invalid_request] * 5
    assert len(records) == 1  # the same ACL twice makes one
    with_acl = MetadataImage().apply([decode_record(encode_record(r)) for r in records], 0)
    assert list(with_acl.acls.by_id.values()) == [good]
    # Creating an ACL that exists succeeds without a record.
    assert create_acls(with_acl.acls, [good]) == ([results[0]], [])
    # A snapshot rebuilds the same ACLs.
    assert MetadataImage().apply(with_acl.to_records(), 0).acls == with_acl.acls

    delete_results, removals = delete_acls(with_acl.acls, [
        AclFilter.from_codes(TOPIC, None, PatternType.ANY, None, None, Op.ANY, AclPermission.ANY),
        AclFilter.from_codes(TOPIC, None, PatternType.UNKNOWN, None, None, Op.ANY, AclPermission.ANY),
    ])
    assert delete_results[0].deleted == (good,) and delete_results[1].error == ErrorCode.invalid_request
    assert len(with_acl.apply(removals, 1).acls) == 0


def test_authorizer_configuration() -> None:
    assert Authorizer.from_config(BrokerConfig({})) is None
    configured = Authorizer.from_config(BrokerConfig({
        "authorizer.class.name": "org.apache.kafka.metadata.authorizer.StandardAuthorizer",
        "super.users": "User:admin; User:broker", "allow.everyone.if.no.acl.found": "true",
    }))
    assert configured == Authorizer(frozenset({"User:admin", "User:broker"}), True)
    with pytest.raises(ConfigError, match="StandardAuthorizer only"):
        BrokerConfig({"authorizer.class.name": "kafka.security.authorizer.AclAuthorizer"})
    with pytest.raises(ConfigError, match="Type:name"):
        BrokerConfig({"super.users": "admin"})


def test_cluster_resource_name() -> None:
    acls = image(acl(Op.CREATE, resource_type=ResourceType.CLUSTER, name=CLUSTER_NAME))
    assert Authorizer().authorize_cluster(acls, ALICE, HOST, Op.CREATE)
    assert not Authorizer().authorize_cluster(acls, ALICE, HOST, Op.ALTER)


def test_envelope_principal_round_trip() -> None:
    assert decode_principal(encode_principal("User:CN=alice,O=example")) == "User:CN=alice,O=example"
    with pytest.raises(ValueError):
        decode_principal(b"\x00\x07junk")
