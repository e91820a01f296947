# Copyright (c) 2026 m365ops.smtp_auth contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

from __future__ import annotations

DOCUMENTATION = r"""
name: relay_connector_problems
short_description: Check a tenant's inbound connector declaration against its connector entries
version_added: 1.3.0
description:
  - Returns what is wrong with C(relay_accounts_connector) for the normalised mailbox entries of one tenant, one
    line each, before any request is sent; an empty list when nothing is.
  - "Checked: the connector is a mapping with a C(name) and only known keys when a present entry uses
    C(connector) (or when it is given at all); it lists C(sender_ip_addresses) or names a
    C(tls_sender_certificate_name); every address is one Exchange Online accepts (IPv4, CIDR from /24 to /32);
    every present C(connector) entry declares a C(source_ip) that one of the addresses covers, or the connector
    relays by certificate."
positional: _input
options:
  _input:
    description: The mailbox entries, normalised by P(m365ops.smtp_auth.relay_mailboxes#filter).
    type: list
    elements: dict
    required: true
  connector:
    description: The connector as declared (C(relay_accounts_connector)); empty when the tenant declares none.
    type: raw
    required: true
  variable_name:
    description: The variable name used in the messages.
    type: str
    default: relay_accounts_connector
"""

EXAMPLES = r"""
- name: Stop when the connector does not cover the devices
  ansible.builtin.fail:
    msg: "{{ problems | join('; ') }}"
  vars:
    problems: "{{ entries | m365ops.smtp_auth.relay_connector_problems(relay_accounts_connector) }}"
  when: problems | length > 0
"""

RETURN = r"""
_value:
  description: One message per problem, each naming the variable, the key or the entry at fault.
  type: list
  elements: str
"""

from collections.abc import Mapping

from ansible_collections.m365ops.smtp_auth.plugins.module_utils import _inbound_connectors as connectors

CONNECTOR_KEYS = ("name", "sender_ip_addresses", "tls_sender_certificate_name", "sender_domains", "enabled")


def relay_connector_problems(entries, connector, variable_name="relay_accounts_connector"):
    """Return the problems of one tenant's connector declaration; see DOCUMENTATION."""
    relayed = [entry for entry in entries or [] if entry.get("auth") == "connector" and entry.get("state") == "present"]
    if isinstance(connector, Mapping) and all(value in (None, "", [], {}) for value in connector.values()):
        connector = None  # declared with no value (argument validation may fill every key with null)
    if not connector:
        if relayed:
            return ["%s is not set: the connector entries (%s) relay without SMTP AUTH through the tenant's inbound "
                    "connector; declare it once for the tenant with name and sender_ip_addresses (the devices' "
                    "public addresses) or tls_sender_certificate_name"
                    % (variable_name, ", ".join(entry["upn"] for entry in relayed))]
        return []
    if not isinstance(connector, Mapping):
        return ["%s must be a mapping with name and sender_ip_addresses, got %s"
                % (variable_name, type(connector).__name__)]
    problems = []
    unknown = sorted(str(key) for key in connector if key not in CONNECTOR_KEYS)
    if unknown:
        problems.append("%s: unknown key(s) %s; allowed keys are %s"
                        % (variable_name, ", ".join(unknown), ", ".join(CONNECTOR_KEYS)))
    if not isinstance(connector.get("name"), str) or not connector["name"].strip():
        problems.append("%s.name is required: the name of the inbound connector" % variable_name)
    addresses = connector.get("sender_ip_addresses") or []
    if not isinstance(addresses, (list, tuple)):
        problems.append("%s.sender_ip_addresses must be a list of IPv4 addresses or CIDR ranges" % variable_name)
        addresses = []
    certificate = connector.get("tls_sender_certificate_name")
    if not addresses and not certificate:
        problems.append("%s needs sender_ip_addresses (the devices' public addresses) or "
                        "tls_sender_certificate_name" % variable_name)
    bad = [problem for problem in (connectors.address_problem(address) for address in addresses) if problem]
    if bad:
        problems.append("%s.sender_ip_addresses: %s" % (variable_name, "; ".join(bad)))
        addresses = [address for address in addresses if connectors.address_problem(address) is None]
    for entry in relayed:
        source = entry.get("source_ip")
        if source is None:
            if not certificate:
                problems.append("%s (auth connector) needs source_ip, the public address its mail comes from, since "
                                "%s relays by address" % (entry["upn"], variable_name))
        elif addresses and not connectors.covers(addresses, source):
            problems.append("%s (auth connector): its source_ip %s is not in %s.sender_ip_addresses (%s), so "
                            "Exchange Online would refuse its mail with 550 5.7.64 TenantAttribution"
                            % (entry["upn"], source, variable_name, ", ".join(str(item) for item in addresses)))
    return problems


class FilterModule:
    def filters(self):
        return {"relay_connector_problems": relay_connector_problems}
