# Copyright (c) 2026 m365ops.smtp_auth contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""What module tests build on: a stand-in for M365Module whose real Graph and Exchange clients talk to a scripted
server, so tests see exactly what a module would send to Microsoft 365, and a scripted tenant of authentication
policies."""

from __future__ import annotations

import sys
from pathlib import Path
from types import SimpleNamespace

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "module_utils"))
from scripted_server import ScriptedServer, with_exchange_batch, without_exchange_batch

from ansible_collections.m365ops.smtp_auth.plugins.module_utils import _transport as transport
from ansible_collections.m365ops.smtp_auth.plugins.module_utils.connection import ConnectionSettings
from ansible_collections.m365ops.smtp_auth.plugins.module_utils.exchange import ExchangeClient
from ansible_collections.m365ops.smtp_auth.plugins.module_utils.graph import GraphClient

TENANT = "contoso.onmicrosoft.com"


class ModuleFailed(Exception):
    """What ``module.fail`` would have turned into a failed task."""

    def __init__(self, msg, result):
        super().__init__(msg)
        self.msg = msg
        self.result = result


class FixedToken:
    def token(self, scope, refused=None):
        return "token-for-" + scope


def exchange_reply(*records):
    return 200, {"@adminapi.warnings": [], "value": list(records)}, None


def exchange_error(status, exception_type, text, code="BadRequest"):
    """An InvokeCommand failure in the captured shape: the meaning is in ``details[0].message``."""
    return status, {"error": {"code": code, "message": "Error executing cmdlet", "details": [
        {"code": "Client", "message": "Ex0|Microsoft.Exchange.%s|%s" % (exception_type, text)}]}}, None


def not_found(identity):
    return exchange_error(404, "Configuration.Tasks.ManagementObjectNotFoundException",
                          "The operation couldn't be performed because object '%s' couldn't be found." % identity,
                          code="NotFound")


def sent_bodies(server):
    """Every request body the server was sent, with the items of each $batch in place of the batch."""
    for request in server.requests:
        body = request["body"]
        if isinstance(body, dict) and isinstance(body.get("requests"), list):
            for item in body["requests"]:
                yield item.get("body")
        else:
            yield body


def cmdlets(server):
    """``(cmdlet, parameters)`` of every cmdlet the server was sent (alone or in a $batch), in order."""
    return [(body["CmdletInput"]["CmdletName"], body["CmdletInput"]["Parameters"])
            for body in sent_bodies(server) if isinstance(body, dict) and "CmdletInput" in body]


def writing_cmdlets(server):
    return [(name, parameters) for name, parameters in cmdlets(server) if not name.startswith("Get-")]


def scripted_module_factory(exchange_batch=True):
    """``(build, close)``: ``build(answer, check_mode=False, **params) -> (module, server)`` makes a stand-in for
    M365Module whose clients talk to a ScriptedServer answering with ``answer`` (and, with ``exchange_batch``, the
    admin API's $batch through it; without, $batch gets 404 as from a service that lacks it); ``module.fail``
    raises ModuleFailed; ``close`` stops every server it made."""
    servers = []

    def build(answer, check_mode=False, **params):
        server = ScriptedServer(with_exchange_batch(answer) if exchange_batch else without_exchange_batch(answer))
        server.__enter__()
        servers.append(server)
        settings = ConnectionSettings(tenant_id=TENANT, client_id="app", client_secret="secret", graph_url=server.url,
                                      exchange_url=server.url, authority_url=server.url, max_retries=0, timeout=5)
        events = transport.RetryEvents()
        session = transport.build_session(settings, events)
        warnings = []

        def fail(msg, **result):
            raise ModuleFailed(msg, result)

        module = SimpleNamespace(params=params, check_mode=check_mode, settings=settings, fail=fail,
                                 warnings=warnings, warn=warnings.append,
                                 graph=GraphClient(session, FixedToken(), settings, events=events),
                                 exchange=ExchangeClient(session, FixedToken(), settings, events=events))
        return module, server

    def close():
        for server in servers:
            server.__exit__(None, None, None)

    return build, close


class PolicyTenant:
    """Authentication policies and users' assignments, answered over InvokeCommand as Exchange Online does.

    ``shows`` is how Get-User shows a user's policy: ``name`` or ``distinguished_name`` (not confirmed which).
    """

    def __init__(self, policies=None, users=None, shows="name", remove_refusal=None, null_clears=True):
        self.policies = {name: dict(switches) for name, switches in (policies or {}).items()}
        self.users = dict(users or {})
        self.shows = shows
        self.remove_refusal = remove_refusal
        self.null_clears = null_clears

    def policy(self, name):
        return next((known for known in self.policies if known.lower() == str(name).lower()), None)

    def user(self, identity):
        return next((upn for upn in self.users if upn.lower() == str(identity).lower()), None)

    def policy_record(self, name):
        return dict({"Identity": name, "Name": name, "Guid": "0000-" + name}, **self.policies[name])

    def user_record(self, upn):
        policy = self.users[upn]
        if policy is not None and self.shows == "distinguished_name":
            policy = "CN=%s,CN=Auth Policies,CN=Configuration,CN=%s" % (policy, TENANT)
        return {"Identity": upn.split("@")[0], "UserPrincipalName": upn, "AuthenticationPolicy": policy}

    def __call__(self, method, path, body, headers):
        cmdlet, parameters = body["CmdletInput"]["CmdletName"], body["CmdletInput"]["Parameters"]
        identity = parameters.get("Identity")
        if cmdlet == "New-AuthenticationPolicy":
            # A new policy blocks every basic protocol it is not told about.
            self.policies[parameters["Name"]] = dict({"AllowBasicAuthImap": False, "AllowBasicAuthPop": False},
                                                     AllowBasicAuthSmtp=parameters.get("AllowBasicAuthSmtp", False))
            return exchange_reply(self.policy_record(parameters["Name"]))
        if cmdlet in ("Get-AuthenticationPolicy", "Set-AuthenticationPolicy", "Remove-AuthenticationPolicy"):
            name = self.policy(identity)
            if name is None:
                return not_found(identity)
            if cmdlet == "Get-AuthenticationPolicy":
                return exchange_reply(self.policy_record(name))
            if cmdlet == "Set-AuthenticationPolicy":
                self.policies[name].update((key, value) for key, value in parameters.items() if key != "Identity")
            elif self.remove_refusal:
                return exchange_error(400, "Management.Tasks.TaskException", self.remove_refusal)
            else:
                del self.policies[name]
            return exchange_reply()
        if identity is None:
            return exchange_reply(*[self.user_record(upn) for upn in self.users])
        upn = self.user(identity)
        if upn is None:
            return not_found(identity)
        if cmdlet == "Set-User":
            wanted = parameters["AuthenticationPolicy"]
            if wanted is not None and self.policy(wanted) is None:
                return not_found(wanted)
            if wanted is not None or self.null_clears:
                self.users[upn] = self.policy(wanted) if wanted is not None else None
            return exchange_reply()
        return exchange_reply(self.user_record(upn))
