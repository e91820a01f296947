# Copyright (c) 2026 m365ops.smtp_auth contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

from __future__ import annotations

DOCUMENTATION = r"""
name: drift_rows
short_description: Turn the results of the relay_accounts steps into drift report rows
version_added: 0.1.0
description:
  - Takes the registered results of the collection's setting modules, one step per setting, and returns one
    row per mailbox and setting (tenant-wide settings give one row with C(mailbox=null)).
  - A row's C(status) is C(compliant) when the module found the setting as desired, C(drift) when it would
    change it (check mode), C(changed) when it changed it, and C(error) when the setting could not be read or
    set, or the mailbox does not exist or has no mailbox licence.
  - A step whose result is skipped (switched off) gives no rows. A step that never ran because an earlier step
    failed gives C(error) rows saying so, so a report never looks cleaner than what was actually checked.
  - An C(app_permissions) step (the result of P(m365ops.smtp_auth.app_permissions_info#module)) gives one row per
    permission the plan needs, C(desired) naming it and C(actual) C(held) or C(missing); a missing permission
    needed to write is C(drift) in check mode and C(error) otherwise, a missing one needed to read is C(error).
  - An C(inbound_connector) step (the result of M(m365ops.smtp_auth.inbound_connector)) gives one tenant-wide row
    for the connector, and one row per C(connector) entry in its C(mailboxes) saying whether the connector covers
    the entry's C(source_ip) (from the step's C(sources)). Such a row is C(compliant) when the connector did
    before the run, C(drift) or C(changed) when the step adds it, and C(error) when it still does not.
  - The rows follow the schema in C(docs/report.schema.json) of the collection.
positional: _input
options:
  _input:
    description:
      - The steps, in the order they ran. Each step is a dict with C(setting) (C(app_permissions), C(license),
        C(security_defaults), C(authentication_policy), C(org_smtp_auth), C(smtp_app_consent),
        C(exchange_service_principal), C(inbound_connector), C(mailbox_smtp_auth), C(mailbox_permission), C(user_authentication_policy)
        or C(per_user_mfa)), C(desired) (the module's state word; the right for C(mailbox_permission), the policy
        for C(user_authentication_policy); not needed for C(license)), C(result) (the registered module result,
        or an empty dict when the step did not run) and, for per-mailbox settings, C(mailboxes) (the user
        principal names the step was asked about). C(app_id) and C(policy) of a step name the relay app and the
        authentication policy in the fixes.
      - A C(mailbox_smtp_auth) step may carry C(undeclared_desired) (default C(inherit)), what exclusive mode
        wants for undeclared mailboxes, and C(declared_elsewhere), mailboxes that exclusive mode reports as
        undeclared but that another step manages (retired mailboxes); their undeclared rows are left out.
    type: list
    elements: dict
    required: true
  tenant:
    description: The tenant name written into every row.
    type: str
    required: true
  check_mode:
    description: Whether the results come from a check-mode run (changes are then C(drift), not C(changed)).
    type: bool
    default: false
  auth_modes:
    description:
      - The authentication mode (C(basic), C(oauth) or C(connector)) of each declared mailbox, by user principal
        name.
    type: dict
    default: {}
"""

EXAMPLES = r"""
- name: Build the report rows
  ansible.builtin.set_fact:
    report_rows: >-
      {{ [
           {'setting': 'security_defaults', 'desired': 'disabled', 'result': security_defaults_result},
           {'setting': 'mailbox_smtp_auth', 'desired': 'enabled', 'mailboxes': ['scanner@contoso.com'],
            'result': mailbox_result},
         ] | m365ops.smtp_auth.drift_rows(tenant=inventory_hostname, check_mode=ansible_check_mode) }}
"""

RETURN = r"""
_value:
  description: The report rows, in step order and, within a step, in the module's result order.
  type: list
  elements: dict
  contains:
    tenant:
      description: The tenant name.
      type: str
    mailbox:
      description: The mailbox, or null for a tenant-wide setting.
      type: str
    auth:
      description: The mailbox's authentication mode as declared (C(basic), C(oauth) or C(connector)), or null.
      type: str
    setting:
      description: The setting checked.
      type: str
    desired:
      description: The state the role wants.
      type: str
    actual:
      description: The state found before any change, or null when it could not be read.
      type: str
    status:
      description: compliant, drift, changed or error.
      type: str
    fix:
      description: What sets it by hand, or null when nothing is to be done.
      type: str
    message:
      description: Why the row is an error, or null.
      type: str
"""

from ansible.errors import AnsibleFilterError

from ansible_collections.m365ops.smtp_auth.plugins.module_utils import _inbound_connectors as connectors

TENANT_WIDE_SETTINGS = ("security_defaults", "org_smtp_auth", "smtp_app_consent", "exchange_service_principal",
                        "authentication_policy")
MAILBOX_SETTINGS = ("license", "mailbox_smtp_auth", "per_user_mfa", "mailbox_permission", "user_authentication_policy")
NOT_RUN_MESSAGE = "not checked: an earlier step failed"

_CAS_VALUE = {"enabled": "$false", "disabled": "$true", "inherit": "$null"}


_REMOVE_RIGHTS = ("Remove-MailboxPermission -Identity {mailbox} -User {app_id} -AccessRights FullAccess "
                  "-InheritanceType All -Confirm:$false; Remove-RecipientPermission -Identity {mailbox} -Trustee "
                  "{app_id} -AccessRights SendAs -Confirm:$false")
_OAUTH_FIXES = {
    ("smtp_app_consent", "granted"): (
        "Grant the app {app_id} the application permission SMTP.SendAsApp of Office 365 Exchange Online with admin "
        "consent (Entra admin center: App registrations > API permissions; Microsoft Graph: POST "
        "/v1.0/servicePrincipals/<its object id>/appRoleAssignments)"),
    ("exchange_service_principal", "registered"): (
        "New-ServicePrincipal -AppId {app_id} -ObjectId <object id of the app's enterprise application, not of its "
        "app registration>"),
    ("mailbox_permission", "FullAccess"): (
        "Add-MailboxPermission -Identity {mailbox} -User <service principal of {app_id}> -AccessRights FullAccess"),
    ("mailbox_permission", "SendAs"): (
        "Add-RecipientPermission -Identity {mailbox} -Trustee <service principal of {app_id}> -AccessRights SendAs "
        "-Confirm:$false"),
    ("mailbox_permission", "none"): _REMOVE_RIGHTS,
    ("authentication_policy", "allows_basic_smtp"): (
        "New-AuthenticationPolicy -Name '{policy}' -AllowBasicAuthSmtp, or Set-AuthenticationPolicy -Identity "
        "'{policy}' -AllowBasicAuthSmtp:$true"),
}


def fix_for(setting, desired, mailbox=None, tenant=None, app_id=None, policy=None):
    """The manual remedy an administrator can paste into a ticket: the cmdlet or Graph call the module makes."""
    if (setting, desired) in _OAUTH_FIXES:
        return _OAUTH_FIXES[(setting, desired)].format(mailbox=mailbox, app_id=app_id or "<app id>", policy=policy)
    if setting == "user_authentication_policy":
        return "Set-User -Identity %s -AuthenticationPolicy '%s'" % (mailbox, desired)
    if setting == "license":
        return ("Assign %s a licence that includes an Exchange Online mailbox plan (for example Exchange Online "
                "Plan 1); Exchange Foundation alone is not a mailbox licence" % mailbox)
    if setting == "mailbox_smtp_auth" and desired in _CAS_VALUE:
        return "Set-CASMailbox -Identity %s -SmtpClientAuthenticationDisabled %s" % (mailbox, _CAS_VALUE[desired])
    if setting == "org_smtp_auth" and desired in ("enabled", "disabled"):
        return "Set-TransportConfig -SmtpClientAuthenticationDisabled %s" % (
            "$false" if desired == "enabled" else "$true")
    if setting == "security_defaults" and desired in ("enabled", "disabled"):
        return ('Microsoft Graph: PATCH /v1.0/policies/identitySecurityDefaultsEnforcementPolicy '
                '{"isEnabled": %s} (Entra admin center: Overview > Properties > Manage security defaults)'
                % ("true" if desired == "enabled" else "false"))
    if setting == "per_user_mfa":
        return ('Microsoft Graph: PATCH /beta/users/%s/authentication/requirements {"perUserMfaState": "%s"} '
                '(Entra admin center: Users > Per-user multifactor authentication)' % (mailbox, desired))
    return None


def shown(setting, value):
    """A setting's value as a report cell: rights and policies as words, the absence of a thing as ``none``."""
    if setting == "smtp_app_consent" and value is not None:
        return "granted" if value else "not_granted"
    if setting == "exchange_service_principal":
        return "registered" if value else "not_registered"
    if setting == "authentication_policy":
        if not value:
            return "missing"
        return "allows_basic_smtp" if value.get("allow_basic_auth_smtp") else "blocks_basic_smtp"
    if setting in ("mailbox_permission", "user_authentication_policy"):
        if isinstance(value, (list, tuple)):
            return ", ".join(str(item) for item in value) or "none"
        return value or "none"
    return value


def _row(step, tenant, mailbox, setting, desired, actual, status, message=None):
    fix = None
    if status != "compliant":
        fix = fix_for(setting, desired, mailbox, tenant, step.get("app_id"), step.get("policy"))
    return {
        "tenant": tenant,
        "mailbox": mailbox,
        "auth": step["auth_modes"].get(str(mailbox).lower()) if mailbox else None,
        "setting": setting,
        "desired": desired,
        "actual": actual,
        "status": status,
        "fix": fix,
        "message": message,
    }


def _status(changed, check_mode):
    if not changed:
        return "compliant"
    return "drift" if check_mode else "changed"


def _not_run(result):
    return not result


def _rows_for_license(tenant, step, result):
    mailboxes = step.get("mailboxes") or []
    if _not_run(result) or (result.get("failed") and not result.get("mailboxes")):
        message = NOT_RUN_MESSAGE if _not_run(result) else result.get("msg") or "the licence check failed"
        return [_row(step, tenant, upn, "license", "licensed", None, "error", message) for upn in mailboxes]
    rows = []
    for item in result.get("mailboxes") or []:
        upn = item.get("identity") or item.get("user_principal_name")
        if not item.get("found", True):
            rows.append(_row(step, tenant, upn, "license", "licensed", "not_found", "error",
                             "no user %s in tenant %s" % (upn, tenant)))
            rows[-1]["fix"] = "Correct the user principal name %s or create the mailbox" % upn
        elif item.get("licensed"):
            rows.append(_row(step, tenant, upn, "license", "licensed", "licensed", "compliant"))
        else:
            rows.append(_row(step, tenant, upn, "license", "licensed", "unlicensed", "error",
                             "%s has no Exchange Online mailbox licence; SMTP AUTH cannot work for it" % upn))
    return rows


def _rows_for_tenant_setting(tenant, step, result, check_mode):
    setting = step["setting"]
    desired = step.get("desired")
    if _not_run(result):
        return [_row(step, tenant, None, setting, desired, None, "error", NOT_RUN_MESSAGE)]
    if result.get("failed"):
        return [_row(step, tenant, None, setting, desired, shown(setting, result.get("before")), "error",
                     result.get("msg") or "the %s step failed" % setting)]
    return [_row(step, tenant, None, setting, desired, shown(setting, result.get("before")),
                 _status(result.get("changed"), check_mode))]


def _rows_for_mailbox_setting(tenant, step, result, check_mode):
    setting = step["setting"]
    desired = step.get("desired")
    mailboxes = step.get("mailboxes") or []
    if _not_run(result):
        return [_row(step, tenant, upn, setting, desired, None, "error", NOT_RUN_MESSAGE) for upn in mailboxes]
    items = result.get("results") or []
    if result.get("failed") and not items:
        message = result.get("msg") or "the %s step failed" % setting
        return [_row(step, tenant, upn, setting, desired, None, "error", message) for upn in mailboxes]
    declared_elsewhere = {str(upn).lower() for upn in step.get("declared_elsewhere") or []}
    rows = []
    for item in items:
        upn = item.get("identity")
        if item.get("undeclared") and str(upn).lower() in declared_elsewhere:
            continue
        # Exclusive mode returns undeclared mailboxes too; what is wanted for them is step["undeclared_desired"].
        wanted = step.get("undeclared_desired", "inherit") if item.get("undeclared") else desired
        if item.get("found") is False:
            row = _row(step, tenant, upn, setting, wanted, None, "error",
                       item.get("msg") or "no mailbox %s in tenant %s" % (upn, tenant))
            row["fix"] = "Correct the user principal name %s or create the mailbox" % upn
        elif item.get("failed"):
            row = _row(step, tenant, upn, setting, wanted, shown(setting, item.get("before")), "error",
                       item.get("msg") or "the %s step failed for %s" % (setting, upn))
        else:
            row = _row(step, tenant, upn, setting, wanted, shown(setting, item.get("before")), _status(item.get("changed"), check_mode))
            if item.get("undeclared"):
                row["message"] = "not declared in the inventory (exclusive mode)"
        rows.append(row)
    return rows


def connector_shown(connector):
    """A connector as a report cell: missing, or enabled/disabled with what it accepts."""
    if not connector:
        return "missing"
    accepts = list(connector.get("sender_ip_addresses") or [])
    if connector.get("tls_sender_certificate_name"):
        accepts.append("certificate " + connector["tls_sender_certificate_name"])
    return "%s: %s" % ("enabled" if connector.get("enabled", True) else "disabled", ", ".join(accepts) or "nothing")


def connector_fix(declared):
    """The cmdlet that makes the connector as declared."""
    parts = ["New-InboundConnector (or Set-InboundConnector -Identity) -Name '%s' -ConnectorType OnPremises"
             % declared.get("name")]
    if declared.get("sender_ip_addresses"):
        parts.append("-SenderIPAddresses %s" % ",".join(str(item) for item in declared["sender_ip_addresses"]))
    if declared.get("tls_sender_certificate_name"):
        parts.append("-TlsSenderCertificateName %s -RequireTls $true" % declared["tls_sender_certificate_name"])
    parts.append("-SenderDomains %s" % ",".join(declared.get("sender_domains") or ["*"]))
    return " ".join(parts)


def _rows_for_connector(tenant, step, result, check_mode):
    declared = step.get("connector") or {}
    name = declared.get("name")
    sources = step.get("sources") or {}
    mailboxes = step.get("mailboxes") or []
    if _not_run(result) or result.get("failed"):
        message = NOT_RUN_MESSAGE if _not_run(result) else result.get("msg") or "the inbound connector step failed"
        rows = [_row(step, tenant, None, "inbound_connector", name, None, "error", message)]
        return rows + [_row(step, tenant, upn, "inbound_connector", "covers %s" % sources.get(upn), None, "error",
                            message) for upn in mailboxes]
    before, after = result.get("before"), result.get("after")
    row = _row(step, tenant, None, "inbound_connector", name, connector_shown(before),
               _status(result.get("changed"), check_mode))
    if row["status"] != "compliant":
        row["fix"] = connector_fix(declared)
    rows = [row]
    for upn in mailboxes:
        source = sources.get(upn)
        covered_before = bool(before and connectors.covers(before.get("sender_ip_addresses"), source))
        covered_after = bool(after and connectors.covers(after.get("sender_ip_addresses"), source))
        by_certificate = source is None and bool((after or {}).get("tls_sender_certificate_name"))
        wanted = "covers %s" % source if source else "certificate"
        if covered_before or (by_certificate and before):
            rows.append(_row(step, tenant, upn, "inbound_connector", wanted, "covered", "compliant"))
        elif covered_after or by_certificate:
            rows.append(_row(step, tenant, upn, "inbound_connector", wanted, "not_covered",
                             "drift" if check_mode else "changed"))
            rows[-1]["fix"] = connector_fix(declared)
        else:
            rows.append(_row(step, tenant, upn, "inbound_connector", wanted, "not_covered", "error",
                             "inbound connector %s does not list %s; its mail gets 550 5.7.64 TenantAttribution"
                             % (name, source)))
            rows[-1]["fix"] = ("Add %s to sender_ip_addresses of relay_accounts_connector (Set-InboundConnector "
                               "-Identity '%s' -SenderIPAddresses @{Add='%s'})" % (source, name, source))
    return rows


def permission_fix(permission):
    """How an administrator grants the automation app a permission the preflight found missing."""
    if "directory role" in permission:
        return ("Assign %s to the automation app's service principal (Entra admin center: Roles and "
                "administrators)" % permission)
    resource = "Office 365 Exchange Online" if permission.startswith("Exchange.") else "Microsoft Graph"
    return ("Grant the automation app the %s application permission %s with admin consent (Entra admin center: "
            "App registrations > API permissions)" % (resource, permission))


def _rows_for_app_permissions(tenant, step, result, check_mode):
    """One row per permission and access the plan needs. A missing write permission is drift in check mode (the
    reads worked; an apply would stop before its first write) and an error otherwise; an unknown one (the token
    does not show it) gives no row, the module warns instead."""
    desired = step.get("desired")
    if _not_run(result) or result.get("failed"):
        message = NOT_RUN_MESSAGE if _not_run(result) else result.get("msg") or "the permission check failed"
        return [_row(step, tenant, None, "app_permissions", desired, None, "error", message)]
    grouped = {}
    for check in result.get("checks") or []:
        if check.get("verdict") in ("held", "missing"):
            key = (check["permission"], check["access"], check["verdict"])
            grouped.setdefault(key, []).append(check["step"])
    rows = []
    for (permission, access, verdict), needed_by in grouped.items():
        if verdict == "held":
            rows.append(_row(step, tenant, None, "app_permissions", permission, "held", "compliant"))
            continue
        status = "drift" if check_mode and access == "write" else "error"
        row = _row(step, tenant, None, "app_permissions", permission, "missing", status,
                   "the automation app lacks it; needed to %s by: %s" % (access, ", ".join(dict.fromkeys(needed_by))))
        row["fix"] = permission_fix(permission)
        rows.append(row)
    return rows


def drift_rows(steps, tenant, check_mode=False, auth_modes=None):
    """Return the report rows for one tenant; see DOCUMENTATION."""
    if not isinstance(steps, (list, tuple)):
        raise AnsibleFilterError("drift_rows expects a list of steps, got %s" % type(steps).__name__)
    rows = []
    for step in steps:
        if not isinstance(step, dict) or "setting" not in step:
            raise AnsibleFilterError("drift_rows: each step needs a 'setting', got %r" % (step,))
        setting = step["setting"]
        result = step.get("result") or {}
        step = dict(step, auth_modes={str(upn).lower(): mode for upn, mode in (auth_modes or {}).items()})
        if result.get("skipped"):
            continue
        if setting == "app_permissions":
            rows.extend(_rows_for_app_permissions(tenant, step, result, bool(check_mode)))
        elif setting == "license":
            rows.extend(_rows_for_license(tenant, step, result))
        elif setting == "inbound_connector":
            rows.extend(_rows_for_connector(tenant, step, result, bool(check_mode)))
        elif setting in TENANT_WIDE_SETTINGS:
            rows.extend(_rows_for_tenant_setting(tenant, step, result, bool(check_mode)))
        elif setting in MAILBOX_SETTINGS:
            rows.extend(_rows_for_mailbox_setting(tenant, step, result, bool(check_mode)))
        else:
            raise AnsibleFilterError("drift_rows: unknown setting %r" % setting)
    return rows


class FilterModule:
    def filters(self):
        return {"drift_rows": drift_rows}
