# Copyright (c) 2026 m365ops.smtp_auth contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""app_permissions_info: the app's tokens against what the planned steps need, before anything is written."""

from __future__ import annotations

import base64
import json
from types import SimpleNamespace

import pytest

from module_harness import TENANT, ModuleFailed

from ansible_collections.m365ops.smtp_auth.plugins.module_utils import _app_permissions as permissions
from ansible_collections.m365ops.smtp_auth.plugins.module_utils.connection import ConnectionSettings
from ansible_collections.m365ops.smtp_auth.plugins.modules import app_permissions_info

EXCHANGE_ADMIN = "29232cdf-9323-42fd-ade2-1d097af3e4de"
GLOBAL_READER = "f2ef992c-3afb-46b9-b7cf-a126ee74c451"
# Every app-only token carries it (field captures); it is not a directory role.
APP_WID = "0997a1d0-0d1d-4acb-b408-d5ca73121e90"
GRAPH_ALL = ["Policy.Read.All", "Policy.ReadWrite.ConditionalAccess", "Policy.ReadWrite.AuthenticationMethod",
             "User.Read.All"]
BASIC_PLAN = [{"step": "license", "read": ["user_read"], "write": []},
              {"step": "security_defaults", "read": ["security_defaults_read"], "write": ["security_defaults_write"]},
              {"step": "mailbox_smtp_auth", "read": ["exchange"], "write": ["exchange"]},
              {"step": "per_user_mfa", "read": ["mfa_read"], "write": ["mfa_write"]}]


def jwt(**claims):
    def part(value):
        return base64.urlsafe_b64encode(json.dumps(value).encode()).rstrip(b"=").decode()
    return "%s.%s.c2lnbmF0dXJl" % (part({"typ": "JWT", "alg": "RS256"}), part(dict({"idtyp": "app"}, **claims)))


def run(needs, graph=None, exchange=None):
    """Run the module with tokens made of the given claims; returns (result, warnings, scopes asked for)."""
    settings = ConnectionSettings(tenant_id=TENANT, client_id="app", client_secret="secret")
    tokens = {settings.endpoints.graph_scope: graph, settings.endpoints.exchange_scope: exchange}
    asked, warnings = [], []

    def token(scope):
        asked.append(scope)
        return tokens[scope] if isinstance(tokens[scope], str) else jwt(**tokens[scope])

    def fail(msg, **result):
        raise ModuleFailed(msg, result)

    def several(scopes):
        return [token(scope) for scope in scopes]

    module = SimpleNamespace(params={"needs": needs}, settings=settings, tokens=several, warn=warnings.append,
                             fail=fail)
    return app_permissions_info.report(module), warnings, asked


def verdicts(result):
    return {(check["step"], check["access"], check["permission"]): check["verdict"] for check in result["checks"]}


def test_an_app_with_everything_is_held_everywhere_and_no_token_is_returned():
    graph = {"roles": GRAPH_ALL, "wids": [APP_WID]}
    exchange = {"roles": ["Exchange.ManageAsApp"], "wids": [EXCHANGE_ADMIN, APP_WID]}
    result, warnings, _asked = run(BASIC_PLAN, graph, exchange)
    assert set(verdicts(result).values()) == {"held"}
    assert result["missing"] == [] and result["unknown"] == [] and warnings == []
    assert result["directory_roles"] == sorted([EXCHANGE_ADMIN, APP_WID])
    assert result["exchange_permissions"] == ["Exchange.ManageAsApp"]
    text = json.dumps(result)
    assert jwt(**graph).split(".")[1] not in text and jwt(**exchange).split(".")[1] not in text


def test_without_the_exchange_role_every_exchange_step_is_missing_it_before_anything_is_written():
    graph = {"roles": GRAPH_ALL}
    exchange = {"roles": ["Exchange.ManageAsApp"], "wids": [APP_WID]}
    result, _warnings, _asked = run(BASIC_PLAN, graph, exchange)
    role = "the Exchange Administrator directory role (or Global Administrator or Global Reader)"
    assert verdicts(result)[("mailbox_smtp_auth", "read", role)] == "missing"
    assert result["missing_summary"] == [
        "the Exchange Administrator directory role (or Global Administrator or Global Reader), needed by: "
        "mailbox_smtp_auth (read)",
        "the Exchange Administrator directory role (or Global Administrator), needed by: mailbox_smtp_auth (write)"]
    assert verdicts(result)[("security_defaults", "write", permissions.PERMISSIONS["security_defaults_write"])] == \
        "held"


def test_a_global_reader_may_read_exchange_but_not_write():
    result, _warnings, _asked = run([{"step": "mailbox_smtp_auth", "read": ["exchange"], "write": ["exchange"]}],
                                    exchange={"roles": ["Exchange.ManageAsApp"], "wids": [GLOBAL_READER]})
    assert [(check["access"], check["verdict"]) for check in result["checks"]] == [
        ("read", "held"), ("read", "held"), ("write", "held"), ("write", "missing")]


def test_without_wids_the_role_is_unknown_with_a_warning_never_missing():
    result, warnings, _asked = run([{"step": "org_smtp_auth", "read": ["exchange"], "write": ["exchange"]}],
                                   exchange={"roles": ["Exchange.ManageAsApp"]})
    assert result["missing"] == []
    assert [check["verdict"] for check in result["unknown"]] == ["unknown", "unknown"]
    assert result["directory_roles"] is None
    assert len(warnings) == 2 and "carries no wids claim" in warnings[0] and "org_smtp_auth (read)" in warnings[0]


def test_a_missing_graph_permission_names_the_least_privileged_one_and_the_step():
    graph = {"roles": ["Policy.Read.All", "User.Read.All"]}
    result, _warnings, asked = run(BASIC_PLAN[:2], graph)
    assert result["missing_summary"] == [permissions.PERMISSIONS["security_defaults_write"]
                                         + ", needed by: security_defaults (write)"]
    # Only the token the needs ask for is fetched.
    assert asked == [ConnectionSettings(tenant_id=TENANT).endpoints.graph_scope]


@pytest.mark.parametrize("roles, held", [
    (["Policy.ReadWrite.SecurityDefaults"], True),
    (["Policy.Read.All", "Policy.ReadWrite.ConditionalAccess"], True),
    (["Policy.ReadWrite.ConditionalAccess"], False),
])
def test_either_documented_way_to_write_security_defaults_counts(roles, held):
    result, _warnings, _asked = run([{"step": "security_defaults", "write": ["security_defaults_write"]}],
                                    graph={"roles": roles})
    assert [check["verdict"] for check in result["checks"]] == ["held" if held else "missing"]


def test_a_token_that_is_not_a_jwt_is_unknown_not_missing():
    result, warnings, _asked = run([{"step": "license", "read": ["user_read"]}], graph="opaque-token")
    assert [check["verdict"] for check in result["checks"]] == ["unknown"]
    assert "not a readable JWT" in warnings[0]


def test_an_unknown_permission_key_is_refused_naming_it_and_its_step():
    with pytest.raises(ModuleFailed, match=r"user_reed \(step license\)"):
        run([{"step": "license", "read": ["user_reed"]}], graph={"roles": []})


def test_every_planned_step_has_needs_made_of_known_keys():
    assert permissions.unknown_needs([permissions.step_needs(step) for step in permissions.STEP_PERMISSIONS]) == []
    assert set(permissions.GRAPH_GRANTS) <= set(permissions.PERMISSIONS)
