"""A self-signed certificate authority and a server certificate for the emulator's HTTPS endpoints.

The console validates WinRM certificates by default: point it at ca.pem (HYPERV_CA_BUNDLE) and it
trusts the emulator exactly as it would trust a domain's CA, with names and addresses checked.
"""

from __future__ import annotations

import datetime
import ipaddress
import ssl
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

VALID_DAYS = 825


def ensure_certificates(folder: Path, names: list[str], addresses: list[str]) -> tuple[Path, Path, Path]:
    """(ca.pem, server.pem, server-key.pem) in folder; the server certificate is renewed when it does not
    cover every name and address asked for."""
    folder.mkdir(parents=True, exist_ok=True)
    ca_pem, ca_key_pem = folder / "ca.pem", folder / "ca-key.pem"
    cert_pem, key_pem = folder / "server.pem", folder / "server-key.pem"
    if ca_pem.exists() and ca_key_pem.exists():
        ca_cert = x509.load_pem_x509_certificate(ca_pem.read_bytes())
        ca_key = serialization.load_pem_private_key(ca_key_pem.read_bytes(), password=None)
    else:
        ca_key = ec.generate_private_key(ec.SECP256R1())
        ca_cert = _ca_certificate(ca_key)
        _write_key(ca_key_pem, ca_key)
        ca_pem.write_bytes(ca_cert.public_bytes(serialization.Encoding.PEM))
    wanted = {n.lower() for n in names} | set(addresses)
    if not (cert_pem.exists() and key_pem.exists() and wanted <= _covered(cert_pem)):
        key = ec.generate_private_key(ec.SECP256R1())
        cert = _server_certificate(key, ca_key, ca_cert, names, addresses)
        _write_key(key_pem, key)
        cert_pem.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    return ca_pem, cert_pem, key_pem


def server_context(cert_pem: Path, key_pem: Path) -> ssl.SSLContext:
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    context.load_cert_chain(cert_pem, key_pem)
    return context


def _now() -> datetime.datetime:
    return datetime.datetime.now(datetime.UTC)


def _ca_certificate(key: ec.EllipticCurvePrivateKey) -> x509.Certificate:
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "Hyper-V emulator CA")])
    return (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(_now() - datetime.timedelta(minutes=5))
        .not_valid_after(_now() + datetime.timedelta(days=VALID_DAYS * 2))
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=True,
                key_cert_sign=True,
                crl_sign=True,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
        .sign(key, hashes.SHA256())
    )


def _server_certificate(key, ca_key, ca_cert: x509.Certificate, names: list[str], addresses: list[str]):
    alt_names: list[x509.GeneralName] = [x509.DNSName(n) for n in sorted(set(names))]
    alt_names += [x509.IPAddress(ipaddress.ip_address(a)) for a in sorted(set(addresses))]
    return (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, names[0] if names else "localhost")]))
        .issuer_name(ca_cert.subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(_now() - datetime.timedelta(minutes=5))
        .not_valid_after(_now() + datetime.timedelta(days=VALID_DAYS))
        .add_extension(x509.SubjectAlternativeName(alt_names), critical=False)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(x509.ExtendedKeyUsage([x509.oid.ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
        .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()), critical=False)
        .sign(ca_key, hashes.SHA256())
    )


def _covered(cert_pem: Path) -> set[str]:
    cert = x509.load_pem_x509_certificate(cert_pem.read_bytes())
    if cert.not_valid_after_utc < _now() + datetime.timedelta(days=7):
        return set()
    san = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    return {n.lower() for n in san.get_values_for_type(x509.DNSName)} | {
        str(a) for a in san.get_values_for_type(x509.IPAddress)
    }


def _write_key(path: Path, key) -> None:
    path.write_bytes(
        key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    )
    path.chmod(0o600)
