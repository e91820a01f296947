"""Entra ID's client-credentials token endpoint, OIDC discovery, and bearer-token checking for the services.

Tokens are real JWTs signed RS256 by the emulator's own key, carrying the claims the services look at
(``aud``, ``tid``, ``appid``, ``roles``, ``wids``, ``exp``). Errors have Entra's shape and AADSTS codes.
"""

from __future__ import annotations

import base64
import datetime
import hashlib
import re
import threading
import time
import uuid
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qsl, urlsplit

import jwt
from cryptography import x509
from cryptography.hazmat.primitives import serialization

from . import certs
from .server import HttpError, Request, Response, graph_error
from .state import DIRECTORY_ROLE_TEMPLATES, App, Tenant, role_template_id

if TYPE_CHECKING:
    from .server import Emulator

DEFAULT_LIFETIME = 3599
ASSERTION_TYPE = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"

# Resource hosts per cloud (global, US Gov GCC High, DoD, China 21Vianet).
GRAPH_RESOURCES = ("https://graph.microsoft.com", "https://graph.microsoft.us", "https://dod-graph.microsoft.us",
                   "https://microsoftgraph.chinacloudapi.cn")
# DoD's Exchange host and token audience is outlook-dod.office365.us (webmail.apps.mil was only the old remote
# PowerShell address, never an audience).
EXCHANGE_RESOURCES = ("https://outlook.office365.com", "https://outlook.office365.us",
                      "https://outlook-dod.office365.us", "https://partner.outlook.cn")
AUDIENCES = {"graph": GRAPH_RESOURCES, "exchange": EXCHANGE_RESOURCES}
# Scopes MSAL may add on its own; they carry no resource.
RESERVED_SCOPES = {"openid", "profile", "offline_access"}

# Every app-only token carries this one (the "Directory Readers"-like default for service principals).
DEFAULT_APP_WID = "0997a1d0-0d1d-4acb-b408-d5ca73121e90"

TENANT_SEGMENT = r"(?P<tenant>[^/]+)"


def _b64url_int(number: int) -> str:
    raw = number.to_bytes((number.bit_length() + 7) // 8, "big")
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


@dataclass
class Claims:
    tenant: Tenant
    app: App
    roles: list[str]
    wids: list[str]
    raw: dict[str, Any] = field(default_factory=dict)

    @property
    def audience(self) -> str:
        return self.raw.get("aud", "")


class TokenIssuer:
    """The emulator's signing key, token lifetime and the record of issued tokens (for "expire now")."""

    def __init__(self) -> None:
        self.key = certs.cached_key("token-signing")
        public_der = self.key.public_key().public_bytes(serialization.Encoding.DER,
                                                        serialization.PublicFormat.SubjectPublicKeyInfo)
        self.kid = base64.urlsafe_b64encode(hashlib.sha1(public_der).digest()).rstrip(b"=").decode()  # noqa: S324
        self.public_key = self.key.public_key()
        self.lifetime = DEFAULT_LIFETIME
        self._lock = threading.Lock()
        self._live: set[str] = set()
        self._revoked: set[str] = set()

    def expire_after(self, seconds: int | None) -> None:
        """Newly issued tokens live ``seconds`` (None: back to the default)."""
        self.lifetime = DEFAULT_LIFETIME if seconds is None else int(seconds)

    def expire_all(self) -> int:
        """Every token issued so far stops working now; returns how many there were."""
        with self._lock:
            count = len(self._live)
            self._revoked |= self._live
            self._live = set()
            return count

    def is_revoked(self, token_id: str) -> bool:
        with self._lock:
            return token_id in self._revoked

    def issue(self, tenant: Tenant, app: App, resource: str, service: str, credential: str) -> tuple[str, int]:
        now = int(time.time())
        lifetime = self.lifetime
        token_id = base64.urlsafe_b64encode(uuid.uuid4().bytes).rstrip(b"=").decode()
        roles = list(app.graph_permissions if service == "graph" else app.exchange_permissions)
        claims: dict[str, Any] = {
            "aud": resource,
            "iss": f"https://sts.windows.net/{tenant.id}/",
            "iat": now,
            "nbf": now,
            "exp": now + lifetime,
            "app_displayname": app.display_name,
            "appid": app.client_id,
            "appidacr": "2" if credential == "certificate" else "1",
            "idp": f"https://sts.windows.net/{tenant.id}/",
            "idtyp": "app",
            "oid": app.object_id,
            "sub": app.object_id,
            "tid": tenant.id,
            "uti": token_id,
            "ver": "1.0",
            "wids": [role_template_id(role) for role in app.directory_roles] + [DEFAULT_APP_WID],
        }
        if roles:
            claims["roles"] = roles
        token = jwt.encode(claims, self.key, algorithm="RS256", headers={"kid": self.kid, "x5t": self.kid})
        with self._lock:
            self._live.add(token_id)
        return token, lifetime

    def jwks(self) -> dict[str, Any]:
        numbers = self.public_key.public_numbers()
        return {"keys": [{"kty": "RSA", "use": "sig", "kid": self.kid, "x5t": self.kid,
                          "n": _b64url_int(numbers.n), "e": _b64url_int(numbers.e)}]}


# -- Entra errors --------------------------------------------------------------------------------------
def entra_error(request: Request, status: int, error: str, code: int, sentence: str) -> HttpError:
    timestamp = datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M:%SZ")
    trace_id = request.request_id
    correlation_id = request.headers.get("client-request-id") or str(uuid.uuid4())
    description = (f"AADSTS{code}: {sentence} Trace ID: {trace_id} Correlation ID: {correlation_id} "
                   f"Timestamp: {timestamp}")
    return HttpError(Response(status, {
        "error": error,
        "error_description": description,
        "error_codes": [code],
        "timestamp": timestamp,
        "trace_id": trace_id,
        "correlation_id": correlation_id,
        "error_uri": f"{request.base_url}/error?code={code}",
    }, {"Cache-Control": "no-store, no-cache", "Pragma": "no-cache"}))


def _tenant_or_error(emulator: Emulator, request: Request, tenant_ref: str) -> Tenant:
    tenant = emulator.store.find_tenant(tenant_ref)
    if tenant is None:
        raise entra_error(request, 400, "invalid_request", 90002,
                          f"Tenant '{tenant_ref}' not found. Check to make sure you have the correct tenant ID "
                          "and are signing into the correct cloud. Check with your subscription administrator, "
                          "this may happen if there are no active subscriptions for the tenant.")
    return tenant


def _resource_for_scope(request: Request, scope_text: str) -> tuple[str, str]:
    scopes = [scope for scope in scope_text.split() if scope.lower() not in RESERVED_SCOPES]
    if len(scopes) != 1:
        raise entra_error(request, 400, "invalid_scope", 1002012,
                          f"The provided value for scope {scope_text or '(none)'} is not valid. Client credential "
                          "flows must have a scope value with /.default suffixed to the resource identifier "
                          "(application ID URI).")
    scope = scopes[0]
    resource = scope[: -len("/.default")] if scope.lower().endswith("/.default") else None
    for service, hosts in AUDIENCES.items():
        for host in hosts:
            if resource is not None and resource.rstrip("/").lower() == host:
                return host, service
    raise entra_error(request, 400, "invalid_scope", 1002012,
                      f"The provided value for scope {scope} is not valid. Client credential flows must have a "
                      "scope value with /.default suffixed to the resource identifier (application ID URI) of "
                      "Microsoft Graph or Office 365 Exchange Online.")


def _check_assertion(emulator: Emulator, request: Request, match_tenant: str, tenant: Tenant, app: App,
                     assertion: str) -> None:
    try:
        header = jwt.get_unverified_header(assertion)
    except jwt.PyJWTError:
        raise entra_error(request, 400, "invalid_request", 50027,
                          "JWT token is invalid or malformed.") from None
    algorithm = header.get("alg")
    if algorithm not in ("RS256", "PS256"):
        raise entra_error(request, 401, "invalid_client", 5002738,
                          f"Invalid JWT token. '{algorithm}' is not a supported signature algorithm. "
                          "Supported signing algorithms are: 'RS256, PS256'")
    candidates = []
    for pem in app.certificates:
        certificate = _load_certificate(pem)
        sha1, sha256 = certs.thumbprints(certificate)
        # Thumbprints arrive base64url with or without padding (MSAL pads them); compare them unpadded.
        wanted = [str(value).rstrip("=").replace("+", "-").replace("/", "_")
                  for value in (header.get("x5t"), header.get("x5t#S256")) if value]
        if not wanted or sha1 in wanted or sha256 in wanted:
            candidates.append(certificate)
    if not candidates:
        identifier = header.get("x5t#S256") or header.get("x5t") or "(none)"
        raise entra_error(request, 401, "invalid_client", 700027,
                          f"The certificate with identifier used to sign the client assertion is not registered "
                          f"on application. [Reason - The key was not found., Thumbprint of key used by client: "
                          f"'{identifier}', Please visit the Azure Portal, Graph Explorer or directly use MS Graph "
                          f"to see configured keys for app Id '{app.client_id}'.]")
    claims = None
    for certificate in candidates:
        try:
            claims = jwt.decode(assertion, certificate.public_key(), algorithms=[algorithm],
                                options={"verify_aud": False, "verify_exp": False, "verify_nbf": False})
            break
        except jwt.InvalidSignatureError:
            continue
        except jwt.PyJWTError:
            raise entra_error(request, 400, "invalid_request", 50027,
                              "JWT token is invalid or malformed.") from None
    if claims is None:
        raise entra_error(request, 401, "invalid_client", 700027, "Client assertion failed signature validation.")
    if claims.get("iss") != app.client_id or claims.get("sub") != app.client_id:
        raise entra_error(request, 401, "invalid_client", 700021,
                          "Client assertion application identifier doesn't match 'client_id' parameter.")
    audience = claims.get("aud")
    if not _is_token_endpoint(emulator, request, audience, tenant):
        raise entra_error(request, 401, "invalid_client", 700212,
                          f"The audience claim '{audience}' of the client assertion is not the token endpoint "
                          f"of tenant '{match_tenant}'.")
    now = time.time()
    expires = claims.get("exp")
    if not isinstance(expires, (int, float)) or expires <= now or claims.get("nbf", 0) > now + 300:
        raise entra_error(request, 401, "invalid_client", 700024,
                          "Client assertion is not within its valid time range.")


def _is_token_endpoint(emulator: Emulator, request: Request, audience: Any, tenant: Tenant) -> bool:
    if not isinstance(audience, str):
        return False
    parts = urlsplit(audience)
    if parts.scheme != "https":
        return False
    segments = parts.path.strip("/").split("/")
    if len(segments) != 4 or segments[1:] != ["oauth2", "v2.0", "token"] or not tenant.matches(segments[0]):
        return False
    # The assertion was made for the host the client talks to; loopback names are interchangeable.
    accepted_hosts = {urlsplit(request.base_url).netloc, urlsplit(emulator.base_url).netloc}
    loopback = {"127.0.0.1", "localhost", "::1", "[::1]"}
    return parts.netloc in accepted_hosts or (parts.hostname or "") in loopback


_certificate_cache: dict[str, x509.Certificate] = {}


def _load_certificate(pem: str) -> x509.Certificate:
    certificate = _certificate_cache.get(pem)
    if certificate is None:
        certificate = _certificate_cache[pem] = x509.load_pem_x509_certificate(pem.encode())
    return certificate


# -- handlers -------------------------------------------------------------------------------------------
def routes(emulator: Emulator):
    def token(request: Request, match: re.Match[str]) -> Response:
        form = dict(parse_qsl(request.body.decode("utf-8", "replace"), keep_blank_values=True))
        client_id = form.get("client_id", "")
        request.log["client_id"] = client_id or None
        for required in ("grant_type", "client_id", "scope"):
            if not form.get(required):
                raise entra_error(request, 400, "invalid_request", 900144,
                                  f"The request body must contain the following parameter: '{required}'.")
        if form["grant_type"] != "client_credentials":
            raise entra_error(request, 400, "unsupported_grant_type", 70003,
                              f"The app requested an unsupported grant type '{form['grant_type']}'. "
                              "The emulator supports client_credentials only.")
        with emulator.store.lock:
            tenant = _tenant_or_error(emulator, request, match["tenant"])
            request.log["tenant"] = tenant.id
            app = tenant.apps.get(client_id)
            if app is None:
                raise entra_error(request, 400, "unauthorized_client", 700016,
                                  f"Application with identifier '{client_id}' was not found in the directory "
                                  f"'{tenant.name}'. This can happen if the application has not been installed by "
                                  "the administrator of the tenant or consented to by any user in the tenant. You "
                                  "may have sent your authentication request to the wrong tenant.")
            resource, service = _resource_for_scope(request, form["scope"])
            if form.get("client_assertion"):
                if form.get("client_assertion_type") != ASSERTION_TYPE:
                    raise entra_error(request, 400, "invalid_request", 50027,
                                      f"client_assertion_type must be '{ASSERTION_TYPE}'.")
                _check_assertion(emulator, request, match["tenant"], tenant, app, form["client_assertion"])
                credential = "certificate"
            elif form.get("client_secret"):
                if form["client_secret"] not in app.secrets:
                    raise entra_error(request, 401, "invalid_client", 7000215,
                                      "Invalid client secret provided. Ensure the secret being sent in the request "
                                      "is the client secret value, not the client secret ID, for a secret added to "
                                      f"app '{app.client_id}'.")
                credential = "secret"
            else:
                raise entra_error(request, 401, "invalid_client", 7000218,
                                  "The request body must contain the following parameter: 'client_assertion' "
                                  "or 'client_secret'.")
            access_token, lifetime = emulator.tokens.issue(tenant, app, resource, service, credential)
        return Response(200, {"token_type": "Bearer", "expires_in": lifetime, "ext_expires_in": lifetime,
                              "access_token": access_token},
                        {"Cache-Control": "no-store, no-cache", "Pragma": "no-cache"})

    def openid_configuration(request: Request, match: re.Match[str]) -> Response:
        with emulator.store.lock:
            tenant = _tenant_or_error(emulator, request, match["tenant"])
            tenant_id = tenant.id
        base = request.base_url
        return Response(200, {
            "token_endpoint": f"{base}/{tenant_id}/oauth2/v2.0/token",
            "token_endpoint_auth_methods_supported": ["client_secret_post", "private_key_jwt",
                                                      "client_secret_basic"],
            "jwks_uri": f"{base}/{tenant_id}/discovery/v2.0/keys",
            "response_modes_supported": ["query", "fragment", "form_post"],
            "subject_types_supported": ["pairwise"],
            "id_token_signing_alg_values_supported": ["RS256"],
            "response_types_supported": ["code", "id_token", "code id_token", "id_token token"],
            "scopes_supported": ["openid", "profile", "email", "offline_access"],
            "issuer": f"{base}/{tenant_id}/v2.0",
            "request_uri_parameter_supported": False,
            "authorization_endpoint": f"{base}/{tenant_id}/oauth2/v2.0/authorize",
            "device_authorization_endpoint": f"{base}/{tenant_id}/oauth2/v2.0/devicecode",
            "end_session_endpoint": f"{base}/{tenant_id}/oauth2/v2.0/logout",
            "tenant_region_scope": "EU",
            "cloud_instance_name": "microsoftonline.com",
        })

    def keys(request: Request, match: re.Match[str]) -> Response:
        with emulator.store.lock:
            _tenant_or_error(emulator, request, match["tenant"])
        return Response(200, emulator.tokens.jwks())

    return [
        ("POST", re.compile(rf"/{TENANT_SEGMENT}/oauth2/v2\.0/token"), token),
        ("GET", re.compile(rf"/{TENANT_SEGMENT}/v2\.0/\.well-known/openid-configuration"), openid_configuration),
        ("GET", re.compile(rf"/{TENANT_SEGMENT}/discovery/v2\.0/keys"), keys),
    ]


# -- checking bearer tokens at the services ------------------------------------------------------------
_EXCHANGE_TENANT_IN_PATH = re.compile(r"^/adminapi/[^/]+/(?P<tenant>[^/]+)/")


def _unauthorized(request: Request, audience: str, message: str, category: str = "invalid_token") -> HttpError:
    if audience == "graph":
        return HttpError(graph_error(request, 401, "InvalidAuthenticationToken", message))
    challenge = ('Bearer client_id="00000002-0000-0ff1-ce00-000000000000", '
                 'trusted_issuers="00000001-0000-0000-c000-000000000000@*", '
                 'token_types="app_asserted_user_v1 service_asserted_app_v1", '
                 'authorization_uri="https://login.microsoftonline.com/common/oauth2/authorize", '
                 f'error="{category}"')
    return HttpError(Response(401, f"401 Unauthorized: {message}", {
        "WWW-Authenticate": challenge,
        "x-ms-diagnostics": f'2000001;reason="{message}";error_category="{category}"',
        "Content-Type": "text/plain; charset=utf-8",
    }))


def authorize(emulator: Emulator, request: Request, audience: str, tenant_ref: str | None = None) -> Claims:
    """Check the request's bearer token for ``audience`` ("graph" or "exchange"); raise the service's 401.

    ``tenant_ref`` (a tenant id or domain from the URL) must name the token's tenant; for Exchange's
    ``/adminapi/<version>/<tenant>/...`` paths it is taken from the URL when not given.
    """
    if audience not in AUDIENCES:
        raise ValueError(f"audience must be one of {sorted(AUDIENCES)}")
    token = request.bearer_token()
    if token is None:
        raise _unauthorized(request, audience, "Access token is empty.", "invalid_request")
    try:
        claims = jwt.decode(token, emulator.tokens.public_key, algorithms=["RS256"],
                            options={"verify_aud": False, "require": ["exp", "aud", "tid", "appid"]})
    except jwt.ExpiredSignatureError:
        raise _unauthorized(request, audience, "Lifetime validation failed, the token is expired.") from None
    except jwt.PyJWTError:
        raise _unauthorized(request, audience, "Access token validation failure.") from None
    if emulator.tokens.is_revoked(claims.get("uti", "")):
        raise _unauthorized(request, audience, "Lifetime validation failed, the token is expired.")
    if str(claims["aud"]).rstrip("/").lower() not in AUDIENCES[audience]:
        raise _unauthorized(request, audience, "Access token validation failure. Invalid audience.",
                            "invalid_resource")
    with emulator.store.lock:
        tenant = emulator.store.find_tenant(claims["tid"])
        app = tenant.apps.get(claims["appid"]) if tenant else None
    if tenant is None or app is None:
        raise _unauthorized(request, audience, "Access token validation failure. The tenant or application of "
                                               "the token no longer exists.")
    if tenant_ref is None and audience == "exchange":
        found = _EXCHANGE_TENANT_IN_PATH.match(request.path)
        tenant_ref = found["tenant"] if found else None
    if tenant_ref is not None and not tenant.matches(tenant_ref):
        raise _unauthorized(request, audience, f"The token was issued for tenant {tenant.id}, not for "
                                               f"'{tenant_ref}'.", "invalid_tenant")
    request.log["tenant"] = tenant.id
    request.log["client_id"] = app.client_id
    return Claims(tenant=tenant, app=app, roles=list(claims.get("roles", [])),
                  wids=list(claims.get("wids", [])), raw=claims)


__all__ = ["Claims", "TokenIssuer", "authorize", "routes", "entra_error", "role_template_id",
           "GRAPH_RESOURCES", "EXCHANGE_RESOURCES", "DIRECTORY_ROLE_TEMPLATES"]
