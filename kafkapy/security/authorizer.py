"""Kafka's StandardAuthorizer decisions, sans-IO: a principal, a client host, an operation
and a resource in, allowed or not out, against the ACLs of the metadata image.

- A super user (`super.users`, principals separated by ';') may do anything.
- An ACL applies to a resource when its pattern covers the name (literal, the literal
  wildcard `*`, or a prefix), its principal is the client's or `User:*`, and its host is
  the client's or `*`.
- Any applicable DENY for the operation (or ALL) denies; otherwise any applicable ALLOW
  for it allows. An ALLOW of READ, WRITE, DELETE or ALTER also allows DESCRIBE, and one of
  ALTER_CONFIGS allows DESCRIBE_CONFIGS; a DENY implies nothing.
- With no ACL on the resource at all, `allow.everyone.if.no.acl.found` decides.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from ..config import BrokerConfig
from ..metadata.acls import (
    CLUSTER_NAME,
    WILDCARD,
    WILDCARD_PRINCIPAL,
    AclImage,
    AclOperation,
    AclPermission,
    PatternType,
    ResourceType,
)

_IMPLIES_DESCRIBE = frozenset({AclOperation.DESCRIBE, AclOperation.READ, AclOperation.WRITE, AclOperation.DELETE, AclOperation.ALTER})
_IMPLIES_DESCRIBE_CONFIGS = frozenset({AclOperation.DESCRIBE_CONFIGS, AclOperation.ALTER_CONFIGS})

# What `authorized_operations` reports for each resource type (Kafka's supported operations).
TOPIC_ACL_OPERATIONS = (
    AclOperation.READ, AclOperation.WRITE, AclOperation.CREATE, AclOperation.DELETE, AclOperation.ALTER,
    AclOperation.DESCRIBE, AclOperation.DESCRIBE_CONFIGS, AclOperation.ALTER_CONFIGS,
)
CLUSTER_ACL_OPERATIONS = (
    AclOperation.CREATE, AclOperation.CLUSTER_ACTION, AclOperation.DESCRIBE_CONFIGS, AclOperation.ALTER_CONFIGS,
    AclOperation.IDEMPOTENT_WRITE, AclOperation.ALTER, AclOperation.DESCRIBE,
)
GROUP_ACL_OPERATIONS = (
    AclOperation.READ, AclOperation.DESCRIBE, AclOperation.DELETE, AclOperation.DESCRIBE_CONFIGS, AclOperation.ALTER_CONFIGS,
)


def operations_bitfield(operations: Iterable[AclOperation]) -> int:
    """The 32-bit field of authorized operations in Metadata and DescribeGroups: bit n for code n."""
    field = 0
    for operation in operations:
        field |= 1 << operation
    return field


def parse_super_users(value: str | None) -> frozenset[str]:
    return frozenset(p.strip() for p in (value or "").split(";") if p.strip())


@dataclass(frozen=True)
class Authorizer:
    super_users: frozenset[str] = frozenset()
    allow_everyone_if_no_acl_found: bool = False

    @classmethod
    def from_config(cls, config: BrokerConfig) -> Authorizer | None:
        """The authorizer `authorizer.class.name` names (the config refuses any other than
        Kafka's StandardAuthorizer), or None when it is empty."""
        if not config.string_or_none("authorizer.class.name"):
            return None
        return cls(parse_super_users(config.string_or_none("super.users")), config.bool("allow.everyone.if.no.acl.found"))

    def authorize(self, acls: AclImage, principal: str, host: str, operation: AclOperation,
                  resource_type: ResourceType, name: str) -> bool:
        if principal in self.super_users:
            return True
        allowed = found_any = False
        for acl in acls.applying(resource_type, name):
            found_any = True
            if acl.principal != principal and acl.principal != WILDCARD_PRINCIPAL:
                continue
            if acl.host != WILDCARD and acl.host != host:
                continue
            if acl.permission == AclPermission.DENY:
                if acl.operation in (AclOperation.ALL, operation):
                    return False
            elif _allow_covers(acl.operation, operation):
                allowed = True
        return allowed or (not found_any and self.allow_everyone_if_no_acl_found)

    def authorize_cluster(self, acls: AclImage, principal: str, host: str, operation: AclOperation) -> bool:
        return self.authorize(acls, principal, host, operation, ResourceType.CLUSTER, CLUSTER_NAME)

    def authorize_by_resource_type(self, acls: AclImage, principal: str, host: str, operation: AclOperation,
                                   resource_type: ResourceType) -> bool:
        """Whether some resource of this type may be operated on, as Kafka's Authorizer
        default: a name no ACL mentions decides first (super users, no ACLs at all); then
        an ALLOW of the operation that no DENY of a literal equal or a prefix of its name
        overrides. Implied operations do not count here."""
        if self.authorize(acls, principal, host, operation, resource_type, "hardcode"):
            return True
        denied: dict[PatternType, set[str]] = {PatternType.LITERAL: set(), PatternType.PREFIXED: set()}
        allowed: dict[PatternType, set[str]] = {PatternType.LITERAL: set(), PatternType.PREFIXED: set()}
        wildcard_allowed = False
        for acl in acls.of_type(resource_type):
            if acl.host not in (host, WILDCARD) or acl.principal not in (principal, WILDCARD_PRINCIPAL):
                continue
            if acl.operation not in (operation, AclOperation.ALL):
                continue
            if acl.permission == AclPermission.DENY:
                if acl.pattern_type == PatternType.LITERAL and acl.resource_name == WILDCARD:
                    return False
                denied[acl.pattern_type].add(acl.resource_name)
            elif acl.pattern_type == PatternType.LITERAL and acl.resource_name == WILDCARD:
                wildcard_allowed = True
            else:
                allowed[acl.pattern_type].add(acl.resource_name)
        if wildcard_allowed:
            return True
        for pattern_type, names in allowed.items():
            for name in names:
                if pattern_type == PatternType.LITERAL and name in denied[PatternType.LITERAL]:
                    continue
                if not any(name[:n] in denied[PatternType.PREFIXED] for n in range(1, len(name) + 1)):
                    return True
        return False

    def authorized_operations(self, acls: AclImage, principal: str, host: str, resource_type: ResourceType,
                              name: str, operations: Iterable[AclOperation]) -> int:
        return operations_bitfield(
            op for op in operations if self.authorize(acls, principal, host, op, resource_type, name))


def _allow_covers(granted: AclOperation, wanted: AclOperation) -> bool:
    if granted in (AclOperation.ALL, wanted):
        return True
    if wanted == AclOperation.DESCRIBE:
        return granted in _IMPLIES_DESCRIBE
    if wanted == AclOperation.DESCRIBE_CONFIGS:
        return granted in _IMPLIES_DESCRIBE_CONFIGS
    return False
