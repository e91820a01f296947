# Copyright (c) 2026 m365ops.smtp_auth contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later


from __future__ import annotations

DOCUMENTATION = r"""
name: relay_tenant
short_description: Check a tenant's relay mailbox declaration and plan its steps, in one pass
version_added: 1.4.0
description:
  - What the C(relay_accounts) role does with a tenant's declaration before the first request, in one call -
    the entries normalised and checked by P(m365ops.smtp_auth.relay_mailboxes#filter), the relay app and the
    inbound connector checked against them (P(m365ops.smtp_auth.relay_connector_problems#filter)), and the plan
    of P(m365ops.smtp_auth.relay_plan#filter).
  - One call instead of a chain of filters and tests because, with thousands of entries, each pass of the
    template engine over the entries costs far more than the checks themselves.
  - The plan is empty when the relay app or the connector is wrong, since no step can be decided then.
positional: _input
options:
  _input:
    description: The list of mailbox entries, as written in the inventory (C(relay_accounts_mailboxes)).
    type: list
    elements: raw
    required: true
  default_auth:
    description: The authentication mode of entries that do not set C(auth) (C(relay_accounts_default_auth)).
    type: str
    choices: [basic, oauth, connector]
    default: basic
  allow_empty:
    description: Whether a tenant may declare no mailbox at all (C(relay_accounts_allow_empty)).
    type: bool
    default: false
  oauth_app:
    description:
      - The relay app the C(oauth) entries authenticate with (C(relay_accounts_oauth_app)), a dict with
        C(app_id) and optional C(object_id), both GUIDs. Required when an entry uses C(oauth).
    type: raw
  connector:
    description:
      - The tenant's inbound connector (C(relay_accounts_connector)); see P(m365ops.smtp_auth.relay_plan#filter).
    type: raw
  plan:
    description:
      - The switches of the plan, as P(m365ops.smtp_auth.relay_plan#filter) takes them (C(check_license),
        C(exclusive), C(basic_auth_policy), ...); O(oauth_app) and O(connector) are passed on from here.
    type: dict
    default: {}
"""

EXAMPLES = r"""
- name: Check the declaration and plan the steps
  ansible.builtin.set_fact:
    tenant: >-
      {{ relay_accounts_mailboxes | m365ops.smtp_auth.relay_tenant(oauth_app=relay_accounts_oauth_app,
           plan={'exclusive': true}) }}

- name: Stop when the declaration is wrong
  ansible.builtin.fail:
    msg: "{{ tenant.problems | join('; ') }}"
  when: tenant.problems | length > 0
"""

RETURN = r"""
_value:
  description: The checked declaration.
  type: dict
  contains:
    entries:
      description: The good entries, normalised, in the order given (see P(m365ops.smtp_auth.relay_mailboxes#filter)).
      type: list
      elements: dict
    problems:
      description: One line per problem (a bad entry, no entry at all, the relay app, the connector); empty when none.
      type: list
      elements: str
    plan:
      description: The plan (see P(m365ops.smtp_auth.relay_plan#filter)); empty when the relay app or the connector is wrong.
      type: dict
"""

import inspect
from collections.abc import Mapping

from ansible.errors import AnsibleFilterError
from ansible.module_utils.parsing.convert_bool import boolean

from ansible_collections.m365ops.smtp_auth.plugins.filter.relay_connector_problems import relay_connector_problems
from ansible_collections.m365ops.smtp_auth.plugins.filter.relay_mailboxes import relay_mailboxes
from ansible_collections.m365ops.smtp_auth.plugins.filter.relay_plan import relay_plan
from ansible_collections.m365ops.smtp_auth.plugins.module_utils.connection import is_guid

EMPTY = ("relay_accounts_mailboxes is empty: no relay mailbox is declared. Declare them, or set "
         "relay_accounts_allow_empty to true if this tenant must have none.")


# relay_plan's own switches; the relay app and the connector are passed on from relay_tenant's options.
PLAN_SWITCHES = tuple(name for name in list(inspect.signature(relay_plan).parameters)[1:]
                      if name not in ("oauth_app_id", "connector"))
# The names an inventory author knows (those of YAML), not Python's.
TYPE_NAMES = ((bool, "bool"), (int, "int"), (float, "float"), (str, "str"), (list, "list"), (tuple, "list"))


def _type_name(value):
    return next((name for kind, name in TYPE_NAMES if isinstance(value, kind)), type(value).__name__)


def _blank(value):
    return value is None or (isinstance(value, str) and not value.strip())


def app_problems(entries, app):
    """What is wrong with the relay app for the oauth entries (the relay app is not the automation app)."""
    oauth = [entry["upn"] for entry in entries if entry["auth"] == "oauth"]
    if not oauth:
        return []
    if not isinstance(app, Mapping):
        return ["relay_accounts_oauth_app must be a mapping with app_id (the relay app's application id), got %s"
                % _type_name(app)]
    app_id = app.get("app_id")
    if _blank(app_id):
        return ["relay_accounts_oauth_app.app_id is not set: the oauth mailboxes (%s) need the application (client) "
                "id of the app their devices sign in with" % ", ".join(oauth)]
    if not is_guid(str(app_id)):
        return ["relay_accounts_oauth_app.app_id must be an application (client) id (a GUID), got %s" % app_id]
    object_id = app.get("object_id")
    if not _blank(object_id) and not is_guid(str(object_id)):
        return ["relay_accounts_oauth_app.object_id must be the object id (a GUID) of the app's enterprise "
                "application, got %s" % object_id]
    return []


def relay_tenant(mailboxes, default_auth="basic", allow_empty=False, oauth_app=None, connector=None, plan=None):
    """Return ``{entries, problems, plan}`` for one tenant; see DOCUMENTATION."""
    checked = relay_mailboxes(mailboxes, default_auth, strict=False)
    entries = checked["entries"]
    problems = list(checked["errors"])
    try:
        empty_allowed = boolean(allow_empty, strict=True)
    except TypeError as error:
        raise AnsibleFilterError("relay_tenant: allow_empty: %s" % error) from error
    if not problems and not entries and not empty_allowed:
        problems.append(EMPTY)
    declaration = app_problems(entries, oauth_app) + relay_connector_problems(entries, connector)
    problems.extend(declaration)
    if declaration:
        return {"entries": entries, "problems": problems, "plan": {}}
    switches = dict(plan or {})
    unknown = sorted(str(name) for name in switches if name not in PLAN_SWITCHES)
    if unknown:
        raise AnsibleFilterError("relay_tenant: unknown plan switch(es): %s" % ", ".join(unknown))
    app_id = oauth_app.get("app_id") if isinstance(oauth_app, Mapping) else None
    return {"entries": entries, "problems": problems,
            "plan": relay_plan(entries, oauth_app_id=None if _blank(app_id) else str(app_id),
                               connector=connector or None, **switches)}


class FilterModule:
    def filters(self):
        return {"relay_tenant": relay_tenant}
