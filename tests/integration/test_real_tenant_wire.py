# Copyright (c) 2026 m365ops.smtp_auth contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""What a real tenant does that a small sample tenant does not show: the emulator behaves like the service
(paging warnings on tenants of more than 1,000 mailboxes, licences that carry service "exchange" without a
mailbox), and the modules must cope."""

from __future__ import annotations

import pytest
from m365_emulator import Emulator

from conftest import writing_requests

# More than one page of Get-CASMailbox (1,000 a page), and more mailboxes asked for than are read by identity.
BULK_MAILBOXES = 1200
ASKED = ["device%05d@contoso.onmicrosoft.com" % number for number in range(1, 202)]


@pytest.fixture(scope="module")
def large_tenant():
    with Emulator(smtp_port=None, generate=BULK_MAILBOXES) as running:
        yield running


@pytest.fixture
def tenant(large_tenant):
    """run_play (conftest) talks to whatever this fixture returns: here, the large tenant."""
    large_tenant.reset()
    large_tenant.clear_faults()
    large_tenant.clear_request_log()
    return large_tenant


def listing_pages(requests):
    return [entry for entry in requests if entry.get("cmdlet") == "Get-CASMailbox"]


def test_a_tenant_listing_over_1000_mailboxes_is_read_to_the_end(run_play):
    run = run_play([{"m365ops.smtp_auth.mailbox_smtp_auth": {"mailboxes": ASKED, "state": "enabled"}}], check=True)
    result = run.results[0]

    assert not result.get("failed"), result.get("msg")
    assert [item["found"] for item in result["results"]] == [True] * len(ASKED)
    # The first page carries the more-results sentence with its next link, as the service sends it.
    assert len(listing_pages(run.requests[0])) == 2
    assert writing_requests(run.requests[0]) == []


def test_readiness_reads_a_large_tenant_too(run_play):
    run = run_play([{"m365ops.smtp_auth.smtp_auth_info": {"mailboxes": ASKED}}])
    result = run.results[0]

    assert not result.get("failed"), result.get("msg")
    assert len(result["mailboxes"]) == len(ASKED)


def test_security_add_ons_carrying_service_exchange_are_not_a_mailbox_licence(run_play):
    run = run_play([{"m365ops.smtp_auth.mailbox_license_info": {"mailboxes": ["defender-only@contoso.com"]}}])
    (mailbox,) = run.results[0]["mailboxes"]

    assert mailbox["found"] is True
    assert mailbox["licensed"] is False and mailbox["mailbox_plans"] == []
    names = {plan["name"] for plan in mailbox["other_exchange_plans"]}
    assert {"ATP_ENTERPRISE", "MICROSOFTBOOKINGS", "EXCHANGE_S_FOUNDATION"} <= names
