#!/usr/bin/python
# Copyright (c) 2026 m365ops.smtp_auth contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

DOCUMENTATION = r"""
module: smtp_submission_test
short_description: Submit mail through Microsoft 365 the way a printer does, and explain the answer
version_added: 1.0.0
description:
  - Connects to the submission endpoint of O(cloud) (V(smtp.office365.com:587) for the global cloud) unless O(host)
    and O(port) say otherwise,
    upgrades with STARTTLS and validates the server certificate, authenticates as O(username) with C(AUTH LOGIN)
    (O(password)) or C(XOAUTH2) (an OAuth token, given in O(access_token) or requested with the connection
    options), and optionally sends a test message to O(recipient).
  - Returns the full SMTP transcript with every authentication payload masked, the last reply (code, enhanced
    status code, text), and the diagnosis - the reply mapped to its cause and its fix - for every refusal
    Microsoft documents for SMTP AUTH (5.7.139 in all its forms, 5.7.3, 5.7.57, 5.7.60, 5.7.30) and for what comes
    after AUTH (the 4.3.2 connection limit, the 5.2.0 submission quota, Send As at the end of DATA, the 5.1.8
    restricted sender, 4.7.66 old TLS, 5.7.64 relay without a connector). A reply it does not know is classified by
    its enhanced status code (RFC 3463), marked as a fallback. The
    C([<frontend> <timestamp> <id>]) suffix newer servers append is split off into RV(server_suffix).
  - A DNS failure, a closed port, a timeout, a TLS failure and a server without STARTTLS each end in their own
    RV(status), never in a traceback.
  - The task does not fail when Microsoft refuses, because the refusal is the answer being sought; set
    O(fail_on_error=true) to fail it.
  - With O(messages) or O(connections) above 1 it sends that many test messages over that many parallel
    connections (one thread each, all opened and authenticated before any message is sent, as devices sharing a
    mailbox do), to show a device owner where Microsoft's limits bite - 3 concurrent connections and 30 messages
    a minute per mailbox - and reports each connection's and each message's reply and diagnosis, and the limit
    met first (RV(load)). Bounded - at most 100 messages over 10 connections within O(time_limit) - and only
    towards Microsoft's submission hosts or a loopback address.
  - Run it with C(delegate_to) on a host in the device's network to see what the device sees (firewalls that
    block port 587, TLS inspection). Only O(auth_mode=oauth) without O(access_token) needs C(msal) and
    C(requests) there.
author:
  - m365ops.smtp_auth maintainers (@m365ops)
options:
  host:
    description:
      - The submission endpoint.
      - By default the one of O(cloud) - V(smtp.office365.com) (global), V(smtp.office365.us) (both US
        government clouds) or V(smtp.partner.outlook.cn) (China).
    type: str
  port:
    description: The submission port (STARTTLS).
    type: int
    default: 587
  username:
    description: The mailbox to authenticate as, by user principal name - the user name configured on the device.
    type: str
    required: true
  auth_mode:
    description:
      - V(basic) authenticates with O(password) (C(AUTH LOGIN)), as most devices do.
      - V(oauth) authenticates with an OAuth token (C(XOAUTH2)) - O(access_token), or one requested for
        C(https://outlook.office365.com/.default) with the connection options (the app needs C(SMTP.SendAsApp)).
      - V(none) does not authenticate, like a device set up for anonymous mail; Microsoft then answers
        C(530 5.7.57) at C(MAIL FROM) (needs O(recipient)).
    type: str
    choices: [basic, oauth, none]
    default: basic
  password:
    description: The mailbox's password, for O(auth_mode=basic). Keep it in a vault.
    type: str
  access_token:
    description:
      - An OAuth access token for Exchange Online, for O(auth_mode=oauth). When not given, one is requested with
        O(tenant_id), O(client_id) and O(client_secret) or O(client_certificate_path).
    type: str
  sender:
    description: The C(MAIL FROM) and C(From) address. Defaults to O(username); another address tests Send As.
    type: str
  recipient:
    description:
      - Where to send a test message. Without it the test stops after authenticating.
    type: str
  subject:
    description:
      - Subject of the test message.
      - O(host), O(username), O(sender), O(recipient), O(subject) and O(ehlo_name) must each be one line, since a
        line break would start another SMTP command or header; one is refused before connecting. O(sender) and
        O(recipient) must be email addresses.
    type: str
    default: SMTP AUTH test from m365ops.smtp_auth
  body:
    description: Body of the test message; by default a sentence naming the module and the mailbox.
    type: str
  ehlo_name:
    description: The name announced in C(EHLO); by default this host's fully qualified name.
    type: str
  messages:
    description:
      - How many test messages to send (1 to 100), shared round-robin over O(connections). Above 1, O(recipient)
        is required and O(host) must be Microsoft's submission endpoint or a loopback address.
      - Each message's subject is O(subject) followed by its number, for example C((3/31)).
    type: int
    default: 1
  connections:
    description:
      - How many connections to open in parallel (1 to 10, at most O(messages)), each authenticated as O(username).
        Microsoft 365 accepts 3 at a time per mailbox; the fourth gets C(432 4.3.2).
    type: int
    default: 1
  time_limit:
    description:
      - Seconds the whole load test (O(messages) or O(connections) above 1) may take (1 to 600); messages not sent
        by then are reported as not sent. Each reply is also waited for at most O(timeout) seconds.
    type: int
    default: 120
  fail_on_error:
    description: Fail the task when the test does not succeed (the result is returned either way).
    type: bool
    default: false
  tenant_id:
    description:
      - The tenant, as its GUID or one of its domains. Only used to request a token for O(auth_mode=oauth) without
        O(access_token).
      - If not set, the value of the E(M365_TENANT_ID) environment variable is used.
    type: str
    required: false
  client_id:
    description:
      - Application (client) id of the app whose token is used for C(XOAUTH2). Only used for O(auth_mode=oauth)
        without O(access_token).
      - If not set, the value of the E(M365_CLIENT_ID) environment variable is used.
    type: str
    required: false
  ca_path:
    description:
      - PEM bundle of the certificate authorities to trust, for the STARTTLS certificate and for the token
        request, for example behind TLS inspection. Replaces the system store; validation stays on.
      - If not set, the value of the E(M365_CA_PATH) environment variable is used.
    type: path
  validate_certs:
    description:
      - Whether to validate the certificates of the submission endpoint and of the identity platform.
      - Turning it off sends the password to whoever answers; only for a throwaway lab. A warning says so.
    type: bool
    default: true
  timeout:
    description: Seconds to wait for the connection and for each reply (and for each HTTP response of a token request).
    type: int
    default: 30
extends_documentation_fragment:
  - m365ops.smtp_auth.connection
  - m365ops.smtp_auth.attributes.action_group
attributes:
  check_mode:
    support: full
    description: Connects and authenticates, but never sends a message.
  diff_mode:
    support: none
    description: Nothing is changed, so there is no diff.
notes:
  - The probe speaks SMTP with Python's C(smtplib); the transcript comes from its send and reply hooks.
  - "Basic authentication for SMTP AUTH is being retired (December 2026 for existing tenants); the answer then is
    C(550 5.7.30) and the fix is OAuth."
  - The task reports C(changed) when a test message was sent.
seealso:
  - module: m365ops.smtp_auth.smtp_auth_info
"""

EXAMPLES = r"""
- name: Try the printer's credentials from the printer's network
  m365ops.smtp_auth.smtp_submission_test:
    username: printer@contoso.com
    password: "{{ vault_printer_password }}"
    recipient: it-team@contoso.com
  delegate_to: jump-host.branch-office.example
  register: probe

- name: Say what happened
  ansible.builtin.debug:
    msg: "{{ probe.summary }}"

- name: Show where Microsoft's sending limits bite for a mailbox that several scanners share
  m365ops.smtp_auth.smtp_submission_test:
    username: scanner@contoso.com
    password: "{{ vault_scanner_password }}"
    recipient: it-team@contoso.com
    messages: 8
    connections: 4
  register: load

- name: Name the limit met first
  ansible.builtin.debug:
    msg: "{{ load.load.first_limit.description | default('no limit was met') }}"

- name: Test an application's OAuth path with the collection's app credentials
  m365ops.smtp_auth.smtp_submission_test:
    username: notify@contoso.com
    auth_mode: oauth
    tenant_id: contoso.onmicrosoft.com
    client_id: "{{ smtp_app_id }}"
    client_secret: "{{ vault_smtp_app_secret }}"
    fail_on_error: true
"""

RETURN = r"""
ok:
  description: Whether the test succeeded (authenticated, and the message was accepted when one was sent).
  returned: always
  type: bool
  sample: false
status:
  description:
    - How the test ended - V(sent), V(authenticated), V(connected) (O(auth_mode=none) without O(recipient)),
      V(refused) (the server answered with a refusal), V(limited) (a load test met a sending limit; see
      RV(load.first_limit)), or a failure with no reply - V(dns_failure),
      V(connection_refused), V(network_unreachable), V(timeout), V(connection_closed), V(starttls_not_offered),
      V(tls_certificate), V(tls_failure), V(auth_not_offered), V(protocol_error), V(token_failure).
  returned: always
  type: str
  sample: refused
stage:
  description: The step the test ended in - V(token), V(connect), V(ehlo), V(starttls), V(auth), V(mail), V(rcpt), V(data).
  returned: always
  type: str
  sample: auth
host:
  description: The endpoint tested.
  returned: always
  type: str
  sample: smtp.office365.com
port:
  description: The port tested.
  returned: always
  type: int
  sample: 587
auth_mode:
  description: The authentication used.
  returned: always
  type: str
  sample: basic
authenticated:
  description: Whether AUTH succeeded.
  returned: always
  type: bool
  sample: false
message_sent:
  description: Whether a test message was accepted.
  returned: always
  type: bool
  sample: false
message_id:
  description: The Message-ID of the test message, when one was sent.
  returned: always
  type: str
  sample: <170000000000.1234.5678@contoso.com>
tls_version:
  description: The TLS version negotiated by STARTTLS.
  returned: always
  type: str
  sample: TLSv1.3
reply_code:
  description: The SMTP code of the last reply.
  returned: always
  type: int
  sample: 535
enhanced_status_code:
  description: The enhanced status code of the last reply.
  returned: always
  type: str
  sample: 5.7.139
reply_text:
  description: The text of the last reply, without the enhanced status code and the server suffix.
  returned: always
  type: str
  sample: >-
    Authentication unsuccessful, SmtpClientAuthentication is disabled for the Mailbox.
    Visit https://aka.ms/smtp_auth_disabled for more information.
reply_line:
  description: Code, enhanced status code and text as one line, the form the diagnosis table knows.
  returned: always
  type: str
  sample: >-
    535 5.7.139 Authentication unsuccessful, SmtpClientAuthentication is disabled for the Mailbox.
    Visit https://aka.ms/smtp_auth_disabled for more information.
server_suffix:
  description: The C([<frontend> <timestamp> <id>]) suffix of the last reply, useful when opening a case with Microsoft.
  returned: always
  type: str
  sample: "[AM0PR02CA0001.eurprd02.prod.outlook.com 2026-02-03T10:11:12.345Z 08DE3A1B2C3D4E5F]"
error:
  description: What went wrong, for endings without a reply (DNS, TLS, timeout, ...).
  returned: always
  type: str
  sample: "timeout during connect with smtp.office365.com:587: timed out"
diagnosis:
  description: The ending mapped to its cause and fix.
  returned: always
  type: dict
  contains:
    key:
      description: Name of the diagnosis, for example V(mailbox_smtp_auth_disabled), V(criteria_not_met), V(timeout).
      type: str
      sample: mailbox_smtp_auth_disabled
    ok:
      description: Whether the reply is a success.
      type: bool
    known_reply:
      description: Microsoft's documented reply line for this diagnosis.
      type: str
    matches_known_reply:
      description: Whether the reply was exactly the documented line (apart from the server suffix).
      type: bool
    embedded_in:
      description:
        - "Returned when Microsoft answered C(530 5.7.57) with the refusal of the AUTH before it inside
          (C(... Error: 535 5.7.139 ...)); the diagnosis is then that inner refusal's, and this is the outer line."
      type: str
      returned: when the reply carried another reply inside
      sample: "530 5.7.57 Client not authenticated to send mail. Error: 535 5.7.139 Authentication unsuccessful, basic authentication is disabled."
    cause:
      description: Why this happens.
      type: str
    fix:
      description: What to do.
      type: str
    blockers:
      description: The settings that can produce this reply, as named by M(m365ops.smtp_auth.smtp_auth_info).
      type: list
      elements: str
      sample: [mailbox_smtp_auth_disabled]
    limit:
      description:
        - The sending limit the reply says was met - V(concurrent_connections) (3 per mailbox), V(message_rate)
          (30 messages a minute) or V(submission_quota) (30 messages a minute or 10,000 recipients a day); null
          for any other reply.
      type: str
      sample: concurrent_connections
    fallback:
      description:
        - Returned (true) for a failure reply the table does not know; the cause and fix then come from the class
          and subject of its enhanced status code (RV(diagnosis.family)), not from the exact reply.
      type: bool
      returned: for a reply the table does not know
    family:
      description:
        - What the enhanced status code says by RFC 3463 - C(class) (V(4) transient, V(5) permanent),
          C(class_meaning), C(subject) and C(subject_meaning) (addressing, mailbox, mail system, network and
          routing, mail delivery protocol, message content or media, security or policy) and C(advice); null when
          the reply has no enhanced status code.
      type: dict
      returned: for a reply the table does not know
transcript:
  description:
    - Every line sent (C(C:)) and received (C(S:)).
    - AUTH payloads, passwords and tokens are masked; the message body is summarised by its size.
  returned: always
  type: list
  elements: str
  sample:
    - "S: 220 ... Microsoft ESMTP MAIL Service ready"
    - "C: AUTH LOGIN ********"
    - "C: ********"
summary:
  description: One paragraph - what happened, why, what to do.
  returned: always
  type: str
load:
  description:
    - The load test, when O(messages) or O(connections) is above 1. The other keys then describe the message that
      decided the outcome - the first that met a limit, else the first refused - or else the last one accepted,
      or a connection that did not authenticate.
  returned: when O(messages) or O(connections) is above 1
  type: dict
  contains:
    messages_requested:
      description: O(messages).
      type: int
    connections_requested:
      description: O(connections).
      type: int
    connections_authenticated:
      description: How many connections authenticated.
      type: int
    time_limit:
      description: O(time_limit).
      type: int
    messages_sent:
      description: How many messages were accepted.
      type: int
    messages_refused:
      description: How many messages got a refusal.
      type: int
    messages_not_sent:
      description: How many messages were not tried (time limit, a connection that ended or did not authenticate, check mode) or failed below SMTP.
      type: int
    limits_met:
      description: Every sending limit a reply named (V(concurrent_connections), V(message_rate), V(submission_quota)).
      type: list
      elements: str
    first_limit:
      description:
        - The limit met first, in the order the replies came - C(limit), C(description) (for example V(3 concurrent
          connections per mailbox)), C(message), C(connection), C(reply_line), C(fix); null when none was met.
      type: dict
      sample:
        limit: concurrent_connections
        description: 3 concurrent connections per mailbox
        message: 4
        connection: 2
        reply_line: 432 4.3.2 STOREDRV.ClientSubmit; sender thread limit exceeded
    first_refusal:
      description:
        - The first message not accepted (refused, or failed below SMTP) - C(message), C(connection), C(status),
          C(reply_line), C(cause), C(fix); null when every message tried was accepted.
      type: dict
    connections:
      description:
        - One per connection, in order - the keys of a single test (C(status), C(stage), C(authenticated),
          C(reply_line), C(diagnosis), C(transcript), C(summary), ...) for opening and authenticating it, plus
          C(connection) (its number) and C(messages) (the numbers of the messages it was given).
      type: list
      elements: dict
    messages:
      description:
        - One per message, by number - C(message), C(connection), C(status) (V(sent), V(refused), V(not_sent) or a
          failure below SMTP such as V(connection_closed)), C(stage), C(reply_code), C(enhanced_status_code),
          C(reply_line), C(server_suffix), C(message_id), C(error) (why it was not sent) and C(diagnosis).
      type: list
      elements: dict
retries:
  description: Token requests retried because of throttling or unavailability (only with O(auth_mode=oauth)).
  returned: always
  type: list
  elements: dict
  sample: []
"""

from ansible_collections.m365ops.smtp_auth.plugins.module_utils.connection import CLOUDS
from ansible_collections.m365ops.smtp_auth.plugins.module_utils.errors import M365Error
from ansible_collections.m365ops.smtp_auth.plugins.module_utils.module_base import M365Module
from ansible_collections.m365ops.smtp_auth.plugins.module_utils._smtp_probe import (
    ProbeSettings,
    failure_before_smtp,
    input_problems,
    load_errors,
    run_load,
    run_probe,
)


def argument_spec():
    # The connection options only matter for requesting an OAuth token; a password test needs none of them.
    return dict(
        host=dict(type="str"),
        port=dict(type="int", default=587),
        username=dict(type="str", required=True),
        auth_mode=dict(type="str", default="basic", choices=["basic", "oauth", "none"]),
        password=dict(type="str", no_log=True),
        access_token=dict(type="str", no_log=True),
        sender=dict(type="str"),
        recipient=dict(type="str"),
        subject=dict(type="str", default="SMTP AUTH test from m365ops.smtp_auth"),
        body=dict(type="str"),
        ehlo_name=dict(type="str"),
        messages=dict(type="int", default=1),
        connections=dict(type="int", default=1),
        time_limit=dict(type="int", default=120),
        fail_on_error=dict(type="bool", default=False),
    )


def main():
    module = M365Module(
        argument_spec=argument_spec(),
        credentials_required=False,
        required_if=[("auth_mode", "basic", ("password",))],
        supports_check_mode=True,
    )
    params = module.params
    host = params["host"] or CLOUDS[params["cloud"]].smtp_host
    if not 0 < params["port"] < 65536:
        module.fail("port must be between 1 and 65535, not %s" % params["port"])
    problems = input_problems(params)
    if problems:
        module.fail("; ".join(problems))
    if params["auth_mode"] == "none" and not params["recipient"]:
        module.fail("auth_mode=none tests anonymous submission, which happens at MAIL FROM: give recipient")
    errors = load_errors(params["messages"], params["connections"], params["time_limit"], host, params["auth_mode"])
    if errors:
        module.fail("; ".join(errors))
    load = params["messages"] > 1 or params["connections"] > 1
    if load and not params["recipient"]:
        module.fail("messages and connections above 1 send test messages: give recipient")
    if not params["validate_certs"]:
        module.warn("validate_certs=false: the STARTTLS certificate of %s is not checked, so the credentials of %s "
                    "may reach an impostor" % (host, params["username"]))

    settings = ProbeSettings(
        host=host, port=params["port"], username=params["username"], auth_mode=params["auth_mode"],
        password=params["password"], access_token=params["access_token"], sender=params["sender"],
        recipient=params["recipient"], subject=params["subject"], body=params["body"],
        send_message=not module.check_mode, timeout=params["timeout"], ca_path=params["ca_path"],
        validate_certs=params["validate_certs"], local_hostname=params["ehlo_name"],
    )

    result = None
    if params["auth_mode"] == "oauth" and not params["access_token"]:
        try:
            settings.access_token = module.token(module.settings.endpoints.exchange_scope)
        except M365Error as error:
            result = failure_before_smtp(settings, "token", "token_failure", error)
    if result is None and load:
        result = run_load(settings, params["messages"], params["connections"], params["time_limit"])
    elif result is None:
        result = run_probe(settings)

    result["changed"] = bool(result["message_sent"])
    if params["fail_on_error"] and not result["ok"]:
        module.fail(result["summary"], **result)
    module.exit(**result)


if __name__ == "__main__":
    main()
