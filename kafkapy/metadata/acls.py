"""Access control lists as the metadata log holds them (AccessControlEntryRecord and
RemoveAccessControlEntryRecord), with Kafka's codes for resource types, pattern types,
operations and permissions, Kafka's filter matching, and the controller's decisions for
CreateAcls and DeleteAcls. What an ACL allows is decided by `security.authorizer`."""

from __future__ import annotations

import enum
import uuid
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from types import MappingProxyType
from typing import TypeVar

from kio.schema.errors import ErrorCode
from kio.static.primitive import i8

from .records import AccessControlEntryRecord, RemoveAccessControlEntryRecord


class ResourceType(enum.IntEnum):
    UNKNOWN = 0
    ANY = 1
    TOPIC = 2
    GROUP = 3
    CLUSTER = 4
    TRANSACTIONAL_ID = 5
    DELEGATION_TOKEN = 6
    USER = 7


class PatternType(enum.IntEnum):
    UNKNOWN = 0
    ANY = 1
    MATCH = 2
    LITERAL = 3
    PREFIXED = 4


class AclOperation(enum.IntEnum):
    UNKNOWN = 0
    ANY = 1
    ALL = 2
    READ = 3
    WRITE = 4
    CREATE = 5
    DELETE = 6
    ALTER = 7
    DESCRIBE = 8
    CLUSTER_ACTION = 9
    DESCRIBE_CONFIGS = 10
    ALTER_CONFIGS = 11
    IDEMPOTENT_WRITE = 12
    CREATE_TOKENS = 13
    DESCRIBE_TOKENS = 14


class AclPermission(enum.IntEnum):
    UNKNOWN = 0
    ANY = 1
    DENY = 2
    ALLOW = 3


CLUSTER_NAME = "kafka-cluster"
"""The one name of the CLUSTER resource."""
WILDCARD = "*"
"""A LITERAL resource name that matches every name, and an ACL host that matches every host."""
WILDCARD_PRINCIPAL = "User:*"


E = TypeVar("E", bound=enum.IntEnum)


def _enum_or_unknown(kind: type[E], code: int) -> E:
    """A code this broker does not know reads as UNKNOWN, as in Kafka's fromCode."""
    try:
        return kind(code)
    except ValueError:
        return kind(0)


@dataclass(frozen=True, slots=True)
class Acl:
    """One access control entry on a resource pattern (Kafka's AclBinding)."""

    resource_type: ResourceType
    resource_name: str
    pattern_type: PatternType
    principal: str
    host: str
    operation: AclOperation
    permission: AclPermission

    @classmethod
    def from_record(cls, record: AccessControlEntryRecord) -> Acl:
        return cls(
            _enum_or_unknown(ResourceType, record.resource_type), record.resource_name,
            _enum_or_unknown(PatternType, record.pattern_type), record.principal, record.host,
            _enum_or_unknown(AclOperation, record.operation), _enum_or_unknown(AclPermission, record.permission_type),
        )

    @classmethod
    def from_codes(cls, resource_type: int, resource_name: str, pattern_type: int, principal: str, host: str,
                   operation: int, permission: int) -> Acl:
        return cls(
            _enum_or_unknown(ResourceType, resource_type), resource_name, _enum_or_unknown(PatternType, pattern_type),
            principal, host, _enum_or_unknown(AclOperation, operation), _enum_or_unknown(AclPermission, permission),
        )

    def to_record(self, acl_id: uuid.UUID) -> AccessControlEntryRecord:
        return AccessControlEntryRecord(
            id=acl_id, resource_type=i8(self.resource_type), resource_name=self.resource_name,
            pattern_type=i8(self.pattern_type), principal=self.principal, host=self.host,
            operation=i8(self.operation), permission_type=i8(self.permission),
        )

    def invalid_reason(self) -> str | None:
        """Why the controller refuses to create this ACL (Kafka's validateNewAcl and the
        broker's checks before it), or None."""
        if self.resource_type in (ResourceType.UNKNOWN, ResourceType.ANY):
            return f"Invalid resourceType {self.resource_type.name}"
        if self.pattern_type not in (PatternType.LITERAL, PatternType.PREFIXED):
            return f"Invalid patternType {self.pattern_type.name}"
        if self.operation in (AclOperation.UNKNOWN, AclOperation.ANY):
            return f"Invalid operation {self.operation.name}"
        if self.permission not in (AclPermission.ALLOW, AclPermission.DENY):
            return f"Invalid permissionType {self.permission.name}"
        if not self.resource_name:
            return "Invalid empty resource name"
        if self.resource_type == ResourceType.CLUSTER and self.resource_name != CLUSTER_NAME:
            return f"The only valid name for the CLUSTER resource is {CLUSTER_NAME}"
        principal_type, sep, principal_name = self.principal.partition(":")
        if not sep or not principal_type or not principal_name:
            return f"Could not parse principal from `{self.principal}` (no colon is present separating the principal type from the principal name)"
        return None


@dataclass(frozen=True, slots=True)
class AclFilter:
    """What DescribeAcls and DeleteAcls select (Kafka's AclBindingFilter): None and the ANY
    codes match everything; the MATCH pattern type matches the ACLs that would apply to
    the named resource (literal, wildcard and prefixed)."""

    resource_type: ResourceType
    resource_name: str | None
    pattern_type: PatternType
    principal: str | None
    host: str | None
    operation: AclOperation
    permission: AclPermission

    @classmethod
    def from_codes(cls, resource_type: int, resource_name: str | None, pattern_type: int, principal: str | None,
                   host: str | None, operation: int, permission: int) -> AclFilter:
        return cls(
            _enum_or_unknown(ResourceType, resource_type), resource_name, _enum_or_unknown(PatternType, pattern_type),
            principal, host, _enum_or_unknown(AclOperation, operation), _enum_or_unknown(AclPermission, permission),
        )

    def invalid_reason(self) -> str | None:
        """Why Kafka refuses this filter with INVALID_REQUEST, or None."""
        if self.resource_type == ResourceType.UNKNOWN or self.pattern_type == PatternType.UNKNOWN:
            return "Unknown patternFilter."
        if self.operation == AclOperation.UNKNOWN or self.permission == AclPermission.UNKNOWN:
            return "Unknown entryFilter."
        return None

    def matches(self, acl: Acl) -> bool:
        if self.resource_type not in (ResourceType.ANY, acl.resource_type):
            return False
        if self.pattern_type not in (PatternType.ANY, PatternType.MATCH, acl.pattern_type):
            return False
        if self.resource_name is not None:
            if self.pattern_type in (PatternType.ANY, acl.pattern_type):
                if self.resource_name != acl.resource_name:
                    return False
            elif acl.pattern_type == PatternType.LITERAL:
                if acl.resource_name not in (self.resource_name, WILDCARD):
                    return False
            elif not self.resource_name.startswith(acl.resource_name):
                return False
        return (
            (self.principal is None or self.principal == acl.principal)
            and (self.host is None or self.host == acl.host)
            and self.operation in (AclOperation.ANY, acl.operation)
            and self.permission in (AclPermission.ANY, acl.permission)
        )


class AclImage:
    """The cluster's ACLs by id, and indexed by resource for the authorizer: literal names
    (the wildcard among them) looked up directly, prefixes scanned. Immutable, as the image
    that holds it."""

    __slots__ = ("by_id", "_ids_by_acl", "_literal", "_prefixed")

    def __init__(self, by_id: Mapping[uuid.UUID, Acl]) -> None:
        self.by_id: Mapping[uuid.UUID, Acl] = MappingProxyType(dict(by_id))
        self._ids_by_acl = {acl: acl_id for acl_id, acl in by_id.items()}
        literal: dict[tuple[ResourceType, str], list[Acl]] = {}
        prefixed: dict[ResourceType, list[Acl]] = {}
        for acl in by_id.values():
            if acl.pattern_type == PatternType.PREFIXED:
                prefixed.setdefault(acl.resource_type, []).append(acl)
            else:
                literal.setdefault((acl.resource_type, acl.resource_name), []).append(acl)
        self._literal = literal
        self._prefixed = prefixed

    def __len__(self) -> int:
        return len(self.by_id)

    def __contains__(self, acl: Acl) -> bool:
        return acl in self._ids_by_acl

    def __eq__(self, other: object) -> bool:
        return isinstance(other, AclImage) and self.by_id == other.by_id

    def __hash__(self) -> int:
        return hash(frozenset(self.by_id))

    def __repr__(self) -> str:
        return f"AclImage({len(self.by_id)} acls)"

    def applying(self, resource_type: ResourceType, name: str) -> Iterator[Acl]:
        """Every ACL whose pattern covers this resource: its literal name, the wildcard, and
        each prefix of the name."""
        yield from self._literal.get((resource_type, name), ())
        if name != WILDCARD:
            yield from self._literal.get((resource_type, WILDCARD), ())
        for acl in self._prefixed.get(resource_type, ()):
            if name.startswith(acl.resource_name):
                yield acl

    def of_type(self, resource_type: ResourceType) -> Iterator[Acl]:
        for (kind, _), acls in self._literal.items():
            if kind == resource_type:
                yield from acls
        yield from self._prefixed.get(resource_type, ())

    def matching(self, acl_filter: AclFilter) -> list[Acl]:
        return [acl for acl in self.by_id.values() if acl_filter.matches(acl)]

    def with_changes(self, added: Mapping[uuid.UUID, Acl], removed: Iterable[uuid.UUID]) -> AclImage:
        by_id = dict(self.by_id)
        for acl_id in removed:
            by_id.pop(acl_id, None)
        by_id.update(added)
        return AclImage(by_id)

    def to_records(self) -> list[AccessControlEntryRecord]:
        return [acl.to_record(acl_id) for acl_id, acl in sorted(self.by_id.items())]


EMPTY_ACLS = AclImage({})


@dataclass(frozen=True)
class AclCreateResult:
    error: ErrorCode = ErrorCode.none
    message: str | None = None


@dataclass(frozen=True)
class AclDeleteResult:
    error: ErrorCode = ErrorCode.none
    message: str | None = None
    deleted: tuple[Acl, ...] = ()


def create_acls(acls: AclImage, new: Sequence[Acl]) -> tuple[list[AclCreateResult], list[AccessControlEntryRecord]]:
    """As Kafka's AclControlManager: an ACL that already exists succeeds without a record."""
    results: list[AclCreateResult] = []
    records: list[AccessControlEntryRecord] = []
    added: set[Acl] = set()
    for acl in new:
        problem = acl.invalid_reason()
        if problem is not None:
            results.append(AclCreateResult(ErrorCode.invalid_request, problem))
            continue
        if acl not in acls and acl not in added:
            added.add(acl)
            records.append(acl.to_record(uuid.uuid4()))
        results.append(AclCreateResult())
    return results, records


def delete_acls(acls: AclImage, filters: Sequence[AclFilter]) -> tuple[list[AclDeleteResult], list[RemoveAccessControlEntryRecord]]:
    """Each filter's result lists every ACL it matches; an ACL two filters match is removed once."""
    results: list[AclDeleteResult] = []
    removed: dict[uuid.UUID, None] = {}
    for acl_filter in filters:
        problem = acl_filter.invalid_reason()
        if problem is not None:
            results.append(AclDeleteResult(ErrorCode.invalid_request, problem))
            continue
        matched = [(acl_id, acl) for acl_id, acl in acls.by_id.items() if acl_filter.matches(acl)]
        removed.update((acl_id, None) for acl_id, _ in matched)
        results.append(AclDeleteResult(deleted=tuple(acl for _, acl in matched)))
    return results, [RemoveAccessControlEntryRecord(id=acl_id) for acl_id in removed]
