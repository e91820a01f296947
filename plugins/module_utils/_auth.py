# Copyright (c) 2026 m365ops.smtp_auth contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""App-only tokens through MSAL: a client secret or a certificate (PEM with key, or PFX)."""

from __future__ import annotations

import os
import pickle
import re
import stat
import threading
import traceback

from ansible_collections.m365ops.smtp_auth.plugins.module_utils.errors import (
    AuthenticationError,
    M365Error,
)
from ansible_collections.m365ops.smtp_auth.plugins.module_utils._batching import map_concurrently
from ansible_collections.m365ops.smtp_auth.plugins.module_utils._transport import transport_error

MSAL_IMPORT_ERROR = None
try:
    import msal
except ImportError:
    MSAL_IMPORT_ERROR = traceback.format_exc()

REQUESTS_IMPORT_ERROR = None
try:
    import requests
except ImportError:
    REQUESTS_IMPORT_ERROR = traceback.format_exc()

# The discovery answers MSAL keeps (its http_cache) live beside the token cache, in <token_cache>.discovery.
HTTP_CACHE_SUFFIX = ".discovery"

_PEM_BLOCK = re.compile(r"-----BEGIN ([A-Z0-9 ]+)-----.+?-----END \1-----", re.DOTALL)


def _read_private(path, option, holds):
    """The bytes of a cache file, None when there is none; refused when anybody else could read or write it."""
    try:
        handle = open(path, "rb")
    except FileNotFoundError:
        return None
    except OSError as error:
        raise AuthenticationError("Cannot read %s %s: %s" % (option, path, error.strerror)) from error
    with handle:
        status = os.fstat(handle.fileno())
        if status.st_uid != os.geteuid() or status.st_mode & 0o077:
            raise AuthenticationError(
                "%s %s holds %s but is readable by others or owned by another user (mode %o); "
                "remove it, or make it yours with mode 0600" % (option, path, holds, stat.S_IMODE(status.st_mode)))
        return handle.read()


def _write_private(path, content, option):
    """Replace a cache file: a new file in the same directory, mode 0600 from the start, then renamed over the old
    one, so a concurrent task never reads half a file."""
    path = os.path.abspath(path)
    temporary = "%s.%d.%s.tmp" % (path, os.getpid(), threading.get_ident())
    try:
        descriptor = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(descriptor, "wb") as handle:
            handle.write(content)
        os.replace(temporary, path)
    except OSError as error:
        if os.path.exists(temporary):
            os.unlink(temporary)
        raise AuthenticationError("Cannot write %s %s: %s" % (option, path, error.strerror)) from error


def load_certificate_credential(path, password=None):
    """The ``client_credential`` MSAL wants for a certificate file.

    A PEM file must hold the private key and the certificate (any order); a .pfx/.p12 file is handed to
    MSAL as a path. The certificate is sent along (x5c) so the assertion names the exact certificate.
    """
    try:
        with open(path, "rb") as handle:
            content = handle.read()
    except OSError as error:
        raise AuthenticationError("Cannot read client certificate %s: %s" % (path, error.strerror)) from error

    if b"-----BEGIN" not in content:
        _check_pfx(path, content, password)
        credential = {"private_key_pfx_path": path, "public_certificate": True}
        if password:
            credential["passphrase"] = password
        return credential

    text = content.decode("ascii", errors="replace")
    keys, certificates = [], []
    for match in _PEM_BLOCK.finditer(text):
        label = match.group(1)
        if label.endswith("PRIVATE KEY"):
            keys.append(match.group(0))
        elif label == "CERTIFICATE":
            certificates.append(match.group(0))
    if not keys or not certificates:
        missing = "private key" if not keys else "certificate"
        raise AuthenticationError(
            "Client certificate %s has no %s: a PEM file must contain both the private key and the "
            "certificate (or use a .pfx file)" % (path, missing))
    _check_pem_key(path, keys[0], password)
    credential = {"private_key": keys[0], "public_certificate": "\n".join(certificates) + "\n"}
    if password:
        credential["passphrase"] = password
    return credential


def _first_sentence(description):
    """The meaning of an AADSTS description, without the trace/correlation ids and timestamp after it."""
    text = description.strip().splitlines()[0] if description.strip() else ""
    return re.split(r"\s+Trace ID:", text)[0].strip()


def _password_bytes(password):
    return password.encode("utf-8") if password else None


# MSAL parses the key inside its constructor and reports a wrong password like any other ValueError;
# loading it here first gives the operator a message about the certificate, not about the authority.
def _check_pfx(path, content, password):
    from cryptography.hazmat.primitives.serialization import pkcs12

    try:
        key, certificate, _chain = pkcs12.load_key_and_certificates(content, _password_bytes(password))
    except ValueError as error:
        raise AuthenticationError("Cannot open PFX client certificate %s (wrong client_certificate_password, "
                                  "or not a PFX/PEM file): %s" % (path, error)) from error
    if key is None or certificate is None:
        raise AuthenticationError("PFX client certificate %s must contain both the private key and the "
                                  "certificate" % path)


def _check_pem_key(path, key_pem, password):
    from cryptography.hazmat.primitives.serialization import load_pem_private_key

    try:
        load_pem_private_key(key_pem.encode("ascii"), _password_bytes(password))
    except (ValueError, TypeError) as error:
        raise AuthenticationError("Cannot load the private key in %s (encrypted keys need "
                                  "client_certificate_password): %s" % (path, error)) from error


class TokenProvider:
    """One MSAL app per run; one token per resource (MSAL's in-memory cache answers repeats)."""

    def __init__(self, settings, session):
        self.settings = settings
        self.session = session
        self._app = None
        # One lock for the MSAL app and the cache files, one per scope for asking: two threads that want the same
        # token send one request, and tokens of different resources are asked for at once.
        self._lock = threading.Lock()
        self._scope_locks = {}
        self._http_mapping = None
        self._http_snapshot = None

    def _credential(self):
        if self.settings.client_certificate_path:
            return load_certificate_credential(self.settings.client_certificate_path,
                                               self.settings.client_certificate_password)
        if self.settings.client_secret:
            return self.settings.client_secret
        raise AuthenticationError("No credential: set client_secret or client_certificate_path")

    def _cache(self):
        """MSAL's cache: in memory, or loaded from the ``token_cache`` file when one is set."""
        if not self.settings.token_cache:
            return msal.TokenCache()
        cache = msal.SerializableTokenCache()
        content = _read_private(self.settings.token_cache, "token_cache", "access tokens")
        if content is not None:
            try:
                cache.deserialize(content.decode("utf-8"))
            except ValueError:
                pass  # an unreadable cache is an empty one: the next token replaces it
        return cache

    def _http_cache(self):
        """MSAL's cache of discovery answers (the authority's OpenID configuration), kept beside the token cache.

        MSAL reads that document before its first token; every module is a process of its own, so without this
        each task of a play would fetch it again. MSAL documents pickle as the way to keep this cache for a
        command-line program; the file is only loaded when it is this user's alone (as the token cache), and an
        unreadable one is an empty one (MSAL's format may change between its versions).
        """
        self._http_snapshot = None
        if not self.settings.token_cache:
            return None
        content = _read_private(self.settings.token_cache + HTTP_CACHE_SUFFIX, "token_cache", "discovery answers")
        try:
            mapping = pickle.loads(content) if content else {}
        except Exception:  # pylint: disable=broad-exception-caught  # any damage means: start afresh
            mapping = {}
        if not isinstance(mapping, dict):
            mapping = {}
        self._http_snapshot = dict(mapping)
        return mapping

    def _save_cache(self):
        """Write the cache files again when MSAL changed them.

        MSAL changes its caches while it asks for a token, outside this provider's lock (tokens of several
        resources are asked for at once): the changed flag is cleared before the cache is read, so a token added
        meanwhile sets it again and is written by its own thread, and the discovery answers are copied before
        they are pickled.
        """
        cache = self._app.token_cache if self._app is not None else None
        if self.settings.token_cache and getattr(cache, "has_state_changed", False):
            cache.has_state_changed = False
            _write_private(self.settings.token_cache, cache.serialize().encode("utf-8"), "token_cache")
        if self._http_snapshot is not None:
            current = dict(self._http_mapping)
            if current != self._http_snapshot:
                _write_private(self.settings.token_cache + HTTP_CACHE_SUFFIX, pickle.dumps(current), "token_cache")
                self._http_snapshot = current

    def _application(self):
        if self._app is None:
            self._http_mapping = self._http_cache()
            try:
                self._app = msal.ConfidentialClientApplication(
                    self.settings.client_id,
                    client_credential=self._credential(),
                    authority=self.settings.authority,
                    # Never ask Microsoft which authorities exist: national clouds and the emulator are
                    # reached by URL, and discovery would leak a request to the public cloud.
                    instance_discovery=False,
                    http_client=self.session,
                    token_cache=self._cache(),
                    http_cache=self._http_mapping,
                )
            except requests.exceptions.RequestException as error:
                raise transport_error(self.settings.authority, error, self.settings.timeout) from error
            except ValueError as error:
                raise self._discovery_error(error) from error
        return self._app

    def _discovery_error(self, error):
        text = str(error)
        if "AADSTS" not in text:
            # MSAL's message drops the service's answer; ask once more to show the AADSTS code (90002: no tenant).
            try:
                reply = self.session.get(self.settings.authority + "/v2.0/.well-known/openid-configuration")
                description = reply.json().get("error_description") or ""
            except (requests.exceptions.RequestException, ValueError, AttributeError):
                description = ""
            text = description or text
        # MSAL reports an unknown tenant as a failed OIDC discovery with the service's JSON in the text.
        match = re.search(r"(AADSTS\d+)[:\s]+([^\"\\]+)", text)
        if match:
            description = _first_sentence(match.group(2))
            return AuthenticationError(
                "Token request for app %s in tenant %s failed: %s: %s"
                % (self.settings.client_id, self.settings.tenant_id, match.group(1), description),
                aadsts_code=match.group(1), description=description)
        return AuthenticationError("Cannot use authority %s for app %s: %s"
                                   % (self.settings.authority, self.settings.client_id, text))

    def token(self, scope, refused=None):
        """An access token for ``scope`` (``<resource>/.default``).

        ``refused`` is a token the service answered 401 to before its expiry: MSAL refuses ``force_refresh`` for
        client credentials, so that token is dropped from the cache and MSAL asks for a new one. When another
        thread already replaced it, the cache answers with that newer token and no second token request goes out.
        """
        with self._lock:
            app = self._application()
            scope_lock = self._scope_locks.setdefault(scope, threading.Lock())
        with scope_lock:
            if refused:
                for entry in list(app.token_cache.search(msal.TokenCache.CredentialType.ACCESS_TOKEN)):
                    if entry.get("secret") == refused:
                        app.token_cache.remove_at(entry)
            try:
                reply = app.acquire_token_for_client(scopes=[scope])
            except requests.exceptions.RequestException as error:
                raise transport_error(self.settings.authority, error, self.settings.timeout) from error
            except ValueError as error:
                raise self._discovery_error(error) from error
            except msal.exceptions.MsalServiceError as error:
                # MSAL raises instead of returning an error reply when the token endpoint answers 5xx
                # (after the session's own retries gave up).
                raise M365Error("The identity platform at %s failed to issue a token for app %s in tenant %s: %s"
                                % (self.settings.authority, self.settings.client_id, self.settings.tenant_id,
                                   error), status=getattr(error, "status_code", None)) from error
            if "access_token" in reply:
                with self._lock:
                    self._save_cache()
        if "access_token" not in reply:
            raise AuthenticationError.from_token_reply(reply, self.settings.tenant_id, self.settings.client_id)
        return reply["access_token"]

    def tokens(self, scopes):
        """Tokens for several resources, asked for at once (a run that needs Graph and Exchange Online waits for one
        round trip, not two); in the order of ``scopes``."""
        scopes = list(scopes)
        if not scopes:
            return []
        with self._lock:
            self._application()  # the authority's discovery, once, before the requests
        return map_concurrently(scopes, self.token, len(scopes))
