# Copyright (c) 2026 m365ops.smtp_auth contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""The reply table: every documented line maps to its cause and fix, with or without the server suffix."""

from __future__ import annotations

import pytest

from ansible_collections.m365ops.smtp_auth.plugins.module_utils import smtp_diagnosis as diagnosis

SUFFIX = "[DM6PR11CA0012.namprd11.prod.outlook.com 2026-02-03T10:11:12.345Z 08DE3A1B2C3D4E5F]"

EXPECTED = {
    diagnosis.REPLY_TENANT_DISABLED: ("tenant_smtp_auth_disabled", ["org_smtp_auth_disabled"]),
    diagnosis.REPLY_MAILBOX_DISABLED: ("mailbox_smtp_auth_disabled", ["mailbox_smtp_auth_disabled"]),
    diagnosis.REPLY_SECURITY_DEFAULTS: ("security_defaults", ["security_defaults_enabled"]),
    diagnosis.REPLY_CRITERIA: ("criteria_not_met", ["per_user_mfa", "conditional_access", "no_exchange_license"]),
    diagnosis.REPLY_BASIC_DISABLED: ("basic_auth_disabled_by_policy", ["authentication_policy"]),
    diagnosis.REPLY_CREDENTIALS: ("credentials_incorrect", ["mailbox_not_found", "no_exchange_license"]),
    diagnosis.REPLY_UNSUCCESSFUL: ("authentication_unsuccessful",
                                   ["no_smtp_send_as_app", "service_principal_not_registered", "service_principal_wrong_object_id", "no_full_access"]),
    diagnosis.REPLY_NOT_AUTHENTICATED: ("client_not_authenticated", []),
    diagnosis.REPLY_NOT_AUTHENTICATED_OLD: ("client_not_authenticated", []),
    diagnosis.REPLY_SEND_AS: ("send_as_denied", []),
    diagnosis.REPLY_BASIC_RETIRED: ("basic_auth_retired", []),
    diagnosis.REPLY_SENDER_THREAD_LIMIT: ("concurrent_connection_limit", []),
    diagnosis.REPLY_CONCURRENT_CONNECTIONS: ("concurrent_connection_limit", []),
    diagnosis.REPLY_SUBMISSION_QUOTA: ("submission_quota_exceeded", []),
    diagnosis.REPLY_MESSAGE_RATE: ("message_rate_limit", []),
    diagnosis.REPLY_SEND_AS_AT_DATA: ("send_as_denied_at_data", []),
    diagnosis.REPLY_SEND_AS_AT_DATA_OLD: ("send_as_denied_at_data", []),
    diagnosis.REPLY_RESTRICTED_SENDER: ("restricted_sender", []),
    diagnosis.REPLY_OLD_TLS: ("tls_version_unsupported", []),
    diagnosis.REPLY_RELAY_DENIED: ("relay_access_denied", ["no_connector_covers"]),
}


def test_every_known_line_has_an_expectation():
    assert set(EXPECTED) == set(diagnosis.KNOWN_REPLY_LINES)


@pytest.mark.parametrize("suffix", ["", " " + SUFFIX, "  " + SUFFIX + "  "], ids=["plain", "suffix", "padded"])
@pytest.mark.parametrize("line", sorted(EXPECTED), ids=lambda line: line[:20])
def test_known_lines_map_to_cause_and_fix(line, suffix):
    key, blockers = EXPECTED[line]

    result = diagnosis.diagnose_reply(int(line[:3]), (line[4:] + suffix).encode(), mailbox="printer@contoso.com")

    assert result["key"] == key
    assert result["blockers"] == blockers
    assert result["ok"] is False
    assert result["matches_known_reply"] is True
    assert result["cause"] and result["fix"]
    assert "{mailbox}" not in result["fix"]


def test_suffix_is_split_off_and_kept():
    reply = diagnosis.parse_reply_line(diagnosis.REPLY_MAILBOX_DISABLED + " " + SUFFIX)

    assert reply.code == 535
    assert reply.enhanced_status_code == "5.7.139"
    assert reply.server_suffix == SUFFIX
    assert reply.line == diagnosis.REPLY_MAILBOX_DISABLED
    assert reply.text.endswith("for more information.")


def test_multiline_reply_is_joined_into_one_sentence():
    # smtplib joins continuation lines with newlines after stripping "535-" / "535 ".
    reply = diagnosis.parse_reply(535, b"5.7.139 Authentication unsuccessful, the user\n5.7.139 credentials were "
                                       b"incorrect. " + SUFFIX.encode())

    assert reply.line == diagnosis.REPLY_CREDENTIALS
    assert diagnosis.diagnose_reply(reply, None)["key"] == "credentials_incorrect"


def test_matching_ignores_case():
    result = diagnosis.diagnose_reply(535, diagnosis.REPLY_TENANT_DISABLED[4:].upper())

    assert result["key"] == "tenant_smtp_auth_disabled"


def test_unknown_5_7_139_text_stays_in_its_family():
    result = diagnosis.diagnose_reply(535, "5.7.139 Authentication unsuccessful, a new reason appeared.")

    assert result["key"] == "authentication_refused"
    assert result["ok"] is False
    assert result["matches_known_reply"] is False


def test_unrecognised_failure_and_plain_success():
    failure = diagnosis.diagnose_reply(554, "5.6.0 Something else entirely")
    success = diagnosis.diagnose_reply(250, "2.0.0 OK <id@host> [Hostname=X]")

    assert (failure["key"], failure["ok"]) == ("unrecognised_reply", False)
    assert "554 5.6.0 Something else entirely" in failure["cause"]
    assert (success["key"], success["ok"]) == ("accepted", True)


def test_authentication_success():
    result = diagnosis.diagnose_reply(235, "2.7.0 Authentication successful " + SUFFIX)

    assert result["key"] == "authenticated"
    assert result["ok"] is True


def test_single_cause_replies_speak_with_the_blockers_words():
    reply = diagnosis.diagnose_reply(535, diagnosis.REPLY_MAILBOX_DISABLED[4:], mailbox="scanner@contoso.com")
    blocker = diagnosis.describe_blocker("mailbox_smtp_auth_disabled", mailbox="scanner@contoso.com", value=True)

    assert reply["cause"] == blocker["cause"]
    assert reply["fix"] == blocker["fix"]
    assert "scanner@contoso.com" in blocker["fix"]


@pytest.mark.parametrize("name", sorted(diagnosis.BLOCKERS))
def test_every_blocker_reply_is_diagnosed_back_to_that_blocker(name):
    described = diagnosis.describe_blocker(name, mailbox="relay@contoso.com", value="x")

    assert described["reply"] in diagnosis.KNOWN_REPLY_LINES
    for line in described["replies"]:
        assert name in diagnosis.diagnose_reply(int(line[:3]), line[4:])["blockers"]
    assert described["blocker"] == name
    assert described["value"] == "x"
    assert "{mailbox}" not in repr(described)


def test_blocker_fix_names_the_module_with_arguments_for_the_mailbox():
    described = diagnosis.describe_blocker("per_user_mfa", mailbox="printer@contoso.com", value="enforced")

    assert described["fix_module"] == "m365ops.smtp_auth.per_user_mfa"
    assert described["fix_arguments"] == {"users": ["printer@contoso.com"], "state": "disabled"}
    assert described["auth_modes"] == ["basic"]


def test_org_switch_offers_both_the_mailbox_and_the_organisation_fix():
    described = diagnosis.describe_blocker("org_smtp_auth_disabled", mailbox="printer@contoso.com", value=True)

    assert described["fix_module"] == "m365ops.smtp_auth.mailbox_smtp_auth"
    assert described["alternative_fix_module"] == "m365ops.smtp_auth.org_smtp_auth"


@pytest.mark.parametrize("kind", sorted(diagnosis.TRANSPORT_FAILURES))
def test_transport_failures_are_distinct_diagnoses(kind):
    result = diagnosis.diagnose_transport_failure(kind, "detail text")

    assert result["key"] == kind
    assert result["ok"] is False
    assert "detail text" in result["cause"]


# A field capture: the AUTH refusal comes back inside the 5.7.57 at MAIL FROM.
CAPTURED_5_7_57 = ("530 5.7.57 Client not authenticated to send mail. Error: 535 5.7.139 Authentication "
                   "unsuccessful, basic authentication is disabled. [YT3PR01CA0122.CANPRD01.PROD.OUTLOOK.COM "
                   "2025-01-22T03:07:00.315Z 08DD3A1B2C3D4E5F]")


def test_a_5_7_57_with_an_auth_refusal_inside_is_diagnosed_as_that_refusal():
    result = diagnosis.diagnose_reply(530, CAPTURED_5_7_57[4:].encode(), mailbox="printer@contoso.com")

    assert result["key"] == "basic_auth_disabled_by_policy"
    assert result["blockers"] == ["authentication_policy"]
    assert result["known_reply"] == diagnosis.REPLY_BASIC_DISABLED
    assert result["matches_known_reply"] is True
    # The 5.7.57 context is kept.
    assert result["embedded_in"].startswith("530 5.7.57 Client not authenticated to send mail. Error: 535 5.7.139")
    assert "530 5.7.57" in result["cause"] and "MAIL FROM" in result["cause"]
    assert diagnosis.diagnose_reply(530, CAPTURED_5_7_57[4:])["blockers"] == ["authentication_policy"]


def test_a_plain_5_7_57_stays_an_unauthenticated_client():
    result = diagnosis.diagnose_reply(530, diagnosis.REPLY_NOT_AUTHENTICATED[4:] + " " + SUFFIX)
    assert result["key"] == "client_not_authenticated" and "embedded_in" not in result


# --- after AUTH succeeds: limits and policies --------------------------------------------------------------------

HOSTNAME_SUFFIX = "[Hostname=DM5SPR00MB2471.namprd08.prod.outlook.com]"

# The forms seen in the field (application logs in public issues), each with the diagnosis and the limit it names.
FIELD_FORMS = [
    ("432 4.3.2 STOREDRV.ClientSubmit; sender thread limit exceeded", "concurrent_connection_limit",
     "concurrent_connections"),
    ("432 4.3.2 Concurrent connections limit exceeded. Visit https://aka.ms/concurrent_sending for more information.",
     "concurrent_connection_limit", "concurrent_connections"),
    ("432 4.3.2 concurrent connection limit exceeded", "concurrent_connection_limit", "concurrent_connections"),
    ("554 5.2.0 STOREDRV.Submission.Exception:SubmissionQuotaExceededException; Failed to process message due to a "
     "permanent exception with message Cannot submit message.", "submission_quota_exceeded", "submission_quota"),
    ("421 4.4.2 Message submission rate for this client has exceeded the configured limit", "message_rate_limit",
     "message_rate"),
    ("450 4.4.2 Message submission rate for this client has exceeded the configured limit", "message_rate_limit",
     "message_rate"),
    ("554 5.2.252 SendAsDenied; printer@contoso.com not allowed to send as ceo@contoso.com; "
     "STOREDRV.Submission.Exception:SendAsDeniedException.MapiExceptionSendAsDenied", "send_as_denied_at_data", None),
    ("554 5.2.0 STOREDRV.Submission.Exception:SendAsDeniedException.MapiExceptionSendAsDenied; Failed to process "
     "message due to a permanent exception with message Cannot submit message.", "send_as_denied_at_data", None),
    ("550 5.1.8 Access denied, bad outbound sender", "restricted_sender", None),
    ("550 5.1.8 Access denied, bad outbound sender AS(42004)", "restricted_sender", None),
    ("421 4.7.66 TLS 1.0 and 1.1 are not supported. Please upgrade/update your client to support TLS 1.2.",
     "tls_version_unsupported", None),
    ("550 5.7.64 TenantAttribution; Relay Access Denied SMTP.", "relay_access_denied", None),
]


@pytest.mark.parametrize("suffix", ["", " " + SUFFIX, " " + HOSTNAME_SUFFIX], ids=["plain", "suffix", "hostname"])
@pytest.mark.parametrize("line, key, limit", FIELD_FORMS, ids=[form[0][:28] for form in FIELD_FORMS])
def test_after_auth_replies_in_their_field_forms(line, key, limit, suffix):
    reply = diagnosis.parse_reply_line(line + suffix)

    result = diagnosis.diagnose_reply(reply, None, mailbox="printer@contoso.com")

    assert result["key"] == key
    assert result["limit"] == limit
    assert result["ok"] is False
    assert "fallback" not in result
    assert reply.server_suffix == (suffix.strip() or None)
    assert result["cause"] and result["fix"] and "{mailbox}" not in result["fix"]


def test_limits_name_their_figures_and_the_mailbox():
    connections = diagnosis.diagnose_reply(432, "4.3.2 STOREDRV.ClientSubmit; sender thread limit exceeded",
                                           mailbox="scanner@contoso.com")
    quota = diagnosis.diagnose_reply(554, "5.2.0 STOREDRV.Submission.Exception:SubmissionQuotaExceededException",
                                     mailbox="scanner@contoso.com")

    assert "3 connections" in connections["cause"] and "scanner@contoso.com" in connections["fix"]
    assert "30 messages a minute" in quota["cause"] and "10,000 recipients a day" in quota["cause"]
    assert diagnosis.LIMITS[connections["limit"]] == "3 concurrent connections per mailbox"


def test_the_recipient_side_thread_limit_is_not_the_senders():
    # "recipient thread limit" is a busy receiving mailbox, not a device opening too many connections.
    result = diagnosis.diagnose_reply(432, "4.3.2 STOREDRV.Deliver; recipient thread limit exceeded")

    assert result["key"] == "unrecognised_reply"
    assert result["family"]["subject_meaning"] == "mail system"


def test_send_as_at_data_speaks_with_the_mail_from_rows_fix():
    at_mail_from = diagnosis.diagnose_reply(550, diagnosis.REPLY_SEND_AS[4:])
    at_data = diagnosis.diagnose_reply(554, diagnosis.REPLY_SEND_AS_AT_DATA[4:])

    assert at_data["fix"] == at_mail_from["fix"]
    assert "end of DATA" in at_data["cause"]


def test_restricted_sender_says_only_an_admin_can_release_it():
    result = diagnosis.diagnose_reply(550, "5.1.8 Access denied, bad outbound sender", mailbox="erp@contoso.com")

    assert "Restricted entities" in result["fix"]
    assert "Remove-BlockedSenderAddress -SenderAddress erp@contoso.com" in result["fix"]


@pytest.mark.parametrize("code, text, subject", [
    (550, "5.1.1 RESOLVER.ADR.RecipientNotFound; not found", "addressing"),
    (552, "5.2.2 Mailbox full", "mailbox"),
    (451, "4.3.0 Temporary server error. Please try again later", "mail system"),
    (451, "4.4.4 Something about routing", "network and routing"),
    (501, "5.5.4 Invalid arguments", "mail delivery protocol"),
    (552, "5.6.211 Invalid MIME content", "message content or media"),
    (550, "5.7.1 Client does not have permissions to submit to this server", "security or policy"),
    (550, "5.0.350 Generic error", "other"),
])
def test_an_unknown_reply_gets_its_family_as_an_honest_fallback(code, text, subject):
    result = diagnosis.diagnose_reply(code, text + " " + SUFFIX)

    assert result["key"] == "unrecognised_reply"
    assert result["fallback"] is True
    assert result["family"]["subject_meaning"] == subject
    assert result["family"]["class"] == str(code)[0]
    assert "fallback" in result["cause"] and "%d %s" % (code, text) in result["cause"]
    assert result["fix"] == result["family"]["advice"] + " The reply text says more."


def test_transient_and_permanent_classes_say_whether_a_retry_can_help():
    transient = diagnosis.diagnose_reply(451, "4.3.0 Busy")
    permanent = diagnosis.diagnose_reply(550, "5.3.0 Broken")

    assert "transient" in transient["cause"] and "retrying later may succeed" in transient["cause"]
    assert "permanent" in permanent["cause"]


def test_a_reply_without_an_enhanced_code_is_unclassified_and_says_so():
    result = diagnosis.diagnose_reply(554, "Transaction failed")

    assert result["fallback"] is True and result["family"] is None
    assert "no enhanced status code" in result["cause"]
