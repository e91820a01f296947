"""The emulator's own public key infrastructure.

At start the emulator becomes a tiny certificate authority: it issues the TLS certificate of its HTTPS
origin (and of the SMTP server's STARTTLS) and one client certificate per app, so that clients can test
both trust configuration (``verify=<ca>``) and certificate-based client credentials without any real PKI.

RSA key generation is the slow part of starting an emulator, and tests start one per test; keys are
therefore cached per process and only the (cheap) certificates are issued anew.
"""

from __future__ import annotations

import base64
import datetime
import hashlib
import ipaddress
import os
import ssl
import threading
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.hazmat.primitives.serialization import pkcs12
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

PFX_PASSWORD = "emulator"

_key_cache: dict[str, rsa.RSAPrivateKey] = {}
_key_cache_lock = threading.Lock()


def cached_key(purpose: str) -> rsa.RSAPrivateKey:
    """An RSA key for ``purpose``, generated once per process."""
    with _key_cache_lock:
        key = _key_cache.get(purpose)
        if key is None:
            key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
            _key_cache[purpose] = key
        return key


def private_key_pem(key: rsa.RSAPrivateKey) -> bytes:
    return key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                             serialization.NoEncryption())


def certificate_pem(certificate: x509.Certificate) -> bytes:
    return certificate.public_bytes(serialization.Encoding.PEM)


def thumbprints(certificate: x509.Certificate) -> tuple[str, str]:
    """(x5t, x5t#S256): base64url SHA-1 and SHA-256 of the DER certificate, as JWT headers carry them."""
    der = certificate.public_bytes(serialization.Encoding.DER)
    return (base64.urlsafe_b64encode(hashlib.sha1(der).digest()).rstrip(b"=").decode(),  # noqa: S324 - x5t is SHA-1 by definition
            base64.urlsafe_b64encode(hashlib.sha256(der).digest()).rstrip(b"=").decode())


def _name(common_name: str) -> x509.Name:
    return x509.Name([
        x509.NameAttribute(NameOID.ORGANIZATION_NAME, "m365-emulator"),
        x509.NameAttribute(NameOID.COMMON_NAME, common_name),
    ])


def _validity() -> tuple[datetime.datetime, datetime.datetime]:
    now = datetime.datetime.now(datetime.timezone.utc)
    # Backdated a little so that clients whose clocks lag behind still accept the certificates.
    return now - datetime.timedelta(hours=1), now + datetime.timedelta(days=30)


@dataclass
class AppCertificate:
    client_id: str
    certificate: x509.Certificate
    pem_path: Path        # private key + certificate
    key_path: Path        # private key only
    cert_path: Path       # certificate only
    pfx_path: Path        # PKCS#12, password PFX_PASSWORD

    @property
    def certificate_pem(self) -> str:
        return certificate_pem(self.certificate).decode()

    def info(self) -> dict[str, str]:
        sha1, sha256 = thumbprints(self.certificate)
        return {
            "pem_path": str(self.pem_path),
            "key_path": str(self.key_path),
            "cert_path": str(self.cert_path),
            "pfx_path": str(self.pfx_path),
            "pfx_password": PFX_PASSWORD,
            "thumbprint": self.certificate.fingerprint(hashes.SHA1()).hex().upper(),  # noqa: S303 - as Entra shows it
            "x5t": sha1,
            "x5t_s256": sha256,
        }


class CertificateAuthority:
    """A CA plus the certificates it issued, written as files under ``directory``."""

    def __init__(self, directory: str | os.PathLike[str]):
        self.directory = Path(directory)
        self.directory.mkdir(parents=True, exist_ok=True)
        not_before, not_after = _validity()
        self._key = cached_key("ca")
        self.certificate = (
            x509.CertificateBuilder()
            .subject_name(_name("m365-emulator local CA"))
            .issuer_name(_name("m365-emulator local CA"))
            .public_key(self._key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(not_before)
            .not_valid_after(not_after)
            .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
            .add_extension(x509.KeyUsage(digital_signature=True, key_cert_sign=True, crl_sign=True,
                                         content_commitment=False, key_encipherment=False,
                                         data_encipherment=False, key_agreement=False,
                                         encipher_only=False, decipher_only=False), critical=True)
            .add_extension(x509.SubjectKeyIdentifier.from_public_key(self._key.public_key()), critical=False)
            .sign(self._key, hashes.SHA256())
        )
        self.ca_path = self._write("ca.pem", certificate_pem(self.certificate))
        self.server_key = cached_key("server")
        self.server_certificate = self._issue(
            "localhost", self.server_key, server=True,
            alternative_names=[x509.DNSName("localhost"),
                               x509.IPAddress(ipaddress.ip_address("127.0.0.1")),
                               x509.IPAddress(ipaddress.ip_address("::1"))])
        self.server_cert_path = self._write("server.pem", certificate_pem(self.server_certificate)
                                            + certificate_pem(self.certificate))
        self.server_key_path = self._write("server-key.pem", private_key_pem(self.server_key), secret=True)
        self._ssl_context: ssl.SSLContext | None = None

    def _write(self, name: str, data: bytes, secret: bool = False) -> Path:
        path = self.directory / name
        path.parent.mkdir(parents=True, exist_ok=True)
        # Private keys are created 0600 from the start rather than chmod-ed after being written.
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600 if secret else 0o644)
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
        return path

    def _issue(self, common_name: str, key: rsa.RSAPrivateKey, server: bool,
               alternative_names: list[x509.GeneralName] | None = None) -> x509.Certificate:
        not_before, not_after = _validity()
        usage = ExtendedKeyUsageOID.SERVER_AUTH if server else ExtendedKeyUsageOID.CLIENT_AUTH
        builder = (
            x509.CertificateBuilder()
            .subject_name(_name(common_name))
            .issuer_name(self.certificate.subject)
            .public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(not_before)
            .not_valid_after(not_after)
            .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
            .add_extension(x509.ExtendedKeyUsage([usage]), critical=False)
            .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(self._key.public_key()),
                           critical=False)
        )
        if alternative_names:
            builder = builder.add_extension(x509.SubjectAlternativeName(alternative_names), critical=False)
        return builder.sign(self._key, hashes.SHA256())

    def issue_app_certificate(self, client_id: str) -> AppCertificate:
        """A client certificate for an app, written as PEM (key+cert, key, cert) and PFX."""
        key = cached_key(f"app:{client_id}")
        certificate = self._issue(f"app {client_id}", key, server=False)
        key_pem, cert_pem = private_key_pem(key), certificate_pem(certificate)
        base = f"apps/{client_id}"
        # A test credential with a published password: few KDF rounds keep start-up fast.
        encryption = (serialization.PrivateFormat.PKCS12.encryption_builder()
                      .kdf_rounds(2048)
                      .key_cert_algorithm(pkcs12.PBES.PBESv2SHA256AndAES256CBC)
                      .hmac_hash(hashes.SHA256())
                      .build(PFX_PASSWORD.encode()))
        pfx = pkcs12.serialize_key_and_certificates(client_id.encode(), key, certificate, None, encryption)
        return AppCertificate(
            client_id=client_id,
            certificate=certificate,
            pem_path=self._write(f"{base}.pem", key_pem + cert_pem, secret=True),
            key_path=self._write(f"{base}.key", key_pem, secret=True),
            cert_path=self._write(f"{base}.crt", cert_pem),
            pfx_path=self._write(f"{base}.pfx", pfx, secret=True),
        )

    def server_ssl_context(self) -> ssl.SSLContext:
        """One server-side TLS context for the HTTPS origin and SMTP STARTTLS."""
        if self._ssl_context is None:
            context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
            context.minimum_version = ssl.TLSVersion.TLSv1_2
            context.load_cert_chain(self.server_cert_path, self.server_key_path)
            self._ssl_context = context
        return self._ssl_context

    def client_ssl_context(self) -> ssl.SSLContext:
        """A client context trusting only this CA (what a test's httpx or smtplib client needs)."""
        return ssl.create_default_context(cafile=str(self.ca_path))
