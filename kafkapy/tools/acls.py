"""`kafkapy acls`: list, add and remove the ACLs of any Kafka-compatible broker with an
authorizer, with the options of Kafka's kafka-acls.sh (--allow-principal, --operation,
--topic, --resource-pattern-type, ...)."""

from __future__ import annotations

import argparse
import itertools
from collections.abc import Sequence
from typing import Any

from ..client import ClientError
from ..metadata.acls import (
    CLUSTER_NAME,
    WILDCARD,
    Acl,
    AclFilter,
    AclOperation,
    AclPermission,
    PatternType,
    ResourceType,
)
from ..security.authorizer import CLUSTER_ACL_OPERATIONS, GROUP_ACL_OPERATIONS, TOPIC_ACL_OPERATIONS
from .common import add_bootstrap_option, add_format_option, connect, print_json, print_table, run_tool, say

# What kafka-acls.sh accepts on each resource type, ALL besides.
_VALID_OPERATIONS = {
    ResourceType.TOPIC: TOPIC_ACL_OPERATIONS,
    ResourceType.GROUP: GROUP_ACL_OPERATIONS,
    ResourceType.CLUSTER: CLUSTER_ACL_OPERATIONS,
    ResourceType.TRANSACTIONAL_ID: (AclOperation.DESCRIBE, AclOperation.WRITE),
    ResourceType.DELEGATION_TOKEN: (AclOperation.DESCRIBE,),
    ResourceType.USER: (AclOperation.CREATE_TOKENS, AclOperation.DESCRIBE_TOKENS),
}
_SPECIFIC = (AclOperation.ALL, *(op for op in AclOperation if op > AclOperation.ALL))


def _operation(text: str) -> AclOperation:
    """Kafka's names in any case, with or without underscores: Read, ClusterAction, IDEMPOTENT_WRITE."""
    wanted = text.replace("_", "").replace("-", "").upper()
    for op in _SPECIFIC:
        if op.name.replace("_", "") == wanted:
            return op
    raise argparse.ArgumentTypeError(f"{text!r} is not an operation: {', '.join(_camel(op.name) for op in _SPECIFIC)}")


def _pattern_type(text: str) -> PatternType:
    try:
        pattern = PatternType[text.upper()]
    except KeyError:
        pattern = PatternType.UNKNOWN
    if pattern == PatternType.UNKNOWN:
        raise argparse.ArgumentTypeError(f"{text!r} is not a pattern type: literal, prefixed, any or match")
    return pattern


def _principal(text: str) -> str:
    kind, sep, name = text.partition(":")
    if not (kind and sep and name):
        raise argparse.ArgumentTypeError(f"{text!r} is not a principal of the form Type:name, e.g. User:alice")
    return text


def _camel(name: str) -> str:
    """CLUSTER_ACTION as Kafka's tools write it: ClusterAction."""
    return "".join(part.capitalize() for part in name.split("_"))


def _resources(args: argparse.Namespace) -> list[tuple[ResourceType, str]]:
    resources = [(ResourceType.TOPIC, n) for n in args.topic] + [(ResourceType.GROUP, n) for n in args.group]
    resources += [(ResourceType.TRANSACTIONAL_ID, n) for n in args.transactional_id]
    resources += [(ResourceType.DELEGATION_TOKEN, n) for n in args.delegation_token]
    resources += [(ResourceType.USER, n) for n in args.user_principal]
    if args.cluster:
        resources.append((ResourceType.CLUSTER, CLUSTER_NAME))
    return resources


def _entries(args: argparse.Namespace, default_host: str | None) -> list[tuple[str, str, AclPermission]]:
    """(principal, host, permission) of every principal given, with each host given for its kind."""
    allow_hosts = args.allow_host or [default_host]
    deny_hosts = args.deny_host or [default_host]
    if (args.allow_host and not args.allow_principal) or (args.deny_host and not args.deny_principal):
        raise ClientError("--allow-host needs --allow-principal, and --deny-host --deny-principal")
    return ([(p, h, AclPermission.ALLOW) for p, h in itertools.product(args.allow_principal, allow_hosts)]
            + [(p, h, AclPermission.DENY) for p, h in itertools.product(args.deny_principal, deny_hosts)])


def _check_operations(resources: Sequence[tuple[ResourceType, str]], operations: Sequence[AclOperation]) -> None:
    for resource_type, _ in resources:
        valid = (AclOperation.ALL, *_VALID_OPERATIONS[resource_type])
        wrong = [op for op in operations if op not in valid]
        if wrong:
            raise ClientError(f"ResourceType {_camel(resource_type.name)} only supports operations "
                              f"{', '.join(_camel(op.name) for op in valid)}, not {', '.join(_camel(op.name) for op in wrong)}")


def _show(acls: Sequence[Acl], fmt: str) -> None:
    ordered = sorted(acls, key=lambda a: (a.resource_type, a.resource_name, a.pattern_type, a.principal, a.host,
                                          a.permission, a.operation))
    rows = [{"resource_type": _camel(a.resource_type.name), "resource_name": a.resource_name,
             "pattern_type": a.pattern_type.name, "principal": a.principal, "host": a.host,
             "operation": _camel(a.operation.name), "permission": a.permission.name} for a in ordered]
    if fmt == "json":
        print_json(rows)
    else:
        print_table(["Resource type", "Name", "Pattern type", "Principal", "Host", "Operation", "Permission"],
                    [list(r.values()) for r in rows])


def list_acls(args: argparse.Namespace) -> int:
    resources: list[tuple[ResourceType, str | None]] = list(_resources(args)) or [(ResourceType.ANY, None)]
    pattern = args.resource_pattern_type if resources[0][1] is not None else PatternType.ANY
    principals: list[str | None] = list(args.principal) or [None]
    with connect(args) as client:
        found: dict[Acl, None] = {}
        for (resource_type, name), principal in itertools.product(resources, principals):
            acl_filter = AclFilter(resource_type, name, pattern, principal, None, AclOperation.ANY, AclPermission.ANY)
            found.update(dict.fromkeys(client.describe_acls(acl_filter)))
    _show(list(found), args.format)
    return 0


def add_acls(args: argparse.Namespace) -> int:
    resources = _resources(args)
    if not resources:
        raise ClientError("say which resources: --topic, --group, --cluster, --transactional-id, --delegation-token or --user-principal")
    if args.resource_pattern_type not in (PatternType.LITERAL, PatternType.PREFIXED):
        raise ClientError("ACLs are added with a --resource-pattern-type of literal or prefixed")
    entries = _entries(args, WILDCARD)
    if not entries:
        raise ClientError("say whose ACLs: --allow-principal or --deny-principal")
    operations = args.operation or [AclOperation.ALL]
    _check_operations(resources, operations)
    acls = [Acl(resource_type, name, args.resource_pattern_type, principal, host, operation, permission)
            for (resource_type, name), (principal, host, permission), operation
            in itertools.product(resources, entries, operations)]
    with connect(args) as client:
        client.create_acls(acls)
    _show(acls, args.format)
    say(f"Added {len(acls)} ACL(s)")
    return 0


def remove_acls(args: argparse.Namespace) -> int:
    resources = _resources(args)
    if not resources:
        raise ClientError("say which resources: --topic, --group, --cluster, --transactional-id, --delegation-token or --user-principal")
    entries: list[tuple[str | None, str | None, AclPermission]] = list(_entries(args, None))
    if not entries:
        if not args.force:
            raise ClientError("without --allow-principal or --deny-principal every ACL of the resources goes: "
                              "say so with --force")
        entries = [(None, None, AclPermission.ANY)]
    operations = args.operation or [AclOperation.ANY]
    _check_operations(resources, [op for op in operations if op != AclOperation.ANY])
    filters = [AclFilter(resource_type, name, args.resource_pattern_type, principal, host, operation, permission)
               for (resource_type, name), (principal, host, permission), operation
               in itertools.product(resources, entries, operations)]
    with connect(args) as client:
        removed = client.delete_acls(filters)
    _show(removed, args.format)
    say(f"Removed {len(removed)} ACL(s)")
    return 0


def _add_resource_options(parser: argparse.ArgumentParser) -> None:
    resources = parser.add_argument_group("resources (repeatable, and combinable)")
    resources.add_argument("--topic", action="append", default=[], help="a topic name ('*': every topic)")
    resources.add_argument("--group", action="append", default=[], help="a consumer group id ('*': every group)")
    resources.add_argument("--cluster", action="store_true", help="the cluster")
    resources.add_argument("--transactional-id", action="append", default=[], metavar="ID",
                           help="a producer's transactional id ('*': every one)")
    resources.add_argument("--delegation-token", action="append", default=[], metavar="ID", help="a delegation token id")
    resources.add_argument("--user-principal", action="append", default=[], metavar="PRINCIPAL",
                           help="a user, as the resource of CreateTokens and DescribeTokens")


def _add_entry_options(parser: argparse.ArgumentParser) -> None:
    entries = parser.add_argument_group("entries")
    entries.add_argument("--allow-principal", action="append", default=[], type=_principal, metavar="PRINCIPAL",
                         help="Type:name allowed the operations, e.g. User:alice or User:* (repeatable)")
    entries.add_argument("--deny-principal", action="append", default=[], type=_principal, metavar="PRINCIPAL",
                         help="Type:name denied the operations (repeatable)")
    entries.add_argument("--allow-host", action="append", default=[], metavar="HOST",
                         help="the allowed principals' host (repeatable; default * for add, any for remove)")
    entries.add_argument("--deny-host", action="append", default=[], metavar="HOST",
                         help="the denied principals' host (repeatable; default * for add, any for remove)")


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(
        prog="kafkapy acls",
        description="List, add and remove the access control lists of any Kafka-compatible broker with an "
                    "authorizer, over the Kafka protocol (DescribeAcls, CreateAcls, DeleteAcls).",
    )
    actions = parser.add_subparsers(dest="action", required=True, metavar="ACTION")
    pattern_help = ("literal (the default), prefixed; or, as a filter, any (every pattern type, the name exactly) "
                    "or match (every ACL that applies to the name: literal, '*' and prefixes)")

    listing = actions.add_parser("list", help="list ACLs, all or those of resources or principals",
                                 description="List ACLs: every one, or those of the resources and principals given.")
    _add_resource_options(listing)
    listing.add_argument("--principal", action="append", default=[], type=_principal,
                         help="only the ACLs of this principal (repeatable)")
    listing.add_argument("--resource-pattern-type", type=_pattern_type, default=PatternType.LITERAL, help=pattern_help)

    add = actions.add_parser("add", help="add ACLs", description=(
        "Add an ACL for every resource x principal x host x operation given. A DENY overrides any ALLOW."))
    _add_resource_options(add)
    _add_entry_options(add)
    add.add_argument("--operation", action="append", type=_operation, metavar="OPERATION",
                     help="Read, Write, Create, Delete, Alter, Describe, ClusterAction, DescribeConfigs, AlterConfigs, "
                          "IdempotentWrite, CreateTokens, DescribeTokens or All (repeatable; default All)")
    add.add_argument("--resource-pattern-type", type=_pattern_type, default=PatternType.LITERAL,
                     help="literal (the default) or prefixed: the names as given, or every name starting with them")

    remove = actions.add_parser("remove", help="remove ACLs", description=(
        "Remove the ACLs of the resources given that match the principals, hosts and operations given. "
        "Without a principal, every ACL of the resources goes (with --force only)."))
    _add_resource_options(remove)
    _add_entry_options(remove)
    remove.add_argument("--operation", action="append", type=_operation, metavar="OPERATION",
                        help="only ACLs of this operation (repeatable; default: any operation)")
    remove.add_argument("--resource-pattern-type", type=_pattern_type, default=PatternType.LITERAL, help=pattern_help)
    remove.add_argument("--force", action="store_true", help="remove every ACL of the resources when no principal is given")

    for action in (listing, add, remove):
        add_format_option(action)
        add_bootstrap_option(action)
    args = parser.parse_args(argv)
    handlers: dict[str, Any] = {"list": list_acls, "add": add_acls, "remove": remove_acls}
    return run_tool(f"kafkapy acls {args.action}", lambda: handlers[args.action](args))
