# Copyright (c) 2026 m365ops.smtp_auth contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""A token that stops working in the middle of a run is renewed, not a failure: the collection's own clients
against the emulator, which refuses every token issued before ``tokens/expire {"now": true}``."""

from __future__ import annotations

from conftest import connection_env

from ansible_collections.m365ops.smtp_auth.plugins.module_utils import _auth as auth
from ansible_collections.m365ops.smtp_auth.plugins.module_utils import _services as services
from ansible_collections.m365ops.smtp_auth.plugins.module_utils import _transport as transport
from ansible_collections.m365ops.smtp_auth.plugins.module_utils.connection import ConnectionSettings
from ansible_collections.m365ops.smtp_auth.plugins.module_utils.exchange import ExchangeClient
from ansible_collections.m365ops.smtp_auth.plugins.module_utils.graph import GraphClient


def run_clients(emulator):
    env = connection_env(emulator)
    settings = ConnectionSettings(
        tenant_id=env["M365_TENANT_ID"], client_id=env["M365_CLIENT_ID"], client_secret=env["M365_CLIENT_SECRET"],
        authority_url=env["M365_AUTHORITY_URL"], graph_url=env["M365_GRAPH_URL"],
        exchange_url=env["M365_EXCHANGE_URL"], ca_path=env["M365_CA_PATH"])
    events = transport.RetryEvents()
    session = transport.build_session(settings, events)
    tokens = auth.TokenProvider(settings, session)
    return (GraphClient(session, tokens, settings, events=events),
            ExchangeClient(session, tokens, settings, events=events), events)


def token_requests(emulator):
    return [entry for entry in emulator.request_log if entry["path"].endswith("/oauth2/v2.0/token")]


def test_tokens_revoked_mid_run_are_renewed_once_for_graph_and_exchange(tenant):
    graph, exchange, events = run_clients(tenant)
    users = ["scanner@contoso.com"]
    first_mfa = services.read_mfa_states(graph, users)
    first_mailboxes = exchange.invoke("Get-CASMailbox", {"Identity": "scanner@contoso.com"})
    assert len(token_requests(tenant)) == 2  # one per audience, reused by every later request

    assert tenant.tokens.expire_all() == 2
    tenant.clear_request_log()

    assert [lookup.record for lookup in services.read_mfa_states(graph, users)] == \
        [lookup.record for lookup in first_mfa]
    assert exchange.invoke("Get-CASMailbox", {"Identity": "scanner@contoso.com"}) == first_mailboxes
    statuses = [entry["status"] for entry in tenant.request_log if not entry["path"].endswith("/token")]
    # Each client: one refusal of the revoked token, then the same request again with a new one, accepted.
    assert statuses.count(401) == 2 and statuses[-1] == 200
    assert len(token_requests(tenant)) == 2
    assert [event["status"] for event in events.as_list()] == [401, 401]

    # The new tokens are kept: a further request asks for none.
    tenant.clear_request_log()
    exchange.invoke("Get-CASMailbox", {"Identity": "scanner@contoso.com"})
    assert token_requests(tenant) == []
