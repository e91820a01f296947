# Copyright (c) 2026 m365ops.smtp_auth contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""Microsoft Graph: single requests, paged lists and JSON batching, with errors mapped to typed errors."""

from __future__ import annotations

from dataclasses import dataclass, field

from ansible_collections.m365ops.smtp_auth.plugins.module_utils import _transport as transport
from ansible_collections.m365ops.smtp_auth.plugins.module_utils._batching import BatchRunner, retry_after_seconds
from ansible_collections.m365ops.smtp_auth.plugins.module_utils.errors import (
    AuthenticationError,
    M365Error,
    NotFoundError,
    PermissionDeniedError,
    parse_json_body,
    retries_exhausted,
)

BATCH_SIZE = 20  # Graph refuses a $batch with more requests than this
MAX_PAGES = 10000  # a bound on @odata.nextLink chains, far above any real tenant


@dataclass
class BatchRequest:
    """One request inside a $batch. ``url`` is relative to the version root, e.g. ``/users/x``."""

    method: str
    url: str
    body: dict | None = None
    # What the error message names if this item fails: the operation, the permission it needs, the identity.
    operation: str = ""
    permission: str | None = None
    identity: str | None = None
    headers: dict | None = None


@dataclass
class BatchResult:
    status: int
    body: dict | None = None
    headers: dict = field(default_factory=dict)
    error: M365Error | None = None


def graph_error(status, body, operation, permission=None, identity=None, tenant=None, request_id=None,
                retry_after=None):
    """Turn a Graph error reply into the typed error that says what to do about it."""
    error = (body or {}).get("error") if isinstance(body, dict) else None
    error = error if isinstance(error, dict) else {}
    code = error.get("code")
    text = error.get("message") or "HTTP %s" % status
    inner = error.get("innerError") or error.get("innererror") or {}
    request_id = request_id or inner.get("request-id")
    where = " in tenant %s" % tenant if tenant else ""
    if status == 401:
        return AuthenticationError("Graph refused the token for %s%s: %s" % (operation, where, text),
                                   status=status, code=code, request_id=request_id)
    if status == 403:
        needed = (" The app needs the Microsoft Graph application permission %s, with admin consent."
                  % permission) if permission else ""
        return PermissionDeniedError("Permission denied for %s%s (%s: %s).%s"
                                     % (operation, where, code or "Forbidden", text, needed),
                                     status=status, code=code, request_id=request_id, permission=permission,
                                     operation=operation)
    if status == 404:
        subject = identity or operation
        return NotFoundError("%s not found%s (%s)" % (subject, where, text), status=status, code=code,
                             request_id=request_id, identity=identity)
    if status in transport.THROTTLING_STATUSES:
        return retries_exhausted("Graph", operation + where, status, text, code=code, request_id=request_id,
                                 retry_after=retry_after)
    return M365Error("Graph failed %s%s: HTTP %s %s: %s" % (operation, where, status, code or "", text),
                     status=status, code=code, request_id=request_id)


class GraphClient:
    def __init__(self, session, tokens, settings, events=None, sleep=None, batch_concurrency=None):
        self.session = session
        self.tokens = tokens
        self.settings = settings
        self.base = settings.graph_base
        self.scope = settings.endpoints.graph_scope
        self.events = events
        self.sleep = sleep or transport.sleep
        # $batch requests in flight at once: the connection option unless a caller says otherwise.
        self.batch_concurrency = batch_concurrency or settings.concurrency
        self.runner = BatchRunner("Graph $batch", BATCH_SIZE, settings, tokens, self.scope, events=events,
                                  sleep=self.sleep)

    def _headers(self):
        return {"Accept": "application/json"}

    def url(self, path, version="v1.0"):
        if path.startswith("https://") or path.startswith("http://"):
            return path
        return "%s/%s/%s" % (self.base, version, path.lstrip("/"))

    def request(self, method, path, version="v1.0", body=None, params=None, operation=None, permission=None,
                identity=None):
        """Send one request; return the decoded body (None for 204) or raise the mapped error."""
        url = self.url(path, version)
        operation = operation or "%s %s" % (method, path)
        kwargs = {"headers": self._headers(), "params": params}
        if body is not None:
            kwargs["json"] = body
        response = transport.send_with_token(self.session, self.tokens, self.scope, method, url, events=self.events,
                                             **kwargs)
        decoded = parse_json_body(response.text)
        if response.status_code >= 400:
            raise graph_error(response.status_code, decoded, operation, permission=permission, identity=identity,
                              tenant=self.settings.tenant_id, request_id=response.headers.get("request-id"),
                              retry_after=response.headers.get("Retry-After"))
        return decoded

    def get(self, path, **kwargs):
        return self.request("GET", path, **kwargs)

    def patch(self, path, body, **kwargs):
        return self.request("PATCH", path, body=body, **kwargs)

    def list(self, path, **kwargs):
        """Every item of a collection, following ``@odata.nextLink``."""
        items = []
        page = self.request("GET", path, **kwargs)
        for _page_number in range(MAX_PAGES):
            items.extend((page or {}).get("value") or [])
            next_link = (page or {}).get("@odata.nextLink")
            if not next_link:
                return items
            kwargs.pop("params", None)  # the link carries the query
            page = self.request("GET", next_link, **kwargs)
        raise M365Error("Graph kept returning pages for %s after %s pages" % (path, MAX_PAGES))

    def batch(self, requests, version="v1.0"):
        """Run requests through ``$batch``: chunks of 20, a few chunks at a time, throttled items retried
        after their Retry-After. Returns one BatchResult per request, in the order given."""
        requests = list(requests)
        if not requests:
            return []
        return self.runner.run(
            len(requests),
            send=lambda indexes: self._post_batch(requests, indexes, version),
            settle=lambda index, status, headers, body, error: self._result(requests[index], status, headers, body,
                                                                            error),
            describe=lambda index: (requests[index].method, "$batch:" + requests[index].url),
            concurrency=self.batch_concurrency)

    def _result(self, request, status, headers, body, error=None):
        if error is not None:
            return BatchResult(status=status, error=error)
        if isinstance(body, str):  # some items carry base64 or plain text bodies
            body = parse_json_body(body) or {"text": body}
        if status >= 400:
            request_id = next((value for name, value in headers.items() if name.lower() == "request-id"), None)
            error = graph_error(status, body, request.operation or "%s %s" % (request.method, request.url),
                                permission=request.permission, identity=request.identity,
                                tenant=self.settings.tenant_id, request_id=request_id,
                                retry_after=retry_after_seconds(headers, None))
            return BatchResult(status=status, body=body, headers=headers, error=error)
        return BatchResult(status=status, body=body, headers=headers)

    def _post_batch(self, requests, indexes, version):
        payload = {"requests": []}
        for index in indexes:
            request = requests[index]
            item = {"id": str(index), "method": request.method, "url": "/" + request.url.lstrip("/")}
            headers = dict(request.headers or {})
            if request.body is not None:
                item["body"] = request.body
                headers["Content-Type"] = "application/json"
            if headers:
                item["headers"] = headers
            payload["requests"].append(item)
        reply = self.request("POST", "$batch", version=version, body=payload, operation="Graph $batch")
        return {str(item.get("id")): item for item in (reply or {}).get("responses") or []}
