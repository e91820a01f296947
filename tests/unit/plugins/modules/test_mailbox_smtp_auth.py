# Copyright (c) 2026 m365ops.smtp_auth contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

from __future__ import annotations

from types import SimpleNamespace

from ansible_collections.m365ops.smtp_auth.plugins.module_utils.exchange import ExchangeClient
from ansible_collections.m365ops.smtp_auth.plugins.modules import mailbox_smtp_auth


class FakeExchange:
    """A tenant of CAS mailboxes; ``clears`` says whether a null write clears the switch."""

    concurrency = 4
    # A service without the admin API's $batch: bulk runs go through invoke() one cmdlet at a time.
    batches = False
    invoke_many = ExchangeClient.invoke_many
    _invoke_one = ExchangeClient._invoke_one

    def __init__(self, switches, clears=True):
        self.switches = dict(switches)
        self.clears = clears
        self.writes = []

    def invoke(self, cmdlet, parameters=None, unlimited=False, identity=None, select=None):
        parameters = parameters or {}
        if cmdlet == "Set-CASMailbox":
            self.writes.append((parameters["Identity"], parameters["SmtpClientAuthenticationDisabled"]))
            value = parameters["SmtpClientAuthenticationDisabled"]
            if value is not None or self.clears:
                self.switches[parameters["Identity"]] = value
            return []
        wanted = parameters.get("Identity")
        return [{"PrimarySmtpAddress": name, "SmtpClientAuthenticationDisabled": value}
                for name, value in self.switches.items() if wanted in (None, name)]


def module(exchange, check_mode=False, **params):
    return SimpleNamespace(exchange=exchange, check_mode=check_mode, params=params,
                           settings=SimpleNamespace(tenant_id="contoso.onmicrosoft.com"),
                           fail=refuse, warn=refuse)


def refuse(msg, **result):
    raise AssertionError(msg)


def test_exclusive_sets_undeclared_enabled_mailboxes_to_inherit():
    exchange = FakeExchange({"a@x.com": True, "old@x.com": False, "other@x.com": None})
    result = mailbox_smtp_auth.manage(module(exchange, mailboxes=["a@x.com"], state="enabled", exclusive=True))
    assert sorted(exchange.writes) == [("a@x.com", False), ("old@x.com", None)]
    undeclared = [item for item in result["results"] if item.get("undeclared")]
    assert [item["identity"] for item in undeclared] == ["old@x.com"]
    assert result["diff"]["after"] == {"a@x.com": "enabled", "old@x.com": "inherit"}


def test_check_mode_reports_without_writing():
    exchange = FakeExchange({"a@x.com": True})
    result = mailbox_smtp_auth.manage(module(exchange, check_mode=True, mailboxes=["a@x.com"], state="enabled",
                                             exclusive=False))
    assert result["changed"] is True and exchange.writes == []


def test_inherit_that_does_not_clear_fails_the_mailbox_clearly():
    exchange = FakeExchange({"a@x.com": False}, clears=False)
    result = mailbox_smtp_auth.manage(module(exchange, mailboxes=["a@x.com"], state="inherit", exclusive=False))
    item = result["results"][0]
    assert result["failed"] is True
    assert item["failed"] is True and item["changed"] is False and item["after"] == "enabled"
    assert "still enabled" in item["msg"] and "Set-CASMailbox" in item["msg"]
