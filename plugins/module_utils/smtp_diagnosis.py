# Copyright (c) 2026 m365ops.smtp_auth contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""What Microsoft's submission endpoint answers, why, and what fixes it.

One table serves both troubleshooting tools: ``smtp_submission_test`` maps the reply it received to a
cause and a fix (``diagnose_reply``), and ``smtp_auth_info`` attaches to every blocker it finds the
exact reply line that blocker produces and the same fix (``describe_blocker``). Keeping both in one
place is what guarantees that the two tools tell an operator the same story.

Plain Python, no Ansible imports: the submission test may run delegated to a host in a device's
network, and the table is unit-tested on its own.
"""

from __future__ import annotations

import ipaddress
import re
from typing import NamedTuple

from ansible_collections.m365ops.smtp_auth.plugins.module_utils import _inbound_connectors as connectors

COLLECTION = "m365ops.smtp_auth"

# Newer front ends append "[<frontend> <timestamp> <id>]" to every reply; it identifies the server
# that answered, not the cause, so matching ignores it and the result keeps it apart.
_SERVER_SUFFIX = re.compile(r"\s*(\[[^\[\]]*\])\s*$")
_ENHANCED_STATUS = re.compile(r"^([245]\.\d{1,3}\.\d{1,3})(?:\s+|$)")
# "530 5.7.57 Client not authenticated to send mail. Error: 535 5.7.139 ..." (an AUTH refusal carried along).
_EMBEDDED_REPLY = re.compile(r"\bError:\s*([45]\d\d\s+[45]\.\d{1,3}\.\d{1,3}\b.*)$")

# The reply lines, verbatim (section "SMTP submission" of the wire notes in the project docs).
REPLY_TENANT_DISABLED = ("535 5.7.139 Authentication unsuccessful, SmtpClientAuthentication is disabled for the "
                         "Tenant. Visit https://aka.ms/smtp_auth_disabled for more information.")
REPLY_MAILBOX_DISABLED = ("535 5.7.139 Authentication unsuccessful, SmtpClientAuthentication is disabled for the "
                          "Mailbox. Visit https://aka.ms/smtp_auth_disabled for more information.")
REPLY_SECURITY_DEFAULTS = ("535 5.7.139 Authentication unsuccessful, user is locked by your organization's "
                           "security defaults policy. Contact your administrator.")
REPLY_CRITERIA = ("535 5.7.139 Authentication unsuccessful, the request did not meet the criteria to be "
                  "authenticated successfully. Contact your administrator.")
REPLY_BASIC_DISABLED = "535 5.7.139 Authentication unsuccessful, basic authentication is disabled."
REPLY_CREDENTIALS = "535 5.7.139 Authentication unsuccessful, the user credentials were incorrect."
REPLY_UNSUCCESSFUL = "535 5.7.3 Authentication unsuccessful"
REPLY_NOT_AUTHENTICATED = "530 5.7.57 Client not authenticated to send mail."
REPLY_NOT_AUTHENTICATED_OLD = "530 5.7.57 SMTP; Client was not authenticated to send anonymous mail during MAIL FROM"
REPLY_SEND_AS = "550 5.7.60 SMTP; Client does not have permissions to send as this sender"
REPLY_BASIC_RETIRED = "550 5.7.30 Basic authentication is not supported for Client Submission."
# After AUTH succeeds (section "SMTP submission" of the wire notes). The two 4.3.2 lines are field captures in
# application logs quoted in public issues (2018-2020 with "[Hostname=...]" after them, and from 2021 the
# "Concurrent connections limit exceeded" wording); Microsoft's own page on SMTP submission was corrected in 2025
# to the wording actually returned, which is not public here, so both are matched.
REPLY_SENDER_THREAD_LIMIT = "432 4.3.2 STOREDRV.ClientSubmit; sender thread limit exceeded"
REPLY_CONCURRENT_CONNECTIONS = ("432 4.3.2 Concurrent connections limit exceeded. Visit https://aka.ms/concurrent_sending "
                                "for more information.")
# Microsoft's SMTP submission page names the exception (for the daily recipient limit; since a 2021 correction
# it says the per-minute excess may only be delayed); what follows it in the field is not confirmed, so matching
# keys on the exception's name.
REPLY_SUBMISSION_QUOTA = "554 5.2.0 STOREDRV.Submission.Exception:SubmissionQuotaExceededException"
# Exchange's own wording of a message rate limit (receive connectors and throttling policies); seen as 421 and
# as 450/452, so matching keys on the text and the 4.4.2 code.
REPLY_MESSAGE_RATE = "421 4.4.2 Message submission rate for this client has exceeded the configured limit"
REPLY_SEND_AS_AT_DATA = ("554 5.2.252 SendAsDenied; <mailbox> not allowed to send as <sender>; "
                         "STOREDRV.Submission.Exception:SendAsDeniedException.MapiExceptionSendAsDenied")
# The same refusal as captured in a public issue of Microsoft's support docs (OfficeDocs-Support #1187).
REPLY_SEND_AS_AT_DATA_OLD = ("554 5.2.0 STOREDRV.Submission.Exception:SendAsDeniedException.MapiExceptionSendAsDenied; "
                             "Failed to process message due to a permanent exception with message Cannot submit message.")
REPLY_RESTRICTED_SENDER = "550 5.1.8 Access denied, bad outbound sender"
REPLY_OLD_TLS = ("421 4.7.66 TLS 1.0 and 1.1 are not supported. Please upgrade/update your client to support "
                 "TLS 1.2.")
REPLY_RELAY_DENIED = "550 5.7.64 TenantAttribution; Relay Access Denied"

KNOWN_REPLY_LINES = (
    REPLY_TENANT_DISABLED, REPLY_MAILBOX_DISABLED, REPLY_SECURITY_DEFAULTS, REPLY_CRITERIA, REPLY_BASIC_DISABLED,
    REPLY_CREDENTIALS, REPLY_UNSUCCESSFUL, REPLY_NOT_AUTHENTICATED, REPLY_NOT_AUTHENTICATED_OLD, REPLY_SEND_AS,
    REPLY_BASIC_RETIRED, REPLY_SENDER_THREAD_LIMIT, REPLY_CONCURRENT_CONNECTIONS, REPLY_SUBMISSION_QUOTA,
    REPLY_MESSAGE_RATE, REPLY_SEND_AS_AT_DATA, REPLY_SEND_AS_AT_DATA_OLD, REPLY_RESTRICTED_SENDER, REPLY_OLD_TLS,
    REPLY_RELAY_DENIED,
)

# The limits of SMTP client submission per mailbox (Exchange Online limits page; Exchange Team blog, 2018, for the
# connections). ``limit`` in a diagnosis names one of these.
LIMITS = {
    "concurrent_connections": "3 concurrent connections per mailbox",
    "message_rate": "30 messages a minute per mailbox",
    "submission_quota": "30 messages a minute or 10,000 recipients a day per mailbox",
}


def _module(name):
    return "%s.%s" % (COLLECTION, name)


BASIC = ("basic",)
OAUTH = ("oauth",)
BOTH = ("basic", "oauth")
CONNECTOR = ("connector",)


def _blocker(setting, reply, auth_modes, cause, fix, module=None, arguments=None, role_variables=(), **more):
    """A setting that can keep a mailbox from submitting mail with SMTP AUTH.

    ``setting``: where the value lives, in the words of the admin tools; ``reply``: the line Microsoft answers
    because of it (``other_replies``: lines it may answer instead where the live behaviour is not confirmed);
    ``auth_modes``: which authentication it blocks (basic = AUTH LOGIN, oauth = XOAUTH2); ``fix``: what to run,
    ``module``/``arguments`` (and ``alternative_module``/``alternative_arguments``) and ``role_variables`` being
    its machine-readable form. ``{mailbox}`` and ``{app_id}`` in a fix are replaced by what it is about.
    """
    blocker = dict(setting=setting, reply=reply, other_replies=tuple(more.pop("other_replies", ())),
                   auth_modes=auth_modes, cause=cause, fix=fix, module=_module(module) if module else None,
                   arguments=arguments, role_variables=tuple(role_variables))
    if more:
        blocker.update(alternative_module=_module(more["alternative_module"]),
                       alternative_arguments=more["alternative_arguments"])
    return blocker


BLOCKERS = {
    "org_smtp_auth_disabled": _blocker(
        "Get-TransportConfig SmtpClientAuthenticationDisabled", REPLY_TENANT_DISABLED, BOTH,
        "SMTP AUTH is turned off for the whole organisation and the mailbox follows the organisation (its own "
        "switch is not set).",
        "Turn SMTP AUTH on for this mailbox only (module mailbox_smtp_auth, state: enabled; it overrides the "
        "organisation), or for the whole organisation (module org_smtp_auth, state: enabled).",
        "mailbox_smtp_auth", {"mailboxes": ["{mailbox}"], "state": "enabled"},
        ("relay_accounts_mailboxes", "relay_accounts_enable_mailbox_smtp_auth", "relay_accounts_enable_org_smtp_auth"),
        alternative_module="org_smtp_auth", alternative_arguments={"state": "enabled"}),
    "mailbox_smtp_auth_disabled": _blocker(
        "Get-CASMailbox SmtpClientAuthenticationDisabled", REPLY_MAILBOX_DISABLED, BOTH,
        "SMTP AUTH is explicitly turned off on this mailbox; the mailbox switch wins over the organisation's.",
        "Turn SMTP AUTH on for the mailbox: module mailbox_smtp_auth with mailboxes: [{mailbox}] and state: enabled "
        "(or list it in the role's relay_accounts_mailboxes).",
        "mailbox_smtp_auth", {"mailboxes": ["{mailbox}"], "state": "enabled"},
        ("relay_accounts_mailboxes", "relay_accounts_enable_mailbox_smtp_auth")),
    "security_defaults_enabled": _blocker(
        "identitySecurityDefaultsEnforcementPolicy isEnabled", REPLY_SECURITY_DEFAULTS, BASIC,
        "Security defaults are on for the tenant; they block every legacy (basic) authentication, SMTP AUTH "
        "included.",
        "Either turn security defaults off (module security_defaults, state: disabled, or the role's "
        "relay_accounts_disable_security_defaults; put Conditional Access in their place) or move the device to "
        "OAuth (XOAUTH2), which security defaults allow.",
        "security_defaults", {"state": "disabled"}, ("relay_accounts_disable_security_defaults",)),
    "per_user_mfa": _blocker(
        "perUserMfaState", REPLY_CRITERIA, BASIC,
        "Legacy per-user MFA is enabled or enforced on the mailbox's account; a printer cannot answer an MFA "
        "prompt, so basic SMTP AUTH is refused.",
        "Turn per-user MFA off for the account: module per_user_mfa with users: [{mailbox}] and state: disabled "
        "(or list it in the role's relay_accounts_mailboxes).",
        "per_user_mfa", {"users": ["{mailbox}"], "state": "disabled"},
        ("relay_accounts_mailboxes", "relay_accounts_disable_per_user_mfa")),
    "authentication_policy": _blocker(
        "Get-AuthenticationPolicy AllowBasicAuthSmtp", REPLY_BASIC_DISABLED, BASIC,
        "The authentication policy that applies to the account (its own, or the organisation's default) has "
        "AllowBasicAuthSmtp false.",
        "Assign the account an authentication policy that allows basic SMTP (module user_authentication_policy "
        "with users: [{mailbox}] and policy: <policy>; module authentication_policy with "
        "allow_basic_auth_smtp: true makes one; or the role's relay_accounts_basic_auth_policy), or move the "
        "device to OAuth (XOAUTH2), which authentication policies do not block.",
        "user_authentication_policy", {"users": ["{mailbox}"], "policy": "<policy that allows basic SMTP>"},
        ("relay_accounts_basic_auth_policy",),
        alternative_module="authentication_policy",
        alternative_arguments={"name": "<policy that applies>", "allow_basic_auth_smtp": True}),
    "conditional_access": _blocker(
        "Conditional Access policy", REPLY_CRITERIA, BASIC,
        "An enabled Conditional Access policy that includes the account blocks legacy authentication clients "
        "('other clients'), which is what SMTP AUTH with a password is.",
        "Exclude the account from the Conditional Access policy (Entra admin center, Protection > Conditional "
        "Access), or move the device to OAuth (XOAUTH2)."),
    # Microsoft does not document what an unlicensed account gets; both answers are seen in the field.
    "no_exchange_license": _blocker(
        "assignedPlans (Exchange mailbox plan)", REPLY_CREDENTIALS, BOTH,
        "The account has no enabled Exchange mailbox plan (EXCHANGE_S_FOUNDATION does not count), so there is no "
        "licensed mailbox to authenticate against.",
        "Assign the account a licence with an Exchange Online mailbox plan (for example Exchange Online Plan 1), "
        "then wait for the mailbox to be provisioned. The role checks this before it changes anything "
        "(relay_accounts_check_license).",
        other_replies=(REPLY_CRITERIA,)),
    "mailbox_not_found": _blocker(
        "mailbox", REPLY_CREDENTIALS, BOTH,
        "There is no mailbox (or no account) with this name in the tenant.",
        "Check the spelling of the user name the device uses (it must be the mailbox's user principal name); "
        "create the mailbox if it does not exist."),
    # The OAuth blockers, in the order a token meets them: consent, Exchange registration, mailbox rights.
    "no_smtp_send_as_app": _blocker(
        "SMTP.SendAsApp (app role assignment on Office 365 Exchange Online)", REPLY_UNSUCCESSFUL, OAUTH,
        "The app has no admin-consented SMTP.SendAsApp permission, so its token carries no SMTP role and Exchange "
        "refuses it for every mailbox.",
        "Grant the app {app_id} SMTP.SendAsApp with admin consent: module smtp_app_consent with app_id: {app_id} "
        "(or the role's relay_accounts_oauth_app). Tokens issued before keep their old roles for up to an hour.",
        "smtp_app_consent", {"app_id": "{app_id}", "state": "present"}, ("relay_accounts_oauth_app",)),
    "service_principal_not_registered": _blocker(
        "Get-ServicePrincipal", REPLY_UNSUCCESSFUL, OAUTH,
        "The app that requests the token is not registered in Exchange Online (New-ServicePrincipal), so Exchange "
        "does not accept its token for any mailbox.",
        "Register the app in Exchange Online: module exchange_service_principal with app_id: {app_id} (it looks up "
        "the enterprise application's object id), then grant it FullAccess on {mailbox}.",
        "exchange_service_principal", {"app_id": "{app_id}", "state": "present"}, ("relay_accounts_oauth_app",)),
    "service_principal_wrong_object_id": _blocker(
        "Get-ServicePrincipal ObjectId", REPLY_UNSUCCESSFUL, OAUTH,
        "The app is registered in Exchange Online with an object id that is not its enterprise application's (the "
        "app registration's object id is the classic mistake), so every token of the app fails.",
        "Register it again with the enterprise application's object id: module exchange_service_principal with "
        "app_id: {app_id} replaces the wrong registration.",
        "exchange_service_principal", {"app_id": "{app_id}", "state": "present"}, ("relay_accounts_oauth_app",)),
    "no_full_access": _blocker(
        "Get-MailboxPermission FullAccess", REPLY_UNSUCCESSFUL, OAUTH,
        "The app's Exchange service principal has no FullAccess permission on the mailbox.",
        "Grant it: module mailbox_permission with mailboxes: [{mailbox}], trustee: {app_id} and access_rights: "
        "[FullAccess] (or declare the mailbox with auth: oauth in the role's relay_accounts_mailboxes).",
        "mailbox_permission", {"mailboxes": ["{mailbox}"], "trustee": "{app_id}", "access_rights": ["FullAccess"],
                               "state": "present"},
        ("relay_accounts_mailboxes", "relay_accounts_oauth_app")),
    # Connector relay: no AUTH at all, so none of the above applies; only a connector that lists the device.
    "no_connector_covers": _blocker(
        "Get-InboundConnector SenderIPAddresses", REPLY_RELAY_DENIED, CONNECTOR,
        "No enabled inbound connector of type OnPremises lists the address the device sends from (or the "
        "certificate it presents), so the tenant's MX endpoint refuses to relay its mail.",
        "Add the device's public address to the sender_ip_addresses of the tenant's inbound connector: module "
        "inbound_connector, or the role's relay_accounts_connector.",
        "inbound_connector", None, ("relay_accounts_connector",)),
}


def _rule(key, reply, match=None, blockers=(), cause=None, fix=None, other_replies=(), family=None, limit=None,
          any_code=False):
    """A reply rule. ``reply`` is Microsoft's documented line (None for a family rule, which gives ``family``,
    the code and enhanced status code it covers); ``match`` a lower-case fragment (or a tuple of them, any of
    which matches) of the text after the enhanced status code (None: any text); ``any_code``: the reply code and
    the enhanced status code's detail may vary (only the class and subject are compared), for lines seen with
    several. A rule without ``cause``/``fix`` takes them from its single blocker; ``limit`` names the sending
    limit (``LIMITS``) the reply says was met."""
    code, enhanced = (family or reply).split(" ")[:2]
    rule = {"key": key, "code": None if any_code else int(code), "enhanced": enhanced,
            "match": (match,) if isinstance(match, str) else match, "reply": reply,
            "other_replies": tuple(other_replies), "ok": int(code) < 400, "blockers": tuple(blockers),
            "limit": limit, "any_code": any_code}
    if cause:
        rule.update(cause=cause, fix=fix)
    return rule


_SEND_AS_CAUSE = ("The mailbox authenticated, but the From address (MAIL FROM) is a different mailbox it may not "
                  "send as.")
_SEND_AS_FIX = ("Send from the authenticated mailbox's own address, or grant it Send As on the sender "
                "(Add-RecipientPermission -Identity <sender> -Trustee <mailbox> -AccessRights SendAs).")


# Reply rules, most specific first.
REPLY_RULES = (
    _rule("authenticated", "235 2.7.0 Authentication successful",
          cause="The mailbox authenticated: nothing blocks SMTP AUTH for it.", fix="Nothing to fix."),
    _rule("tenant_smtp_auth_disabled", REPLY_TENANT_DISABLED, "disabled for the tenant", ("org_smtp_auth_disabled",)),
    _rule("mailbox_smtp_auth_disabled", REPLY_MAILBOX_DISABLED, "disabled for the mailbox",
          ("mailbox_smtp_auth_disabled",)),
    _rule("security_defaults", REPLY_SECURITY_DEFAULTS, "security defaults", ("security_defaults_enabled",)),
    _rule("criteria_not_met", REPLY_CRITERIA, "did not meet the criteria",
          ("per_user_mfa", "conditional_access", "no_exchange_license"),
          cause="Entra ID refused the sign-in: per-user MFA is enabled or enforced on the account, or a Conditional "
                "Access policy blocks legacy authentication for it (an unlicensed account can also get this).",
          fix="Run smtp_auth_info for the mailbox to see which one applies. Per-user MFA: module per_user_mfa, "
              "state: disabled. Conditional Access: exclude the account from the policy. Or move the device to "
              "OAuth (XOAUTH2)."),
    _rule("basic_auth_disabled_by_policy", REPLY_BASIC_DISABLED, "basic authentication is disabled",
          ("authentication_policy",)),
    _rule("credentials_incorrect", REPLY_CREDENTIALS, "credentials were incorrect",
          ("mailbox_not_found", "no_exchange_license"),
          cause="The user name or password is wrong, the mailbox does not exist, or the account has no Exchange "
                "mailbox licence.",
          fix="Check the user name (the mailbox's user principal name) and reset the password stored on the device; "
              "run smtp_auth_info for the mailbox to rule out a missing mailbox or licence."),
    # Not one of Microsoft's documented lines, but the general form of the 5.7.139 family: the text after the
    # comma says what refused it.
    _rule("authentication_refused", None, family="535 5.7.139",
          cause="Microsoft refused SMTP AUTH for a reason this table does not know; the reply text says which.",
          fix="Run smtp_auth_info for the mailbox, which reads every setting that can refuse SMTP AUTH."),
    _rule("authentication_unsuccessful", REPLY_UNSUCCESSFUL, None,
          ("no_smtp_send_as_app", "service_principal_not_registered", "service_principal_wrong_object_id",
           "no_full_access"),
          cause="The credentials were refused. With OAuth (XOAUTH2), in the order a token meets them: the app has no "
                "admin-consented SMTP.SendAsApp (or the token is for the wrong audience or expired), it is not "
                "registered in Exchange (New-ServicePrincipal) or registered with its app registration's object id "
                "instead of its enterprise application's, or it has no FullAccess on the mailbox. With a password: "
                "the user name or password is wrong.",
          fix="OAuth: request the token for https://outlook.office365.com/.default; then modules smtp_app_consent, "
              "exchange_service_principal and mailbox_permission (FullAccess) fix the three app settings, and "
              "smtp_auth_info with auth: oauth says which one is missing. Password: check the user name and "
              "password."),
    _rule("client_not_authenticated", REPLY_NOT_AUTHENTICATED, other_replies=(REPLY_NOT_AUTHENTICATED_OLD,),
          cause="The client sent MAIL FROM without authenticating: the device is set to send anonymously, or it "
                "skipped AUTH (for example because it did not use STARTTLS, so AUTH was never offered).",
          fix="Configure the device for SMTP AUTH: server smtp.office365.com, port 587, STARTTLS, with the "
              "mailbox's user principal name and password (or OAuth)."),
    _rule("send_as_denied", REPLY_SEND_AS, cause=_SEND_AS_CAUSE, fix=_SEND_AS_FIX),
    _rule("basic_auth_retired", REPLY_BASIC_RETIRED,
          cause="Basic authentication (a password) for SMTP AUTH is turned off for this tenant by Microsoft's "
                "retirement of Basic auth; no setting of the mailbox changes that.",
          fix="Move the device or application to OAuth (XOAUTH2, auth_mode: oauth) with an app that has "
              "SMTP.SendAsApp; where the device cannot do OAuth, use a connector (SMTP relay) instead of "
              "SMTP AUTH."),
    # After AUTH: the mailbox may sign in, but what it sends meets a limit or a policy.
    _rule("concurrent_connection_limit", REPLY_SENDER_THREAD_LIMIT, ("sender thread limit", "concurrent connection"),
          other_replies=(REPLY_CONCURRENT_CONNECTIONS, "432 4.3.2 concurrent connection limit exceeded"),
          limit="concurrent_connections",
          cause="More than 3 connections submit mail for this mailbox at the same time; Exchange Online refuses "
                "the extra ones for the moment (a temporary refusal: the message was not accepted).",
          fix="Let the device retry later, send over fewer parallel connections, or spread the devices and "
              "applications that share {mailbox} over more mailboxes (at most 3 connections each)."),
    _rule("send_as_denied_at_data", REPLY_SEND_AS_AT_DATA, "sendasdenied", other_replies=(REPLY_SEND_AS_AT_DATA_OLD,),
          any_code=True, cause=_SEND_AS_CAUSE + " Exchange refused it at the end of DATA (the From header or the "
                                                "envelope names a sender the mailbox has no Send As on).",
          fix=_SEND_AS_FIX),
    _rule("submission_quota_exceeded", REPLY_SUBMISSION_QUOTA, "submissionquotaexceeded", any_code=True,
          limit="submission_quota",
          cause="The mailbox went over a sending limit of SMTP client submission: 30 messages a minute, or "
                "10,000 recipients a day (the daily one blocks sending for up to 24 hours).",
          fix="Send less from {mailbox}: spread the devices and applications over more mailboxes, lower the "
              "send rate, or move bulk mail to High Volume Email or a connector (SMTP relay); after the daily "
              "limit, wait until the recipients of the last 24 hours drop below 10,000."),
    _rule("message_rate_limit", REPLY_MESSAGE_RATE, "message submission rate", any_code=True,
          limit="message_rate",
          cause="The mailbox submitted more messages a minute than allowed (30 for SMTP client submission).",
          fix="Send fewer messages a minute from {mailbox} (queue and retry later), or spread the devices and "
              "applications over more mailboxes."),
    _rule("restricted_sender", REPLY_RESTRICTED_SENDER, "bad outbound sender",
          cause="The account is on the Restricted entities list: Microsoft blocked it from sending after it sent "
                "spam or went over the outbound limits, usually because its password leaked.",
          fix="Reset the password of {mailbox} and check it for compromise (sign-in logs, inbox rules, "
              "forwarding); then an administrator releases it (Microsoft Defender portal > Email & "
              "collaboration > Review > Restricted entities, or Remove-BlockedSenderAddress -SenderAddress "
              "{mailbox}). Only an administrator can release it."),
    _rule("tls_version_unsupported", REPLY_OLD_TLS, "tls 1.0 and 1.1",
          cause="The client negotiated TLS 1.0 or 1.1 at STARTTLS; Microsoft 365 accepts only TLS 1.2 or later.",
          fix="Update the device's firmware (or the application's runtime) so it speaks TLS 1.2; where it "
              "cannot, send through a local relay that does and that submits to Microsoft 365."),
    _rule("relay_access_denied", REPLY_RELAY_DENIED, "tenantattribution", blockers=("no_connector_covers",),
          other_replies=(REPLY_RELAY_DENIED + " SMTP.",),
          cause="The message came without SMTP AUTH to the tenant's MX endpoint and no inbound connector matches "
                "this sending IP address or certificate, so Microsoft 365 does not relay it to recipients outside "
                "the organisation.",
          fix="Add the device's public IP address (the one its traffic leaves the network from) to the "
              "sender_ip_addresses of an inbound connector of type OnPremises with module inbound_connector "
              "(m365ops.smtp_auth.inbound_connector), or name the certificate the device presents in its "
              "tls_sender_certificate_name; or authenticate the device with SMTP AUTH on port 587."),
)

# Failures that happen before any reply can be read. Each is a distinct result of the submission test.
TRANSPORT_FAILURES = {
    "dns_failure": {
        "cause": "The host name of the submission endpoint does not resolve from where the test ran.",
        "fix": "Check the DNS servers the device uses and the spelling of the host (smtp.office365.com).",
    },
    "connection_refused": {
        "cause": "Nothing accepts connections on that host and port (the port is closed or rejected).",
        "fix": "Check the port (587 for STARTTLS submission) and that no local firewall rejects it.",
    },
    "network_unreachable": {
        "cause": "The network has no route to the submission endpoint.",
        "fix": "Check the device network's default gateway and routing towards the internet.",
    },
    "timeout": {
        "cause": "The endpoint did not answer in time: a firewall drops the traffic on that port, or the network "
                 "is too slow.",
        "fix": "Allow outbound TCP 587 to smtp.office365.com from the device network (many ISPs and firewalls "
               "block SMTP ports), or raise the timeout.",
    },
    "connection_closed": {
        "cause": "The server closed the connection without a reply.",
        "fix": "Check for a proxy or firewall that intercepts SMTP; run the test again to rule out a transient "
               "failure.",
    },
    "starttls_not_offered": {
        "cause": "The server did not offer STARTTLS, so the password would travel in clear text; the test stopped.",
        "fix": "Make sure the test reaches smtp.office365.com on port 587 and not a local relay or an SMTP "
               "inspecting firewall that strips STARTTLS.",
    },
    "tls_certificate": {
        "cause": "The server's TLS certificate could not be validated (unknown issuer, expired, or issued for "
                 "another name).",
        "fix": "Connect by the name the certificate is issued for (smtp.office365.com); behind TLS inspection, "
               "give the inspecting CA with ca_path.",
    },
    "tls_failure": {
        "cause": "The TLS handshake failed (no common protocol version or cipher, or the connection was reset "
                 "during the handshake).",
        "fix": "Microsoft requires TLS 1.2 or later; check for a middlebox that interferes with TLS.",
    },
    "source_address_unavailable": {
        "cause": "The source address to connect from is not an address of this host, so no connection was made.",
        "fix": "Give source_address as one of the addresses of the host the test runs on (or leave it out).",
    },
    "auth_not_offered": {
        "cause": "After STARTTLS the server did not offer the authentication mechanism the test needs.",
        "fix": "Make sure the test reaches smtp.office365.com (a local relay does not offer AUTH LOGIN / XOAUTH2).",
    },
    "protocol_error": {
        "cause": "The server answered something that is not SMTP.",
        "fix": "Check that the host and port are Microsoft's submission endpoint and not another service.",
    },
    "token_failure": {
        "cause": "No OAuth token could be obtained for XOAUTH2.",
        "fix": "Check the app's tenant, client id and secret or certificate, and that it has SMTP.SendAsApp.",
    },
}


class Reply(NamedTuple):
    """One SMTP reply split into its parts.

    ``text`` is the human text without the enhanced status code or the server suffix; ``line`` is the
    reply as one line without the suffix, which is what the table's reply lines are compared with.
    """

    code: int
    enhanced_status_code: str | None
    text: str
    server_suffix: str | None

    @property
    def line(self):
        return " ".join([str(self.code)] + [part for part in (self.enhanced_status_code, self.text) if part])

    def to_dict(self):
        return dict(self._asdict(), line=self.line)


def _to_text(message):
    if isinstance(message, bytes):
        return message.decode("utf-8", errors="replace")
    return message or ""


def parse_reply(code, message):
    """Split a reply as smtplib hands it over (code, message bytes of possibly several lines)."""
    # A multi-line reply repeats the enhanced code on each line; joining the lines gives one sentence.
    lines = [line.strip() for line in _to_text(message).splitlines() if line.strip()]
    enhanced = None
    texts = []
    for line in lines:
        found = _ENHANCED_STATUS.match(line)
        if found:
            enhanced = enhanced or found.group(1)
            line = line[found.end():]
        texts.append(line.strip())
    text = " ".join(part for part in texts if part)
    suffix = None
    found = _SERVER_SUFFIX.search(text)
    if found:
        suffix = found.group(1)
        text = text[:found.start()].rstrip()
    return Reply(int(code) if code is not None else None, enhanced, text, suffix)


def parse_reply_line(line):
    """Split a single reply line such as ``535 5.7.3 Authentication unsuccessful``."""
    line = _to_text(line).strip()
    code, _separator, rest = line.partition(" ")
    return parse_reply(int(code), rest)


def _status_subject(enhanced):
    """``class.subject`` of an enhanced status code (RFC 3463), the part that stays when the detail varies."""
    return ".".join((enhanced or "").split(".")[:2])


def _rule_matches(rule, reply):
    if rule["code"] is not None and rule["code"] != reply.code:
        return False
    if rule["any_code"]:
        if _status_subject(rule["enhanced"]) != _status_subject(reply.enhanced_status_code):
            return False
    elif rule["enhanced"] != reply.enhanced_status_code:
        return False
    text = reply.text.lower()
    return rule["match"] is None or any(fragment in text for fragment in rule["match"])


def _render(value, mailbox, app_id=None):
    if isinstance(value, str):
        return value.replace("{mailbox}", mailbox or "<mailbox>").replace("{app_id}", app_id or "<app id>")
    if isinstance(value, (list, tuple)):
        return [_render(item, mailbox, app_id) for item in value]
    if isinstance(value, dict):
        return dict((key, _render(item, mailbox, app_id)) for key, item in value.items())
    return value


def describe_blocker(name, mailbox=None, value=None, detail=None, app_id=None):
    """The blocker ``name`` as reported to an operator: setting, value, Microsoft's reply and the fix (``mailbox``
    and ``app_id``, the relay app of an OAuth mailbox, fill the fix in)."""
    blocker = BLOCKERS[name]
    replies = [blocker["reply"]] + list(blocker["other_replies"])
    described = {
        "blocker": name,
        "setting": blocker["setting"],
        "value": value,
        "reply": blocker["reply"],
        "replies": replies,
        "auth_modes": list(blocker["auth_modes"]),
        "cause": blocker["cause"],
        "fix": _render(blocker["fix"], mailbox, app_id),
        "fix_module": blocker["module"],
        "fix_arguments": _render(blocker["arguments"], mailbox, app_id),
        "fix_role_variables": list(blocker["role_variables"]),
    }
    if blocker.get("alternative_module"):
        described["alternative_fix_module"] = blocker["alternative_module"]
        described["alternative_fix_arguments"] = _render(blocker["alternative_arguments"], mailbox, app_id)
    if detail:
        described["detail"] = detail
    return described


def _rule_diagnosis(rule, reply, mailbox):
    blockers = list(rule["blockers"])
    if len(blockers) == 1 and "cause" not in rule:
        # Single-cause replies take their words from the blocker, so both tools say the same thing.
        blocker = BLOCKERS[blockers[0]]
        cause, fix = blocker["cause"], blocker["fix"]
    else:
        cause, fix = rule["cause"], rule["fix"]
    known = [line.lower() for line in (rule["reply"],) + rule["other_replies"] if line]
    return {
        "key": rule["key"],
        "ok": rule["ok"],
        "known_reply": rule["reply"],
        "matches_known_reply": reply.line.lower() in known,
        "cause": _render(cause, mailbox),
        "fix": _render(fix, mailbox),
        "blockers": blockers,
        "limit": rule["limit"],
    }


# RFC 3463: the class (first digit) and the subject (second number) of an enhanced status code, for a reply
# the table has never seen.
STATUS_CLASSES = {
    "2": "success",
    "4": "persistent transient failure (retrying later may succeed)",
    "5": "permanent failure (retrying the same thing fails again)",
}
STATUS_SUBJECTS = {
    "0": ("other", "The reply gives no category; read its text."),
    "1": ("addressing", "An address in the envelope (MAIL FROM or RCPT TO) was refused: check the sender and "
                        "recipient addresses the device uses."),
    "2": ("mailbox", "The sending or receiving mailbox refused the message (full, disabled, or over a quota): "
                     "check the mailbox in the Exchange admin center."),
    "3": ("mail system", "The mail system could not take the message (overloaded, or a limit of the system): "
                         "retry later and send less at once."),
    "4": ("network and routing", "The message could not be routed (a network, DNS or routing problem, or a rate "
                                 "limit): retry later; check the host and port the device uses."),
    "5": ("mail delivery protocol", "The client did something the protocol does not allow there (a command out of "
                                    "order, bad syntax): check the device's SMTP settings and update its firmware."),
    "6": ("message content or media", "The message itself was refused (size, format, or content): send a smaller "
                                      "or plainer test message."),
    "7": ("security or policy", "A security or policy setting refused it (authentication, permissions, TLS, "
                                "connectors): run smtp_auth_info for the mailbox."),
}


def status_family(enhanced):
    """What the class and subject of ``enhanced`` (``x.y.z``) say, or None when it is not one."""
    parts = (enhanced or "").split(".")
    if len(parts) != 3 or parts[0] not in STATUS_CLASSES:
        return None
    subject, advice = STATUS_SUBJECTS.get(parts[1], ("unassigned", "The reply names no known category; read its text."))
    return {"class": parts[0], "class_meaning": STATUS_CLASSES[parts[0]], "subject": parts[1],
            "subject_meaning": subject, "advice": advice}


def _fallback_diagnosis(reply):
    """A reply no rule knows: an honest category from its enhanced status code (or its code class alone)."""
    family = status_family(reply.enhanced_status_code)
    if family is None:
        cause = ("The server answered %s, which is not one of the replies this collection knows, and it carries no "
                 "enhanced status code to classify it." % reply.line)
        fix = "Read the reply text; run smtp_auth_info for the mailbox."
    else:
        cause = ("The server answered %s, which is not one of the replies this collection knows. By its enhanced "
                 "status code (a fallback from RFC 3463, not a diagnosis of this exact reply) it is a %s about %s."
                 % (reply.line, family["class_meaning"], family["subject_meaning"]))
        fix = family["advice"] + " The reply text says more."
    return {
        "key": "unrecognised_reply",
        "ok": False,
        "known_reply": None,
        "matches_known_reply": False,
        "cause": cause,
        "fix": fix,
        "blockers": [],
        "limit": None,
        "fallback": True,
        "family": family,
    }


def diagnose_reply(code, message, mailbox=None):
    """Map a reply (code and text, with or without a server suffix) to its cause and fix.

    Always returns a diagnosis; a failure the table does not know is ``key: unrecognised_reply`` with
    ``fallback: true`` and the category of its enhanced status code in ``family`` (RFC 3463), so a new
    Microsoft wording degrades to an honest category, not to a crash.
    """
    reply = code if isinstance(code, Reply) else parse_reply(code, message)
    embedded = _embedded_refusal(reply)
    if embedded is not None:
        diagnosis = diagnose_reply(embedded, None, mailbox)
        diagnosis["embedded_in"] = reply.line
        diagnosis["cause"] = ("Microsoft refused MAIL FROM with %s %s because the AUTH before it failed with: %s. %s"
                              % (reply.code, reply.enhanced_status_code, embedded.line, diagnosis["cause"]))
        return diagnosis
    for rule in REPLY_RULES:
        if _rule_matches(rule, reply):
            return _rule_diagnosis(rule, reply, mailbox)
    if reply.code is not None and 200 <= reply.code < 400:
        return {"key": "accepted", "ok": True, "known_reply": None, "matches_known_reply": False,
                "cause": "The server accepted the step.", "fix": "Nothing to fix.", "blockers": [], "limit": None}
    return _fallback_diagnosis(reply)


def _embedded_refusal(reply):
    """The AUTH refusal a ``530 5.7.57 ... Error: 535 5.7.139 ...`` carries inside (field captures show it),
    which is the real cause; None for any other reply."""
    if reply.code != 530 or reply.enhanced_status_code != "5.7.57":
        return None
    found = _EMBEDDED_REPLY.search(reply.text or "")
    return parse_reply_line(found.group(1)) if found else None


def diagnose_transport_failure(kind, detail=None):
    """The diagnosis for a failure that has no SMTP reply (DNS, refused port, timeout, TLS, ...)."""
    failure = TRANSPORT_FAILURES[kind]
    cause = failure["cause"]
    if detail:
        cause = "%s (%s)" % (cause, detail)
    return {
        "key": kind,
        "ok": False,
        "known_reply": None,
        "matches_known_reply": False,
        "cause": cause,
        "fix": failure["fix"],
        "blockers": [],
        "limit": None,
    }


# ---- connector relay: which inbound connector could have matched ------------------------------------------------

RELAY_CONNECTOR_TYPE = "OnPremises"
NEW_CONNECTOR_NAME = "Device relay"


def _connector_lists(connector, address):
    """Whether ``address`` falls in one of the connector's SenderIPAddresses entries (an address or CIDR range)."""
    return bool(address) and bool(connectors.covers(connector.get("sender_ip_addresses"), address))


def _relays(connector):
    return bool(connector.get("enabled")) and connector.get("connector_type") == RELAY_CONNECTOR_TYPE


def _connector_words(connector):
    state = "enabled" if connector["enabled"] else "disabled"
    matches = []
    if connector["sender_ip_addresses"]:
        matches.append("lists %s" % ", ".join(connector["sender_ip_addresses"]))
    if connector["tls_sender_certificate_name"]:
        matches.append("matches the certificate name %s" % connector["tls_sender_certificate_name"])
    return "'%s' (%s, %s) %s" % (connector["name"], connector["connector_type"], state,
                                 " and ".join(matches) or "lists no address and no certificate")


def _fix_arguments(connectors, source):
    """inbound_connector arguments that add ``source`` to the first relaying connector (keeping what it has, since
    the module sets exactly what it is given), or create one."""
    target = next((connector for connector in connectors if _relays(connector)), None)
    if target is None:
        return {"name": NEW_CONNECTOR_NAME, "sender_ip_addresses": [source], "state": "present"}
    arguments = {"name": target["name"], "sender_ip_addresses": list(target["sender_ip_addresses"]) + [source],
                 "sender_domains": list(target.get("sender_domains") or ["*"]), "state": "present"}
    if target.get("tls_sender_certificate_name"):
        arguments["tls_sender_certificate_name"] = target["tls_sender_certificate_name"]
    return arguments


def explain_relay_denied(diagnosis, connectors, source_address, unread_reason=None):
    """The ``relay_access_denied`` diagnosis told which of the tenant's inbound connectors (parsed records of
    Get-InboundConnector, None when they could not be read, ``unread_reason`` saying why) list ``source_address``,
    the local address the test connected from. Any other diagnosis is returned as it is."""
    if diagnosis.get("key") != "relay_access_denied":
        return diagnosis
    diagnosis = dict(diagnosis, source_address=source_address)
    source = source_address or "(unknown)"
    if connectors is None:
        diagnosis.update(connectors_read=False, connectors=None, source_address_listed=None)
        diagnosis["cause"] += (" The tenant's inbound connectors could not be read (%s), so which connectors exist "
                               "and whether one lists %s is not known." % (unread_reason or "not asked", source))
        return diagnosis
    described = [dict((key, connector.get(key)) for key in (
        "name", "connector_type", "enabled", "sender_ip_addresses", "tls_sender_certificate_name", "sender_domains"))
        for connector in connectors]
    for connector in described:
        connector["sender_ip_addresses"] = list(connector["sender_ip_addresses"] or [])
        connector["lists_source_address"] = _connector_lists(connector, source_address)
    listed = [connector for connector in described if connector["lists_source_address"]]
    relaying = [connector for connector in listed if _relays(connector)]
    diagnosis.update(connectors_read=True, connectors=described, source_address_listed=bool(relaying))

    if described:
        sentences = ["The tenant's inbound connectors: %s." % "; ".join(map(_connector_words, described))]
    else:
        sentences = ["The tenant has no inbound connector."]
    names = ", ".join("'%s'" % connector["name"] for connector in relaying or listed)
    if relaying:
        sentences.append("The source address %s is listed in %s, yet the relay was refused: the connector's tenant "
                         "is found by the sender's domain, so it must be an accepted domain of this tenant, and "
                         "the traffic must reach Microsoft 365 from that address." % (source, names))
        fix = ("Send from an address of one of this tenant's accepted domains, and check which public address the "
               "device network's traffic leaves from.")
    elif listed:
        sentences.append("The source address %s is listed only in %s, which does not relay: only an enabled "
                         "connector of type %s does." % (source, names, RELAY_CONNECTOR_TYPE))
        fix = ("Enable %s (module inbound_connector, enabled: true, which also makes it %s), or list the address in "
               "an enabled one." % (names, RELAY_CONNECTOR_TYPE))
    else:
        sentences.append("The source address %s is not among them." % source)
        arguments = _fix_arguments(described, source)
        diagnosis.update(fix_module="m365ops.smtp_auth.inbound_connector", fix_arguments=arguments)
        fix = ("Add the address the device sends from (behind NAT, its network's public address) to a connector's "
               "sender_ip_addresses with module inbound_connector (m365ops.smtp_auth.inbound_connector): name: %s, "
               "sender_ip_addresses: [%s] (the module sets exactly the addresses it is given). Or authenticate the "
               "device with SMTP AUTH on port 587." % (arguments["name"], ", ".join(arguments["sender_ip_addresses"])))
    address = _parsed_address(source_address)
    if address is not None and address.version == 6:
        sentences.append("%s is an IPv6 address, which inbound connectors do not support: the device must send "
                         "over IPv4." % source)
    elif address is not None and not address.is_global:
        sentences.append("%s is not a public address: Microsoft 365 sees the public address the device network's "
                         "traffic leaves from (behind NAT), and that is the address a connector must list."
                         % source)
    diagnosis["cause"] += " " + " ".join(sentences)
    diagnosis["fix"] = fix
    return diagnosis


def _parsed_address(text):
    try:
        return ipaddress.ip_address(text)
    except (TypeError, ValueError):
        return None
