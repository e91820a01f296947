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
  - With O(auth_mode=connector) it tests the other path, relay through an inbound connector, as a device that
    cannot do SMTP AUTH sends - no AUTH at all, to the tenant's MX endpoint on port 25 (by default
    C(<domain with dashes>.mail.protection.outlook.com) of the domain of O(sender), or of O(relay_domain)), with
    STARTTLS when the server offers it (RV(starttls_offered), RV(starttls_used)), from the address the device sends
    from (O(source_address)). Microsoft 365 decides at C(RCPT TO); in check mode the test stops there and sends no
    message. A C(550 5.7.64 TenantAttribution) refusal is diagnosed as no inbound connector matching the sending
    address or certificate; when the connection options are given it also reads the tenant's inbound connectors
    (C(Get-InboundConnector)) and names them, their sender addresses and whether the source address is among them.
    The relay test itself never needs them.
  - Run it with C(delegate_to) on a host in the device's network to see what the device sees (firewalls that
    block port 587 or 25, TLS inspection, the public address connector relay comes from). Only O(auth_mode=oauth) without O(access_token) needs C(msal) and
    C(requests) there.
author:
  - m365ops.smtp_auth maintainers (@m365ops)
options:
  host:
    description:
      - The submission endpoint.
      - By default the one of O(cloud) - V(smtp.office365.com) (global), V(smtp.office365.us) (both US
        government clouds) or V(smtp.partner.outlook.cn) (China).
      - For O(auth_mode=connector), by default the tenant's MX endpoint in the global cloud - the domain of
        O(relay_domain) or O(sender) with its dots replaced by dashes, followed by C(.mail.protection.outlook.com)
        (V(contoso-com.mail.protection.outlook.com) for V(contoso.com)). Give the host when the domain's MX record
        names another one, and in the other clouds.
    type: str
  port:
    description:
      - The port - by default V(587) (submission with STARTTLS), or V(25) for O(auth_mode=connector).
    type: int
  username:
    description:
      - The mailbox to authenticate as, by user principal name - the user name configured on the device.
      - Required except for O(auth_mode=connector), which does not use it.
    type: str
  auth_mode:
    description:
      - V(basic) authenticates with O(password) (C(AUTH LOGIN)), as most devices do.
      - V(oauth) authenticates with an OAuth token (C(XOAUTH2)) - O(access_token), or one requested for
        C(https://outlook.office365.com/.default) with the connection options (the app needs C(SMTP.SendAsApp)).
      - V(none) does not authenticate, like a device set up for anonymous mail; Microsoft then answers
        C(530 5.7.57) at C(MAIL FROM) (needs O(recipient)).
      - V(connector) relays through an inbound connector (see M(m365ops.smtp_auth.inbound_connector)) - no
        credentials are sent, the port is V(25), the host is the tenant's MX endpoint, and STARTTLS is used when
        offered but not required. Needs O(sender) and O(recipient); a recipient outside the organisation tests the
        connector, since the MX endpoint takes mail for the organisation's own domains from anyone.
    type: str
    choices: [basic, oauth, none, connector]
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
    description:
      - The C(MAIL FROM) and C(From) address. Defaults to O(username); another address tests Send As.
      - For O(auth_mode=connector), required - the address the device sends as; its domain picks the MX endpoint
        and the tenant whose connectors apply.
    type: str
  relay_domain:
    description:
      - For O(auth_mode=connector) without O(host), the accepted domain whose MX endpoint to send to, when it is
        not the domain of O(sender).
    type: str
  source_address:
    description:
      - The local IP address to connect from, one of this host's addresses (by default the one the system picks).
      - For O(auth_mode=connector), this is the address a connector must list - after NAT, the public address the
        device network's traffic leaves from is what Microsoft 365 sees. An address that is not an IP address is
        refused before connecting; one this host does not have ends in RV(status=source_address_unavailable).
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
        O(access_token), and to read the tenant's inbound connectors when connector relay is refused.
      - If not set, the value of the E(M365_TENANT_ID) environment variable is used.
    type: str
    required: false
  client_id:
    description:
      - Application (client) id of the app whose token is used for C(XOAUTH2). Only used for O(auth_mode=oauth)
        without O(access_token), and to read the tenant's inbound connectors when connector relay is refused (that
        app then needs C(Exchange.ManageAsApp) and an Exchange role that may read connectors).
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
  - Relay tests go to port 25, which many networks and ISPs block outbound; a timeout there is the network's
    answer, not Microsoft's.
seealso:
  - module: m365ops.smtp_auth.smtp_auth_info
  - module: m365ops.smtp_auth.inbound_connector
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

- name: Test the scanner's connector path from the scanner network, as the scanner sends (no AUTH, port 25)
  m365ops.smtp_auth.smtp_submission_test:
    auth_mode: connector
    sender: scanner@contoso.com
    recipient: archive@fabrikam.example
    source_address: 192.0.2.10
    # With the app's credentials a refusal names the tenant's inbound connectors and their addresses.
    tenant_id: contoso.onmicrosoft.com
    client_id: "{{ automation_app_id }}"
    client_secret: "{{ vault_automation_app_secret }}"
  delegate_to: jump-host.branch-office.example
  register: relay

- name: Say whether a connector lists the address the scanner sends from
  ansible.builtin.debug:
    msg: "{{ relay.summary }}"
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
      V(recipient_accepted) (O(auth_mode=connector) in check mode - the relay was accepted at C(RCPT TO)),
      V(refused) (the server answered with a refusal), V(limited) (a load test met a sending limit; see
      RV(load.first_limit)), or a failure with no reply - V(dns_failure),
      V(connection_refused), V(network_unreachable), V(timeout), V(connection_closed), V(starttls_not_offered),
      V(tls_certificate), V(tls_failure), V(auth_not_offered), V(protocol_error), V(token_failure),
      V(source_address_unavailable).
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
starttls_offered:
  description: Whether the server listed STARTTLS in its reply to EHLO; null when the test did not get that far.
  returned: always
  type: bool
  sample: true
starttls_used:
  description: Whether the session was upgraded with STARTTLS (with O(auth_mode=connector), only when offered).
  returned: always
  type: bool
  sample: true
source_address:
  description:
    - The local address the connection came from (O(source_address), or the one the system picked); null when no
      connection was made. Behind NAT Microsoft 365 sees another, public one.
  returned: always
  type: str
  sample: 192.0.2.10
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
    source_address:
      description: RV(source_address), the address compared with the connectors' sender addresses.
      type: str
      returned: for a C(550 5.7.64) relay refusal
    connectors_read:
      description:
        - Whether the tenant's inbound connectors were read. When not (no connection options, or the read failed),
          RV(diagnosis.cause) says why.
      type: bool
      returned: for a C(550 5.7.64) relay refusal
    connectors:
      description:
        - The tenant's inbound connectors - C(name), C(connector_type), C(enabled), C(sender_ip_addresses),
          C(tls_sender_certificate_name), C(sender_domains) and C(lists_source_address) (whether one of its
          addresses or ranges holds RV(source_address)); null when they were not read.
      type: list
      elements: dict
      returned: for a C(550 5.7.64) relay refusal
      sample:
        - name: Office scanners
          connector_type: OnPremises
          enabled: true
          sender_ip_addresses: [203.0.113.7]
          tls_sender_certificate_name: null
          sender_domains: ["*"]
          lists_source_address: false
    source_address_listed:
      description:
        - Whether an enabled connector of type C(OnPremises) lists RV(source_address); null when the connectors
          were not read.
      type: bool
      returned: for a C(550 5.7.64) relay refusal
    fix_module:
      description: The module that adds the source address to a connector, V(m365ops.smtp_auth.inbound_connector).
      type: str
      returned: for a C(550 5.7.64) relay refusal when no connector lists the source address
    fix_arguments:
      description:
        - Arguments for RV(diagnosis.fix_module) - the first enabled C(OnPremises) connector with its addresses
          and the source address (the module sets exactly the addresses it is given), or a new connector.
      type: dict
      returned: for a C(550 5.7.64) relay refusal when no connector lists the source address
      sample:
        name: Office scanners
        sender_ip_addresses: [203.0.113.7, 192.0.2.10]
        sender_domains: ["*"]
        state: present
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

from ansible_collections.m365ops.smtp_auth.plugins.module_utils import _inbound_connectors as inbound_connectors
from ansible_collections.m365ops.smtp_auth.plugins.module_utils.connection import CLOUDS
from ansible_collections.m365ops.smtp_auth.plugins.module_utils.errors import M365Error
from ansible_collections.m365ops.smtp_auth.plugins.module_utils.module_base import M365Module
from ansible_collections.m365ops.smtp_auth.plugins.module_utils.smtp_diagnosis import explain_relay_denied
from ansible_collections.m365ops.smtp_auth.plugins.module_utils._smtp_probe import (
    MX_PORT,
    SUBMISSION_PORT,
    ProbeSettings,
    failure_before_smtp,
    input_problems,
    load_errors,
    mx_host,
    relay_domain_of,
    run_load,
    run_probe,
    summarise,
)


def argument_spec():
    # The connection options only matter for requesting an OAuth token, or for reading the inbound connectors when
    # connector relay is refused; a password test needs none of them.
    return dict(
        host=dict(type="str"),
        port=dict(type="int"),
        username=dict(type="str"),
        auth_mode=dict(type="str", default="basic", choices=["basic", "oauth", "none", "connector"]),
        password=dict(type="str", no_log=True),
        access_token=dict(type="str", no_log=True),
        sender=dict(type="str"),
        recipient=dict(type="str"),
        subject=dict(type="str", default="SMTP AUTH test from m365ops.smtp_auth"),
        body=dict(type="str"),
        ehlo_name=dict(type="str"),
        source_address=dict(type="str"),
        relay_domain=dict(type="str"),
        messages=dict(type="int", default=1),
        connections=dict(type="int", default=1),
        time_limit=dict(type="int", default=120),
        fail_on_error=dict(type="bool", default=False),
    )


def endpoint(module):
    """Host and port: the options, else the submission endpoint of the cloud, or for connector relay the MX
    endpoint of the sender's domain on port 25."""
    params = module.params
    relay = params["auth_mode"] == "connector"
    port = params["port"] if params["port"] is not None else (MX_PORT if relay else SUBMISSION_PORT)
    if not relay:
        return params["host"] or CLOUDS[params["cloud"]].smtp_host, port
    if params["host"]:
        return params["host"], port
    if params["cloud"] != "global":
        module.fail("auth_mode=connector: the MX endpoint of cloud %s is not known to this module; give host (the "
                    "MX record of the domain)" % params["cloud"])
    return mx_host(relay_domain_of(params["sender"], params["relay_domain"])), port


def check_relay_inputs(module):
    params = module.params
    if params["auth_mode"] != "connector":
        return
    if params["username"] or params["password"] or params["access_token"]:
        module.warn("auth_mode=connector sends no credentials: username, password and access_token are not used")
    sender_domain = params["sender"].rpartition("@")[2].lower()
    if params["recipient"].rpartition("@")[2].lower() == sender_domain:
        module.warn("recipient %s is in the sender's own domain, which the MX endpoint accepts from any address, "
                    "connector or not; a recipient outside the organisation tests the connector" % params["recipient"])


def explain_relay_refusal(module, settings, result):
    """For a refused connector relay with connection credentials, name the tenant's inbound connectors and whether
    one lists the source address; reading them is never needed for the test itself."""
    if (result.get("diagnosis") or {}).get("key") != "relay_access_denied":
        return
    connectors, problem = None, module.sign_in_problem()
    if problem is None:
        try:
            connectors = inbound_connectors.read_connectors(module.exchange)
        except M365Error as error:
            problem = "Get-InboundConnector failed: %s" % error
    else:
        problem = "no connection to Microsoft 365: %s" % problem
    result["diagnosis"] = explain_relay_denied(result["diagnosis"], connectors, result["source_address"], problem)
    result["summary"] = summarise(settings, result)


def main():
    module = M365Module(
        argument_spec=argument_spec(),
        credentials_required=False,
        required_if=[("auth_mode", "basic", ("username", "password")), ("auth_mode", "oauth", ("username",)),
                     ("auth_mode", "none", ("username",)), ("auth_mode", "connector", ("sender", "recipient"))],
        supports_check_mode=True,
    )
    params = module.params
    problems = input_problems(params)
    if problems:
        module.fail("; ".join(problems))
    host, port = endpoint(module)
    if not 0 < port < 65536:
        module.fail("port must be between 1 and 65535, not %s" % port)
    if params["auth_mode"] == "none" and not params["recipient"]:
        module.fail("auth_mode=none tests anonymous submission, which happens at MAIL FROM: give recipient")
    check_relay_inputs(module)
    errors = load_errors(params["messages"], params["connections"], params["time_limit"], host, params["auth_mode"])
    if errors:
        module.fail("; ".join(errors))
    load = params["messages"] > 1 or params["connections"] > 1
    if load and not params["recipient"]:
        module.fail("messages and connections above 1 send test messages: give recipient")
    if not params["validate_certs"] and params["auth_mode"] == "connector":
        module.warn("validate_certs=false: the STARTTLS certificate of %s is not checked, so the test message may "
                    "reach an impostor" % host)
    elif not params["validate_certs"]:
        module.warn("validate_certs=false: the STARTTLS certificate of %s is not checked, so the credentials of %s "
                    "may reach an impostor" % (host, params["username"]))

    settings = ProbeSettings(
        host=host, port=port, username=params["username"], auth_mode=params["auth_mode"],
        password=params["password"], access_token=params["access_token"], sender=params["sender"],
        recipient=params["recipient"], subject=params["subject"], body=params["body"],
        send_message=not module.check_mode, timeout=params["timeout"], ca_path=params["ca_path"],
        validate_certs=params["validate_certs"], local_hostname=params["ehlo_name"],
        source_address=params["source_address"],
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
        explain_relay_refusal(module, settings, result)

    result["changed"] = bool(result["message_sent"])
    if params["fail_on_error"] and not result["ok"]:
        module.fail(result["summary"], **result)
    module.exit(**result)


if __name__ == "__main__":
    main()
