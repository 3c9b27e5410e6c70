"""A certificate's subject in the RFC 2253 form Java's X500Principal.getName() gives, which
is what Kafka's principals and mapping rules see: relative names last to first, the
attributes RFC 2253 has keywords for by keyword and as (escaped) text, any other as its
dotted OID with the value's DER encoding in hex.

Read straight from the certificate's DER: the standard library's decoded form loses the
encodings and the OIDs of attributes OpenSSL has no name for."""

from __future__ import annotations

_SEQUENCE, _SET, _OID, _CONTEXT_0 = 0x30, 0x31, 0x06, 0xA0
_KEYWORDS = {
    "2.5.4.3": "CN", "2.5.4.6": "C", "2.5.4.7": "L", "2.5.4.8": "ST", "2.5.4.10": "O", "2.5.4.11": "OU",
    "2.5.4.9": "STREET", "0.9.2342.19200300.100.1.25": "DC", "0.9.2342.19200300.100.1.1": "UID",
}
# DER string types and how their bytes read: UTF8String, PrintableString, T61String,
# IA5String, UniversalString, BMPString.
_STRING_TYPES = {0x0C: "utf-8", 0x13: "latin-1", 0x14: "latin-1", 0x16: "latin-1", 0x1C: "utf-32-be", 0x1E: "utf-16-be"}
_ALWAYS_ESCAPED = ',+"\\<>;'


class CertificateError(ValueError):
    """DER that is not an X.509 certificate."""


def _element(data: bytes, pos: int) -> tuple[int, int, int]:
    """(tag, start of content, end of content) of the DER element at pos."""
    if pos + 2 > len(data):
        raise CertificateError("truncated DER")
    tag, length = data[pos], data[pos + 1]
    pos += 2
    if length & 0x80:
        size = length & 0x7F
        if size == 0 or size > 4 or pos + size > len(data):
            raise CertificateError("unsupported DER length")
        length = int.from_bytes(data[pos:pos + size], "big")
        pos += size
    if pos + length > len(data):
        raise CertificateError("truncated DER")
    return tag, pos, pos + length


def _children(data: bytes, start: int, end: int) -> list[tuple[int, int, int, int]]:
    """(tag, content start, content end, element start) of each element in a range."""
    out = []
    while start < end:
        tag, content, after = _element(data, start)
        out.append((tag, content, after, start))
        start = after
    return out


def _oid(encoded: bytes) -> str:
    parts: list[int] = []
    value = 0
    for byte in encoded:
        value = (value << 7) | (byte & 0x7F)
        if not byte & 0x80:
            parts.append(value)
            value = 0
    if not parts:
        raise CertificateError("empty OID")
    first = min(parts[0] // 40, 2)
    return ".".join(str(p) for p in [first, parts[0] - 40 * first, *parts[1:]])


def _escape(text: str) -> str:
    out = []
    for i, c in enumerate(text):
        if c in _ALWAYS_ESCAPED or (c == "#" and i == 0) or (c == " " and (i == 0 or i == len(text) - 1)):
            out.append("\\" + c)
        elif ord(c) < 0x20:
            out.append(f"\\{ord(c):02X}")
        else:
            out.append(c)
    return "".join(out)


def subject_rfc2253(certificate_der: bytes) -> str:
    """The subject of a DER certificate in Java's RFC 2253 form."""
    tag, start, end = _element(certificate_der, 0)
    certificate = _children(certificate_der, start, end)
    if tag != _SEQUENCE or not certificate or certificate[0][0] != _SEQUENCE:
        raise CertificateError("not an X.509 certificate")
    fields = _children(certificate_der, certificate[0][1], certificate[0][2])
    if fields and fields[0][0] == _CONTEXT_0:  # the version, present from v2 on
        fields = fields[1:]
    # serial number, signature algorithm, issuer, validity, subject
    if len(fields) < 5 or fields[4][0] != _SEQUENCE:
        raise CertificateError("certificate without a subject")
    names = []
    for rdn_tag, rdn_start, rdn_end, _ in _children(certificate_der, fields[4][1], fields[4][2]):
        if rdn_tag != _SET:
            raise CertificateError("malformed relative distinguished name")
        attributes = []
        for _, ava_start, ava_end, _ in _children(certificate_der, rdn_start, rdn_end):
            parts = _children(certificate_der, ava_start, ava_end)
            if len(parts) != 2 or parts[0][0] != _OID:
                raise CertificateError("malformed attribute")
            oid = _oid(certificate_der[parts[0][1]:parts[0][2]])
            value_tag, value_start, value_end, value_element = parts[1]
            keyword = _KEYWORDS.get(oid)
            encoding = _STRING_TYPES.get(value_tag)
            if keyword is not None and encoding is not None:
                attributes.append(f"{keyword}={_escape(certificate_der[value_start:value_end].decode(encoding, 'replace'))}")
            else:
                attributes.append(f"{keyword or oid}=#{certificate_der[value_element:value_end].hex()}")
        names.append("+".join(attributes))
    return ",".join(reversed(names))
