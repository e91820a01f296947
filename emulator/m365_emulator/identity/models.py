"""Entra ID's side of the tenant: the resources it issues tokens for, the signing key, issued tokens, and the
check of a bearer token that every service makes.

Tokens are real JWTs signed RS256 by the emulator's own key, carrying the claims the services look at
(``aud``, ``tid``, ``appid``, ``roles``, ``wids``, ``exp``).
"""

from __future__ import annotations

import base64
import collections
import hashlib
import re
import threading
import time
import uuid
from dataclasses import dataclass, field
from typing import Any, Callable

import jwt
from cryptography.hazmat.primitives import serialization

from .. import certs
from ..state import App, Tenant, TenantStore, role_template_id

DEFAULT_LIFETIME = 3599
# Every app-only token carries this one (the "Directory Readers"-like default for service principals).
DEFAULT_APP_WID = "0997a1d0-0d1d-4acb-b408-d5ca73121e90"
ISSUED_KEPT = 100_000
VERIFIED_KEPT = 256


@dataclass(frozen=True)
class Resource:
    """A resource Entra issues tokens for: its identifier URIs in each cloud, which of an app's permissions
    its tokens carry as ``roles``, how it answers an unusable token, and where its URLs name the tenant."""

    name: str
    display_name: str
    hosts: tuple[str, ...]
    permissions: Callable[[App], list[str]]
    # True: the OData error envelope; False: a bearer challenge with a short text body.
    odata_errors: bool
    tenant_in_path: re.Pattern[str] | None = None


# Hosts per cloud: global, US Gov GCC High, DoD, China (21Vianet). DoD's Exchange host and token audience is
# outlook-dod.office365.us (webmail.apps.mil was only the old remote PowerShell address, never an audience).
GRAPH = Resource("graph", "Microsoft Graph",
                 ("https://graph.microsoft.com", "https://graph.microsoft.us", "https://dod-graph.microsoft.us",
                  "https://microsoftgraph.chinacloudapi.cn"),
                 lambda app: app.graph_permissions, odata_errors=True)
EXCHANGE = Resource("exchange", "Office 365 Exchange Online",
                    ("https://outlook.office365.com", "https://outlook.office365.us",
                     "https://outlook-dod.office365.us", "https://partner.outlook.cn"),
                    lambda app: app.exchange_permissions, odata_errors=False,
                    tenant_in_path=re.compile(r"^/adminapi/[^/]+/(?P<tenant>[^/]+)/"))
RESOURCES = {resource.name: resource for resource in (GRAPH, EXCHANGE)}


def resource_for_host(identifier: str) -> Resource | None:
    wanted = identifier.rstrip("/").lower()
    return next((resource for resource in RESOURCES.values() if wanted in resource.hosts), None)


def _b64url_int(number: int) -> str:
    raw = number.to_bytes((number.bit_length() + 7) // 8, "big")
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


@dataclass
class Claims:
    """A checked token: its tenant and app as they are now, its roles and role template ids."""

    tenant: Tenant
    app: App
    roles: list[str]
    wids: list[str]
    raw: dict[str, Any] = field(default_factory=dict)

    @property
    def audience(self) -> str:
        return self.raw.get("aud", "")


class InvalidToken(Exception):
    """A bearer token a service must refuse; ``category`` is the challenge's error category."""

    def __init__(self, reason: str, category: str = "invalid_token"):
        super().__init__(reason)
        self.reason = reason
        self.category = category


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
        # Every token string handed out, so tests can prove none of them shows up in output or reports.
        # Bounded like the request log: a long benchmark must not grow without limit.
        self._issued: collections.deque[str] = collections.deque(maxlen=ISSUED_KEPT)
        # Tokens whose signature was checked, with their claims: a $batch carries its token to each of its 20
        # items, and checking the signature and the encoding again for each was most of the emulator's work in a
        # bulk read. The lifetime is still checked on every use, and revocation after this.
        self._verified: collections.OrderedDict[str, dict[str, Any]] = collections.OrderedDict()

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

    def issue(self, tenant: Tenant, app: App, audience: str, resource: Resource, credential: str,
              wids: bool = True) -> tuple[str, int]:
        now = int(time.time())
        lifetime = self.lifetime
        token_id = base64.urlsafe_b64encode(uuid.uuid4().bytes).rstrip(b"=").decode()
        roles = list(resource.permissions(app))
        claims: dict[str, Any] = {
            "aud": audience,
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
        }
        if wids:
            claims["wids"] = [role_template_id(role) for role in app.directory_roles] + [DEFAULT_APP_WID]
        if roles:
            claims["roles"] = roles
        token = jwt.encode(claims, self.key, algorithm="RS256", headers={"kid": self.kid, "x5t": self.kid})
        with self._lock:
            self._live.add(token_id)
            self._issued.append(token)
        return token, lifetime

    def issued(self) -> list[str]:
        """The access tokens issued so far (the last ``ISSUED_KEPT``), oldest first."""
        with self._lock:
            return list(self._issued)

    def jwks(self) -> dict[str, Any]:
        numbers = self.public_key.public_numbers()
        return {"keys": [{"kty": "RSA", "use": "sig", "kid": self.kid, "x5t": self.kid,
                          "n": _b64url_int(numbers.n), "e": _b64url_int(numbers.e)}]}

    def _decode(self, token: str) -> dict[str, Any]:
        """The claims of ``token``, with the checks of ``jwt.decode``; the signature of a token is checked once."""
        with self._lock:
            claims = self._verified.get(token)
        if claims is None:
            claims = jwt.decode(token, self.public_key, algorithms=["RS256"],
                                options={"verify_aud": False, "require": ["exp", "aud", "tid", "appid"]})
            with self._lock:
                self._verified[token] = claims
                while len(self._verified) > VERIFIED_KEPT:
                    self._verified.popitem(last=False)
            return dict(claims)
        now = time.time()  # as jwt.decode checks them, without leeway
        if int(claims["exp"]) <= now:
            raise jwt.ExpiredSignatureError("Signature has expired")
        if "nbf" in claims and int(claims["nbf"]) > now:
            raise jwt.ImmatureSignatureError("The token is not yet valid (nbf)")
        if "iat" in claims and int(claims["iat"]) > now:
            raise jwt.ImmatureSignatureError("The token is not yet valid (iat)")
        return dict(claims)

    def check(self, store: TenantStore, token: str | None, resource: Resource, tenant_ref: str | None) -> Claims:
        """The claims of a usable token for ``resource``; ``InvalidToken`` otherwise. ``tenant_ref`` (a tenant id
        or domain from the URL) must name the token's tenant."""
        if token is None:
            raise InvalidToken("Access token is empty.", "invalid_request")
        try:
            claims = self._decode(token)
        except jwt.ExpiredSignatureError:
            raise InvalidToken("Lifetime validation failed, the token is expired.") from None
        except jwt.PyJWTError:
            raise InvalidToken("Access token validation failure.") from None
        if self.is_revoked(claims.get("uti", "")):
            raise InvalidToken("Lifetime validation failed, the token is expired.")
        if str(claims["aud"]).rstrip("/").lower() not in resource.hosts:
            raise InvalidToken("Access token validation failure. Invalid audience.", "invalid_resource")
        with store.lock:
            tenant = store.find_tenant(claims["tid"])
            app = tenant.apps.get(claims["appid"]) if tenant else None
        if tenant is None or app is None:
            raise InvalidToken("Access token validation failure. The tenant or application of the token no longer "
                               "exists.")
        if tenant_ref is not None and not tenant.matches(tenant_ref):
            raise InvalidToken(f"The token was issued for tenant {tenant.id}, not for '{tenant_ref}'.",
                               "invalid_tenant")
        return Claims(tenant=tenant, app=app, roles=list(claims.get("roles", [])),
                      wids=list(claims.get("wids", [])), raw=claims)


def unverified_client_id(token: str | None) -> str | None:
    """The app a bearer token names, unchecked: for the request log only."""
    if not token:
        return None
    try:
        return jwt.decode(token, options={"verify_signature": False}).get("appid")
    except jwt.PyJWTError:
        return None
