# Copyright (c) 2026 m365ops.smtp_auth contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

from __future__ import annotations

import pytest
import urllib3.util.retry

from ansible_collections.m365ops.smtp_auth.plugins.module_utils import _transport as transport
from ansible_collections.m365ops.smtp_auth.plugins.module_utils.connection import ConnectionSettings
from ansible_collections.m365ops.smtp_auth.plugins.module_utils.exchange import ExchangeClient
from ansible_collections.m365ops.smtp_auth.plugins.module_utils.graph import GraphClient
from scripted_server import ScriptedServer
from smtp_reply_server import ReplyServer, make_certificates


class StaticTokens:
    def __init__(self):
        self.scopes = []
        self.refused = []
        self.renewed = set()

    def token(self, scope, refused=None):
        self.scopes.append(scope)
        self.refused.append(refused)
        if refused:  # like MSAL's cache: the new token answers every later call
            self.renewed.add(scope)
        return "token-for-" + scope + ("-renewed" if scope in self.renewed else "")


@pytest.fixture
def sleeps(monkeypatch):
    """Waits urllib3 and the batch retry would have made, recorded instead of slept."""
    recorded = []
    monkeypatch.setattr(urllib3.util.retry.time, "sleep", recorded.append)
    monkeypatch.setattr(transport, "sleep", recorded.append)
    return recorded


@pytest.fixture
def serve():
    servers = []

    def start(answer):
        server = ScriptedServer(answer).__enter__()
        servers.append(server)
        return server

    yield start
    for server in servers:
        server.__exit__(None, None, None)


def make_settings(url, **overrides):
    values = dict(tenant_id="contoso.onmicrosoft.com", client_id="app", client_secret="secret",
                  graph_url=url, exchange_url=url, authority_url=url, max_retries=3, timeout=5)
    values.update(overrides)
    return ConnectionSettings(**values)


@pytest.fixture
def clients():
    def build(url, **overrides):
        settings = make_settings(url, **overrides)
        events = transport.RetryEvents()
        session = transport.build_session(settings, events)
        tokens = StaticTokens()
        return (GraphClient(session, tokens, settings, events=events),
                ExchangeClient(session, tokens, settings, events=events), events)

    return build


@pytest.fixture(scope="module")
def certificates(tmp_path_factory):
    """A throwaway CA and server certificate for the SMTP reply server: (ca, cert, key) paths."""
    return make_certificates(tmp_path_factory.mktemp("probe-certs"))


@pytest.fixture
def server(certificates):
    """The SMTP reply server of the probe tests, on loopback."""
    _ca, cert, key = certificates
    with ReplyServer(cert, key) as running:
        yield running
