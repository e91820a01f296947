"""Shared fixtures: a fresh emulator per test on loopback, an HTTPS session trusting it, and tokens.

Other test modules (Exchange, SMTP) use these too: ``emulator``, ``http``, ``get_token`` and the seed
constants below.
"""

from __future__ import annotations

from typing import Any, Callable

import msal
import pytest
import requests

from m365_emulator import Emulator

CONTOSO_ID = "6f1c5e2a-8d4b-4f3e-9a61-2b7c0d9e4a11"
FABRIKAM_ID = "2a9e4c71-3b5d-4e8f-a0c2-d4e6f8a0b2c4"
AUTOMATION_APP = "0b6f3c1e-7a2d-4c5e-9f80-1a2b3c4d5e6f"
AUTOMATION_SECRET = "emulator-secret-contoso"
AUTOMATION_SP = "6c5b4a39-2817-4f06-8e5d-4c3b2a190807"
READONLY_APP = "7c1d2e3f-4a5b-4c6d-8e7f-9a0b1c2d3e4f"
READONLY_SECRET = "emulator-secret-readonly"
# The seeded app devices use for XOAUTH2: no consent, not registered in Exchange Online.
RELAY_APP = "d4c3b2a1-6e5f-4a7b-8c9d-0e1f2a3b4c5d"
RELAY_SECRET = "emulator-secret-relay"
RELAY_OBJECT_ID = "e1d2c3b4-a596-4877-8b9c-0d1e2f3a4b5c"
RELAY_SP = "f2e3d4c5-b6a7-4988-9cad-1e2f3a4b5c6d"
SECRETS = {READONLY_APP: READONLY_SECRET, RELAY_APP: RELAY_SECRET}
GRAPH_SCOPE = "https://graph.microsoft.com/.default"
EXCHANGE_SCOPE = "https://outlook.office365.com/.default"
SCOPES = {"graph": GRAPH_SCOPE, "exchange": EXCHANGE_SCOPE}


@pytest.fixture
def emulator():
    """A fresh emulator (sample tenants, HTTPS and SMTP on free loopback ports) for each test."""
    with Emulator(host="127.0.0.1", https_port=0, smtp_port=0) as running:
        yield running


def https_session(emulator: Emulator) -> requests.Session:
    session = requests.Session()
    # trust_env off: REQUESTS_CA_BUNDLE in the environment would otherwise override verify.
    session.trust_env = False
    session.verify = emulator.ca_path
    return session


@pytest.fixture
def http(emulator):
    with https_session(emulator) as session:
        yield session


def msal_app(emulator: Emulator, session: requests.Session, tenant: str = CONTOSO_ID,
             client_id: str = AUTOMATION_APP, credential: Any = AUTOMATION_SECRET) -> msal.ConfidentialClientApplication:
    return msal.ConfidentialClientApplication(
        client_id, authority=f"{emulator.base_url}/{tenant}", client_credential=credential,
        instance_discovery=False, http_client=session, token_cache=msal.TokenCache())


@pytest.fixture
def get_token(emulator, http) -> Callable[..., str]:
    """``get_token("graph"|"exchange", tenant=..., client_id=..., secret=...)`` -> access token (via MSAL)."""

    def acquire(resource: str = "graph", tenant: str = CONTOSO_ID, client_id: str = AUTOMATION_APP,
                secret: str | None = None) -> str:
        if secret is None:
            secret = SECRETS.get(client_id, AUTOMATION_SECRET)
        result = msal_app(emulator, http, tenant, client_id, secret).acquire_token_for_client([SCOPES[resource]])
        assert "access_token" in result, result
        return result["access_token"]

    return acquire


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}
