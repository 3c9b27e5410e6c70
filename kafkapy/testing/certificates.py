"""Throwaway certificates for TLS tests: a certificate authority made for one test broker, a
server certificate for 127.0.0.1 and localhost, and a client certificate per user, all as
PEM files in one directory. Needs the `cryptography` package (kafkapy's `testkit` extra);
the broker itself only reads PEM files with the standard library."""

from __future__ import annotations

import datetime
import ipaddress
from pathlib import Path
from typing import Any

_ORGANIZATION = "kafkapy test"
_VALID_FOR = datetime.timedelta(days=2)


def _crypto() -> Any:
    try:
        from cryptography import x509
        from cryptography.hazmat.primitives import hashes, serialization
        from cryptography.hazmat.primitives.asymmetric import ec
        from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID
    except ImportError:
        raise RuntimeError("TLS test brokers need the cryptography package: pip install 'kafkapy[testkit]'") from None
    return x509, hashes, serialization, ec, ExtendedKeyUsageOID, NameOID


class TestCertificates:
    """A certificate authority in `directory`, and the certificates it signs."""

    __test__ = False  # not a pytest test class, whatever its name

    def __init__(self, directory: str | Path, name: str = "kafkapy test CA") -> None:
        x509, hashes, serialization, ec, _, NameOID = _crypto()
        self.directory = Path(directory)
        self.directory.mkdir(parents=True, exist_ok=True)
        self._ca_key = ec.generate_private_key(ec.SECP256R1())
        self._ca_name = x509.Name([x509.NameAttribute(NameOID.ORGANIZATION_NAME, _ORGANIZATION),
                                   x509.NameAttribute(NameOID.COMMON_NAME, name)])
        now = datetime.datetime.now(datetime.UTC)
        self._ca_cert = (
            x509.CertificateBuilder().subject_name(self._ca_name).issuer_name(self._ca_name)
            .public_key(self._ca_key.public_key()).serial_number(x509.random_serial_number())
            .not_valid_before(now - datetime.timedelta(minutes=5)).not_valid_after(now + _VALID_FOR)
            .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
            .add_extension(x509.KeyUsage(digital_signature=True, key_cert_sign=True, crl_sign=True, content_commitment=False,
                                         key_encipherment=False, data_encipherment=False, key_agreement=False,
                                         encipher_only=False, decipher_only=False), critical=True)
            .sign(self._ca_key, hashes.SHA256())
        )
        self.ca_path = self.directory / "ca.pem"
        self.ca_path.write_bytes(self._ca_cert.public_bytes(serialization.Encoding.PEM))

    def server(self) -> Path:
        """A key store for a broker on 127.0.0.1 (or localhost): one PEM file holding the
        private key and the certificate chain, as ssl.keystore.location takes it. The
        certificate also authenticates the broker as the client of other brokers (its
        principal: User:CN=localhost,O=kafkapy test)."""
        x509, _, _, _, ExtendedKeyUsageOID, NameOID = _crypto()
        names = x509.SubjectAlternativeName([x509.DNSName("localhost"), x509.IPAddress(ipaddress.ip_address("127.0.0.1"))])
        key_pem, cert_pem = self._issue(x509.Name([x509.NameAttribute(NameOID.ORGANIZATION_NAME, _ORGANIZATION),
                                                   x509.NameAttribute(NameOID.COMMON_NAME, "localhost")]),
                                        [ExtendedKeyUsageOID.SERVER_AUTH, ExtendedKeyUsageOID.CLIENT_AUTH], names)
        path = self.directory / "server.pem"
        path.write_bytes(key_pem + cert_pem)
        path.chmod(0o600)
        return path

    def client(self, user: str) -> tuple[Path, Path]:
        """(certificate, private key) PEM files of a client whose subject is
        CN=<user>,O=kafkapy test (its principal: User:CN=<user>,O=kafkapy test)."""
        x509, _, _, _, ExtendedKeyUsageOID, NameOID = _crypto()
        cert_path, key_path = self.directory / f"client-{user}.pem", self.directory / f"client-{user}.key"
        if not cert_path.exists():
            key_pem, cert_pem = self._issue(x509.Name([x509.NameAttribute(NameOID.ORGANIZATION_NAME, _ORGANIZATION),
                                                       x509.NameAttribute(NameOID.COMMON_NAME, user)]),
                                            [ExtendedKeyUsageOID.CLIENT_AUTH], None)
            key_path.write_bytes(key_pem)
            key_path.chmod(0o600)
            cert_path.write_bytes(cert_pem)
        return cert_path, key_path

    def _issue(self, subject: Any, usages: list[Any], alternative_names: Any) -> tuple[bytes, bytes]:
        x509, hashes, serialization, ec, _, _ = _crypto()
        key = ec.generate_private_key(ec.SECP256R1())
        now = datetime.datetime.now(datetime.UTC)
        builder = (
            x509.CertificateBuilder().subject_name(subject).issuer_name(self._ca_name)
            .public_key(key.public_key()).serial_number(x509.random_serial_number())
            .not_valid_before(now - datetime.timedelta(minutes=5)).not_valid_after(now + _VALID_FOR)
            .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
            .add_extension(x509.ExtendedKeyUsage(usages), critical=False)
        )
        if alternative_names is not None:
            builder = builder.add_extension(alternative_names, critical=False)
        cert = builder.sign(self._ca_key, hashes.SHA256())
        key_pem = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
        return key_pem, cert.public_bytes(serialization.Encoding.PEM)
