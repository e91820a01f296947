# Copyright (c) 2026 m365ops.smtp_auth contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""The OAuth relay app: its enterprise application and SMTP.SendAsApp consent (Graph), its Exchange service
principal and the mailbox permissions it holds (Exchange).

Graph reads are request builders plus parsers, as in ``_services``, so that a ``$batch`` can carry them and
the readiness check can read the same facts the modules write. Internal to this collection.
"""

from __future__ import annotations

from dataclasses import dataclass

from ansible_collections.m365ops.smtp_auth.plugins.module_utils import _services as services
from ansible_collections.m365ops.smtp_auth.plugins.module_utils.connection import is_guid
from ansible_collections.m365ops.smtp_auth.plugins.module_utils.errors import M365Error, NotFoundError
from ansible_collections.m365ops.smtp_auth.plugins.module_utils.graph import BatchRequest

# "Office 365 Exchange Online", the resource that owns SMTP.SendAsApp, has this app id in every tenant.
EXCHANGE_ONLINE_APP_ID = "00000002-0000-0ff1-ce00-000000000000"
SEND_AS_APP_ROLE = "SMTP.SendAsApp"
SELF_TRUSTEE = "NT AUTHORITY\\SELF"
FULL_ACCESS = "FullAccess"
SEND_AS = "SendAs"
ACCESS_RIGHTS = (FULL_ACCESS, SEND_AS)

# Keys of a Get-ServicePrincipal record that a permission entry may show as its trustee (which one Exchange
# shows is not confirmed, so every one of them counts).
_PRINCIPAL_NAME_KEYS = ("Identity", "Name", "DisplayName", "ObjectId", "AppId", "ServiceId")


def guid_problems(params, *options):
    """One message per option that is set but is not a GUID, to refuse before any request."""
    return ["%s must be a GUID such as 6f1c2b7e-43d1-4c8e-9a77-0b4f0a3e5d21, not %r" % (option, params[option])
            for option in options if params[option] is not None and not is_guid(params[option])]


# ---- the enterprise application and the app registration (Graph) ---------------------------------------

def service_principal_request(app_id):
    """The enterprise application (service principal) of ``app_id`` in this tenant: Graph v1.0 addresses a service
    principal by its appId as an alternate key (``servicePrincipals(appId='...')``, servicePrincipal "Get")."""
    return BatchRequest("GET", "servicePrincipals(appId='%s')?$select=id,appId,displayName,appRoles" % app_id,
                        operation="reading the enterprise application of app %s" % app_id,
                        permission=services.PERMISSIONS["service_principal_read"], identity=app_id)


def application_request(app_id):
    """The app registration of ``app_id`` (only in the tenant that owns the app)."""
    return BatchRequest("GET", "applications(appId='%s')?$select=id,appId,displayName" % app_id,
                        operation="reading the app registration of app %s" % app_id,
                        permission=services.PERMISSIONS["service_principal_read"], identity=app_id)


def parse_directory_object(body):
    """``{id, app_id, display_name, app_roles}`` of a servicePrincipal or application object."""
    body = body or {}
    return {
        "id": body.get("id"),
        "app_id": body.get("appId"),
        "display_name": body.get("displayName"),
        "app_roles": body.get("appRoles") or [],
    }


def missing_enterprise_application(app_id, tenant):
    return NotFoundError(
        "App %s has no enterprise application (service principal) in tenant %s. Grant the app admin consent in "
        "this tenant, or create its service principal (New-MgServicePrincipal -AppId %s), then run again."
        % (app_id, tenant, app_id), status=404, code="Request_ResourceNotFound", identity=app_id)


def _get(graph, request):
    return graph.get(request.url, operation=request.operation, permission=request.permission,
                     identity=request.identity)


def read_enterprise_application(graph, app_id):
    """The parsed service principal of ``app_id``; a clear NotFoundError when the tenant has none."""
    try:
        return parse_directory_object(_get(graph, service_principal_request(app_id)))
    except NotFoundError:
        raise missing_enterprise_application(app_id, graph.settings.tenant_id) from None


def read_app_registration(graph, app_id):
    """The parsed app registration of ``app_id``, or None when this tenant does not own the app."""
    try:
        return parse_directory_object(_get(graph, application_request(app_id)))
    except NotFoundError:
        return None


def wrong_object_id_message(app_id, object_id, enterprise, registration, tenant):
    """Why ``object_id`` must not register ``app_id`` in Exchange Online."""
    if registration and str(registration.get("id")).lower() == object_id.lower():
        what = "the object id of the app registration, not of its enterprise application"
    else:
        what = "not the object id of the app's enterprise application"
    return ("object_id %s is %s (service principal %s) in tenant %s. A service principal made with the app "
            "registration's object id makes every token for app %s fail; set object_id to %s or leave it out "
            "to have it looked up." % (object_id, what, enterprise["id"], tenant, app_id, enterprise["id"]))


# ---- SMTP.SendAsApp consent: an app role assignment (Graph) ------------------------------------------------

@dataclass
class Consent:
    """What decides whether ``client`` holds SMTP.SendAsApp: the two service principals, the role id and the
    assignment that grants it (None when it is not granted)."""

    client: dict
    resource: dict
    app_role_id: str
    assignment: dict | None = None


def app_role_assignments_path(service_principal_id):
    return "servicePrincipals/%s/appRoleAssignments" % service_principal_id


def find_app_role(resource, value=SEND_AS_APP_ROLE):
    """The id of the resource's app role ``value`` (ids differ per cloud: never hard-code them)."""
    for role in resource.get("app_roles") or []:
        if role.get("value") == value:
            return role.get("id")
    return None


def find_assignment(assignments, resource_id, app_role_id):
    for assignment in assignments or []:
        if (str(assignment.get("resourceId")).lower() == str(resource_id).lower()
                and str(assignment.get("appRoleId")).lower() == str(app_role_id).lower()):
            return assignment
    return None


def read_consent(graph, app_id):
    """Both service principals in one ``$batch``, then the app's role assignments (every page)."""
    tenant = graph.settings.tenant_id
    resource_reply, client_reply = graph.batch([service_principal_request(EXCHANGE_ONLINE_APP_ID),
                                                service_principal_request(app_id)])
    if isinstance(client_reply.error, NotFoundError):
        raise missing_enterprise_application(app_id, tenant)
    if isinstance(resource_reply.error, NotFoundError):
        raise NotFoundError("Office 365 Exchange Online (app %s) has no service principal in tenant %s, so "
                            "%s cannot be granted: does the tenant have Exchange Online?"
                            % (EXCHANGE_ONLINE_APP_ID, tenant, SEND_AS_APP_ROLE), status=404,
                            identity=EXCHANGE_ONLINE_APP_ID)
    for reply in (resource_reply, client_reply):
        if reply.error is not None:
            raise reply.error
    resource = parse_directory_object(resource_reply.body)
    client = parse_directory_object(client_reply.body)
    app_role_id = find_app_role(resource)
    if not app_role_id:
        raise M365Error("Office 365 Exchange Online in tenant %s offers no app role %s (appRoles of service "
                        "principal %s)" % (tenant, SEND_AS_APP_ROLE, resource["id"]))
    assignments = graph.list(app_role_assignments_path(client["id"]),
                             operation="reading the app role assignments of app %s" % app_id,
                             permission=services.PERMISSIONS["service_principal_read"])
    return Consent(client, resource, app_role_id, find_assignment(assignments, resource["id"], app_role_id))


# Graph v1.0 "Grant an appRoleAssignment to a service principal": POST /servicePrincipals/{client id}/
# appRoleAssignments with principalId, resourceId and appRoleId is what admin consent to an application
# permission records.
def grant_consent(graph, consent):
    """Assign SMTP.SendAsApp to the client; returns the new assignment."""
    return graph.request("POST", app_role_assignments_path(consent.client["id"]),
                         body={"principalId": consent.client["id"], "resourceId": consent.resource["id"],
                               "appRoleId": consent.app_role_id},
                         operation="granting %s to app %s" % (SEND_AS_APP_ROLE, consent.client["app_id"]),
                         permission=services.PERMISSIONS["app_role_assignment_write"])


def revoke_consent(graph, consent):
    graph.request("DELETE", "%s/%s" % (app_role_assignments_path(consent.client["id"]), consent.assignment["id"]),
                  operation="revoking %s from app %s" % (SEND_AS_APP_ROLE, consent.client["app_id"]),
                  permission=services.PERMISSIONS["app_role_assignment_write"])


# ---- the Exchange service principal --------------------------------------------------------------------

def read_exchange_service_principals(exchange):
    return exchange.invoke("Get-ServicePrincipal")


def principal_names(record):
    """Every lower-cased name a Get-ServicePrincipal record may appear as in a permission entry."""
    return {str(record[key]).lower() for key in _PRINCIPAL_NAME_KEYS if record.get(key)}


def find_exchange_service_principal(records, app_id):
    return next((record for record in records or []
                 if str(record.get("AppId") or "").lower() == str(app_id).lower()), None)


def find_principal_by_name(records, name):
    """The record answering to ``name`` by any of its names (AppId, ObjectId, Identity, display name)."""
    wanted = str(name).strip().lower()
    return next((record for record in records or [] if wanted in principal_names(record)), None)


def service_principal_state(record):
    """A Get-ServicePrincipal record in the words of the module results (None when there is none)."""
    if not record:
        return None
    return {
        "app_id": record.get("AppId"),
        "object_id": record.get("ObjectId"),
        "display_name": record.get("DisplayName"),
        "identity": record.get("Identity") or record.get("ObjectId"),
    }


def new_exchange_service_principal(exchange, app_id, object_id, display_name=None):
    """Register the app; returns the record Exchange printed, or the one read back when it printed none."""
    parameters = {"AppId": app_id, "ObjectId": object_id}
    if display_name:
        parameters["DisplayName"] = display_name
    made = exchange.invoke("New-ServicePrincipal", parameters, identity=app_id)
    return made[0] if made else find_exchange_service_principal(read_exchange_service_principals(exchange), app_id)


def set_exchange_service_principal_name(exchange, identity, display_name):
    exchange.invoke("Set-ServicePrincipal", {"Identity": identity, "DisplayName": display_name}, identity=identity)


def remove_exchange_service_principal(exchange, identity):
    exchange.invoke("Remove-ServicePrincipal", {"Identity": identity, "Confirm": False}, identity=identity)


# ---- mailbox and recipient permissions (Exchange) ------------------------------------------------------

@dataclass
class Trustee:
    """Whom a permission is for: ``identity`` is what writes send, ``names`` (lower-cased) what reads may show."""

    given: str
    identity: str
    names: set
    principal: dict | None = None


def resolve_trustee(exchange, trustee):
    """A service principal named by its app id (or object id, identity, display name) becomes that principal;
    anything else, such as a user principal name, is taken as the Exchange identity it is."""
    trustee = str(trustee).strip()
    if "@" not in trustee:
        principal = find_principal_by_name(read_exchange_service_principals(exchange), trustee)
        if principal is not None:
            return Trustee(trustee, service_principal_state(principal)["identity"], principal_names(principal),
                           principal)
    return Trustee(trustee, trustee, {trustee.lower()})


def trustee_of(row):
    """Who a Get-MailboxPermission (``User``) or Get-RecipientPermission (``Trustee``) row is about."""
    return str(row.get("User") or row.get("Trustee") or "")


def rights_of(row):
    """The rights of one row; Exchange may send them as one comma-joined string."""
    return {right.strip() for value in row.get("AccessRights") or [] for right in str(value).split(",")
            if right.strip()}


def is_explicit_grant(row):
    """An Allow entry set on the mailbox itself for somebody else: what this collection may add or remove.
    The mailbox's own SELF entry, inherited entries and Deny entries are never touched."""
    return (trustee_of(row).upper() != SELF_TRUSTEE and not row.get("IsInherited") and not row.get("Deny")
            and str(row.get("AccessControlType") or "Allow").lower() == "allow")


def held_rights(rows, names):
    """The rights explicitly granted to the trustee known by ``names`` (lower-cased) in ``rows``."""
    held = set()
    for row in rows or []:
        if is_explicit_grant(row) and trustee_of(row).lower() in names:
            held |= rights_of(row)
    return held


def other_grants(rows, names, right):
    """Trustees other than ``names`` with ``right`` explicitly granted, as shown in ``rows``, in order."""
    others = []
    for row in rows or []:
        trustee = trustee_of(row)
        if (is_explicit_grant(row) and trustee.lower() not in names and right in rights_of(row)
                and trustee not in others):
            others.append(trustee)
    return others


def read_permissions(exchange, identities, rights, trustee=None, threshold=services.MAILBOX_LISTING_THRESHOLD):
    """A Lookup per mailbox with ``record = {right: rows}`` for each right in ``rights``; an unknown mailbox is
    ``found: False``. Given a ``trustee`` and more than ``threshold`` mailboxes, SendAs is read in one
    Get-RecipientPermission -Trustee listing (matched to the mailboxes through one Get-Mailbox listing)
    instead of once per mailbox."""
    send_as = None
    if SEND_AS in rights and trustee and len(identities) > threshold:
        send_as = _send_as_by_mailbox(exchange, identities, trustee, threshold)

    def read_one(identity):
        record = {}
        try:
            if send_as is not None:
                if send_as[identity] is None:
                    return services.Lookup(identity, False)
                record[SEND_AS] = send_as[identity]
            elif SEND_AS in rights:
                record[SEND_AS] = exchange.invoke("Get-RecipientPermission", {"Identity": identity}, identity=identity)
            if FULL_ACCESS in rights:
                record[FULL_ACCESS] = exchange.invoke("Get-MailboxPermission", {"Identity": identity},
                                                      identity=identity)
        except NotFoundError:
            return services.Lookup(identity, False)
        return services.Lookup(identity, True, record)

    return services.map_concurrently(list(identities), read_one, exchange.concurrency)


def _send_as_by_mailbox(exchange, identities, trustee, threshold):
    """identity -> the SendAs rows of ``trustee`` on it (None for an unknown mailbox)."""
    mailboxes = services.read_mailboxes(exchange, "Get-Mailbox", identities, threshold=threshold)
    by_mailbox = {}
    for row in exchange.invoke("Get-RecipientPermission", {"Trustee": trustee}, unlimited=True, identity=trustee):
        by_mailbox.setdefault(str(row.get("Identity") or "").lower(), []).append(row)
    found = {}
    for lookup in mailboxes:
        names = services.mailbox_names(lookup.record) if lookup.found else None
        found[lookup.identity] = None if names is None else [
            row for name, rows in by_mailbox.items() if name in names for row in rows]
    return found


def grant_right(exchange, mailbox, right, trustee):
    if right == FULL_ACCESS:
        exchange.invoke("Add-MailboxPermission", {"Identity": mailbox, "User": trustee, "AccessRights": [FULL_ACCESS],
                                                  "InheritanceType": "All"}, identity=mailbox)
    else:
        exchange.invoke("Add-RecipientPermission", {"Identity": mailbox, "Trustee": trustee, "AccessRights": [SEND_AS],
                                                    "Confirm": False}, identity=mailbox)


def revoke_right(exchange, mailbox, right, trustee):
    if right == FULL_ACCESS:
        exchange.invoke("Remove-MailboxPermission", {"Identity": mailbox, "User": trustee,
                                                     "AccessRights": [FULL_ACCESS], "InheritanceType": "All",
                                                     "Confirm": False}, identity=mailbox)
    else:
        exchange.invoke("Remove-RecipientPermission", {"Identity": mailbox, "Trustee": trustee,
                                                       "AccessRights": [SEND_AS], "Confirm": False}, identity=mailbox)
