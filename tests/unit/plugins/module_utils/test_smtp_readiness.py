# Copyright (c) 2026 m365ops.smtp_auth contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""The verdict from what was read: pure evaluation, no service involved."""

from __future__ import annotations

from ansible_collections.m365ops.smtp_auth.plugins.module_utils.errors import NotFoundError, PermissionDeniedError
from ansible_collections.m365ops.smtp_auth.plugins.module_utils._relay_app import Consent
from ansible_collections.m365ops.smtp_auth.plugins.module_utils._services import Lookup
from ansible_collections.m365ops.smtp_auth.plugins.module_utils.graph import BatchResult
from ansible_collections.m365ops.smtp_auth.plugins.module_utils._smtp_readiness import (
    Facts,
    Unreadable,
    _read_memberships,
    evaluate,
)

UPN = "printer@contoso.com"
USER_ID = "c0ffee00-0000-4000-8000-000000000003"
STANDARD = {"service_plan_id": "9aaf7827-d63c-4b61-89c3-182f06f82e5c", "name": "EXCHANGE_S_STANDARD"}


def clean_facts(switch=None):
    facts = Facts()
    facts.security_defaults = "disabled"
    facts.conditional_access = []
    facts.org_switch_disabled = False
    facts.default_authentication_policy = None
    facts.authentication_policies = {}
    facts.users[UPN] = {"found": True, "user_id": USER_ID, "mailbox_plans": [STANDARD], "other_exchange_plans": []}
    facts.mfa[UPN] = "disabled"
    facts.cas_mailboxes[UPN] = Lookup(UPN, True, {"SmtpClientAuthenticationDisabled": switch})
    facts.exchange_users[UPN] = Lookup(UPN, True, {"AuthenticationPolicy": None})
    return facts


def verdict_of(facts, mode="basic", app_id=None):
    (result,) = evaluate(facts, [(UPN, mode)], oauth_app_id=app_id)
    return result


def blocker_names(result):
    return [blocker["blocker"] for blocker in result["blockers"]]


def test_clean_mailbox_is_ok():
    result = verdict_of(clean_facts())

    assert result["verdict"] == "ok"
    assert result["found"] is True
    assert "nothing blocks" in result["summary"]


def test_mailbox_switch_on_overrides_the_organisation():
    facts = clean_facts(switch=False)
    facts.org_switch_disabled = True

    assert verdict_of(facts)["verdict"] == "ok"


def test_inheriting_mailbox_is_blocked_by_the_organisation():
    facts = clean_facts(switch=None)
    facts.org_switch_disabled = True

    result = verdict_of(facts)

    assert blocker_names(result) == ["org_smtp_auth_disabled"]
    assert result["blockers"][0]["alternative_fix_module"] == "m365ops.smtp_auth.org_smtp_auth"


def test_unreadable_organisation_switch_matters_only_for_inheriting_mailboxes():
    denied = Unreadable("organisation SMTP AUTH switch", PermissionDeniedError("denied", permission="Exchange.ManageAsApp"))
    inheriting, explicit = clean_facts(switch=None), clean_facts(switch=False)
    inheriting.org_switch_disabled = explicit.org_switch_disabled = denied

    assert verdict_of(inheriting)["verdict"] == "unknown"
    assert verdict_of(inheriting)["unreadable"][0]["permission"] == "Exchange.ManageAsApp"
    assert verdict_of(explicit)["verdict"] == "ok"


def test_default_policy_applies_when_the_user_has_none():
    facts = clean_facts()
    facts.default_authentication_policy = "Block Basic SMTP"
    facts.authentication_policies = {"block basic smtp": {"Name": "Block Basic SMTP", "AllowBasicAuthSmtp": False}}

    result = verdict_of(facts)

    assert blocker_names(result) == ["authentication_policy"]
    assert "default" in result["blockers"][0]["detail"]


def test_users_own_policy_wins_over_the_default():
    facts = clean_facts()
    facts.default_authentication_policy = "Block Basic SMTP"
    facts.authentication_policies = {"block basic smtp": {"AllowBasicAuthSmtp": False},
                                     "allow basic smtp": {"AllowBasicAuthSmtp": True}}
    facts.exchange_users[UPN] = Lookup(UPN, True, {"AuthenticationPolicy": "Allow Basic SMTP"})

    assert verdict_of(facts)["verdict"] == "ok"


def ca_policy(**overrides):
    policy = {"id": "p1", "displayName": "Block legacy", "state": "enabled",
              "conditions": {"clientAppTypes": ["other"], "users": {"includeUsers": ["All"], "excludeUsers": []}},
              "grantControls": {"builtInControls": ["block"]}}
    policy.update(overrides)
    return policy


def test_conditional_access_that_blocks_legacy_clients_for_everyone():
    facts = clean_facts()
    facts.conditional_access = [ca_policy()]

    assert blocker_names(verdict_of(facts)) == ["conditional_access"]


def test_conditional_access_that_does_not_apply():
    facts = clean_facts()
    facts.conditional_access = [
        ca_policy(state="enabledForReportingButNotEnforced"),
        ca_policy(grantControls={"builtInControls": ["mfa"]}),
        ca_policy(conditions={"clientAppTypes": ["browser", "mobileAppsAndDesktopClients"],
                              "users": {"includeUsers": ["All"]}}),
        ca_policy(conditions={"clientAppTypes": ["other"], "users": {"includeUsers": ["All"],
                                                                     "excludeUsers": [USER_ID]}}),
        ca_policy(conditions={"clientAppTypes": ["other"], "users": {"includeUsers": ["All"]},
                              "applications": {"includeApplications": ["some-other-app-id"]}}),
    ]

    assert verdict_of(facts)["verdict"] == "ok"


def test_conditional_access_on_a_group_without_membership_is_unknown():
    facts = clean_facts()
    facts.conditional_access = [ca_policy(conditions={"clientAppTypes": ["other"],
                                                      "users": {"includeGroups": ["g1"]}})]
    facts.memberships[UPN] = {"groups": Unreadable("Conditional Access group membership",
                                                   PermissionDeniedError("denied", permission="GroupMember.Read.All"))}

    result = verdict_of(facts)

    assert result["verdict"] == "unknown"
    assert result["unreadable"][0]["permission"] == "GroupMember.Read.All"


def test_conditional_access_on_a_group_the_user_is_in():
    facts = clean_facts()
    facts.conditional_access = [ca_policy(conditions={"clientAppTypes": ["other"],
                                                      "users": {"includeGroups": ["G1"]}})]
    facts.memberships[UPN] = {"groups": {"g1"}}

    assert blocker_names(verdict_of(facts)) == ["conditional_access"]


GLOBAL_ADMIN_TEMPLATE = "62e90394-69f5-4237-9190-012177145e10"


def test_conditional_access_on_a_role_compares_role_template_ids():
    facts = clean_facts()
    facts.conditional_access = [ca_policy(conditions={"clientAppTypes": ["other"],
                                                      "users": {"includeRoles": [GLOBAL_ADMIN_TEMPLATE.upper()]}})]
    facts.memberships[UPN] = {"roles": {GLOBAL_ADMIN_TEMPLATE}}
    assert blocker_names(verdict_of(facts)) == ["conditional_access"]

    facts.memberships[UPN] = {"roles": set()}
    assert verdict_of(facts)["verdict"] == "ok"


def test_a_role_excluded_from_the_policy_wins():
    facts = clean_facts()
    facts.conditional_access = [ca_policy(conditions={"clientAppTypes": ["other"], "users": {
        "includeUsers": ["All"], "excludeRoles": [GLOBAL_ADMIN_TEMPLATE]}})]
    facts.memberships[UPN] = {"roles": {GLOBAL_ADMIN_TEMPLATE}}
    assert verdict_of(facts)["verdict"] == "ok"


def test_exchange_activesync_alone_does_not_cover_smtp_auth():
    facts = clean_facts()
    facts.conditional_access = [ca_policy(conditions={"clientAppTypes": ["exchangeActiveSync"],
                                                      "users": {"includeUsers": ["All"]}})]
    assert verdict_of(facts)["verdict"] == "ok"


class FakeGraph:
    """Answers $batch items from a dict of URL -> body and records the requests."""

    def __init__(self, answers):
        self.answers = answers
        self.requests = []

    def batch(self, requests, version="v1.0"):
        self.requests.extend(requests)
        return [BatchResult(200, self.answers[request.url]) for request in requests]

    def list(self, path, operation=None, permission=None):
        self.requests.append(path)
        return self.answers[path]["value"]


def test_group_membership_over_several_pages_is_read_to_the_end():
    groups_url = "users/%s/transitiveMemberOf?$select=id" % UPN
    next_page = "https://graph.example/v1.0/users/x/transitiveMemberOf?$skiptoken=2"
    graph = FakeGraph({groups_url: {"value": [{"id": "G1"}], "@odata.nextLink": next_page},
                       next_page: {"value": [{"id": "G2"}]}})
    facts = clean_facts()
    _read_memberships(graph, facts, [UPN], groups=True, roles=False)

    assert facts.memberships[UPN] == {"groups": {"g1", "g2"}}
    facts.conditional_access = [ca_policy(conditions={"clientAppTypes": ["other"], "users": {"includeGroups": ["g2"]}})]
    assert blocker_names(verdict_of(facts)) == ["conditional_access"]


def test_role_membership_is_read_as_role_template_ids():
    role_url = "users/%s/transitiveMemberOf/microsoft.graph.directoryRole?$select=id,roleTemplateId&$count=true" % UPN
    graph = FakeGraph({role_url: {"value": [
        {"@odata.type": "#microsoft.graph.directoryRole", "id": "5f1f0b3e-0000-4000-8000-00000000aaaa",
         "roleTemplateId": GLOBAL_ADMIN_TEMPLATE}]}})
    facts = Facts()
    _read_memberships(graph, facts, [UPN], groups=False, roles=True)

    assert facts.memberships[UPN] == {"roles": {GLOBAL_ADMIN_TEMPLATE}}
    assert graph.requests[0].headers == {"ConsistencyLevel": "eventual"}


def test_roles_returned_without_their_template_id_are_unreadable_not_absent():
    # With User.Read.All alone Graph returns "limited information": the id and type, other properties null.
    role_url = "users/%s/transitiveMemberOf/microsoft.graph.directoryRole?$select=id,roleTemplateId&$count=true" % UPN
    graph = FakeGraph({role_url: {"value": [{"@odata.type": "#microsoft.graph.directoryRole",
                                             "id": "5f1f0b3e-0000-4000-8000-00000000aaaa", "roleTemplateId": None}]}})
    facts = clean_facts()
    _read_memberships(graph, facts, [UPN], groups=False, roles=True)
    facts.conditional_access = [ca_policy(conditions={"clientAppTypes": ["other"],
                                                      "users": {"includeRoles": [GLOBAL_ADMIN_TEMPLATE]}})]

    result = verdict_of(facts)
    assert result["verdict"] == "unknown"
    assert "RoleManagement.Read.Directory" in result["unreadable"][0]["permission"]


def oauth_facts(consented=True, object_id="obj-1"):
    facts = clean_facts()
    facts.security_defaults = "enabled"
    facts.mfa[UPN] = "enforced"
    facts.consent = Consent({"id": "obj-1", "app_id": "app-1"}, {"id": "exo-1"}, "role-1",
                            {"id": "assignment-1"} if consented else None)
    facts.service_principals = [{"Identity": "sp-1", "AppId": "APP-1", "ObjectId": object_id, "DisplayName": "relay"}]
    facts.permissions[UPN] = [{"User": "NT AUTHORITY\\SELF", "AccessRights": ["FullAccess, ReadPermission"]}]
    return facts


def test_oauth_ignores_basic_only_blockers_and_checks_full_access():
    facts = oauth_facts()
    result = verdict_of(facts, mode="oauth", app_id="app-1")
    assert blocker_names(result) == ["no_full_access"]
    assert result["blockers"][0]["fix_arguments"] == {"mailboxes": [UPN], "trustee": "app-1",
                                                      "access_rights": ["FullAccess"], "state": "present"}

    facts.permissions[UPN].append({"User": "sp-1", "AccessRights": ["FullAccess"]})
    assert verdict_of(facts, mode="oauth", app_id="app-1")["verdict"] == "ok"


def test_oauth_blockers_come_in_the_order_a_token_meets_them():
    assert blocker_names(verdict_of(oauth_facts(consented=False), mode="oauth", app_id="app-1")) == [
        "no_smtp_send_as_app"]
    no_enterprise_app = oauth_facts()
    no_enterprise_app.consent = NotFoundError("app app-1 has no enterprise application", status=404)
    result = verdict_of(no_enterprise_app, mode="oauth", app_id="app-1")
    assert blocker_names(result) == ["no_smtp_send_as_app"] and "no enterprise application" in \
        result["blockers"][0]["detail"]
    unregistered = oauth_facts()
    unregistered.service_principals = []
    assert blocker_names(verdict_of(unregistered, mode="oauth", app_id="app-1")) == [
        "service_principal_not_registered"]
    wrong = verdict_of(oauth_facts(object_id="registration-1"), mode="oauth", app_id="app-1")
    assert blocker_names(wrong) == ["service_principal_wrong_object_id"]
    assert wrong["blockers"][0]["fix_module"] == "m365ops.smtp_auth.exchange_service_principal"
    assert "registration-1" in wrong["blockers"][0]["detail"] and "obj-1" in wrong["blockers"][0]["detail"]


def test_unreadable_consent_is_unknown_never_fine():
    facts = oauth_facts()
    facts.consent = Unreadable("consent", PermissionDeniedError("denied", permission="Application.Read.All"))
    result = verdict_of(facts, mode="oauth", app_id="app-1")
    assert result["verdict"] == "unknown"


def test_missing_mailbox_names_only_that():
    facts = clean_facts()
    facts.org_switch_disabled = True
    facts.security_defaults = "enabled"
    facts.cas_mailboxes[UPN] = Lookup(UPN, False)

    result = verdict_of(facts)

    assert blocker_names(result) == ["mailbox_not_found"]
    assert result["found"] is False


def test_blocked_beats_unknown_and_both_are_reported():
    facts = clean_facts()
    facts.mfa[UPN] = Unreadable("per-user MFA", PermissionDeniedError("denied", permission="Policy.Read.All"))
    facts.security_defaults = "enabled"

    result = verdict_of(facts)

    assert result["verdict"] == "blocked"
    assert blocker_names(result) == ["security_defaults_enabled"]
    assert [item["setting"] for item in result["unreadable"]] == ["per-user MFA"]
    assert "Policy.Read.All" in result["summary"]
