"""Entra ID on the wire: the client-credentials token endpoint, OIDC discovery, the signing keys, and the 401
every service answers for an unusable bearer token. Errors have Entra's shape and AADSTS codes.
"""

from __future__ import annotations

import datetime
import time
import uuid
from typing import Any
from urllib.parse import parse_qsl, urlsplit

import jwt
from cryptography import x509

from .. import certs
from ..core import HttpError, Request, Response, Service, odata_error, utc_now_iso
from ..state import App, Tenant, TenantStore
from .models import RESOURCES, Claims, InvalidToken, Resource, TokenIssuer, resource_for_host
from .urls import URLS

ASSERTION_TYPE = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"
# Scopes MSAL may add on its own; they carry no resource.
RESERVED_SCOPES = {"openid", "profile", "offline_access"}
NO_STORE = {"Cache-Control": "no-store, no-cache", "Pragma": "no-cache"}


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
        "error_uri": f"{request.origin}/error?code={code}",
    }, NO_STORE))


def _tenant_or_error(store: TenantStore, request: Request, tenant_ref: str) -> Tenant:
    tenant = store.find_tenant(tenant_ref)
    if tenant is None:
        raise entra_error(request, 400, "invalid_request", 90002,
                          f"Tenant '{tenant_ref}' not found. Check to make sure you have the correct tenant ID "
                          "and are signing into the correct cloud. Check with your subscription administrator, "
                          "this may happen if there are no active subscriptions for the tenant.")
    return tenant


def _resource_for_scope(request: Request, scope_text: str) -> tuple[str, Resource]:
    scopes = [scope for scope in scope_text.split() if scope.lower() not in RESERVED_SCOPES]
    if len(scopes) != 1:
        raise entra_error(request, 400, "invalid_scope", 1002012,
                          f"The provided value for scope {scope_text or '(none)'} is not valid. Client credential "
                          "flows must have a scope value with /.default suffixed to the resource identifier "
                          "(application ID URI).")
    scope = scopes[0]
    identifier = scope[: -len("/.default")] if scope.lower().endswith("/.default") else None
    resource = resource_for_host(identifier) if identifier is not None else None
    if identifier is not None and resource is not None:
        return identifier.rstrip("/").lower(), resource
    raise entra_error(request, 400, "invalid_scope", 1002012,
                      f"The provided value for scope {scope} is not valid. Client credential flows must have a "
                      "scope value with /.default suffixed to the resource identifier (application ID URI) of "
                      "Microsoft Graph or Office 365 Exchange Online.")


def _check_assertion(own_origin: str, request: Request, match_tenant: str, tenant: Tenant, app: App,
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
    if not _is_token_endpoint(own_origin, request, audience, tenant):
        raise entra_error(request, 401, "invalid_client", 700212,
                          f"The audience claim '{audience}' of the client assertion is not the token endpoint "
                          f"of tenant '{match_tenant}'.")
    now = time.time()
    expires = claims.get("exp")
    if not isinstance(expires, (int, float)) or expires <= now or claims.get("nbf", 0) > now + 300:
        raise entra_error(request, 401, "invalid_client", 700024,
                          "Client assertion is not within its valid time range.")


def _is_token_endpoint(own_origin: str, request: Request, audience: Any, tenant: Tenant) -> bool:
    if not isinstance(audience, str):
        return False
    parts = urlsplit(audience)
    if parts.scheme != "https":
        return False
    segments = parts.path.strip("/").split("/")
    if len(segments) != 4 or segments[1:] != ["oauth2", "v2.0", "token"] or not tenant.matches(segments[0]):
        return False
    # The assertion was made for the host the client talks to; loopback names are interchangeable.
    accepted_hosts = {urlsplit(request.origin).netloc, urlsplit(own_origin).netloc}
    loopback = {"127.0.0.1", "localhost", "::1", "[::1]"}
    return parts.netloc in accepted_hosts or (parts.hostname or "") in loopback


_certificate_cache: dict[str, x509.Certificate] = {}


def _load_certificate(pem: str) -> x509.Certificate:
    certificate = _certificate_cache.get(pem)
    if certificate is None:
        certificate = _certificate_cache[pem] = x509.load_pem_x509_certificate(pem.encode())
    return certificate


# -- the service ---------------------------------------------------------------------------------------
class IdentityService(Service):
    """Entra ID for the emulator's tenants; ``issuer`` signs and remembers the tokens."""

    name = "identity"
    urls = URLS

    def __init__(self, emulator: Any):
        super().__init__(emulator)
        self.issuer = TokenIssuer()

    def fault(self, request: Request, status: int, code: str, message: str, headers: dict[str, str]) -> Response:
        # Entra's own shape for a transient failure, whatever the status.
        return Response(status, {
            "error": "temporarily_unavailable",
            "error_description": "AADSTS90033: A transient error has occurred. Please try again.",
            "error_codes": [90033], "timestamp": utc_now_iso().replace("T", " ") + "Z",
            "trace_id": request.request_id, "correlation_id": request.client_request_id,
        }, headers)

    def token(self, request: Request, tenant_ref: str) -> Response:
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
        store = self.emulator.store
        with store.lock:
            tenant = _tenant_or_error(store, request, tenant_ref)
            request.log["tenant"] = tenant.id
            app = tenant.apps.get(client_id)
            if app is None:
                raise entra_error(request, 400, "unauthorized_client", 700016,
                                  f"Application with identifier '{client_id}' was not found in the directory "
                                  f"'{tenant.name}'. This can happen if the application has not been installed by "
                                  "the administrator of the tenant or consented to by any user in the tenant. You "
                                  "may have sent your authentication request to the wrong tenant.")
            audience, resource = _resource_for_scope(request, form["scope"])
            if form.get("client_assertion"):
                if form.get("client_assertion_type") != ASSERTION_TYPE:
                    raise entra_error(request, 400, "invalid_request", 50027,
                                      f"client_assertion_type must be '{ASSERTION_TYPE}'.")
                _check_assertion(self.emulator.base_url, request, tenant_ref, tenant, app,
                                 form["client_assertion"])
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
            access_token, lifetime = self.issuer.issue(tenant, app, audience, resource, credential,
                                                       wids=bool(store.behaviour.get("app_token_wids", True)))
        return Response(200, {"token_type": "Bearer", "expires_in": lifetime, "ext_expires_in": lifetime,
                              "access_token": access_token}, NO_STORE)

    def openid_configuration(self, request: Request, tenant_ref: str) -> Response:
        store = self.emulator.store
        with store.lock:
            tenant_id = _tenant_or_error(store, request, tenant_ref).id
        base = request.origin
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

    def keys(self, request: Request, tenant_ref: str) -> Response:
        store = self.emulator.store
        with store.lock:
            _tenant_or_error(store, request, tenant_ref)
        return Response(200, self.issuer.jwks())


# -- checking bearer tokens at the services ------------------------------------------------------------
def bearer_challenge(message: str, diagnostics_code: int, category: str, error: str) -> Response:
    """The 401 of a resource behind Office 365's bearer authentication (Exchange Online): a challenge naming
    Entra, an ``x-ms-diagnostics`` header and a short text body."""
    challenge = ('Bearer client_id="00000002-0000-0ff1-ce00-000000000000", '
                 'trusted_issuers="00000001-0000-0000-c000-000000000000@*", '
                 'token_types="app_asserted_user_v1 service_asserted_app_v1", '
                 'authorization_uri="https://login.microsoftonline.com/common/oauth2/authorize", '
                 f'error="{error}"')
    return Response(401, f"401 Unauthorized: {message}", {
        "WWW-Authenticate": challenge,
        "x-ms-diagnostics": f'{diagnostics_code};reason="{message}";error_category="{category}"',
        "Content-Type": "text/plain; charset=utf-8",
    })


def _unauthorized(request: Request, resource: Resource, message: str, category: str) -> HttpError:
    if resource.odata_errors:
        return HttpError(odata_error(request, 401, "InvalidAuthenticationToken", message))
    return HttpError(bearer_challenge(message, 2000001, category, category))


def authorize(emulator: Any, request: Request, audience: str, tenant_ref: str | None = None) -> Claims:
    """Check the request's bearer token for ``audience`` ("graph" or "exchange"); raise the service's 401.

    ``emulator`` gives the ``store`` and the ``tokens`` issuer. ``tenant_ref`` (a tenant id or domain from the
    URL) must name the token's tenant; for a resource whose paths name the tenant it is taken from the path.
    """
    resource = RESOURCES.get(audience)
    if resource is None:
        raise ValueError(f"audience must be one of {sorted(RESOURCES)}")
    if tenant_ref is None and resource.tenant_in_path is not None:
        found = resource.tenant_in_path.match(request.path)
        tenant_ref = found["tenant"] if found else None
    try:
        claims = emulator.tokens.check(emulator.store, request.bearer_token(), resource, tenant_ref)
    except InvalidToken as exc:
        raise _unauthorized(request, resource, exc.reason, exc.category) from None
    request.log["tenant"] = claims.tenant.id
    request.log["client_id"] = claims.app.client_id
    return claims
