"""Principals of connections, and ssl.principal.mapping.rules with the semantics of Kafka's
SslPrincipalMapper: rules are tried in order, the first that applies names the principal,
and a certificate no rule applies to is not let in."""

from __future__ import annotations

import re
from dataclasses import dataclass

from ..config import ConfigError

ANONYMOUS = "User:ANONYMOUS"
"""The principal of a connection that did not authenticate, as in Kafka."""

# One rule: DEFAULT, RULE:pattern/replacement/ with an optional L or U (a slash is escaped
# with a backslash inside pattern and replacement), or anything else, which is invalid.
_RULE = r"(DEFAULT)|RULE:((?:\\.|[^\\/])*)/((?:\\.|[^\\/])*)/([LU]?).*?|(.*?)"
_RULE_SPLITTER = re.compile(r"\s*(" + _RULE + r")\s*(?:,\s*|$)")
_RULE_PARSER = re.compile(_RULE)


class NoMatchingRule(Exception):
    """A certificate's name that no mapping rule applies to: the client is not authenticated."""


@dataclass(frozen=True)
class _Rule:
    pattern: re.Pattern[str] | None  # None: DEFAULT, the name as it is
    replacement: str = ""
    case: str = ""  # "L", "U" or ""

    def apply(self, name: str) -> str | None:
        if self.pattern is None:
            return name
        if self.pattern.fullmatch(name) is None:
            return None
        result = self.pattern.sub(lambda m: _expand(self.replacement, m), name)
        return result.lower() if self.case == "L" else result.upper() if self.case == "U" else result


def _expand(replacement: str, match: re.Match[str]) -> str:
    """Java's replacement syntax: $n is group n, its digits read while they name a group the
    pattern has ($ before a group it does not have is literal, as Kafka escapes it); a
    backslash quotes what follows."""
    groups = match.re.groups
    out: list[str] = []
    i, end = 0, len(replacement)
    while i < end:
        c = replacement[i]
        if c == "\\" and i + 1 < end:
            out.append(replacement[i + 1])
            i += 2
        elif c == "$" and i + 1 < end and replacement[i + 1].isdigit() and int(replacement[i + 1]) <= groups:
            number, i = int(replacement[i + 1]), i + 2
            while i < end and replacement[i].isdigit() and number * 10 + int(replacement[i]) <= groups:
                number, i = number * 10 + int(replacement[i]), i + 1
            out.append(match.group(number) or "")
        else:
            out.append(c)
            i += 1
    return "".join(out)


class SslPrincipalMapper:
    def __init__(self, rules: str) -> None:
        self.rules_text = rules
        self.rules = [rule for text in _split(rules) if (rule := _parse(text)) is not None]

    def name(self, distinguished_name: str) -> str:
        """The principal's name for a certificate subject (RFC 2253 form)."""
        for rule in self.rules:
            name = rule.apply(distinguished_name)
            if name is not None:
                return name
        raise NoMatchingRule(f"No rules apply to {distinguished_name}, rules {self.rules_text}")


def _split(rules: str) -> list[str]:
    return [m.group(1) for m in _RULE_SPLITTER.finditer(rules.strip()) if m.group(0)]


def _parse(text: str) -> _Rule | None:
    match = _RULE_PARSER.match(text)
    assert match is not None  # the last alternative matches anything
    if match.end() != len(text):
        raise ConfigError(f"Invalid rule: `{text}`, unmatched substring: `{text[match.end():]}` in ssl.principal.mapping.rules")
    if match.group(1):
        return _Rule(None)
    if match.group(2) is not None:
        try:
            pattern = re.compile(match.group(2))
        except re.error as e:
            raise ConfigError(f"Invalid rule: `{text}` in ssl.principal.mapping.rules: {e}") from None
        return _Rule(pattern, match.group(3), match.group(4))
    if match.group(5):
        raise ConfigError(f"Invalid rule: {text} in ssl.principal.mapping.rules")
    return None  # an empty rule is ignored


def user_principal(name: str) -> str:
    return f"User:{name}"
