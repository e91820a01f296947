# Copyright (c) 2026 m365ops.smtp_auth contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""A token that stops working in the middle of a run is renewed, not a failure: the collection's own clients
against the emulator, which refuses every token issued before ``tokens/expire {"now": true}``."""

from __future__ import annotations

import os
import stat

import pytest
from conftest import connection_env

from ansible_collections.m365ops.smtp_auth.plugins.module_utils import _auth as auth
from ansible_collections.m365ops.smtp_auth.plugins.module_utils import _services as services
from ansible_collections.m365ops.smtp_auth.plugins.module_utils import _transport as transport
from ansible_collections.m365ops.smtp_auth.plugins.module_utils.connection import ConnectionSettings
from ansible_collections.m365ops.smtp_auth.plugins.module_utils.errors import AuthenticationError
from ansible_collections.m365ops.smtp_auth.plugins.module_utils.exchange import ExchangeClient
from ansible_collections.m365ops.smtp_auth.plugins.module_utils.graph import GraphClient


def run_clients(emulator, **options):
    env = connection_env(emulator)
    settings = ConnectionSettings(
        tenant_id=env["M365_TENANT_ID"], client_id=env["M365_CLIENT_ID"], client_secret=env["M365_CLIENT_SECRET"],
        authority_url=env["M365_AUTHORITY_URL"], graph_url=env["M365_GRAPH_URL"],
        exchange_url=env["M365_EXCHANGE_URL"], ca_path=env["M365_CA_PATH"], **options)
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

    # The emulator serves the whole session, so earlier tests' tokens are revoked too: at least these two.
    assert tenant.tokens.expire_all() >= 2
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


def test_a_token_cache_file_gives_later_runs_the_tokens_of_earlier_ones(tenant, tmp_path):
    cache = tmp_path / "tokens.json"
    for _run in range(3):  # three tasks of a play, each with its own process and clients
        graph, exchange, _events = run_clients(tenant, token_cache=str(cache))
        graph.get("policies/identitySecurityDefaultsEnforcementPolicy")
        exchange.invoke("Get-TransportConfig")
    assert len(token_requests(tenant)) == 2  # one per audience for the whole play
    # MSAL reads the authority's OpenID configuration before its first token; kept beside the tokens, once a play.
    assert len([entry for entry in tenant.request_log if entry["path"].endswith("/openid-configuration")]) == 1
    assert stat.S_IMODE(os.stat(cache).st_mode) == 0o600
    assert stat.S_IMODE(os.stat(str(cache) + ".discovery").st_mode) == 0o600
    # No temporary file left behind.
    assert sorted(path.name for path in tmp_path.iterdir()) == ["tokens.json", "tokens.json.discovery"]

    # A revoked cached token is renewed and the renewal kept for the next run.
    tenant.tokens.expire_all()
    graph, _exchange, _events = run_clients(tenant, token_cache=str(cache))
    graph.get("policies/identitySecurityDefaultsEnforcementPolicy")
    tenant.clear_request_log()
    graph, _exchange, _events = run_clients(tenant, token_cache=str(cache))
    graph.get("policies/identitySecurityDefaultsEnforcementPolicy")
    assert token_requests(tenant) == []
    assert [entry["status"] for entry in tenant.request_log if "SecurityDefaults" in entry["path"]] == [200]


def test_a_token_cache_others_can_read_is_refused_before_any_token_request(tenant, tmp_path):
    cache = tmp_path / "tokens.json"
    cache.write_text("{}")
    cache.chmod(0o644)
    graph, _exchange, _events = run_clients(tenant, token_cache=str(cache))
    with pytest.raises(AuthenticationError) as caught:
        graph.get("policies/identitySecurityDefaultsEnforcementPolicy")
    assert "token_cache %s" % cache in str(caught.value) and "644" in str(caught.value)
    assert token_requests(tenant) == []


def test_a_damaged_discovery_cache_is_an_empty_one_and_one_others_can_write_is_refused(tenant, tmp_path):
    cache = tmp_path / "tokens.json"
    discovery = tmp_path / "tokens.json.discovery"
    discovery.write_bytes(b"not a pickle")
    discovery.chmod(0o600)
    graph, _exchange, _events = run_clients(tenant, token_cache=str(cache))
    graph.get("policies/identitySecurityDefaultsEnforcementPolicy")  # fetched afresh, then kept
    assert discovery.read_bytes() != b"not a pickle"
    discovery.chmod(0o666)
    tenant.clear_request_log()
    graph, _exchange, _events = run_clients(tenant, token_cache=str(cache))
    with pytest.raises(AuthenticationError, match="token_cache %s.discovery holds discovery answers" % cache):
        graph.get("policies/identitySecurityDefaultsEnforcementPolicy")
    assert tenant.request_log == []


def test_tasks_of_a_play_share_the_token_cache_named_by_the_environment(run_play, tenant, tmp_path):
    cache = tmp_path / "cache" / "tokens.json"
    cache.parent.mkdir()
    tasks = [{"m365ops.smtp_auth.security_defaults": {"state": "enabled"}},
             {"m365ops.smtp_auth.org_smtp_auth": {"state": "enabled"}},
             {"m365ops.smtp_auth.security_defaults": {"state": "enabled"}},
             {"m365ops.smtp_auth.org_smtp_auth": {"state": "enabled"}}]
    run = run_play(tasks, check=True, extra_env={"M365_TOKEN_CACHE": str(cache)})
    assert [result.get("failed", False) for result in run.results] == [False] * 4
    assert len(token_requests(tenant)) == 2
    issued = tenant.tokens.issued()
    assert issued
    for token in issued:  # the cache file holds the tokens; the tasks' output never does
        assert token not in run.stdout + run.stderr
