# Copyright (c) 2026 m365ops.smtp_auth contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

from __future__ import annotations

import pytest

from ansible.errors import AnsibleFilterError
from ansible.parsing.dataloader import DataLoader

from ansible_collections.m365ops.smtp_auth.plugins.filter.relay_mailboxes import relay_mailboxes


def from_inventory(text):
    """Values as ansible-playbook hands them to a filter: loaded from an inventory file (tagged on 2.19+)."""
    return DataLoader().load(text, file_name="/inventory/host_vars/contoso.yml", show_content=False)


def test_strings_and_dicts_become_normalised_entries():
    entries = ["Scanner@Contoso.com", {"upn": "old-copier@contoso.com", "state": "absent"},
               {"upn": "app@contoso.com", "auth": "oauth"}]
    assert relay_mailboxes(entries) == [
        {"upn": "scanner@contoso.com", "auth": "basic", "state": "present", "send_as": False},
        {"upn": "old-copier@contoso.com", "auth": "basic", "state": "absent", "send_as": False},
        {"upn": "app@contoso.com", "auth": "oauth", "state": "present", "send_as": False},
    ]


def test_default_auth_applies_to_entries_without_auth():
    assert relay_mailboxes(["a@contoso.com"], "oauth")[0]["auth"] == "oauth"


def test_empty_or_missing_list_is_no_mailbox():
    assert relay_mailboxes([]) == []
    assert relay_mailboxes(None) == []


@pytest.mark.parametrize("entry, expected", [
    ({"upn": "scanner@contoso.com", "sate": "absent"}, "relay_accounts_mailboxes[0] (scanner@contoso.com): unknown key(s) sate"),
    ({"upn": "scanner@contoso.com", "auth": "ntlm"}, "auth must be one of basic, oauth, connector, got 'ntlm'"),
    ({"upn": "scanner@contoso.com", "state": "gone"}, "state must be one of present, absent, got 'gone'"),
    ("scanner.contoso.com", "relay_accounts_mailboxes[0] (scanner.contoso.com): 'scanner.contoso.com' is not a valid"),
    ("scanner@contoso", "'scanner@contoso' is not a valid user principal name"),
    ("scan ner@contoso.com", "is not a valid user principal name"),
    ("scanner..x@contoso.com", "is not a valid user principal name"),
    ({"auth": "basic"}, "relay_accounts_mailboxes[0]: 'upn' is required"),
    (42, "relay_accounts_mailboxes[0]: must be a user principal name or a mapping, got a number"),
    (["scanner@contoso.com"], "relay_accounts_mailboxes[0]: must be a user principal name or a mapping, got a list"),
])
def test_bad_entry_fails_naming_it(entry, expected):
    with pytest.raises(AnsibleFilterError) as error:
        relay_mailboxes([entry])
    assert expected in str(error.value)


def test_every_problem_is_reported_at_once():
    with pytest.raises(AnsibleFilterError) as error:
        relay_mailboxes(["ok@contoso.com", "bad", {"upn": "x@contoso.com", "stat": "absent"}])
    message = str(error.value)
    assert message.startswith("2 invalid mailbox entries")
    assert "relay_accounts_mailboxes[1] (bad)" in message
    assert "relay_accounts_mailboxes[2] (x@contoso.com): unknown key(s) stat" in message


def test_duplicates_in_different_case_are_refused():
    with pytest.raises(AnsibleFilterError) as error:
        relay_mailboxes(["printer@contoso.com", {"upn": "Printer@contoso.com", "state": "absent"}])
    assert "printer@contoso.com is already declared at relay_accounts_mailboxes[0]" in str(error.value)


def test_not_a_list_is_refused():
    with pytest.raises(AnsibleFilterError, match="must be a list"):
        relay_mailboxes("scanner@contoso.com")


def test_not_strict_returns_the_entries_and_one_line_per_problem():
    checked = relay_mailboxes(["ok@contoso.com", "bad", {"upn": "x@contoso.com", "stat": "absent"}], strict=False)
    assert checked["entries"] == [{"upn": "ok@contoso.com", "auth": "basic", "state": "present", "send_as": False}]
    assert checked["errors"] == [
        "relay_accounts_mailboxes[1] (bad): 'bad' is not a valid user principal name (expected name@domain.tld)",
        "relay_accounts_mailboxes[2] (x@contoso.com): unknown key(s) stat; allowed keys are upn, auth, state, send_as, source_ip",
    ]


def test_not_strict_reports_a_value_that_is_not_a_list():
    checked = relay_mailboxes(from_inventory("relay_accounts_mailboxes: {upn: scanner@contoso.com}")
                              ["relay_accounts_mailboxes"], strict=False)
    assert checked == {"entries": [], "errors": [
        "relay_accounts_mailboxes must be a list of user principal names or mappings, got a mapping"]}


def test_not_strict_with_good_entries_has_no_error():
    assert relay_mailboxes(["ok@contoso.com"], strict=False)["errors"] == []


@pytest.mark.parametrize("value, word", [
    ("42", "a number"), ("4.2", "a number"), ("true", "a boolean"), ("[a@contoso.com]", "a list"),
    ("null", "null"), ("2026-03-01", "a date"),
])
def test_types_are_named_in_yaml_words_not_python_classes(value, word):
    entries = from_inventory("relay_accounts_mailboxes: [%s]" % value)["relay_accounts_mailboxes"]
    error = relay_mailboxes(entries, strict=False)["errors"][0]
    assert error.endswith(": must be a user principal name or a mapping, got %s" % word)
    assert "_Ansible" not in error and "Tagged" not in error
