# Copyright (c) 2026 m365ops.smtp_auth contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

from __future__ import annotations

import threading
import time

import pytest

from ansible_collections.m365ops.smtp_auth.plugins.module_utils.exchange import ExchangeClient
from ansible_collections.m365ops.smtp_auth.plugins.module_utils import _compare as compare
from ansible_collections.m365ops.smtp_auth.plugins.module_utils import _services as services
from ansible_collections.m365ops.smtp_auth.plugins.module_utils.errors import ExchangeObjectNotFoundError, PermissionDeniedError
from ansible_collections.m365ops.smtp_auth.plugins.module_utils.errors import NotFoundError
from ansible_collections.m365ops.smtp_auth.plugins.module_utils.graph import BatchResult


class FakeExchange:
    """Answers Get-CASMailbox from a list of records and records each call."""

    concurrency = 4
    # A service without the admin API's $batch: bulk runs go through invoke() one cmdlet at a time.
    batches = False
    invoke_many = ExchangeClient.invoke_many
    _invoke_one = ExchangeClient._invoke_one

    def __init__(self, records):
        self.records = records
        self.calls = []

    def invoke(self, cmdlet, parameters=None, unlimited=False, identity=None, select=None):
        self.calls.append((cmdlet, dict(parameters or {}), unlimited))
        if parameters and "Identity" in parameters:
            wanted = parameters["Identity"].lower()
            for record in self.records:
                if wanted in services.mailbox_names(record):
                    return [record]
            raise ExchangeObjectNotFoundError("not found", identity=parameters["Identity"])
        return list(self.records)


RECORDS = [
    {"Identity": "scanner", "PrimarySmtpAddress": "scanner@contoso.com", "ExternalDirectoryObjectId": "id-1",
     "EmailAddresses": ["SMTP:scanner@contoso.com", "smtp:scan@contoso.onmicrosoft.com"],
     "SmtpClientAuthenticationDisabled": True},
    {"Identity": "printer", "PrimarySmtpAddress": "printer@contoso.com", "SmtpClientAuthenticationDisabled": None},
]


def test_switch_and_state_words_round_trip():
    assert [services.mailbox_state(value) for value in (None, True, False)] == ["inherit", "disabled", "enabled"]
    assert [services.mailbox_switch(state) for state in ("inherit", "disabled", "enabled")] == [None, True, False]


def test_few_mailboxes_are_read_one_by_one_and_unknown_ones_are_not_found():
    exchange = FakeExchange(RECORDS)
    lookups = services.read_cas_mailboxes(exchange, ["scanner@contoso.com", "ghost@contoso.com"])
    assert [(lookup.identity, lookup.found) for lookup in lookups] == [("scanner@contoso.com", True),
                                                                       ("ghost@contoso.com", False)]
    assert all("Identity" in parameters for _cmdlet, parameters, _unlimited in exchange.calls)


def test_many_mailboxes_are_matched_against_one_listing_by_any_name():
    exchange = FakeExchange(RECORDS)
    lookups = services.read_cas_mailboxes(exchange, ["SCAN@contoso.onmicrosoft.com", "id-1", "printer", "ghost"],
                                          threshold=2)
    assert exchange.calls == [("Get-CASMailbox", {}, True)]
    assert [lookup.found for lookup in lookups] == [True, True, True, False]
    assert lookups[0].record["Identity"] == "scanner"


def test_mailbox_plans_need_an_enabled_exchange_plan_other_than_foundation():
    plans, _other = services.exchange_plans([
        {"service": "exchange", "capabilityStatus": "Enabled", "servicePlanId": "113feb6c-3fe4-4440-bddc-54d774bf0318"},
        {"service": "exchange", "capabilityStatus": "Suspended", "servicePlanId": "9aaf7827-d63c-4b61-89c3-182f06f82e5c"},
        {"service": "SharePoint", "capabilityStatus": "Enabled", "servicePlanId": "c7699d2e-19aa-44de-8edf-1736da088ca1"},
        {"service": "exchange", "capabilityStatus": "Enabled", "servicePlanId": "EFB87545-963C-4E0D-99DF-69C6916D9EB0"},
    ])
    assert plans == [{"service_plan_id": "efb87545-963c-4e0d-99df-69c6916d9eb0", "name": "EXCHANGE_S_ENTERPRISE"}]


def test_exchange_service_plans_of_security_add_ons_give_no_mailbox():
    # An E5 security add-on user: several plans with service "exchange", none of them a mailbox.
    record = services.license_record({"id": "u1", "userPrincipalName": "secops@contoso.com", "assignedPlans": [
        {"service": "exchange", "capabilityStatus": "Enabled", "servicePlanId": "f20fedf3-f3c3-43c3-8267-2bfdd51c0939"},
        {"service": "exchange", "capabilityStatus": "Enabled", "servicePlanId": "199a5c09-e0ca-4e37-8f7c-b05d533e1ea2"},
        {"service": "exchange", "capabilityStatus": "Enabled", "servicePlanId": "34c0d7a0-a70f-4668-9238-47f9fc208882"},
    ]})
    assert record["licensed"] is False and record["mailbox_plans"] == []
    # Known plans by name, an unknown one by its id, so an operator can look it up.
    assert record["other_exchange_plans"] == [
        {"service_plan_id": "f20fedf3-f3c3-43c3-8267-2bfdd51c0939", "name": "ATP_ENTERPRISE"},
        {"service_plan_id": "199a5c09-e0ca-4e37-8f7c-b05d533e1ea2", "name": "MICROSOFTBOOKINGS"},
        {"service_plan_id": "34c0d7a0-a70f-4668-9238-47f9fc208882", "name": None},
    ]


@pytest.mark.parametrize("plan_id, name", sorted(services.MAILBOX_PLAN_NAMES.items()))
def test_every_mailbox_plan_on_the_allow_list_licenses(plan_id, name):
    record = services.license_record({"assignedPlans": [
        {"service": "exchange", "capabilityStatus": "Enabled", "servicePlanId": plan_id}]})
    assert record["licensed"] is True and record["mailbox_plans"] == [{"service_plan_id": plan_id, "name": name}]


def test_user_paths_escape_guest_upns():
    assert services.user_path("ext_guest.com#EXT#@contoso.onmicrosoft.com") == \
        "users/ext_guest.com%23EXT%23@contoso.onmicrosoft.com"


def test_mfa_enabled_is_satisfied_by_enforced_only():
    assert compare.is_satisfied("enabled", "enforced", services.MFA_SATISFIED_BY)
    assert not compare.is_satisfied("enforced", "enabled", services.MFA_SATISFIED_BY)
    assert not compare.is_satisfied("disabled", "enforced", services.MFA_SATISFIED_BY)


def test_bulk_diff_and_result():
    results = [
        compare.item_result("a", before="disabled", after="enabled", changed=True),
        compare.item_result("b", found=False, failed=True, msg="not found"),
    ]
    assert compare.bulk_diff(results) == {"before": {"a": "disabled"}, "after": {"a": "enabled"}}
    result = compare.bulk_result(results, "mailboxes", "contoso", extra="kept")
    assert result["changed"] is True and result["failed"] is True and result["extra"] == "kept"
    assert result["msg"] == "1 of 2 mailboxes failed in tenant contoso: b: not found"
    assert result["diff"] == {"before": {"a": "disabled"}, "after": {"a": "enabled"}}
    assert "failed" not in compare.bulk_result(results[:1], "mailboxes", "contoso")


def test_identities_are_deduplicated_case_insensitively():
    assert compare.unique(["A@x.com", "a@x.com ", "b@x.com"]) == ["A@x.com", "b@x.com"]


def test_each_repeat_is_warned_of_naming_both_positions():
    warnings = []
    assert compare.unique(["A@x.com", "b@x.com", "a@x.com", "b@x.com"], "users", warnings.append) == ["A@x.com", "b@x.com"]
    assert warnings == [
        "users[2] a@x.com repeats users[0] A@x.com (user principal names do not depend on case); it is read and changed once.",
        "users[3] b@x.com repeats users[1] b@x.com (user principal names do not depend on case); it is read and changed once.",
    ]


def test_a_refused_security_defaults_write_names_the_least_privileged_permission_first(serve, clients):
    server = serve(lambda *args: (403, {"error": {"code": "Authorization_RequestDenied",
                                                  "message": "Insufficient privileges to complete the operation."}},
                                  None))
    graph, _exchange, _events = clients(server.url)
    with pytest.raises(PermissionDeniedError) as caught:
        services.write_security_defaults(graph, "disabled")
    assert caught.value.permission.startswith("Policy.ReadWrite.SecurityDefaults")
    assert str(caught.value).index("Policy.ReadWrite.SecurityDefaults") < str(caught.value).index(
        "Policy.ReadWrite.ConditionalAccess")


class FakeGraph:
    """Answers the /users listing and $batch licence reads from a list of users, recording each call."""

    def __init__(self, users):
        self.users = users
        self.calls = []

    def list(self, path, params=None, **kwargs):
        self.calls.append(("list", path, dict(params or {})))
        return list(self.users)

    def batch(self, requests, version="v1.0"):
        self.calls.append(("batch", len(requests)))
        results = []
        for request in requests:
            match = [user for user in self.users if request.identity.lower() in
                     (user["id"].lower(), user["userPrincipalName"].lower())]
            results.append(BatchResult(200, match[0]) if match else
                           BatchResult(404, error=NotFoundError("no", identity=request.identity)))
        return results


MAILBOX_PLAN = {"service": "exchange", "capabilityStatus": "Enabled",
                "servicePlanId": "9aaf7827-d63c-4b61-89c3-182f06f82e5c"}
GRAPH_USERS = [{"id": "id-%d" % number, "userPrincipalName": "Device%d@contoso.com" % number,
                "assignedPlans": [MAILBOX_PLAN] if number % 2 else []} for number in range(1, 11)]


def test_licences_of_many_users_come_from_one_users_listing_matched_by_upn_or_id():
    graph = FakeGraph(GRAPH_USERS)
    lookups = services.read_license_info(graph, ["device1@contoso.com", "ID-2", "ghost@contoso.com"], threshold=2)
    assert graph.calls == [("list", "users", {"$select": "id,userPrincipalName,assignedPlans", "$top": "999"})]
    found_and_licensed = [(lookup.found, lookup.record.get("licensed")) for lookup in lookups]
    assert found_and_licensed == [(True, True), (True, False), (False, None)]
    assert lookups[1].record["user_principal_name"] == "Device2@contoso.com"


def test_licences_of_few_users_are_read_per_user_in_a_batch():
    graph = FakeGraph(GRAPH_USERS)
    lookups = services.read_license_info(graph, ["device3@contoso.com", "ghost@contoso.com"])
    assert graph.calls == [("batch", 2)]
    assert [lookup.found for lookup in lookups] == [True, False] and lookups[0].record["licensed"] is True


@pytest.mark.parametrize("concurrency", [1, 3])
def test_at_most_concurrency_items_are_in_flight_and_results_keep_their_order(concurrency):
    lock = threading.Lock()
    in_flight = [0, 0]  # now, most at once

    def work(item):
        with lock:
            in_flight[0] += 1
            in_flight[1] = max(in_flight)
        time.sleep(0.01)
        with lock:
            in_flight[0] -= 1
        return item * 2

    assert services.map_concurrently(list(range(12)), work, concurrency) == [item * 2 for item in range(12)]
    assert 1 <= in_flight[1] <= concurrency


def test_the_connection_option_reaches_both_clients():
    from ansible_collections.m365ops.smtp_auth.plugins.module_utils.connection import ConnectionSettings
    from ansible_collections.m365ops.smtp_auth.plugins.module_utils.exchange import ExchangeClient
    from ansible_collections.m365ops.smtp_auth.plugins.module_utils.graph import GraphClient

    settings = ConnectionSettings.from_params({"tenant_id": "contoso.onmicrosoft.com", "concurrency": 7})
    assert ExchangeClient(None, None, settings).concurrency == 7
    assert GraphClient(None, None, settings).batch_concurrency == 7
    assert GraphClient(None, None, settings, batch_concurrency=2).batch_concurrency == 2
    assert ConnectionSettings().concurrency == 4
