"""Entra ID: client-credentials tokens, OIDC discovery, and the bearer-token check every service makes."""

from .models import RESOURCES, Claims, InvalidToken, Resource, TokenIssuer, unverified_client_id
from .responses import IdentityService, authorize, bearer_challenge, entra_error

__all__ = ["RESOURCES", "Claims", "IdentityService", "InvalidToken", "Resource", "TokenIssuer", "authorize",
           "bearer_challenge", "entra_error", "unverified_client_id"]
