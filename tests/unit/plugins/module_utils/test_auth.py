# Copyright (c) 2026 m365ops.smtp_auth contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

from __future__ import annotations

import datetime

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.hazmat.primitives.serialization import pkcs12
from cryptography.x509.oid import NameOID

from ansible_collections.m365ops.smtp_auth.plugins.module_utils._auth import load_certificate_credential
from ansible_collections.m365ops.smtp_auth.plugins.module_utils.errors import AuthenticationError, M365Error


@pytest.fixture(scope="module")
def key_and_certificate():
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "automation")])
    now = datetime.datetime.now(datetime.timezone.utc)
    certificate = (x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
                   .serial_number(1).not_valid_before(now).not_valid_after(now + datetime.timedelta(days=1))
                   .sign(key, hashes.SHA256()))
    return key, certificate


def pem(key, certificate, password=None):
    encryption = (serialization.BestAvailableEncryption(password.encode()) if password
                  else serialization.NoEncryption())
    key_pem = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, encryption)
    return certificate.public_bytes(serialization.Encoding.PEM) + key_pem


def test_pem_with_certificate_first_gives_key_and_certificate(tmp_path, key_and_certificate):
    path = tmp_path / "app.pem"
    path.write_bytes(pem(*key_and_certificate))
    credential = load_certificate_credential(str(path))
    assert credential["private_key"].startswith("-----BEGIN PRIVATE KEY-----")
    assert credential["public_certificate"].startswith("-----BEGIN CERTIFICATE-----")
    assert "passphrase" not in credential


def test_encrypted_pem_needs_its_password(tmp_path, key_and_certificate):
    path = tmp_path / "app.pem"
    path.write_bytes(pem(*key_and_certificate, password="s3cret"))
    assert load_certificate_credential(str(path), "s3cret")["passphrase"] == "s3cret"
    with pytest.raises(AuthenticationError, match="client_certificate_password"):
        load_certificate_credential(str(path))


def test_pem_without_key_is_refused(tmp_path, key_and_certificate):
    path = tmp_path / "cert-only.pem"
    path.write_bytes(key_and_certificate[1].public_bytes(serialization.Encoding.PEM))
    with pytest.raises(AuthenticationError, match="no private key"):
        load_certificate_credential(str(path))


def test_pfx_is_handed_over_by_path_and_a_wrong_password_is_named(tmp_path, key_and_certificate):
    key, certificate = key_and_certificate
    path = tmp_path / "app.pfx"
    path.write_bytes(pkcs12.serialize_key_and_certificates(
        b"app", key, certificate, None, serialization.BestAvailableEncryption(b"pfx-pass")))
    credential = load_certificate_credential(str(path), "pfx-pass")
    assert credential == {"private_key_pfx_path": str(path), "public_certificate": True, "passphrase": "pfx-pass"}
    with pytest.raises(AuthenticationError, match="wrong client_certificate_password"):
        load_certificate_credential(str(path), "nope")


def test_missing_file_is_named(tmp_path):
    with pytest.raises(AuthenticationError, match="missing.pem"):
        load_certificate_credential(str(tmp_path / "missing.pem"))


def test_token_endpoint_failing_with_5xx_is_a_clear_error_not_a_traceback():
    # MSAL raises instead of returning an error reply when the token endpoint answers 5xx.
    from m365_emulator.server import Emulator
    from ansible_collections.m365ops.smtp_auth.plugins.module_utils import _auth as auth, _transport as transport
    from ansible_collections.m365ops.smtp_auth.plugins.module_utils.connection import ConnectionSettings

    with Emulator(smtp_port=None) as emulator:
        tenant = emulator.connection_info()["tenants"][0]
        app = tenant["apps"][0]
        settings = ConnectionSettings.from_params(dict(
            tenant_id=tenant["id"], client_id=app["client_id"], client_secret=app["secret"],
            client_certificate_path=None, client_certificate_password=None, cloud="global",
            authority_url=emulator.base_url, graph_url=emulator.base_url, exchange_url=emulator.base_url,
            ca_path=emulator.ca_path, validate_certs=True, timeout=10, max_retries=0))
        emulator.add_fault({"path": r"/oauth2/v2\.0/token$", "status": 500, "count": 1})
        provider = auth.TokenProvider(settings, transport.build_session(settings))
        with pytest.raises(M365Error) as raised:
            provider.token("https://graph.microsoft.com/.default")
    assert "failed to issue a token" in str(raised.value)
    assert tenant["id"] in str(raised.value)


def emulator_settings(emulator):
    from ansible_collections.m365ops.smtp_auth.plugins.module_utils.connection import ConnectionSettings

    tenant = emulator.connection_info()["tenants"][0]
    app = tenant["apps"][0]
    return ConnectionSettings.from_params(dict(
        tenant_id=tenant["id"], client_id=app["client_id"], client_secret=app["secret"], cloud="global",
        authority_url=emulator.base_url, graph_url=emulator.base_url, exchange_url=emulator.base_url,
        ca_path=emulator.ca_path, validate_certs=True, timeout=10, max_retries=0))


def test_tokens_of_two_resources_are_asked_for_at_once_and_one_scope_is_asked_for_once(tmp_path):
    import dataclasses
    import threading

    from m365_emulator.server import Emulator
    from ansible_collections.m365ops.smtp_auth.plugins.module_utils import _auth as auth, _transport as transport

    with Emulator(smtp_port=None) as emulator:
        settings = dataclasses.replace(emulator_settings(emulator), token_cache=str(tmp_path / "tokens.json"))
        session = transport.build_session(settings)
        # Each token request waits here for a second one: asked one after the other, the first never gets past.
        both_in_flight = threading.Barrier(2, timeout=10)
        token_posts = []
        post = session.post

        def counting_post(url, *args, **kwargs):
            if url.endswith("/oauth2/v2.0/token"):
                token_posts.append(url)
                if len(token_posts) <= 2:
                    both_in_flight.wait()
            return post(url, *args, **kwargs)

        session.post = counting_post
        provider = auth.TokenProvider(settings, session)
        scopes = [settings.endpoints.graph_scope, settings.endpoints.exchange_scope]
        graph, exchange = provider.tokens(scopes)
        assert graph != exchange and len(token_posts) == 2
        # Both reached the cache file, though they were added to MSAL's cache at the same time.
        again = auth.TokenProvider(settings, transport.build_session(settings))
        again.session.post = lambda url, *args, **kwargs: pytest.fail("asked again for a cached token: %s" % url)
        assert again.tokens(scopes) == [graph, exchange]

        # Many threads wanting the same token at once: one request (the others find it in the cache).
        fresh = auth.TokenProvider(dataclasses.replace(settings, token_cache=None), transport.build_session(settings))
        asked = []
        fresh.session.post = lambda url, *args, **kwargs: (asked.append(url), post(url, *args, **kwargs))[1]
        threads = [threading.Thread(target=fresh.token, args=(scopes[0],)) for _number in range(4)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(timeout=30)
        assert len(asked) == 1 and asked[0].endswith("/oauth2/v2.0/token")


def test_no_scopes_ask_nothing():
    from ansible_collections.m365ops.smtp_auth.plugins.module_utils import _auth as auth
    from ansible_collections.m365ops.smtp_auth.plugins.module_utils.connection import ConnectionSettings

    class NoRequests:
        def __getattr__(self, name):
            raise AssertionError("a request was sent for no scope: %s" % name)

    settings = ConnectionSettings(tenant_id="contoso.onmicrosoft.com", client_id="app", client_secret="secret")
    assert auth.TokenProvider(settings, NoRequests()).tokens([]) == []
