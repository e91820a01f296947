# Copyright (c) 2026 m365ops.smtp_auth contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""The relay app's parsers (pure) and reads (against a scripted tenant, through the real clients)."""

from __future__ import annotations

import pytest

from ansible_collections.m365ops.smtp_auth.plugins.module_utils import _relay_app as relay
from ansible_collections.m365ops.smtp_auth.plugins.module_utils.errors import NotFoundError
from relay_tenant import RELAY_APP, RELAY_REGISTRATION, RELAY_SP, SEND_AS_APP_ROLE_ID, SELF, RelayTenant

PRINCIPAL = {"Identity": "sp-1", "Name": "sp-1", "DisplayName": "SMTP relay", "AppId": RELAY_APP.upper(),
             "ObjectId": RELAY_SP, "ServiceId": RELAY_SP}
NAMES = relay.principal_names(PRINCIPAL)


@pytest.mark.parametrize("value, expected", [
    (RELAY_APP, True), (RELAY_APP.upper(), True), (" %s " % RELAY_APP, False),
    ("relay", False), (RELAY_APP[:-1], False), (RELAY_APP + "0", False), (None, False),
])
def test_guids(value, expected):
    assert relay.is_guid(value) is expected


def test_requests_name_the_permission_and_keep_the_app_id_in_the_key():
    request = relay.service_principal_request(RELAY_APP)
    assert request.url.startswith("servicePrincipals(appId='%s')?$select=" % RELAY_APP)
    assert "appRoles" in request.url and request.permission == "Application.Read.All"
    assert relay.application_request(RELAY_APP).url.startswith("applications(appId='%s')" % RELAY_APP)


def test_a_directory_object_is_parsed_into_snake_case():
    parsed = relay.parse_directory_object({"@odata.context": "x", "id": RELAY_SP, "appId": RELAY_APP,
                                           "displayName": "SMTP relay"})
    assert parsed == {"id": RELAY_SP, "app_id": RELAY_APP, "display_name": "SMTP relay", "app_roles": []}


def test_the_role_and_the_assignment_are_found_by_value_and_ids_without_regard_to_case():
    resource = {"app_roles": [{"id": "a", "value": "Exchange.ManageAsApp"}, {"id": "b", "value": "SMTP.SendAsApp"}]}
    assert relay.find_app_role(resource) == "b"
    assert relay.find_app_role({"app_roles": [{"id": "c", "value": "smtp.sendasapp"}]}) is None
    assignments = [{"id": "1", "resourceId": "R", "appRoleId": "a"}, {"id": "2", "resourceId": "R", "appRoleId": "B"}]
    assert relay.find_assignment(assignments, "r", "b")["id"] == "2"
    assert relay.find_assignment(assignments, "other", "b") is None


def test_the_wrong_object_id_message_tells_the_app_registration_apart():
    enterprise = {"id": RELAY_SP}
    registration = {"id": RELAY_REGISTRATION}
    message = relay.wrong_object_id_message(RELAY_APP, RELAY_REGISTRATION.upper(), enterprise, registration, "t")
    assert "is the object id of the app registration" in message and RELAY_SP in message
    message = relay.wrong_object_id_message(RELAY_APP, "x", enterprise, None, "t")
    assert "is not the object id of the app's enterprise application" in message


def test_a_principal_answers_to_each_of_its_names():
    assert {RELAY_APP, RELAY_SP, "sp-1", "smtp relay"} <= NAMES
    assert relay.find_principal_by_name([PRINCIPAL], "SMTP Relay") is PRINCIPAL
    assert relay.find_exchange_service_principal([PRINCIPAL], RELAY_APP) is PRINCIPAL
    assert relay.find_exchange_service_principal([PRINCIPAL], RELAY_SP) is None  # by app id only
    assert relay.service_principal_state(PRINCIPAL) == {"app_id": RELAY_APP.upper(), "object_id": RELAY_SP,
                                                        "display_name": "SMTP relay", "identity": "sp-1"}
    assert relay.service_principal_state(None) is None


ROWS = [
    {"User": SELF, "AccessRights": ["FullAccess, ReadPermission"]},
    {"User": "SMTP relay", "AccessRights": ["FullAccess, ReadPermission"]},
    {"User": "old@contoso.com", "AccessRights": ["FullAccess"]},
    {"User": "old@contoso.com", "AccessRights": ["ReadPermission"]},
    {"User": "CONTOSO\\Domain Admins", "AccessRights": ["FullAccess"], "IsInherited": True},
    {"User": "blocked@contoso.com", "AccessRights": ["FullAccess"], "Deny": True},
    {"Trustee": "denied-send@contoso.com", "AccessRights": ["SendAs"], "AccessControlType": "Deny"},
]


def test_rights_are_split_and_only_explicit_allow_grants_count():
    assert relay.rights_of(ROWS[0]) == {"FullAccess", "ReadPermission"}
    assert [relay.is_explicit_grant(row) for row in ROWS] == [False, True, True, True, False, False, False]
    assert relay.held_rights(ROWS, NAMES) == {"FullAccess", "ReadPermission"}
    assert relay.held_rights(ROWS, {"blocked@contoso.com"}) == set()
    assert relay.other_grants(ROWS, NAMES, "FullAccess") == ["old@contoso.com"]
    assert relay.other_grants(ROWS, NAMES | {"old@contoso.com"}, "FullAccess") == []


def seeded():
    tenant = RelayTenant(show_principal_as="DisplayName")
    principal = tenant.add_exchange_principal()
    for number in range(4):
        tenant.add_mailbox("device%d@contoso.com" % number)
    tenant.grant("device1@contoso.com", "SMTP relay")
    tenant.grant_send_as("device2@contoso.com", "SMTP relay")
    return tenant, principal


@pytest.mark.parametrize("threshold, expected_reads", [
    # Few mailboxes: each read on its own, SendAs and FullAccess.
    (25, ["Get-RecipientPermission"] * 5 + ["Get-MailboxPermission"] * 4),
    # Many: one mailbox listing and one SendAs listing for the trustee, FullAccess still per mailbox.
    (2, ["Get-Mailbox", "Get-RecipientPermission"] + ["Get-MailboxPermission"] * 4),
])
def test_permissions_are_read_per_mailbox_or_in_one_listing_with_the_same_answer(serve, clients, threshold,
                                                                                 expected_reads):
    tenant, principal = seeded()
    _graph, exchange, _events = clients(serve(tenant).url)
    identities = ["device%d@contoso.com" % number for number in range(4)] + ["ghost@contoso.com"]
    lookups = relay.read_permissions(exchange, identities, (relay.FULL_ACCESS, relay.SEND_AS),
                                     trustee=principal["Identity"], threshold=threshold)

    assert sorted(name for name, _parameters in tenant.cmdlets) == sorted(expected_reads)
    assert [lookup.found for lookup in lookups] == [True, True, True, True, False]
    names = relay.principal_names(principal)
    held = [{right for right in relay.ACCESS_RIGHTS if right in relay.held_rights(lookup.record[right], names)}
            for lookup in lookups[:4]]
    assert held == [set(), {"FullAccess"}, {"SendAs"}, set()]


def test_resolving_a_trustee(serve, clients):
    tenant, principal = seeded()
    _graph, exchange, _events = clients(serve(tenant).url)
    trustee = relay.resolve_trustee(exchange, RELAY_APP.upper())
    assert (trustee.identity, trustee.principal["AppId"]) == (principal["Identity"], RELAY_APP)
    assert relay.resolve_trustee(exchange, "unknown-name").principal is None
    user = relay.resolve_trustee(exchange, "Printer@Contoso.com")
    assert (user.identity, user.names, user.principal) == ("Printer@Contoso.com", {"printer@contoso.com"}, None)


def test_consent_is_read_in_one_batch_and_a_missing_app_is_named(serve, clients):
    tenant = RelayTenant()
    tenant.assignments[RELAY_SP] = [{"id": "x", "resourceId": "e0e0e0e0-0000-4000-8000-000000000001",
                                     "appRoleId": SEND_AS_APP_ROLE_ID}]
    server = serve(tenant)
    graph, _exchange, _events = clients(server.url)
    consent = relay.read_consent(graph, RELAY_APP)
    assert (consent.client["id"], consent.app_role_id, consent.assignment["id"]) == (RELAY_SP, SEND_AS_APP_ROLE_ID, "x")
    assert [request["path"] for request in server.requests] == [
        "/v1.0/$batch", "/v1.0/servicePrincipals/%s/appRoleAssignments" % RELAY_SP]

    del tenant.graph_principals[RELAY_APP]
    with pytest.raises(NotFoundError) as missing:
        relay.read_consent(graph, RELAY_APP)
    assert missing.value.identity == RELAY_APP and "admin consent" in str(missing.value)
