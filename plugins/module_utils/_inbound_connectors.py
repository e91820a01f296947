# Copyright (c) 2026 m365ops.smtp_auth contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""Exchange Online inbound connectors of type OnPremises: the relay path of devices that cannot authenticate.

The address rules are those of Microsoft's New-InboundConnector reference: SenderIPAddresses takes IPv4 addresses
and CIDR ranges from /24 to /32, IPv6 is not supported. Each cmdlet is built by a function returning a
``Command``, and each record is read by a parser that copes with the forms Exchange may print (SenderDomains as
``smtp:*;1``, as field reports show, or as given). Internal to this collection.
"""

from __future__ import annotations

import ipaddress
import re

from ansible_collections.m365ops.smtp_auth.plugins.module_utils._cmdlets import CmdletCall as Command
from ansible_collections.m365ops.smtp_auth.plugins.module_utils.errors import NotFoundError

CONNECTOR_TYPE = "OnPremises"
SHORTEST_PREFIX = 24
# "smtp:<domain>;<cost>", the address-space form Get-InboundConnector may print SenderDomains in.
_ADDRESS_SPACE = re.compile(r"^\s*smtp:(.*?)(?:;\d+)?\s*$", re.IGNORECASE)


def address_problem(text):
    """Why Exchange Online would refuse ``text`` as a SenderIPAddresses entry, or None when it is valid."""
    try:
        network = ipaddress.ip_network(str(text).strip(), strict=False)
    except ValueError:
        return "'%s' is not an IPv4 address or CIDR range" % text
    if network.version != 4:
        return "'%s' is IPv6, which inbound connectors do not support" % text
    if network.prefixlen < SHORTEST_PREFIX:
        return "'%s' is wider than /%d, the widest range a connector accepts" % (text, SHORTEST_PREFIX)
    return None


def canonical_address(text):
    """One address as this collection sends and compares it: ``a.b.c.d`` for a host, ``network/prefix`` else."""
    network = ipaddress.ip_network(str(text).strip(), strict=False)
    return str(network.network_address) if network.prefixlen == 32 else str(network)


def shown_address(text):
    """A SenderIPAddresses entry as Exchange printed it, canonical when it parses (kept as is otherwise)."""
    return canonical_address(text) if address_problem(text) is None else str(text).strip()


def non_public(addresses):
    """The valid addresses that are not public: Exchange Online only ever sees a device's public address."""
    return [address for address in addresses
            if not ipaddress.ip_network(address, strict=False).is_global]


def covers(addresses, address):
    """The entries of ``addresses`` (SenderIPAddresses, as given or printed) that ``address`` falls in."""
    try:
        wanted = ipaddress.ip_address(str(address).strip())
    except ValueError:
        return []
    found = []
    for entry in addresses or []:
        try:
            if wanted in ipaddress.ip_network(str(entry).strip(), strict=False):
                found.append(entry)
        except ValueError:
            continue
    return found


def sender_domain(text):
    match = _ADDRESS_SPACE.match(str(text))
    return (match.group(1) if match else str(text)).strip().lower()


def certificate_name(value):
    """TlsSenderCertificateName as a domain; a ``<I>issuer<S>subject`` form is read as its subject."""
    if not value:
        return None
    text = str(value)
    if "<S>" in text:
        text = text.split("<S>", 1)[1]
    text = re.sub(r"^\s*CN=", "", text, flags=re.IGNORECASE).strip()
    return text.lower() or None


def parse_connector(record):
    """``{name, connector_type, enabled, sender_ip_addresses, tls_sender_certificate_name, sender_domains,
    require_tls}`` of one Get-InboundConnector record, lists sorted so that order never shows as drift."""
    return {
        "name": record.get("Name") or record.get("Identity"),
        "connector_type": record.get("ConnectorType"),
        "enabled": bool(record.get("Enabled", True)),
        "sender_ip_addresses": sorted({shown_address(entry) for entry in record.get("SenderIPAddresses") or []}),
        "tls_sender_certificate_name": certificate_name(record.get("TlsSenderCertificateName")),
        "sender_domains": sorted({sender_domain(entry) for entry in record.get("SenderDomains") or []}),
        "require_tls": bool(record.get("RequireTls")),
    }


# ---- commands ---------------------------------------------------------------------------------------

_PARAMETERS = (("connector_type", "ConnectorType"), ("enabled", "Enabled"),
               ("sender_ip_addresses", "SenderIPAddresses"),
               ("tls_sender_certificate_name", "TlsSenderCertificateName"), ("sender_domains", "SenderDomains"),
               ("require_tls", "RequireTls"))


def _parameters(settings):
    # An empty multi-valued setting and a cleared certificate are sent as JSON null, which empties them.
    return {parameter: (settings[key] or None) if key in ("sender_ip_addresses", "tls_sender_certificate_name")
            else settings[key] for key, parameter in _PARAMETERS if key in settings}


def get_command(name):
    return Command("Get-InboundConnector", {"Identity": name}, identity=name)


def new_command(after):
    return Command("New-InboundConnector", dict({"Name": after["name"]}, **_parameters(after)), identity=after["name"])


def set_command(before, after):
    """Set-InboundConnector with only the settings that differ."""
    changed = {key: after[key] for key, _parameter in _PARAMETERS if before.get(key) != after[key]}
    return Command("Set-InboundConnector", dict({"Identity": before["name"]}, **_parameters(changed)),
                   identity=before["name"])


def remove_command(name):
    return Command("Remove-InboundConnector", {"Identity": name, "Confirm": False}, identity=name)


def read_connector(exchange, name):
    """One connector, parsed, or None when the tenant has none of that name."""
    try:
        records = get_command(name).run(exchange)
    except NotFoundError:
        return None
    return parse_connector(records[0]) if records else None


def read_connectors(exchange):
    """Every inbound connector of the tenant, parsed, in the order Exchange lists them."""
    return [parse_connector(record) for record in Command("Get-InboundConnector", {}).run(exchange)]
