"""SCRAM credentials as the metadata log holds them (UserScramCredentialRecord and
RemoveUserScramCredentialRecord: salted keys only, never a password), and the decisions
Kafka's ScramControlManager and ScramImage make for AlterUserScramCredentials and
DescribeUserScramCredentials. Deriving the keys from a salted password is the caller's
(`security.scram`): the controller is given them."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass

from kio.schema.errors import ErrorCode
from kio.static.primitive import i8, i32

from .records import RemoveUserScramCredentialRecord, UserScramCredentialRecord

# Kafka's ScramMechanism type codes.
SCRAM_MECHANISMS = {1: "SCRAM-SHA-256", 2: "SCRAM-SHA-512"}
MECHANISM_CODES = {name: code for code, name in SCRAM_MECHANISMS.items()}
# Both mechanisms' bounds in Kafka's ScramMechanism.
MIN_ITERATIONS = 4096
MAX_ITERATIONS = 16384

ScramCredentials = Mapping[tuple[str, int], UserScramCredentialRecord]
"""Credentials by (user, mechanism code)."""

KeyDerivation = Callable[[str, bytes, bytes, int], tuple[bytes, bytes]]
"""(mechanism, salted password, salt, iterations) -> (stored key, server key)."""


@dataclass(frozen=True)
class ScramDeletion:
    name: str
    mechanism: int


@dataclass(frozen=True)
class ScramUpsertion:
    name: str
    mechanism: int
    iterations: int
    salt: bytes
    salted_password: bytes


@dataclass(frozen=True)
class UserResult:
    user: str
    error: ErrorCode = ErrorCode.none
    message: str | None = None


@dataclass(frozen=True)
class DescribedUser:
    user: str
    error: ErrorCode = ErrorCode.none
    message: str | None = None
    credentials: tuple[tuple[int, int], ...] = ()  # (mechanism code, iterations)


_TWICE = "A user credential cannot be altered twice in the same request"


def _name_and_mechanism_problem(name: str, mechanism: int) -> UserResult | None:
    if mechanism not in SCRAM_MECHANISMS:
        return UserResult(name, ErrorCode.unsupported_sasl_mechanism, "Unknown SCRAM mechanism")
    if not name:
        return UserResult(name, ErrorCode.unacceptable_credential, "Username must not be empty")
    return None


def alter_scram_credentials(
    credentials: ScramCredentials, deletions: Sequence[ScramDeletion], upsertions: Sequence[ScramUpsertion],
    derive: KeyDerivation,
) -> tuple[list[UserResult], list[UserScramCredentialRecord | RemoveUserScramCredentialRecord]]:
    """As ScramControlManager.alterCredentials: one result per user named; a user named
    twice in one request (deleted or upserted, any mechanism) is refused with
    DUPLICATE_RESOURCE and nothing changes for it; the rest change together."""
    to_delete: dict[str, ScramDeletion] = {}
    to_upsert: dict[str, ScramUpsertion] = {}
    errors: dict[str, UserResult] = {}
    for deletion in deletions:
        if deletion.name in errors:
            continue
        if to_delete.pop(deletion.name, None) is not None:
            errors[deletion.name] = UserResult(deletion.name, ErrorCode.duplicate_resource, _TWICE)
        elif (problem := _name_and_mechanism_problem(deletion.name, deletion.mechanism)) is not None:
            errors[deletion.name] = problem
        elif (deletion.name, deletion.mechanism) not in credentials:
            errors[deletion.name] = UserResult(deletion.name, ErrorCode.resource_not_found,
                                               "Attempt to delete a user credential that does not exist")
        else:
            to_delete[deletion.name] = deletion
    for upsertion in upsertions:
        if upsertion.name in errors:
            continue
        if to_delete.pop(upsertion.name, None) is not None or to_upsert.pop(upsertion.name, None) is not None:
            errors[upsertion.name] = UserResult(upsertion.name, ErrorCode.duplicate_resource, _TWICE)
        elif (problem := _name_and_mechanism_problem(upsertion.name, upsertion.mechanism)) is not None:
            errors[upsertion.name] = problem
        elif upsertion.iterations < MIN_ITERATIONS:
            errors[upsertion.name] = UserResult(upsertion.name, ErrorCode.unacceptable_credential, "Too few iterations")
        elif upsertion.iterations > MAX_ITERATIONS:
            errors[upsertion.name] = UserResult(upsertion.name, ErrorCode.unacceptable_credential, "Too many iterations")
        else:
            to_upsert[upsertion.name] = upsertion
    records: list[UserScramCredentialRecord | RemoveUserScramCredentialRecord] = [
        RemoveUserScramCredentialRecord(name=d.name, mechanism=i8(d.mechanism)) for d in to_delete.values()]
    for u in to_upsert.values():
        stored_key, server_key = derive(SCRAM_MECHANISMS[u.mechanism], u.salted_password, u.salt, u.iterations)
        records.append(UserScramCredentialRecord(name=u.name, mechanism=i8(u.mechanism), salt=u.salt, stored_key=stored_key,
                                                 server_key=server_key, iterations=i32(u.iterations)))
    results = [UserResult(name) for name in (*to_delete, *to_upsert)] + list(errors.values())
    return results, records


def describe_scram_credentials(credentials: ScramCredentials, users: Sequence[str] | None) -> list[DescribedUser]:
    """As ScramImage.describe: every user with a credential when none is named; a user named
    twice is DUPLICATE_RESOURCE, one without credentials RESOURCE_NOT_FOUND."""
    if not users:
        named = dict.fromkeys(sorted({user for user, _ in credentials}), False)
    else:
        named = {}
        for user in users:
            named[user] = user in named
    described = []
    for user, twice in named.items():
        if twice:
            described.append(DescribedUser(user, ErrorCode.duplicate_resource,
                                           f"Cannot describe SCRAM credentials for the same user twice in a single request: {user}"))
            continue
        found = tuple((code, credentials[user, code].iterations) for code in sorted(SCRAM_MECHANISMS) if (user, code) in credentials)
        described.append(DescribedUser(user, credentials=found) if found else
                         DescribedUser(user, ErrorCode.resource_not_found, f"attemptToDescribeUserThatDoesNotExist: {user}"))
    return described
