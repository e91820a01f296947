# Copyright (c) 2026 m365ops.smtp_auth contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""A scripted tenant for the OAuth relay app: Graph service principals, applications and app role assignments,
Exchange service principals and mailbox/recipient permissions, answered on the wire by a ScriptedServer."""

from __future__ import annotations

import itertools
import re
from urllib.parse import unquote, urlsplit

EXCHANGE_APP = "00000002-0000-0ff1-ce00-000000000000"
SEND_AS_APP_ROLE_ID = "9a1f3c1e-0000-4000-8000-00000000aaaa"
RELAY_APP = "6f1c2b7e-43d1-4c8e-9a77-0b4f0a3e5d21"
RELAY_SP = "0d4b5a8c-1f4e-4a8e-8d7c-2b9e6f3a1c55"
RELAY_REGISTRATION = "aa4b5a8c-1f4e-4a8e-8d7c-2b9e6f3a1c00"
SELF = "NT AUTHORITY\\SELF"
NOT_FOUND = "Ex6F9304|Microsoft.Exchange.Configuration.Tasks.ManagementObjectNotFoundException|The operation " \
            "couldn't be performed because object '%s' couldn't be found on 'EX1.PROD.OUTLOOK.COM'."


class RelayTenant:
    """Tenant state, and the answer of a ScriptedServer when called. ``denied`` holds what answers 403: cmdlet
    names, or a method and a Graph collection (``"GET servicePrincipals"``, ``"POST appRoleAssignments"``).
    ``show_principal_as`` is the key of a service principal that permission entries show as their trustee."""

    def __init__(self, show_principal_as="Identity"):
        self.graph_principals = {
            EXCHANGE_APP: {"id": "e0e0e0e0-0000-4000-8000-000000000001", "appId": EXCHANGE_APP,
                           "displayName": "Office 365 Exchange Online",
                           "appRoles": [{"id": "dc50a0fb-09a3-484d-be87-e023b12c6440", "value": "Exchange.ManageAsApp"},
                                        {"id": SEND_AS_APP_ROLE_ID, "value": "SMTP.SendAsApp"}]},
            RELAY_APP: {"id": RELAY_SP, "appId": RELAY_APP, "displayName": "SMTP relay", "appRoles": []},
        }
        self.applications = {RELAY_APP: {"id": RELAY_REGISTRATION, "appId": RELAY_APP, "displayName": "SMTP relay"}}
        self.assignments = {}  # principal id -> [assignment]
        self.assignment_page_size = 2
        self.exchange_principals = []
        self.mailboxes = {}  # alias -> {"upn", "permissions": [rows], "send_as": [rows]}
        self.show_principal_as = show_principal_as
        self.denied = set()
        self.cmdlets = []
        self._ids = itertools.count(1)

    # ---- seeding ----------------------------------------------------------------------------------------
    def add_mailbox(self, upn):
        alias = upn.split("@")[0]
        self.mailboxes[alias] = {"upn": upn, "permissions": [], "send_as": []}
        return alias

    def add_exchange_principal(self, app_id=RELAY_APP, object_id=RELAY_SP, display_name="SMTP relay"):
        record = {"Identity": "sp-%d" % next(self._ids), "DisplayName": display_name, "AppId": app_id,
                  "ObjectId": object_id, "ServiceId": object_id}
        record["Name"] = record["Identity"]
        self.exchange_principals.append(record)
        return record

    def grant(self, upn, trustee, rights=("FullAccess",), inherited=False, deny=False):
        self._mailbox(upn)["permissions"].append({"User": trustee, "AccessRights": list(rights),
                                                  "IsInherited": inherited, "Deny": deny})

    def grant_send_as(self, upn, trustee):
        self._mailbox(upn)["send_as"].append({"Trustee": trustee, "AccessControlType": "Allow",
                                              "AccessRights": ["SendAs"], "IsInherited": False})

    def rights(self, upn, trustee):
        box = self._mailbox(upn)
        held = {right for row in box["permissions"] if row["User"] == trustee for right in row["AccessRights"]}
        return held | {"SendAs" for row in box["send_as"] if row["Trustee"] == trustee}

    def consented(self, principal_id=RELAY_SP):
        return [item["appRoleId"] for item in self.assignments.get(principal_id, [])]

    def writes(self):
        return [(name, parameters) for name, parameters in self.cmdlets if not name.startswith("Get-")]

    def __call__(self, method, path, body, headers):
        if path.startswith("/adminapi/"):
            return self._exchange(body["CmdletInput"]["CmdletName"], body["CmdletInput"]["Parameters"])
        if path == "/v1.0/$batch":
            replies = []
            for item in body["requests"]:
                status, reply, _headers = self._graph(item["method"], "/v1.0" + item["url"], item.get("body"), headers)
                replies.append({"id": item["id"], "status": status, "headers": {}, "body": reply})
            return 200, {"responses": list(reversed(replies))}, {}
        return self._graph(method, path, body, headers)

    # ---- Graph ------------------------------------------------------------------------------------------
    def _graph(self, method, path, body, headers):
        parts = urlsplit(path)
        segments = [unquote(segment) for segment in parts.path.split("/")[2:]]
        key = "%s %s" % (method, "appRoleAssignments" if "appRoleAssignments" in segments else segments[0].split("(")[0])
        if key in self.denied:
            return 403, {"error": {"code": "Authorization_RequestDenied",
                                   "message": "Insufficient privileges to complete the operation."}}, {}
        keyed = re.match(r"(servicePrincipals|applications)\(appId='([^']+)'\)$", segments[0])
        if keyed and len(segments) == 1:
            table = self.graph_principals if keyed.group(1) == "servicePrincipals" else self.applications
            found = table.get(keyed.group(2).lower())
            return (200, dict(found), {}) if found else self._graph_not_found(keyed.group(2))
        if segments[0] == "servicePrincipals" and segments[2:3] == ["appRoleAssignments"]:
            return self._assignments(method, segments[1], segments[3:], body, parts.query, headers["Host"])
        return self._graph_not_found(path)

    def _assignments(self, method, principal_id, rest, body, query, host):
        assignments = self.assignments.setdefault(principal_id, [])
        if method == "POST":
            made = dict(body, id="assignment-%d" % next(self._ids))
            assignments.append(made)
            return 201, made, {}
        if method == "DELETE":
            assignments[:] = [item for item in assignments if item["id"] != rest[0]]
            return 204, None, {}
        start = int(query.split("skip=")[1]) if "skip=" in query else 0
        page = {"value": assignments[start:start + self.assignment_page_size]}
        if start + self.assignment_page_size < len(assignments):
            page["@odata.nextLink"] = "http://%s/v1.0/servicePrincipals/%s/appRoleAssignments?skip=%d" % (
                host, principal_id, start + self.assignment_page_size)
        return 200, page, {}

    @staticmethod
    def _graph_not_found(what):
        return 404, {"error": {"code": "Request_ResourceNotFound",
                               "message": "Resource '%s' does not exist or one of its queried reference-property "
                                          "objects are not present." % what}}, {}

    # ---- Exchange ---------------------------------------------------------------------------------------
    def _exchange(self, name, parameters):
        self.cmdlets.append((name, dict(parameters)))
        if name in self.denied:
            return 403, {"error": {"code": "Forbidden", "message": "Access denied"}}, {}
        try:
            return 200, {"value": getattr(self, "_" + name.replace("-", "_").lower())(parameters)}, {}
        except LookupError as missing:
            return 404, {"error": {"code": "NotFound", "message": "Error executing cmdlet",
                                   "details": [{"code": "Client", "message": NOT_FOUND % missing.args[0]}]}}, {}

    def _mailbox(self, identity):
        for alias, box in self.mailboxes.items():
            if str(identity).lower() in (alias, box["upn"].lower()):
                return box
        raise LookupError(identity)

    def _alias(self, box):
        return box["upn"].split("@")[0]

    def _principal(self, name):
        wanted = str(name).lower()
        return next((record for record in self.exchange_principals
                     if wanted in {str(value).lower() for value in record.values()}), None)

    def _shown(self, trustee):
        principal = self._principal(trustee)
        return principal[self.show_principal_as] if principal else trustee

    def _get_serviceprincipal(self, parameters):
        return [dict(record) for record in self.exchange_principals]

    def _new_serviceprincipal(self, parameters):
        return [self.add_exchange_principal(parameters["AppId"], parameters["ObjectId"],
                                            parameters.get("DisplayName") or parameters["AppId"])]

    def _set_serviceprincipal(self, parameters):
        self._principal(parameters["Identity"])["DisplayName"] = parameters["DisplayName"]
        return []

    def _remove_serviceprincipal(self, parameters):
        self.exchange_principals.remove(self._principal(parameters["Identity"]))
        return []

    def _get_mailbox(self, parameters):
        boxes = [self._mailbox(parameters["Identity"])] if "Identity" in parameters else self.mailboxes.values()
        return [{"Identity": self._alias(box), "Name": self._alias(box), "Alias": self._alias(box),
                 "PrimarySmtpAddress": box["upn"], "UserPrincipalName": box["upn"]} for box in boxes]

    def _get_mailboxpermission(self, parameters):
        box = self._mailbox(parameters["Identity"])
        rows = [{"User": SELF, "AccessRights": ["FullAccess, ReadPermission"], "IsInherited": False, "Deny": False}]
        return [dict(row, Identity=self._alias(box)) for row in rows + box["permissions"]]

    def _add_mailboxpermission(self, parameters):
        self.grant(parameters["Identity"], self._shown(parameters["User"]), parameters["AccessRights"])
        return [{"Identity": parameters["Identity"], "User": self._shown(parameters["User"])}]

    def _remove_mailboxpermission(self, parameters):
        box = self._mailbox(parameters["Identity"])
        shown = self._shown(parameters["User"])
        for row in box["permissions"]:
            if row["User"].lower() == shown.lower() and not row["IsInherited"]:
                row["AccessRights"] = [right for right in row["AccessRights"] if right not in parameters["AccessRights"]]
        box["permissions"] = [row for row in box["permissions"] if row["AccessRights"]]
        return []

    def _get_recipientpermission(self, parameters):
        boxes = [self._mailbox(parameters["Identity"])] if "Identity" in parameters else self.mailboxes.values()
        rows = []
        for box in boxes:
            own = [{"Trustee": SELF, "AccessControlType": "Allow", "AccessRights": ["SendAs"], "IsInherited": False}]
            rows.extend(dict(row, Identity=self._alias(box)) for row in own + box["send_as"])
        if "Trustee" in parameters:
            shown = self._shown(parameters["Trustee"]).lower()
            rows = [row for row in rows if row["Trustee"].lower() == shown]
        return rows

    def _add_recipientpermission(self, parameters):
        self.grant_send_as(parameters["Identity"], self._shown(parameters["Trustee"]))
        return []

    def _remove_recipientpermission(self, parameters):
        box = self._mailbox(parameters["Identity"])
        shown = self._shown(parameters["Trustee"]).lower()
        box["send_as"] = [row for row in box["send_as"] if row["Trustee"].lower() != shown]
        return []
