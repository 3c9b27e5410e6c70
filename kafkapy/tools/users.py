"""`kafkapy users`: list, add or change, and delete the SCRAM users of any Kafka-compatible
broker, over the Kafka protocol (DescribeUserScramCredentials, AlterUserScramCredentials),
as kafka-configs.sh --entity-type users does with SCRAM-SHA-256/512. The password is salted
and hashed here: the broker receives only the salted password."""

from __future__ import annotations

import argparse
import getpass
import secrets
from typing import Any

from ..client import ClientError
from ..metadata.scram import MECHANISM_CODES, MIN_ITERATIONS
from ..security.scram import salted_password
from .common import add_bootstrap_option, add_format_option, connect, print_json, print_table, run_tool, say


def list_users(args: argparse.Namespace) -> int:
    with connect(args) as client:
        users = client.describe_scram_users(args.user or None)
    rows = [{"user": user, "mechanism": mechanism, "iterations": iterations}
            for user, credentials in users.items() for mechanism, iterations in sorted(credentials)]
    if args.format == "json":
        print_json(rows)
    else:
        print_table(["User", "Mechanism", "Iterations"], [list(r.values()) for r in rows])
    return 0


def set_user(args: argparse.Namespace) -> int:
    password = args.password if args.password is not None else getpass.getpass(f"Password of {args.user}: ")
    if not password:
        raise ClientError("the password is empty")
    with connect(args) as client:
        # One request per mechanism: Kafka refuses a user named twice in one request.
        for mechanism in args.mechanism or ["SCRAM-SHA-256"]:
            salt = secrets.token_bytes(32)
            client.alter_scram_users([(args.user, MECHANISM_CODES[mechanism], args.iterations, salt,
                                       salted_password(mechanism, password, salt, args.iterations))], [])
    say(f"Set {', '.join(args.mechanism or ['SCRAM-SHA-256'])} credentials of {args.user}")
    return 0


def delete_user(args: argparse.Namespace) -> int:
    with connect(args) as client:
        mechanisms = args.mechanism or [mechanism for mechanism, _ in client.describe_scram_users([args.user])[args.user]]
        for mechanism in mechanisms:
            client.alter_scram_users([], [(args.user, MECHANISM_CODES[mechanism])])
    say(f"Deleted {', '.join(mechanisms)} credentials of {args.user}")
    return 0


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(
        prog="kafkapy users",
        description="List, add or change, and delete the SCRAM users of any Kafka-compatible broker, over the Kafka "
                    "protocol (DescribeUserScramCredentials, AlterUserScramCredentials).")
    actions = parser.add_subparsers(dest="action", required=True, metavar="ACTION")
    mechanisms = sorted(MECHANISM_CODES)
    listing = actions.add_parser("list", help="list users and their SCRAM mechanisms",
                                 description="List every SCRAM user, or those given, with mechanisms and iterations.")
    listing.add_argument("--user", action="append", default=[], help="only this user (repeatable)")
    add_format_option(listing)
    setting = actions.add_parser("set", help="add a user, or change its password",
                                 description="Add a SCRAM user or change its password (asked for when not given).")
    setting.add_argument("--user", required=True)
    setting.add_argument("--password", help="the password (asked for on the terminal when not given)")
    setting.add_argument("--mechanism", action="append", choices=mechanisms,
                         help="SCRAM-SHA-256 (the default) or SCRAM-SHA-512 (repeatable)")
    setting.add_argument("--iterations", type=int, default=MIN_ITERATIONS,
                         help=f"PBKDF2 iterations (default {MIN_ITERATIONS}, as Kafka's tools)")
    deleting = actions.add_parser("delete", help="delete a user's credentials",
                                  description="Delete a user's SCRAM credentials: those of the mechanisms given, or all.")
    deleting.add_argument("--user", required=True)
    deleting.add_argument("--mechanism", action="append", choices=mechanisms, help="only this mechanism (repeatable)")
    for action in (listing, setting, deleting):
        add_bootstrap_option(action)
    args = parser.parse_args(argv)
    handlers: dict[str, Any] = {"list": list_users, "set": set_user, "delete": delete_user}
    return run_tool(f"kafkapy users {args.action}", lambda: handlers[args.action](args))
