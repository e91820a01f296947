"""The objects cmdlets print, in Exchange's shapes, built from the tenant as it is now."""

from __future__ import annotations

import hashlib
import uuid
from typing import Any

from ..state import BASIC_AUTH_SWITCHES, ServicePrincipal, Tenant, User

COLLECTION_OF_STRING = "#Collection(String)"
EXCHANGE_OBJECT_GUID_NAMESPACE = uuid.UUID("5b0b9c4e-2f1d-4a57-9f0e-6c3a1d2e7b88")
SEEN_AT = "2024-01-15T09:00:00Z"


def annotate(properties: dict[str, Any]) -> dict[str, Any]:
    """Add the OData type annotation that Exchange puts before every collection-valued property."""
    result: dict[str, Any] = {}
    for key, value in properties.items():
        if isinstance(value, list):
            result[f"{key}@odata.type"] = COLLECTION_OF_STRING
        result[key] = value
    return result


def exchange_guid(*parts: str) -> str:
    return str(uuid.uuid5(EXCHANGE_OBJECT_GUID_NAMESPACE, "/".join(parts)))


def directory_server(tenant: Tenant) -> str:
    """A stable domain-controller-like name that Exchange names in not-found errors."""
    number = int(hashlib.sha256(tenant.id.encode()).hexdigest()[:6], 16)
    return (f"AM{number % 9 + 1}PR{number % 90 + 10:02d}A{number % 900 + 100:03d}DC{number % 9 + 1:03d}"
            f".EURPRD{number % 90 + 10:02d}.PROD.OUTLOOK.COM")


def _distinguished_name(tenant: Tenant, name: str) -> str:
    return (f"CN={name},OU={tenant.domains[0]},OU=Microsoft Exchange Hosted Organizations,"
            "DC=EURPRD10,DC=PROD,DC=OUTLOOK,DC=COM")


def _email_addresses(tenant: Tenant, user: User) -> list[str]:
    addresses = [f"SMTP:{user.primary_smtp_address}"]
    for address in (user.user_principal_name, f"{user.alias}@{tenant.domains[0]}"):
        if address.lower() != user.primary_smtp_address.lower() and f"smtp:{address}" not in addresses:
            addresses.append(f"smtp:{address}")
    return addresses


def _recipient_base(tenant: Tenant, user: User) -> dict[str, Any]:
    return {
        "Identity": user.alias,
        "Name": user.alias,
        "DisplayName": user.display_name,
        "DistinguishedName": _distinguished_name(tenant, user.alias),
        "ExternalDirectoryObjectId": user.id,
        "Guid": exchange_guid(tenant.id, user.id),
        "ExchangeObjectId": exchange_guid(tenant.id, user.id),
        "OrganizationId": f"{tenant.domains[0]} - {tenant.domains[0]}",
    }


def cas_mailbox_object(tenant: Tenant, user: User) -> dict[str, Any]:
    return annotate({
        **_recipient_base(tenant, user),
        "PrimarySmtpAddress": user.primary_smtp_address,
        "EmailAddresses": _email_addresses(tenant, user),
        "SmtpClientAuthenticationDisabled": user.smtp_client_authentication_disabled,
        "ActiveSyncEnabled": True,
        "OWAEnabled": True,
        "OWAforDevicesEnabled": True,
        "ECPEnabled": True,
        "PopEnabled": True,
        "ImapEnabled": True,
        "MAPIEnabled": True,
        "EwsEnabled": True,
        "UniversalOutlookEnabled": True,
        "OutlookMobileEnabled": True,
        "MacOutlookEnabled": True,
        "ActiveSyncAllowedDeviceIDs": [],
        "ActiveSyncBlockedDeviceIDs": [],
        "ServerName": "am9pr10mb1234",
        "IsValid": True,
        "ObjectState": "Unchanged",
        "WhenChanged": SEEN_AT,
        "WhenCreated": SEEN_AT,
    })


def mailbox_object(tenant: Tenant, user: User) -> dict[str, Any]:
    return annotate({
        **_recipient_base(tenant, user),
        "Alias": user.alias,
        "UserPrincipalName": user.user_principal_name,
        "PrimarySmtpAddress": user.primary_smtp_address,
        "WindowsEmailAddress": user.primary_smtp_address,
        "EmailAddresses": _email_addresses(tenant, user),
        "RecipientType": "UserMailbox",
        "RecipientTypeDetails": user.recipient_type_details,
        "ExchangeGuid": exchange_guid(tenant.id, user.id, "mailbox"),
        "IsMailboxEnabled": True,
        "AccountDisabled": False,
        "HiddenFromAddressListsEnabled": False,
        "LitigationHoldEnabled": False,
        "ArchiveStatus": "None",
        "ProhibitSendQuota": "99 GB (106,300,440,576 bytes)",
        "SKUAssigned": user.has_mailbox_license,
        "IsDirSynced": False,
        "WhenMailboxCreated": SEEN_AT,
        "WhenChanged": SEEN_AT,
        "WhenCreated": SEEN_AT,
    })


def authentication_policy_dn(tenant: Tenant, name: str) -> str:
    """Where Exchange Online keeps an authentication policy: the tenant's configuration unit."""
    return (f"CN={name},CN=Auth Policies,CN=Configuration,CN={tenant.domains[0]},CN=ConfigurationUnits,"
            "DC=EURPRD10,DC=PROD,DC=OUTLOOK,DC=COM")


def policy_reference(tenant: Tenant, name: str | None, shows: str) -> str | None:
    """An authentication policy as Get-User and Get-OrganizationConfig show it: ``shows`` is "name" or
    "distinguished_name" (behaviour switch authentication_policy_shows)."""
    if name is None or shows != "distinguished_name":
        return name
    return authentication_policy_dn(tenant, name)


def user_object(tenant: Tenant, user: User, policy_shows: str = "name") -> dict[str, Any]:
    recipient_type = "UserMailbox" if user.has_mailbox else "User"
    return annotate({
        **_recipient_base(tenant, user),
        "UserPrincipalName": user.user_principal_name,
        "WindowsEmailAddress": user.primary_smtp_address if user.has_mailbox else "",
        "RecipientType": recipient_type,
        "RecipientTypeDetails": user.recipient_type_details if user.has_mailbox else "User",
        "AuthenticationPolicy": policy_reference(tenant, user.authentication_policy, policy_shows),
        "AccountDisabled": False,
        "IsDirSynced": False,
        "SKUAssigned": user.has_mailbox_license,
        "WhenChanged": SEEN_AT,
        "WhenCreated": SEEN_AT,
    })


def authentication_policy_object(tenant: Tenant, name: str, settings: dict[str, Any]) -> dict[str, Any]:
    guid = exchange_guid(tenant.id, "authentication-policy", name)
    properties: dict[str, Any] = {
        "Identity": name,
        "Name": name,
        "Id": guid,
        "DistinguishedName": authentication_policy_dn(tenant, name),
        "Guid": guid,
    }
    for key in BASIC_AUTH_SWITCHES:
        # A policy blocks every protocol it does not say it allows.
        properties[key] = bool(settings.get(key, False))
    properties["WhenChanged"] = SEEN_AT
    properties["WhenCreated"] = SEEN_AT
    return annotate(properties)


def service_principal_object(principal: ServicePrincipal) -> dict[str, Any]:
    return annotate({
        "Identity": principal.identity,
        "Name": principal.identity,
        "DisplayName": principal.display_name,
        "AppId": principal.app_id,
        "ObjectId": principal.object_id,
        "ServiceId": principal.object_id,
        "Organization": None,
        "IsValid": True,
        "ObjectState": "Unchanged",
    })


def mailbox_permission_object(user: User, trustee: str, rights: list[str], inheritance: str = "All") -> dict[str, Any]:
    return annotate({
        "Identity": user.alias,
        "User": trustee,
        "AccessRights": list(rights),
        "IsInherited": False,
        "Deny": False,
        "InheritanceType": inheritance,
        "IsValid": True,
        "ObjectState": "Unchanged",
    })


def recipient_permission_object(user: User, trustee: str) -> dict[str, Any]:
    return annotate({
        "Identity": user.alias,
        "Trustee": trustee,
        "AccessControlType": "Allow",
        "AccessRights": ["SendAs"],
        "IsInherited": False,
        "InheritanceType": "None",
        "IsValid": True,
        "ObjectState": "Unchanged",
    })


def transport_config_object(tenant: Tenant) -> dict[str, Any]:
    return annotate({
        "Identity": "Transport Settings",
        "Name": "Transport Settings",
        "SmtpClientAuthenticationDisabled": tenant.transport_smtp_auth_disabled,
        "MaxSendSize": "35 MB (36,700,160 bytes)",
        "MaxReceiveSize": "36 MB (37,748,736 bytes)",
        "MaxRecipientEnvelopeLimit": "500",
        "ExternalPostmasterAddress": None,
        "InternalSMTPServers": [],
        "TLSReceiveDomainSecureList": [],
        "TLSSendDomainSecureList": [],
        "Guid": exchange_guid(tenant.id, "transport-config"),
        "WhenChanged": SEEN_AT,
    })


def organization_config_object(tenant: Tenant, policy_shows: str = "name") -> dict[str, Any]:
    return annotate({
        "Identity": tenant.domains[0],
        "Name": tenant.domains[0],
        "DisplayName": tenant.name,
        "DefaultAuthenticationPolicy": policy_reference(tenant, tenant.default_authentication_policy, policy_shows),
        "OAuth2ClientProfileEnabled": True,
        "IsDehydrated": False,
        "AcceptedDomains": list(tenant.domains),
        "Guid": exchange_guid(tenant.id, "organization"),
        "WhenChanged": SEEN_AT,
    })


def inbound_connector_object(tenant: Tenant, connector: dict[str, Any], sender_domains_shown: str) -> dict[str, Any]:
    """Get-InboundConnector's record. ``sender_domains_shown`` is the behaviour switch
    inbound_connector_sender_domains: ``address_space`` prints ``smtp:*;1`` (the form seen in field reports),
    ``domain`` prints the domain as given."""
    domains = list(connector.get("sender_domains") or [])
    if sender_domains_shown == "address_space":
        domains = [f"smtp:{domain};1" for domain in domains]
    guid = exchange_guid(tenant.id, "inbound-connector", connector["name"].lower())
    return annotate({
        "Identity": connector["name"],
        "Name": connector["name"],
        "Guid": guid,
        "Id": connector["name"],
        "DistinguishedName": _distinguished_name(tenant, connector["name"]),
        "Enabled": bool(connector.get("enabled", True)),
        "ConnectorType": connector.get("connector_type", "OnPremises"),
        "ConnectorSource": "Default",
        "SenderDomains": domains,
        "SenderIPAddresses": list(connector.get("sender_ip_addresses") or []),
        "TlsSenderCertificateName": connector.get("tls_sender_certificate_name"),
        "RequireTls": bool(connector.get("require_tls", False)),
        "RestrictDomainsToIPAddresses": False,
        "RestrictDomainsToCertificate": False,
        "Comment": connector.get("comment") or "",
        "WhenChanged": SEEN_AT,
        "WhenCreated": SEEN_AT,
    })
