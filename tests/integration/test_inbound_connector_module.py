# Copyright (c) 2026 m365ops.smtp_auth contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""inbound_connector against the emulator, judged by tenant state and request log: a connector converges in one
run, is left alone in the next, check mode writes nothing, and an address Exchange refuses fails before any
request."""

from __future__ import annotations

from conftest import contoso, writes, writing_requests


def connectors(tenant):
    with tenant.store.lock:
        return [dict(connector) for connector in contoso(tenant).inbound_connectors]


def connector_task(**arguments):
    return {"m365ops.smtp_auth.inbound_connector": arguments}


def test_a_connector_converges_once_and_check_mode_writes_nothing(run_play, tenant):
    task = connector_task(name="Office scanners", sender_ip_addresses=["127.0.0.2", "203.0.113.0/28"])
    run = run_play([dict(task, check_mode=True), task, task], diff=True)
    checked, created, again = run.results

    assert checked["changed"] is True and writing_requests(run.requests[0]) == []
    assert created["changed"] is True and created["before"] is None
    assert [entry["cmdlet"] for entry in writes(run.requests[1])] == ["New-InboundConnector"]
    assert again["changed"] is False and writing_requests(run.requests[2]) == []
    # The emulator prints SenderDomains as smtp:*;1; the module reads it as the * it sent.
    assert again["before"]["sender_domains"] == ["*"]
    stored = connectors(tenant)
    assert [(c["name"], c["connector_type"], c["sender_ip_addresses"]) for c in stored] == [
        ("Office scanners", "OnPremises", ["127.0.0.2", "203.0.113.0/28"])]
    with tenant.store.lock:
        assert contoso(tenant).relay_connector("127.0.0.2")["name"] == "Office scanners"


def test_drift_is_set_and_absent_removes(run_play, tenant):
    create = connector_task(name="Print server", sender_ip_addresses=["203.0.113.10"])
    change = connector_task(name="Print server", sender_ip_addresses=["203.0.113.11"], enabled=False)
    remove = connector_task(name="Print server", state="absent")
    run = run_play([create, change, remove, remove])
    _created, changed, removed, again = run.results

    assert changed["changed"] is True
    assert [entry["cmdlet"] for entry in writes(run.requests[1])] == ["Set-InboundConnector"]
    assert changed["after"]["enabled"] is False and changed["after"]["sender_ip_addresses"] == ["203.0.113.11"]
    assert removed["changed"] is True and removed["after"] is None
    assert again["changed"] is False and writing_requests(run.requests[3]) == []
    assert connectors(tenant) == []


def test_an_address_exchange_refuses_fails_before_any_request(run_play, tenant):
    run = run_play([connector_task(name="Wide", sender_ip_addresses=["203.0.113.0/16"])])
    assert run.results[0]["failed"] is True
    assert "'203.0.113.0/16' is wider than /24" in run.results[0]["msg"]
    assert run.requests[0] == []
    assert connectors(tenant) == []
