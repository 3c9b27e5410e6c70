"""ssl.principal.mapping.rules as Kafka's SslPrincipalMapper applies them, and the RFC 2253
subject names they are applied to, read from certificates."""

from __future__ import annotations

import datetime

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from kafkapy.config import ConfigError
from kafkapy.security.principal import NoMatchingRule, SslPrincipalMapper
from kafkapy.security.x500 import CertificateError, subject_rfc2253

DN = "CN=Duke,OU=ServiceUsers,O=Org,C=US"


@pytest.mark.parametrize(("rules", "name"), [
    ("DEFAULT", DN),
    ("RULE:^CN=(.*?),OU=ServiceUsers.*$/$1/", "Duke"),
    ("RULE:^CN=(.*?),OU=ServiceUsers.*$/$1/L", "duke"),
    ("RULE:^CN=(.*?),OU=ServiceUsers.*$/$1/U", "DUKE"),
    ("RULE:^CN=(.*?),OU=(.*?),O=(.*?),C=(.*?)$/$1@$3/L", "duke@org"),
    # A rule that does not match the whole name does not apply: the next one does.
    ("RULE:^CN=(.*?),OU=Admins.*$/$1/, RULE:^CN=(.*?),.*$/user-$1/L", "user-duke"),
    ("RULE:^CN=Someone$/x/,DEFAULT", DN),
    # A reference to a group the pattern does not have is literal text.
    ("RULE:^CN=(.*?),.*$/$1$2/", "Duke$2"),
    # $12 with one group is group 1 then "2"; a backslash quotes the next character.
    ("RULE:^CN=(.*?),.*$/$12\\$1/", "Duke2$1"),
    # A slash inside pattern or replacement is escaped.
    ("RULE:^CN=(.*?),OU=(.*?),.*$/$2\\/$1/", "ServiceUsers/Duke"),
    ("  RULE:^CN=(.*?),.*$/$1/L  ,\n DEFAULT", "duke"),
])
def test_rules_map_a_subject_as_kafka(rules, name):
    assert SslPrincipalMapper(rules).name(DN) == name


def test_a_subject_no_rule_applies_to_is_refused():
    with pytest.raises(NoMatchingRule, match="No rules apply to CN=Duke"):
        SslPrincipalMapper("RULE:^CN=Someone$/x/").name(DN)


@pytest.mark.parametrize("rules", ["RULE:^CN=(.*)$/$1/Lx", "NOTARULE", "RULE:^CN=(.*$/$1/"])
def test_invalid_rules_are_refused(rules):
    with pytest.raises(ConfigError, match="Invalid rule"):
        SslPrincipalMapper(rules)


def _certificate(*attributes: x509.NameAttribute | x509.RelativeDistinguishedName) -> bytes:
    key = ec.generate_private_key(ec.SECP256R1())
    rdns = [a if isinstance(a, x509.RelativeDistinguishedName) else x509.RelativeDistinguishedName([a]) for a in attributes]
    name = x509.Name(rdns)
    now = datetime.datetime.now(datetime.UTC)
    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "CA")]))
            .public_key(key.public_key()).serial_number(1).not_valid_before(now).not_valid_after(now + datetime.timedelta(days=1))
            .sign(key, hashes.SHA256()))
    return cert.public_bytes(serialization.Encoding.DER)


def test_subject_in_rfc2253_form_last_name_first():
    der = _certificate(x509.NameAttribute(NameOID.COUNTRY_NAME, "US"), x509.NameAttribute(NameOID.ORGANIZATION_NAME, "Org"),
                       x509.NameAttribute(NameOID.ORGANIZATIONAL_UNIT_NAME, "ServiceUsers"),
                       x509.NameAttribute(NameOID.COMMON_NAME, "Duke"))
    assert subject_rfc2253(der) == DN


def test_subject_special_characters_are_escaped_and_other_attributes_are_hex():
    der = _certificate(x509.NameAttribute(NameOID.DOMAIN_COMPONENT, "example"),
                       x509.RelativeDistinguishedName([x509.NameAttribute(NameOID.COMMON_NAME, "Smith, John"),
                                                       x509.NameAttribute(NameOID.USER_ID, "js+1")]),
                       x509.NameAttribute(NameOID.EMAIL_ADDRESS, "a@b"))
    # emailAddress has no RFC 2253 keyword: its OID and its DER value (IA5String "a@b") in hex.
    assert subject_rfc2253(der) == "1.2.840.113549.1.9.1=#1603614062,CN=Smith\\, John+UID=js\\+1,DC=example"


def test_subject_of_what_is_not_a_certificate():
    with pytest.raises(CertificateError):
        subject_rfc2253(b"\x30\x03\x02\x01\x01")
