# Copyright (c) 2026 m365ops.smtp_auth contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""The one parser of mailbox entries, behind the role's relay_mailboxes filter and smtp_auth_info."""

from __future__ import annotations

import pytest

from ansible_collections.m365ops.smtp_auth.plugins.module_utils._mailbox_entries import (
    AUTH_MODES,
    STATES,
    described_type,
    is_user_principal_name,
    parse_entries,
    problems_message,
)


def test_the_vocabulary_is_the_documented_one():
    assert AUTH_MODES == ("basic", "oauth", "connector")
    assert STATES == ("present", "absent")


def test_entries_keep_their_spelling_and_position_next_to_the_normalised_upn():
    parsed, problems = parse_entries([" Scanner@Contoso.com ", {"upn": "old@contoso.com", "state": "absent"},
                                      {"upn": "app@contoso.com", "auth": "oauth", "state": None}], "basic")
    assert problems == []
    assert [(entry.upn, entry.as_written, entry.auth, entry.state, entry.position) for entry in parsed] == [
        ("scanner@contoso.com", "Scanner@Contoso.com", "basic", "present", 0),
        ("old@contoso.com", "old@contoso.com", "basic", "absent", 1),
        ("app@contoso.com", "app@contoso.com", "oauth", "present", 2),
    ]
    assert parsed[0].as_dict() == {"upn": "scanner@contoso.com", "auth": "basic", "state": "present", "send_as": False}


def test_default_auth_fills_entries_without_auth():
    parsed, _problems = parse_entries(["a@contoso.com", {"upn": "b@contoso.com", "auth": None}], "oauth")
    assert [entry.auth for entry in parsed] == ["oauth", "oauth"]


def test_problems_name_the_variable_and_the_entry():
    parsed, problems = parse_entries(["ok@contoso.com", "bad", {"upn": "x@contoso.com", "sate": "absent"},
                                      {"upn": "y@contoso.com", "auth": "ntlm", "state": "gone"}], "basic", "mailboxes")
    assert [entry.upn for entry in parsed] == ["ok@contoso.com"]
    assert problems == [
        "mailboxes[1] (bad): 'bad' is not a valid user principal name (expected name@domain.tld)",
        "mailboxes[2] (x@contoso.com): unknown key(s) sate; allowed keys are upn, auth, state, send_as, source_ip",
        "mailboxes[3] (y@contoso.com): auth must be one of basic, oauth, connector, got 'ntlm'",
        "mailboxes[3] (y@contoso.com): state must be one of present, absent, got 'gone'",
    ]


def test_a_mailbox_declared_twice_is_a_problem_whatever_its_case_auth_or_state():
    parsed, problems = parse_entries(["printer@contoso.com", {"upn": "Printer@Contoso.com", "auth": "oauth"},
                                      {"upn": "PRINTER@contoso.com", "state": "absent"}], "basic", "mailboxes")
    assert [entry.upn for entry in parsed] == ["printer@contoso.com"]
    assert problems == [
        "mailboxes[1] (Printer@Contoso.com): printer@contoso.com is already declared at mailboxes[0]",
        "mailboxes[2] (PRINTER@contoso.com): printer@contoso.com is already declared at mailboxes[0]",
    ]


def test_none_is_no_entry_and_a_non_list_is_one_problem():
    assert parse_entries(None) == ([], [])
    assert parse_entries([]) == ([], [])
    assert parse_entries("scanner@contoso.com", variable_name="mailboxes") == (
        [], ["mailboxes must be a list of user principal names or mappings, got a string"])


def test_a_bad_default_auth_is_the_caller_s_mistake():
    with pytest.raises(ValueError, match="default_auth must be one of basic, oauth, connector, got 'ntlm'"):
        parse_entries([], "ntlm")


@pytest.mark.parametrize("value, valid", [
    ("scanner@contoso.com", True), ("first.last+relay@mail.contoso.co.uk", True), ("scanner@contoso", False),
    ("scan ner@contoso.com", False), ("scanner..x@contoso.com", False), ('"quoted"@contoso.com', False),
    ("scanner@-contoso.com", False), (42, False), (None, False),
])
def test_user_principal_names(value, valid):
    assert is_user_principal_name(value) is valid


@pytest.mark.parametrize("value, words", [
    (None, "null"), (True, "a boolean"), (3, "a number"), (2.5, "a number"), ("x", "a string"),
    ({"a": 1}, "a mapping"), ([1], "a list"), ((1,), "a list"),
])
def test_types_in_yaml_words(value, words):
    assert described_type(value) == words


def test_problems_message_counts_and_lists_one_per_line():
    assert problems_message(["one"]) == "1 invalid mailbox entry:\n- one"
    assert problems_message(["one", "two"]) == "2 invalid mailbox entries:\n- one\n- two"


def test_send_as_is_for_oauth_entries_and_must_be_a_boolean():
    parsed, problems = parse_entries([{"upn": "app@contoso.com", "auth": "oauth", "send_as": True},
                                      {"upn": "scan@contoso.com", "send_as": True},
                                      {"upn": "erp@contoso.com", "auth": "oauth", "send_as": "yes"}], "basic", "mailboxes")
    assert [entry.as_dict() for entry in parsed] == [
        {"upn": "app@contoso.com", "auth": "oauth", "state": "present", "send_as": True}]
    assert problems == [
        "mailboxes[1] (scan@contoso.com): send_as grants the relay app Send As, which only auth 'oauth' uses",
        "mailboxes[2] (erp@contoso.com): send_as must be true or false, got a string",
    ]
