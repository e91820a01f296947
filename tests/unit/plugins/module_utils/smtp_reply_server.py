# Copyright (c) 2026 m365ops.smtp_auth contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""A plain aiosmtpd submission server that answers with whatever reply line a test gives it.

It stands apart from the emulator on purpose: the probe's mapping of Microsoft's reply lines is tested
against a server that knows nothing of tenants, so a mistake shared by the emulator and the probe
cannot hide.
"""

from __future__ import annotations

import asyncio
import base64
import datetime
import ipaddress
import socket
import ssl
import threading

from aiosmtpd.smtp import SMTP, AuthResult
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID


def make_certificates(directory):
    """A throwaway CA and a server certificate for 127.0.0.1 / localhost; returns (ca, cert, key) paths."""
    now = datetime.datetime.now(datetime.timezone.utc)
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "probe test CA")])
    ca_cert = (
        x509.CertificateBuilder()
        .subject_name(ca_name).issuer_name(ca_name)
        .public_key(ca_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(x509.KeyUsage(digital_signature=True, key_cert_sign=True, crl_sign=True,
                                     content_commitment=False, key_encipherment=False, data_encipherment=False,
                                     key_agreement=False, encipher_only=False, decipher_only=False), critical=True)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(ca_key.public_key()), critical=False)
        .sign(ca_key, hashes.SHA256())
    )
    server_key = ec.generate_private_key(ec.SECP256R1())
    server_cert = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "localhost")]))
        .issuer_name(ca_name)
        .public_key(server_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(x509.SubjectAlternativeName([x509.DNSName("localhost"),
                                                    x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]),
                       critical=False)
        .add_extension(x509.ExtendedKeyUsage([x509.oid.ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
        .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()), critical=False)
        .sign(ca_key, hashes.SHA256())
    )
    paths = (directory / "ca.pem", directory / "server.pem", directory / "server.key")
    paths[0].write_bytes(ca_cert.public_bytes(serialization.Encoding.PEM))
    paths[1].write_bytes(server_cert.public_bytes(serialization.Encoding.PEM))
    paths[2].write_bytes(server_key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                                  serialization.NoEncryption()))
    return tuple(str(path) for path in paths)


class ReplyHandler:
    """Decides each answer from the lines a test sets; records what the client sent."""

    def __init__(self):
        self.auth_reply = None          # None: 235 2.7.0 Authentication successful
        self.mail_reply = None          # None: 250 for an authenticated session
        # None: MAIL FROM without AUTH is accepted, as the MX endpoint of connector relay accepts it.
        self.anonymous_mail_reply = "530 5.7.57 Client not authenticated to send mail."
        self.rcpt_reply = None          # None: 250 2.1.5
        # A line, or a function of the number of messages received so far (this one included) giving the line.
        self.data_reply = "250 2.0.0 OK <test@probe> [Hostname=TESTFRONTEND]"
        self.credentials = []           # (mechanism, login, secret) as received
        self.messages = []              # (mail_from, rcpt_tos, content)

    def decide_auth(self, mechanism, login, secret):
        self.credentials.append((mechanism, login, secret))
        if self.auth_reply is None:
            return AuthResult(success=True, auth_data=login)
        return AuthResult(success=False, handled=False, message=self.auth_reply)

    async def auth_XOAUTH2(self, server, args):
        if len(args) < 2:
            await server.push("501 5.5.2 XOAUTH2 needs an initial response")
            return AuthResult(success=False, handled=True)
        fields = base64.b64decode(args[1]).decode("utf-8").split("\x01")
        login = next((item[5:] for item in fields if item.startswith("user=")), "")
        token = next((item[12:] for item in fields if item.startswith("auth=Bearer ")), "")
        return self.decide_auth("XOAUTH2", login, token)

    async def handle_MAIL(self, server, session, envelope, address, mail_options):
        if not session.authenticated and self.anonymous_mail_reply:
            return self.anonymous_mail_reply
        if self.mail_reply:
            return self.mail_reply
        envelope.mail_from = address
        envelope.mail_options.extend(mail_options)
        return "250 2.1.0 Sender OK"

    async def handle_RCPT(self, server, session, envelope, address, rcpt_options):
        if self.rcpt_reply:
            return self.rcpt_reply
        envelope.rcpt_tos.append(address)
        return "250 2.1.5 Recipient OK"

    async def handle_DATA(self, server, session, envelope):
        self.messages.append((envelope.mail_from, list(envelope.rcpt_tos), envelope.content))
        return self.data_reply(len(self.messages)) if callable(self.data_reply) else self.data_reply


class ReplyServer:
    """The server on 127.0.0.1, port chosen by the system, its event loop in a thread of its own."""

    def __init__(self, cert_file=None, key_file=None, starttls=True):
        self.handler = ReplyHandler()
        self._tls_context = None
        if starttls:
            self._tls_context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
            self._tls_context.load_cert_chain(cert_file, key_file)
        self.loop = asyncio.new_event_loop()
        self.port = None
        self._server = None
        self._thread = None

    def _authenticator(self, server, session, envelope, mechanism, auth_data):
        return self.handler.decide_auth(mechanism, auth_data.login.decode(), auth_data.password.decode())

    def _protocol(self):
        return SMTP(self.handler, hostname="probe-test.example", ident="Microsoft ESMTP MAIL Service ready",
                    tls_context=self._tls_context, require_starttls=self._tls_context is not None,
                    auth_require_tls=self._tls_context is not None, authenticator=self._authenticator,
                    loop=self.loop)

    def __enter__(self):
        listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        listener.bind(("127.0.0.1", 0))
        listener.listen(8)
        self.port = listener.getsockname()[1]
        self._server = self.loop.run_until_complete(self.loop.create_server(self._protocol, sock=listener))
        self._thread = threading.Thread(target=self.loop.run_forever, name="smtp-reply-server", daemon=True)
        self._thread.start()
        return self

    def __exit__(self, *exc_info):
        self.loop.call_soon_threadsafe(self._server.close)
        self.loop.call_soon_threadsafe(self.loop.stop)
        self._thread.join(10)
        self.loop.close()
