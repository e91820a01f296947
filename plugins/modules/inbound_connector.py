#!/usr/bin/python
# Copyright (c) 2026 m365ops.smtp_auth contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

DOCUMENTATION = r"""
module: inbound_connector
short_description: Relay devices that cannot authenticate through an Exchange Online inbound connector
version_added: 1.2.0
description:
  - Reads the connector with C(Get-InboundConnector) and creates it (C(New-InboundConnector)), changes the settings
    that differ (C(Set-InboundConnector)) or removes it (C(Remove-InboundConnector)).
  - The connector is of type C(OnPremises). Exchange Online then accepts mail sent without SMTP AUTH to the
    tenant's MX endpoint (C(<domain-with-dashes>.mail.protection.outlook.com), port 25) from the listed public
    addresses, or from a sender presenting the named certificate, also to recipients outside the organisation.
    Without a matching connector such a device gets C(550 5.7.64 TenantAttribution; Relay Access Denied).
  - This is Microsoft's way for scanners and printers that can do neither OAuth nor, after Basic auth for SMTP AUTH
    is removed, a password.
  - Every address is checked before any request is sent.
author:
  - m365ops.smtp_auth maintainers (@m365ops)
options:
  name:
    description:
      - Name of the inbound connector.
    type: str
    required: true
  sender_ip_addresses:
    description:
      - The public IPv4 addresses the devices send from, each a single address or a CIDR range from V(/24) to
        V(/32), as Microsoft's C(New-InboundConnector) reference allows. IPv6 addresses are refused, naming them.
      - A private, loopback or other non-public address is accepted with a warning, since Exchange Online only ever
        sees the public address a device's traffic leaves from.
      - With O(state=present), this or O(tls_sender_certificate_name) is required. An empty list removes every
        address.
    type: list
    elements: str
  tls_sender_certificate_name:
    description:
      - The domain (V(*.contoso.com) for a domain and its subdomains) in the certificate the sending server
        presents. When set, C(RequireTls) is set too, as the certificate is only checked over TLS.
    type: str
  sender_domains:
    description:
      - The sender domains the connector accepts mail for; V(*) is every domain.
    type: list
    elements: str
    default: ['*']
  enabled:
    description:
      - Whether the connector is enabled.
    type: bool
    default: true
  state:
    description:
      - V(present) makes sure the connector exists with these settings; V(absent) removes it.
    type: str
    choices: [absent, present]
    default: present
extends_documentation_fragment:
  - m365ops.smtp_auth.connection
  - m365ops.smtp_auth.attributes.action_group
attributes:
  check_mode:
    support: full
    description: Reads the connector and reports what would change; sends no writing request.
  diff_mode:
    support: full
    description: Shows the connector's settings before and after.
notes:
  - "Permissions: Exchange.ManageAsApp and the Exchange Administrator role."
  - Creating inbound connectors is restricted in Microsoft 365 E5 developer subscriptions.
seealso:
  - module: m365ops.smtp_auth.smtp_submission_test
"""

EXAMPLES = r"""
- name: Let the office's scanners relay from its public address
  m365ops.smtp_auth.inbound_connector:
    name: Office scanners
    sender_ip_addresses:
      - 203.0.113.10
      - 198.51.100.0/28

- name: Relay by certificate instead of address
  m365ops.smtp_auth.inbound_connector:
    name: Print server
    tls_sender_certificate_name: print.contoso.com

- name: Remove the connector once no device uses it
  m365ops.smtp_auth.inbound_connector:
    name: Office scanners
    state: absent
"""

RETURN = r"""
before:
  description: The connector before the task; null when it did not exist.
  returned: success
  type: dict
  sample: {"name": "Office scanners", "connector_type": "OnPremises", "enabled": true,
           "sender_ip_addresses": ["203.0.113.10"], "tls_sender_certificate_name": null, "sender_domains": ["*"],
           "require_tls": false}
  contains:
    name:
      description: Name of the connector.
      type: str
    connector_type:
      description: C(OnPremises) or C(Partner).
      type: str
    enabled:
      description: Whether the connector is enabled.
      type: bool
    sender_ip_addresses:
      description: The addresses, sorted, a host as C(a.b.c.d) and a range as C(network/prefix).
      type: list
      elements: str
    tls_sender_certificate_name:
      description: The certificate's domain, in lower case, or null.
      type: str
    sender_domains:
      description: The sender domains, sorted, in lower case (C(smtp:*;1) is read as C(*)).
      type: list
      elements: str
    require_tls:
      description: Whether the connector requires TLS.
      type: bool
after:
  description: The connector after the task (in check mode, what it would be); null when it is absent.
  returned: success
  type: dict
  sample: {"name": "Office scanners", "connector_type": "OnPremises", "enabled": true,
           "sender_ip_addresses": ["198.51.100.0/28", "203.0.113.10"], "tls_sender_certificate_name": null,
           "sender_domains": ["*"], "require_tls": false}
retries:
  description: Requests retried because of throttling or unavailability.
  returned: always
  type: list
  elements: dict
  sample: []
error:
  description: What failed, when the task failed because of Microsoft 365.
  returned: failure
  type: dict
  sample: {"type": "ExchangeCommandError", "status": 400, "cmdlet": "New-InboundConnector"}
"""

from ansible_collections.m365ops.smtp_auth.plugins.module_utils import _inbound_connectors as connectors
from ansible_collections.m365ops.smtp_auth.plugins.module_utils.module_base import M365Module


def checked_addresses(module):
    """The sender addresses in canonical form, sorted; fails naming every address Exchange Online refuses."""
    name, addresses = module.params["name"], module.params["sender_ip_addresses"] or []
    problems = [problem for problem in map(connectors.address_problem, addresses) if problem]
    if problems:
        module.fail("Inbound connector '%s': Exchange Online refuses these sender_ip_addresses: %s. It accepts IPv4 "
                    "addresses and CIDR ranges from /24 to /32." % (name, "; ".join(problems)))
    addresses = sorted({connectors.canonical_address(address) for address in addresses})
    for address in connectors.non_public(addresses):
        module.warn("Inbound connector '%s': %s is not a public address; Exchange Online sees the public address a "
                    "device's traffic leaves from, so it may never match." % (name, address))
    return addresses


def desired_connector(module, before, addresses):
    """What the connector should be, in the shape of ``before`` (None for absent)."""
    params = module.params
    if params["state"] == "absent":
        return None
    certificate = connectors.certificate_name(params["tls_sender_certificate_name"])
    return {"name": before["name"] if before else params["name"], "connector_type": connectors.CONNECTOR_TYPE,
            "enabled": params["enabled"], "sender_ip_addresses": addresses, "tls_sender_certificate_name": certificate,
            "sender_domains": sorted({connectors.sender_domain(domain) for domain in params["sender_domains"]}),
            "require_tls": True if certificate else bool(before and before["require_tls"])}


def manage(module):
    addresses = checked_addresses(module) if module.params["state"] == "present" else []
    before = connectors.read_connector(module.exchange, module.params["name"])
    after = desired_connector(module, before, addresses)
    changed = before != after
    if changed and not module.check_mode:
        if before is None:
            command = connectors.new_command(after)
        elif after is None:
            command = connectors.remove_command(before["name"])
        else:
            command = connectors.set_command(before, after)
        command.run(module.exchange)
    return {"changed": changed, "before": before, "after": after,
            "diff": {"before": before or {}, "after": after or {}}}


def main():
    module = M365Module(
        argument_spec=dict(
            name=dict(type="str", required=True),
            sender_ip_addresses=dict(type="list", elements="str"),
            tls_sender_certificate_name=dict(type="str"),
            sender_domains=dict(type="list", elements="str", default=["*"]),
            enabled=dict(type="bool", default=True),
            state=dict(type="str", default="present", choices=["absent", "present"]),
        ),
        required_if=[("state", "present", ("sender_ip_addresses", "tls_sender_certificate_name"), True)],
        supports_check_mode=True,
    )
    module.run(manage)


if __name__ == "__main__":
    main()
