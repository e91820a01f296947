"""The official Microsoft Graph SDK for Python talks to the emulator unchanged.

The SDK is built on httpx and normally gets tokens from azure-identity. Neither is needed: a kiota
``AccessTokenProvider`` that asks MSAL for a client-credentials token, and an httpx client that trusts
the emulator's CA, are all it takes; the base URL of the request adapter points it at the emulator.
"""

from __future__ import annotations

import asyncio
from typing import Any

import httpx
import pytest

from conftest import GRAPH_SCOPE, msal_app

msgraph = pytest.importorskip("msgraph")
from kiota_abstractions.base_request_configuration import RequestConfiguration  # noqa: E402
from kiota_abstractions.authentication import (  # noqa: E402
    AccessTokenProvider,
    AllowedHostsValidator,
    BaseBearerTokenAuthenticationProvider,
)
from msgraph import GraphRequestAdapter, GraphServiceClient  # noqa: E402
from msgraph.generated.models.identity_security_defaults_enforcement_policy import (  # noqa: E402
    IdentitySecurityDefaultsEnforcementPolicy,
)
from msgraph.generated.models.o_data_errors.o_data_error import ODataError  # noqa: E402
from msgraph.generated.users.item.user_item_request_builder import UserItemRequestBuilder  # noqa: E402
from msgraph_core import GraphClientFactory  # noqa: E402


class MsalTokenProvider(AccessTokenProvider):
    def __init__(self, application, host: str):
        self.application = application
        self.validator = AllowedHostsValidator([host])

    async def get_authorization_token(self, uri: str, additional_authentication_context: dict[str, Any] = {}) -> str:
        result = await asyncio.to_thread(self.application.acquire_token_for_client, [GRAPH_SCOPE])
        return result["access_token"]

    def get_allowed_hosts_validator(self) -> AllowedHostsValidator:
        return self.validator


async def _with_client(emulator, http, work):
    host = emulator.base_url.removeprefix("https://")
    provider = BaseBearerTokenAuthenticationProvider(MsalTokenProvider(msal_app(emulator, http), host))
    # trust_env off: proxies and CA bundles from the environment must not redirect the test.
    async with httpx.AsyncClient(verify=emulator.client_ssl_context(), trust_env=False) as raw:
        client = GraphClientFactory.create_with_default_middleware(client=raw)
        adapter = GraphRequestAdapter(provider, client=client)
        adapter.base_url = f"{emulator.base_url}/v1.0"
        return await work(GraphServiceClient(request_adapter=adapter))


def test_sdk_reads_and_updates_security_defaults(emulator, http):
    async def work(graph: GraphServiceClient):
        before = await graph.policies.identity_security_defaults_enforcement_policy.get()
        await graph.policies.identity_security_defaults_enforcement_policy.patch(
            IdentitySecurityDefaultsEnforcementPolicy(is_enabled=False))
        after = await graph.policies.identity_security_defaults_enforcement_policy.get()
        return before, after

    before, after = asyncio.run(_with_client(emulator, http, work))
    assert before.id == "00000000-0000-0000-0000-000000000005" and before.is_enabled is True
    assert after.is_enabled is False
    assert emulator.store.find_tenant("contoso.com").security_defaults_enabled is False
    patch = [entry for entry in emulator.request_log if entry["method"] == "PATCH"]
    assert [entry["status"] for entry in patch] == [204]


def test_sdk_reads_a_user_with_assigned_plans(emulator, http):
    async def work(graph: GraphServiceClient):
        query = UserItemRequestBuilder.UserItemRequestBuilderGetQueryParameters(
            select=["id", "userPrincipalName", "assignedPlans"])
        config = RequestConfiguration(query_parameters=query)
        return await graph.users.by_user_id("scanner@contoso.com").get(request_configuration=config)

    user = asyncio.run(_with_client(emulator, http, work))
    assert user.id == "c0ffee00-0000-4000-8000-000000000002"
    assert user.user_principal_name == "scanner@contoso.com"
    assert [(plan.service, str(plan.service_plan_id)) for plan in user.assigned_plans] == [
        ("exchange", "9aaf7827-d63c-4b61-89c3-182f06f82e5c")]


def test_sdk_surfaces_graph_errors(emulator, http):
    async def work(graph: GraphServiceClient):
        return await graph.users.by_user_id("nobody@contoso.com").get()

    with pytest.raises(ODataError) as caught:
        asyncio.run(_with_client(emulator, http, work))
    assert caught.value.response_status_code == 404
    assert caught.value.error.code == "Request_ResourceNotFound"
