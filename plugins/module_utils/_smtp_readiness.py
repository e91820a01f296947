# Copyright (c) 2026 m365ops.smtp_auth contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""Whether SMTP AUTH can work for a mailbox: read everything that decides it, then judge.

Reading is split from judging. ``gather`` makes the few requests (one Graph ``$batch`` per 20 reads,
a handful of Exchange cmdlets) and keeps, for every setting it could not read, which permission was
missing; ``evaluate`` is a pure function of what was read and returns the verdict with each blocker
described by ``smtp_diagnosis`` (setting, value, Microsoft's reply line, the fix).

A setting that could not be read is never taken as fine: the verdict is then ``unknown``.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from ansible_collections.m365ops.smtp_auth.plugins.module_utils import _auth_policies as auth_policies
from ansible_collections.m365ops.smtp_auth.plugins.module_utils import _inbound_connectors as connectors
from ansible_collections.m365ops.smtp_auth.plugins.module_utils import _relay_app as relay
from ansible_collections.m365ops.smtp_auth.plugins.module_utils import _services as services
from ansible_collections.m365ops.smtp_auth.plugins.module_utils.errors import (
    M365Error,
    NotFoundError,
    PermissionDeniedError,
)
from ansible_collections.m365ops.smtp_auth.plugins.module_utils.graph import BatchRequest
from ansible_collections.m365ops.smtp_auth.plugins.module_utils.smtp_diagnosis import describe_blocker

# Client app types of a Conditional Access policy that cover SMTP AUTH with a password: "other clients"
# (older protocols), or all client apps. exchangeActiveSync alone does not cover SMTP AUTH.
LEGACY_CLIENT_APP_TYPES = frozenset(("all", "other"))
# Application targets that include Exchange Online: all apps, the Office 365 group, Exchange Online itself.
EXCHANGE_APPLICATIONS = frozenset(("all", "office365", "00000002-0000-0ff1-ce00-000000000000"))
MFA_BLOCKING_STATES = ("enabled", "enforced")

# OData casts on a user's memberships are advanced queries: Graph wants this header and $count=true.
ADVANCED_QUERY = {"ConsistencyLevel": "eventual"}
# Per-user MFA only exists on beta, and beta serves every other read too: one batch version means the
# fewest $batch requests.
GRAPH_VERSION = "beta"


class Unreadable(object):
    """A setting that could not be read, and why."""

    def __init__(self, setting, error):
        self.setting = setting
        self.error = error

    def to_dict(self):
        permission = getattr(self.error, "permission", None)
        return {"setting": self.setting, "permission": permission, "message": str(self.error)}


def _is_unreadable(value):
    return isinstance(value, Unreadable)


def _read(setting, function, *args):
    """Run one read; a refused permission becomes an Unreadable, anything else still raises."""
    try:
        return function(*args)
    except PermissionDeniedError as error:
        return Unreadable(setting, error)


# ---- reading --------------------------------------------------------------------------------------

@dataclass
class Facts:
    """What was read. Each attribute is the value, or an Unreadable."""

    security_defaults: object = None
    conditional_access: object = None
    org_switch_disabled: object = None
    default_authentication_policy: object = None
    authentication_policies: object = None
    service_principals: object = None
    # The relay app's SMTP.SendAsApp consent (a _relay_app.Consent), the NotFoundError of an app without an
    # enterprise application in the tenant, or an Unreadable.
    consent: object = None
    # identity -> services.license_record(...) + "found", or Unreadable
    users: dict = field(default_factory=dict)
    # identity -> state, None (no user) or Unreadable
    mfa: dict = field(default_factory=dict)
    # identity -> {"groups": ids, "roles": role template ids}, each a set or Unreadable
    memberships: dict = field(default_factory=dict)
    # identity -> Lookup or Unreadable, for Get-CASMailbox, Get-User and Get-MailboxPermission rows
    cas_mailboxes: dict = field(default_factory=dict)
    exchange_users: dict = field(default_factory=dict)
    permissions: dict = field(default_factory=dict)
    # The tenant's inbound connectors (parsed), read when an entry relays through one; or Unreadable.
    inbound_connectors: object = None


def _graph_batch(graph, facts, identities, basic_identities):
    """One Graph ``$batch`` run (chunks of 20) for the tenant policies, licences and per-user MFA."""
    requests, handlers = [], []

    def add(request, handler):
        requests.append(request)
        handlers.append(handler)

    if basic_identities:
        add(services.security_defaults_request(), lambda result: setattr(facts, "security_defaults", _graph_value(
            "security defaults", result, services.parse_security_defaults)))
        policies = services.conditional_access_request()
        add(policies, lambda result: setattr(facts, "conditional_access", _graph_value(
            "Conditional Access policies", result, lambda body: _all_items(graph, body, policies))))
    for identity in identities:
        add(services.license_request(identity), _store_user(facts, identity))
    for identity in basic_identities:
        add(services.mfa_request(identity), _store_mfa(facts, identity))
    for handler, result in zip(handlers, graph.batch(requests, version=GRAPH_VERSION)):
        handler(result)


def _graph_value(setting, result, convert):
    if isinstance(result.error, PermissionDeniedError):
        return Unreadable(setting, result.error)
    if result.error is not None:
        raise result.error
    return convert(result.body or {})


def _all_items(graph, body, request):
    """The items of a collection read in a ``$batch``, with the pages after the first (Graph pages at 100)."""
    items = list(body.get("value") or [])
    if body.get("@odata.nextLink"):
        items.extend(graph.list(body["@odata.nextLink"], operation=request.operation, permission=request.permission))
    return items


def _store_user(facts, identity):
    def handler(result):
        if isinstance(result.error, NotFoundError):
            facts.users[identity] = {"found": False}
            return
        facts.users[identity] = _graph_value("licence", result,
                                             lambda body: dict(services.license_record(body), found=True))
    return handler


def _store_mfa(facts, identity):
    def handler(result):
        if isinstance(result.error, NotFoundError):
            facts.mfa[identity] = None
            return
        facts.mfa[identity] = _graph_value("per-user MFA", result, services.parse_mfa_state)
    return handler


_GROUP_KEYS = ("includeGroups", "excludeGroups")
_ROLE_KEYS = ("includeRoles", "excludeRoles")


def _policy_needs(policy, keys):
    users = (policy.get("conditions") or {}).get("users") or {}
    return any(users.get(key) for key in keys)


def _read_memberships(graph, facts, identities, groups, roles):
    """Group and directory role membership, only for the policies that target groups or roles (a second,
    rare batch). Role conditions hold role *template* ids: compare them with each directory role's
    ``roleTemplateId``, never with its ``id`` (which differs per tenant)."""
    requests, handlers = [], []
    for identity in identities:
        membership = facts.memberships.setdefault(identity, {})
        if groups:
            requests.append(BatchRequest(
                "GET", services.user_path(identity) + "/transitiveMemberOf?$select=id",
                operation="reading the group memberships of %s" % identity,
                permission=services.PERMISSIONS["group_membership_read"], identity=identity))
            handlers.append((membership, "groups", "Conditional Access group membership", "id", requests[-1]))
        if roles:
            requests.append(BatchRequest(
                "GET", services.user_path(identity)
                + "/transitiveMemberOf/microsoft.graph.directoryRole?$select=id,roleTemplateId&$count=true",
                operation="reading the directory roles of %s" % identity, headers=ADVANCED_QUERY,
                permission=services.PERMISSIONS["role_membership_read"], identity=identity))
            handlers.append((membership, "roles", "Conditional Access role membership", "roleTemplateId",
                             requests[-1]))
    for (membership, kind, setting, key, request), result in zip(handlers, graph.batch(requests, version=GRAPH_VERSION)):
        membership[kind] = _membership_ids(graph, result, request, setting, key, kind)


def _membership_ids(graph, result, request, setting, key, kind):
    # Without membership a policy cannot be judged; say so rather than guess. A user in more groups than a page
    # holds would otherwise look like a non-member.
    if result.error is not None:
        return Unreadable(setting, result.error)
    try:
        items = _all_items(graph, result.body or {}, request)
    except PermissionDeniedError as error:
        return Unreadable(setting, error)
    if any(not item.get(key) for item in items):
        return Unreadable(setting, PermissionDeniedError(
            "Graph returned the %s without their %s (limited information)" % (kind, key),
            permission=services.PERMISSIONS["%s_membership_read" % kind[:-1]]))
    return {str(item[key]).lower() for item in items}


def _exchange_single(exchange, cmdlet):
    records = exchange.invoke(cmdlet)
    return records[0] if records else {}


def _per_mailbox(setting, target, identities, function):
    try:
        values = function(identities)
    except PermissionDeniedError as error:
        values = [Unreadable(setting, error)] * len(identities)
    target.update(zip(identities, values))


def _read_consent(graph, app_id):
    try:
        return relay.read_consent(graph, app_id)
    except NotFoundError as error:
        return error


def _full_access_rows(exchange, identities):
    return [lookup.record[relay.FULL_ACCESS] if lookup.found else []
            for lookup in relay.read_permissions(exchange, identities, [relay.FULL_ACCESS])]


def gather(graph, exchange, entries, oauth_app_id=None):
    """Read what decides SMTP AUTH for ``entries`` (``[(identity, auth_mode)]``); ``oauth_app_id`` is the app
    whose tokens the ``oauth`` mailboxes use."""
    facts = Facts()
    # Connector entries send without AUTH: nothing about a mailbox decides them, only the tenant's connectors.
    if any(mode == "connector" for _identity, mode in entries):
        facts.inbound_connectors = _read("inbound connectors", connectors.read_connectors, exchange)
    entries = [(identity, mode) for identity, mode in entries if mode != "connector"]
    if not entries:
        return facts
    identities = [identity for identity, _mode in entries]
    basic = [identity for identity, mode in entries if mode == "basic"]
    oauth = [identity for identity, mode in entries if mode == "oauth"]

    _graph_batch(graph, facts, identities, basic)
    if basic and isinstance(facts.conditional_access, list):
        candidates = [policy for policy in facts.conditional_access if _blocks_legacy(policy)]
        groups = any(_policy_needs(policy, _GROUP_KEYS) for policy in candidates)
        roles = any(_policy_needs(policy, _ROLE_KEYS) for policy in candidates)
        if groups or roles:
            _read_memberships(graph, facts, basic, groups, roles)

    facts.org_switch_disabled = _read("organisation SMTP AUTH switch", lambda: bool(
        _exchange_single(exchange, "Get-TransportConfig").get("SmtpClientAuthenticationDisabled")))
    _per_mailbox("mailbox SMTP AUTH switch", facts.cas_mailboxes, identities,
                 lambda names: services.read_cas_mailboxes(exchange, names))
    if basic:
        facts.default_authentication_policy = _read("default authentication policy",
                                                    auth_policies.read_default_policy, exchange)
        facts.authentication_policies = _read("authentication policies", auth_policies.read_policies, exchange)
        _per_mailbox("authentication policy of the user", facts.exchange_users, basic,
                     lambda names: auth_policies.read_users(exchange, names))
    if oauth:
        facts.consent = _read("SMTP.SendAsApp consent of the relay app", _read_consent, graph, oauth_app_id)
        facts.service_principals = _read("Exchange service principals", relay.read_exchange_service_principals,
                                         exchange)
        _per_mailbox("mailbox permissions", facts.permissions, oauth, lambda names: _full_access_rows(exchange, names))
    return facts


# ---- judging ----------------------------------------------------------------------------------------

def _lower_set(values):
    return {str(value).lower() for value in values or []}


def _blocks_legacy(policy):
    """Enabled, blocks, and covers legacy clients: what refuses SMTP AUTH with a password."""
    if policy.get("state") != "enabled":
        return False
    conditions = policy.get("conditions") or {}
    if not _lower_set(conditions.get("clientAppTypes")) & LEGACY_CLIENT_APP_TYPES:
        return False
    controls = (policy.get("grantControls") or {}).get("builtInControls")
    if "block" not in _lower_set(controls):
        return False
    applications = conditions.get("applications")
    if applications:
        if _lower_set(applications.get("excludeApplications")) & EXCHANGE_APPLICATIONS:
            return False
        included = _lower_set(applications.get("includeApplications"))
        if included and not included & EXCHANGE_APPLICATIONS:
            return False
    return True


def _policy_applies(policy, user_id, memberships):
    """True, False, or the Unreadable membership it depends on when that could not be read."""
    users = (policy.get("conditions") or {}).get("users") or {}
    user_id = str(user_id or "").lower()
    if user_id in _lower_set(users.get("excludeUsers")):
        return False
    memberships = memberships or {}
    included = "all" in _lower_set(users.get("includeUsers")) or user_id in _lower_set(users.get("includeUsers"))
    for keys, kind in ((_GROUP_KEYS, "groups"), (_ROLE_KEYS, "roles")):
        if not _policy_needs(policy, keys):
            continue
        ids = memberships.get(kind)
        if not isinstance(ids, set):
            return ids if _is_unreadable(ids) else Unreadable(
                "Conditional Access %s membership" % kind[:-1], M365Error("membership not read"))
        if _lower_set(users.get(keys[1])) & ids:
            return False
        included = included or bool(_lower_set(users.get(keys[0])) & ids)
    return included


class Verdict(object):
    def __init__(self, identity, auth_mode, app_id=None):
        self.identity = identity
        self.auth_mode = auth_mode
        self.app_id = app_id
        self.found = None
        self.blockers = []
        self.unreadable = []
        self.settings = {}

    def block(self, name, value, detail=None):
        self.blockers.append(describe_blocker(name, mailbox=self.identity, value=value, detail=detail,
                                              app_id=self.app_id))

    def unknown(self, value):
        self.unreadable.append(value.to_dict())

    def to_dict(self):
        if self.blockers:
            verdict = "blocked"
        elif self.unreadable:
            verdict = "unknown"
        else:
            verdict = "ok"
        return {
            "identity": self.identity,
            "auth_mode": self.auth_mode,
            "found": self.found,
            "verdict": verdict,
            "blockers": self.blockers,
            "unreadable": self.unreadable,
            "settings": self.settings,
            "summary": summarise(self.identity, self.auth_mode, verdict, self.blockers, self.unreadable),
        }


def summarise(identity, auth_mode, verdict, blockers, unreadable):
    """One paragraph an operator can act on."""
    if auth_mode == "connector":
        return _summarise_connector(identity, verdict, blockers, unreadable)
    how = "with a password (AUTH LOGIN)" if auth_mode == "basic" else "with OAuth (XOAUTH2)"
    if verdict == "ok":
        return "%s: nothing blocks SMTP AUTH %s." % (identity, how)
    parts = []
    if blockers:
        parts.append("%s: SMTP AUTH %s is blocked by %d setting(s)." % (identity, how, len(blockers)))
        for blocker in blockers:
            parts.append("%s is %s, so Microsoft answers \"%s\". Fix: %s" % (
                blocker["setting"], _show(blocker["value"]), blocker["reply"], blocker["fix"]))
    else:
        parts.append("%s: whether SMTP AUTH %s works is unknown." % (identity, how))
    for item in unreadable:
        parts.append("Could not read the %s%s." % (item["setting"], " (the app needs %s)" % item["permission"]
                                                   if item.get("permission") else ": %s" % item["message"]))
    return " ".join(parts)


def _summarise_connector(identity, verdict, blockers, unreadable):
    if verdict == "ok":
        return "%s: an inbound connector covers its device, which relays without AUTH." % identity
    if blockers:
        blocker = blockers[0]
        return "%s: no inbound connector covers its device (%s), so Microsoft answers \"%s\". Fix: %s" % (
            identity, blocker.get("detail") or blocker["value"], blocker["reply"], blocker["fix"])
    return "%s: whether an inbound connector covers its device is unknown: %s." % (
        identity, "; ".join(item["message"] for item in unreadable))


def _show(value):
    if value is True:
        return "true"
    if value is False:
        return "false"
    if value is None:
        return "not set"
    return str(value)


def _judge_mailbox_exists(verdict, user, cas):
    """False when the mailbox does not exist (then nothing else about it can be judged)."""
    if _is_unreadable(user):
        verdict.unknown(user)
    elif user is not None and not user.get("found"):
        verdict.found = False
        verdict.block("mailbox_not_found", "no account", detail="No user %s in the tenant." % verdict.identity)
        return False
    if _is_unreadable(cas):
        verdict.unknown(cas)
    elif cas is not None and not cas.found:
        verdict.found = False
        verdict.block("mailbox_not_found", "no mailbox",
                      detail="The account exists but has no Exchange Online mailbox.")
        return False
    verdict.found = True if not (_is_unreadable(user) or _is_unreadable(cas)) else None
    return True


def _judge_switches(verdict, facts, cas):
    org = facts.org_switch_disabled
    if not _is_unreadable(org):
        verdict.settings["org_smtp_auth"] = services.org_state(org)
    switch = None if _is_unreadable(cas) else cas.record.get("SmtpClientAuthenticationDisabled")
    if not _is_unreadable(cas):
        verdict.settings["mailbox_smtp_auth"] = services.mailbox_state(switch)
    if switch is True:
        verdict.block("mailbox_smtp_auth_disabled", True)
    elif switch is False:
        return  # the mailbox's own "enabled" wins over the organisation, whatever that says
    elif _is_unreadable(org):
        verdict.unknown(org)
    elif org is True:
        verdict.block("org_smtp_auth_disabled", True,
                      detail="The mailbox's own switch is not set (null), so it follows the organisation.")


def _judge_license(verdict, user):
    if _is_unreadable(user) or not user:
        return
    plans = user.get("mailbox_plans") or []
    verdict.settings["mailbox_plans"] = [plan.get("name") or plan.get("service_plan_id") for plan in plans]
    verdict.settings["user_id"] = user.get("user_id")
    if not plans:
        others = [plan.get("name") or plan.get("service_plan_id") for plan in user.get("other_exchange_plans") or []]
        verdict.block("no_exchange_license", "no Exchange mailbox plan" + (
            " (assigned: %s)" % ", ".join(others) if others else ""))


def _judge_basic(verdict, facts, user):
    identity = verdict.identity
    defaults = facts.security_defaults
    if _is_unreadable(defaults):
        verdict.unknown(defaults)
    elif defaults is not None:
        verdict.settings["security_defaults"] = defaults
        if defaults == "enabled":
            verdict.block("security_defaults_enabled", True)

    mfa = facts.mfa.get(identity)
    if _is_unreadable(mfa):
        verdict.unknown(mfa)
    elif mfa is not None:
        verdict.settings["per_user_mfa"] = mfa
        if mfa in MFA_BLOCKING_STATES:
            verdict.block("per_user_mfa", mfa)

    _judge_authentication_policy(verdict, facts)
    _judge_conditional_access(verdict, facts, user)


def _judge_authentication_policy(verdict, facts):
    exchange_user = facts.exchange_users.get(verdict.identity)
    for value in (exchange_user, facts.default_authentication_policy, facts.authentication_policies):
        if _is_unreadable(value):
            verdict.unknown(value)
            return
    # Get-User may show the policy by name or by distinguished name: both are compared by name.
    own = auth_policies.user_policy(exchange_user.record) if exchange_user and exchange_user.found else None
    name, source = (own, "assigned to the user") if own else (facts.default_authentication_policy,
                                                              "the organisation's default")
    if not name:
        verdict.settings["authentication_policy"] = None
        return
    name = auth_policies.policy_name(name)
    policy = (facts.authentication_policies or {}).get(auth_policies.policy_key(name))
    allowed = auth_policies.allows_basic_smtp(policy) if policy is not None else None
    verdict.settings["authentication_policy"] = {"name": name, "source": source, "allow_basic_auth_smtp": allowed}
    if allowed is False:
        verdict.block("authentication_policy", False,
                      detail="Policy '%s' (%s) has AllowBasicAuthSmtp false." % (name, source))
    elif policy is None:
        verdict.unknown(Unreadable("authentication policy '%s'" % name, M365Error(
            "The policy '%s' %s was not returned by Get-AuthenticationPolicy." % (name, source))))


def _judge_conditional_access(verdict, facts, user):
    policies = facts.conditional_access
    if _is_unreadable(policies):
        verdict.unknown(policies)
        return
    if policies is None or _is_unreadable(user) or not user:
        return
    memberships = facts.memberships.get(verdict.identity)
    blocking = []
    for policy in policies:
        if not _blocks_legacy(policy):
            continue
        applies = _policy_applies(policy, user.get("user_id"), memberships)
        name = policy.get("displayName") or policy.get("id")
        if _is_unreadable(applies):
            verdict.unknown(applies)
        elif applies:
            blocking.append(name)
            verdict.block("conditional_access", name,
                          detail="Policy '%s' (%s) blocks legacy authentication clients for the account."
                          % (name, policy.get("id")))
    verdict.settings["conditional_access_blocking"] = blocking


def _judge_oauth(verdict, facts, app_id):
    """The OAuth blockers in the order a token meets them: consent, Exchange registration (with the enterprise
    application's object id), FullAccess on the mailbox. The first one missing is the blocker."""
    verdict.settings["oauth_app_id"] = app_id
    consent, principals = facts.consent, facts.service_principals
    for value in (consent, principals):
        if _is_unreadable(value):
            verdict.unknown(value)
            return
    if isinstance(consent, NotFoundError) or not consent.assignment:
        verdict.settings["smtp_send_as_app"] = False
        verdict.block("no_smtp_send_as_app", "SMTP.SendAsApp not granted to %s" % app_id,
                      detail=str(consent) if isinstance(consent, NotFoundError) else None)
        return
    verdict.settings["smtp_send_as_app"] = True
    principal = relay.find_exchange_service_principal(principals or [], app_id)
    state = relay.service_principal_state(principal) if principal else None
    verdict.settings["service_principal"] = state["identity"] if state else None
    if state is None:
        verdict.block("service_principal_not_registered", "AppId %s not registered" % app_id)
        return
    if str(state["object_id"]).lower() != str(consent.client["id"]).lower():
        verdict.block("service_principal_wrong_object_id", "ObjectId %s" % state["object_id"],
                      detail="registered with object id %s; the enterprise application's is %s"
                      % (state["object_id"], consent.client["id"]))
        return
    rows = facts.permissions.get(verdict.identity)
    if _is_unreadable(rows):
        verdict.unknown(rows)
        return
    has_access = relay.FULL_ACCESS in relay.held_rights(rows or [], relay.principal_names(principal))
    verdict.settings["full_access"] = has_access
    if not has_access:
        verdict.block("no_full_access", "no FullAccess for %s" % (state["display_name"] or state["identity"]))


def _judge_connector(verdict, facts, source_ip):
    """Whether an enabled OnPremises connector lists the entry's ``source_ip`` (or, without one, relays by
    certificate)."""
    found = facts.inbound_connectors
    if _is_unreadable(found):
        verdict.unknown(found)
        return
    relaying = [connector for connector in found or []
                if connector["enabled"] and connector["connector_type"] == connectors.CONNECTOR_TYPE]
    verdict.settings["source_ip"] = source_ip
    verdict.settings["inbound_connectors"] = [connector["name"] for connector in relaying]
    if source_ip:
        covering = [connector["name"] for connector in relaying
                    if connectors.covers(connector["sender_ip_addresses"], source_ip)]
    else:
        covering = [connector["name"] for connector in relaying if connector["tls_sender_certificate_name"]]
    verdict.settings["covered_by"] = covering
    if not covering:
        listed = "; ".join("%s lists %s" % (connector["name"], ", ".join(connector["sender_ip_addresses"]) or "no address")
                           for connector in relaying) or "the tenant has no enabled OnPremises inbound connector"
        verdict.block("no_connector_covers", "%s not listed" % (source_ip or "no source_ip declared; no certificate"),
                      detail=listed)


def evaluate(facts, entries, oauth_app_id=None, sources=None):
    """The verdict for each ``(identity, auth_mode)``, in order; ``sources`` holds the declared ``source_ip`` of
    the connector entries."""
    verdicts = []
    for identity, mode in entries:
        verdict = Verdict(identity, mode, oauth_app_id if mode == "oauth" else None)
        if mode == "connector":
            verdict.found = None
            _judge_connector(verdict, facts, (sources or {}).get(identity))
            verdicts.append(verdict.to_dict())
            continue
        user = facts.users.get(identity)
        cas = facts.cas_mailboxes.get(identity)
        if _judge_mailbox_exists(verdict, user, cas):
            _judge_license(verdict, user)
            _judge_switches(verdict, facts, cas)
            if mode == "basic":
                _judge_basic(verdict, facts, user)
            else:
                _judge_oauth(verdict, facts, oauth_app_id)
        verdicts.append(verdict.to_dict())
    return verdicts


def tenant_settings(facts):
    """The tenant-wide values that were read, for the task result."""
    def shown(value, convert):
        if value is None:
            return None
        return "unreadable" if _is_unreadable(value) else convert(value)

    return {
        "org_smtp_auth": shown(facts.org_switch_disabled, services.org_state),
        "security_defaults": shown(facts.security_defaults, lambda value: value),
        "default_authentication_policy": shown(facts.default_authentication_policy, lambda value: value),
        "conditional_access_policies_blocking_legacy_auth": shown(
            facts.conditional_access,
            lambda policies: [policy.get("displayName") for policy in policies if _blocks_legacy(policy)]),
    }
