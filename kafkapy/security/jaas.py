"""JAAS configuration text as Kafka's JaasConfig reads a `sasl.jaas.config` value:
`<login module class> <control flag> name=value ... ;`, values bare words or double-quoted
strings, Java-style comments allowed, and exactly one login module."""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from ..config import ConfigError

CONTROL_FLAGS = ("required", "requisite", "sufficient", "optional")
# A token: a quoted string (backslash escapes), a word, '=' or ';'. Comments are skipped.
_TOKEN = re.compile(r'\s+|//[^\n]*|/\*.*?\*/|"((?:\\.|[^"\\])*)"|([^\s=;"]+)|([=;])', re.DOTALL)


@dataclass(frozen=True)
class LoginModule:
    name: str
    flag: str
    options: dict[str, str] = field(default_factory=dict)


def parse_jaas_config(text: str, key: str = "sasl.jaas.config") -> LoginModule:
    """The one login module of a JAAS configuration value; ConfigError naming `key` when
    it is malformed or holds another number of modules."""
    modules: list[LoginModule] = []
    tokens = _tokens(text, key)
    position = 0

    def next_token(what: str) -> tuple[str, bool]:
        nonlocal position
        if position >= len(tokens):
            raise ConfigError(f"Invalid JAAS config in {key}: expected {what} at the end")
        position += 1
        return tokens[position - 1]

    while position < len(tokens):
        name, quoted = next_token("a login module")
        if quoted or name in "=;":
            raise ConfigError(f"Invalid JAAS config in {key}: expected a login module class, found '{name}'")
        flag, _ = next_token("a control flag")
        if flag.lower() not in CONTROL_FLAGS:
            raise ConfigError(f"Invalid JAAS config in {key}: invalid control flag '{flag}' for {name} "
                              f"(one of {', '.join(CONTROL_FLAGS)})")
        options: dict[str, str] = {}
        while True:
            option, quoted = next_token("';' after the login module's options")
            if option == ";" and not quoted:
                break
            equals, _ = next_token(f"'=' after option {option}")
            if equals != "=":
                raise ConfigError(f"Invalid JAAS config in {key}: expected '=' after option '{option}', found '{equals}'")
            value, _ = next_token(f"a value for option {option}")
            options[option] = value
        modules.append(LoginModule(name, flag.lower(), options))
    if len(modules) != 1:
        raise ConfigError(f"JAAS config property {key} contains {len(modules)} login modules, should be 1 module")
    return modules[0]


def _tokens(text: str, key: str) -> list[tuple[str, bool]]:
    """(token, whether it was quoted), in order."""
    out: list[tuple[str, bool]] = []
    position = 0
    while position < len(text):
        match = _TOKEN.match(text, position)
        if match is None:
            raise ConfigError(f"Invalid JAAS config in {key}: cannot read '{text[position:position + 20]}'")
        quoted, word, punctuation = match.groups()
        if quoted is not None:
            out.append((re.sub(r"\\(.)", r"\1", quoted), True))
        elif word is not None:
            out.append((word, False))
        elif punctuation is not None:
            out.append((punctuation, False))
        position = match.end()
    return out
