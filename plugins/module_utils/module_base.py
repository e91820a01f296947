# Copyright (c) 2026 m365ops.smtp_auth contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""The one place where Ansible meets the Microsoft 365 clients."""

from __future__ import annotations

from ansible.module_utils.basic import AnsibleModule, missing_required_lib

from ansible_collections.m365ops.smtp_auth.plugins.module_utils import _auth as auth
from ansible_collections.m365ops.smtp_auth.plugins.module_utils import _transport as transport
from ansible_collections.m365ops.smtp_auth.plugins.module_utils.connection import (
    CONNECTION_MUTUALLY_EXCLUSIVE,
    ConnectionSettings,
    connection_argument_spec,
    connection_errors,
)
from ansible_collections.m365ops.smtp_auth.plugins.module_utils.errors import M365Error
from ansible_collections.m365ops.smtp_auth.plugins.module_utils.exchange import ExchangeClient
from ansible_collections.m365ops.smtp_auth.plugins.module_utils.graph import GraphClient


class M365Module:
    """AnsibleModule plus the connection options, lazily built clients and one error-to-failure mapping.

    A module builds one, then calls ``run(function)``: ``function(module)`` returns the result dict, and
    any M365Error it raises becomes a single ``fail_json`` naming tenant, identity, permission or AADSTS code.
    """

    def __init__(self, argument_spec, mutually_exclusive=None, required_one_of=None, credentials_required=True,
                 **kwargs):
        """``credentials_required=False`` is for a module that may never call Microsoft 365 (the submission
        test with a password): credentials and the HTTP libraries are then checked when a token is first
        needed, not before."""
        spec = connection_argument_spec()
        spec.update(argument_spec)
        self.ansible = AnsibleModule(
            argument_spec=spec,
            mutually_exclusive=list(CONNECTION_MUTUALLY_EXCLUSIVE) + list(mutually_exclusive or []),
            required_one_of=list(required_one_of or []),
            **kwargs
        )
        if credentials_required:
            self._require_libraries()
        errors = connection_errors(self.params, need_credentials=credentials_required)
        if errors:
            self.ansible.fail_json(msg=" ".join(errors))
        self._credentials_checked = credentials_required
        self.settings = ConnectionSettings.from_params(self.params)
        # A module cannot print while it runs: each wait goes to its log (syslog or journal) as it starts.
        self.retry_events = transport.RetryEvents(announce=self._log_wait)
        self._session = None
        self._tokens = None
        self._graph = None
        self._exchange = None

    @property
    def params(self):
        return self.ansible.params

    @property
    def check_mode(self):
        return self.ansible.check_mode

    def warn(self, message):
        self.ansible.warn(message)

    def _require_libraries(self):
        for name, error in (("requests", transport.REQUESTS_IMPORT_ERROR), ("msal", auth.MSAL_IMPORT_ERROR)):
            if error is not None:
                self.ansible.fail_json(msg=missing_required_lib(name), exception=error)

    def sign_in_problem(self):
        """Why this run cannot call Microsoft 365 (credentials or libraries missing), or None; for a module whose
        calls to Microsoft 365 are optional, which asks before it uses a client."""
        if self._credentials_checked:
            return None
        missing = [name for name, error in (("requests", transport.REQUESTS_IMPORT_ERROR),
                                            ("msal", auth.MSAL_IMPORT_ERROR)) if error is not None]
        if missing:
            return "the Python libraries %s are not installed" % " and ".join(missing)
        errors = connection_errors(self.params)
        return " ".join(errors) if errors else None

    def _connect(self):
        """The run's one session and token provider, made on first use."""
        if not self._credentials_checked:
            self._require_libraries()
            errors = connection_errors(self.params)
            if errors:
                self.ansible.fail_json(msg=" ".join(errors))
            self._credentials_checked = True
        if self._session is None:
            self._session = transport.build_session(self.settings, self.retry_events)
            self._tokens = auth.TokenProvider(self.settings, self._session)
        return self._session, self._tokens

    @property
    def session(self):
        return self._connect()[0]

    def token(self, scope):
        """An app-only token for ``scope``; credentials are checked first when the module did not require them."""
        return self._connect()[1].token(scope)

    def tokens(self, scopes):
        """App-only tokens for several scopes, asked for at once; in the order given."""
        return self._connect()[1].tokens(scopes)

    @property
    def graph(self):
        if self._graph is None:
            self._graph = GraphClient(*self._connect(), self.settings, events=self.retry_events)
        return self._graph

    @property
    def exchange(self):
        if self._exchange is None:
            self._exchange = ExchangeClient(*self._connect(), self.settings, events=self.retry_events)
        return self._exchange

    def _log_wait(self, event):
        self.ansible.log("m365ops.smtp_auth: tenant %s: waiting %s s before retrying %s %s (HTTP %s%s)"
                         % (self.settings.tenant_id, event["wait"], event["method"], event["url"], event["status"],
                            ", " + event["reason"] if event.get("reason") else ""))

    def _with_retries_and_warnings(self, result):
        result = dict(result)
        result["retries"] = self.retry_events.as_list()
        summary = self.retry_events.summary()
        if summary and (summary["throttled"] or summary["unavailable"]):
            counted = (("throttled %d request(s) (HTTP 429)", summary["throttled"]),
                       ("was unavailable for %d (HTTP 503/504)", summary["unavailable"]))
            kinds = [text % count for text, count in counted if count]
            longest = summary["longest"]
            self.warn("Microsoft 365 %s for tenant %s; they were retried after waiting %s s in all, the longest "
                      "%s s before %s %s (see 'retries')."
                      % (" and ".join(kinds), self.settings.tenant_id, summary["waited"], longest["wait"],
                         longest["method"], longest["url"]))
        if self._exchange is not None:
            for warning in self._exchange.write_warnings:
                self.warn(warning)
        return result

    def fail(self, msg, **result):
        self.ansible.fail_json(msg=msg, **self._with_retries_and_warnings(result))

    def fail_from_error(self, error, **result):
        message = str(error)
        if self.settings.tenant_id not in message:
            message = "Tenant %s: %s" % (self.settings.tenant_id, message)
        self.fail(message, error=error.to_dict(), **result)

    def exit(self, **result):
        self.ansible.exit_json(**self._with_retries_and_warnings(result))

    def run(self, function):
        try:
            result = function(self)
        except M365Error as error:
            self.fail_from_error(error)
        else:
            failed_msg = result.pop("msg", None) if result.get("failed") else None
            if result.pop("failed", False):
                self.fail(failed_msg or "Microsoft 365 operation failed", **result)
            self.exit(**result)
