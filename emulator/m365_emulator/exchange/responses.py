"""The Exchange Online admin API on the wire: ``POST /adminapi/beta/{tenant}/InvokeCommand``.

The REST transport behind ExchangeOnlineManagement v3 is undocumented; the shapes here follow what production
callers of it parse (see docs/architecture.md). Facts that are not confirmed live are behaviour switches in
``TenantStore.behaviour``: ``set_response``, ``null_clears_mailbox_switch``, ``exchange_paging``,
``exchange_page_size``, ``exchange_batch`` and ``exchange_batch_limit``. ``?$select=A,B`` on the URL (as CIPP sends
it) keeps only those properties of each object, on every page.

``POST /adminapi/beta/{tenant}/$batch`` takes ``{"requests": [{"id", "method": "POST", "url": the InvokeCommand
URL (absolute, or relative to the tenant's root), "headers", "body": the CmdletInput}]}`` and answers
``{"responses": [{"id", "status", "headers", "body"}]}``, each body what InvokeCommand would have answered.
"""

from __future__ import annotations

import hashlib
import json
import re
from typing import Any
from urllib.parse import quote

from ..core import HttpError, Request, Response, Service, batching, plain_error
from ..identity import Claims, authorize, bearer_challenge
from ..state import Tenant
from .budget import CmdletBudget
from .errors import CmdletError
from .models import MORE_RESULTS_WARNING, PAGINATION_EXPIRED, Cursor, Listing, PageCursors, canonical_name, run_cmdlet
from .objects import COLLECTION_OF_STRING
from .urls import URLS

MANAGE_AS_APP = "Exchange.ManageAsApp"
# Directory roles that carry the Exchange RBAC needed for these cmdlets, by name and by template id (wids).
ADMIN_ROLES = {
    "exchange administrator", "29232cdf-9323-42fd-ade2-1d097af3e4de",
    "global administrator", "62e90394-69f5-4237-9190-012177145e10",
}


def parse_cmdlet_input(body: Any) -> tuple[str, dict[str, Any]]:
    """``{"CmdletInput": {"CmdletName": ..., "Parameters": {...}}}`` -> (name, parameters); ValueError if malformed."""
    if not isinstance(body, dict) or not isinstance(body.get("CmdletInput"), dict):
        raise ValueError("the body must be an object with a 'CmdletInput' object")
    cmdlet_input = body["CmdletInput"]
    name = cmdlet_input.get("CmdletName")
    if not isinstance(name, str) or not name.strip():
        raise ValueError("'CmdletInput.CmdletName' must be a non-empty string")
    parameters = cmdlet_input.get("Parameters")
    if parameters is None:
        parameters = {}
    if not isinstance(parameters, dict):
        raise ValueError("'CmdletInput.Parameters' must be an object")
    return name.strip(), parameters


def error_body(request: Request, error: CmdletError) -> dict[str, Any]:
    detail = f"{error.error_id}|{error.exception_type}|{error.text}"
    if error.internal_type is None:
        internal = {"message": error.text, "type": error.exception_type, "stacktrace": ""}
    else:
        internal = {"message": f"Exception of type '{error.internal_type}' was thrown.", "type": error.internal_type,
                    "stacktrace": ""}
    body: dict[str, Any] = {
        "code": error.code,
        "message": "Error executing cmdlet",
        "details": [{"code": error.detail_code, "target": "", "message": detail}],
        "innererror": {
            "message": "Error executing cmdlet",
            "type": error.wrapper_type,
            "stacktrace": "",
            "internalexception": internal,
            "request-id": request.request_id,
        },
    }
    if error.status == 404:
        # The captured not-found carries the warnings annotation inside the error object.
        body["adminapi.warnings@odata.type"] = COLLECTION_OF_STRING
        body["@adminapi.warnings"] = []
    return {"error": body}


def _unauthorized(reason: str) -> Response:
    return bearer_challenge(reason, 2000008, "insufficient_claims", "invalid_token")


def _forbidden(app_name: str, tenant: Tenant) -> Response:
    # Observed live: this 403 is not JSON. Clients must cope with an HTML body.
    html = ("<html><head><title>403 - Forbidden</title></head><body><h1>403 - Forbidden: Access is denied.</h1>"
            f"<p>The application '{app_name}' has {MANAGE_AS_APP} but no Exchange administrator role in "
            f"'{tenant.domains[0]}'.</p></body></html>")
    return Response(403, html, {"Content-Type": "text/html; charset=utf-8"})


def _has_admin_role(claims: Claims) -> bool:
    # Exchange evaluates RBAC on its side from the app's current role assignments, not from the token's wids:
    # a role removed after the token was issued stops working at once.
    roles = {str(role).lower() for role in claims.app.directory_roles or []}
    return bool(roles & ADMIN_ROLES)


def _fingerprint(name: str, parameters: dict[str, Any]) -> str:
    return hashlib.sha256(json.dumps([name.lower(), parameters], sort_keys=True, default=str).encode()).hexdigest()


class ExchangeService(Service):
    """The InvokeCommand endpoint; ``cursors`` are its server-side paging cursors."""

    name = "exchange"
    urls = URLS

    def __init__(self, emulator: Any, cursors: PageCursors | None = None):
        super().__init__(emulator)
        self.cursors = cursors if cursors is not None else PageCursors()
        self.budget = CmdletBudget()

    def operation(self, request: Request) -> str | None:
        """The cmdlet a request runs, from ``X-CmdletName`` or the body."""
        name = request.headers.get("x-cmdletname")
        if name:
            return name
        if request.method == "POST" and request.path.endswith("/InvokeCommand") and request.body:
            try:
                return json.loads(request.body)["CmdletInput"]["CmdletName"]
            except (ValueError, KeyError, TypeError):
                return None
        return None

    def admitted(self, request: Request, tenant_ref: str) -> tuple[Claims, Tenant] | Response:
        """The caller's claims and tenant, or the 401/403 the admin API answers a caller it does not admit."""
        claims = authorize(self.emulator, request, "exchange")
        store = self.emulator.store
        with store.lock:
            tenant = store.find_tenant(tenant_ref)
            if tenant is not None:
                request.log["tenant"] = tenant.id
            if tenant is None or tenant.id != claims.tenant.id:
                return _unauthorized(f"The token's tenant does not match the organization '{tenant_ref}'.")
            if MANAGE_AS_APP not in claims.roles:
                return _unauthorized(f"The token has no {MANAGE_AS_APP} application permission.")
            if not _has_admin_role(claims):
                return _forbidden(claims.app.display_name, tenant)
            return claims, tenant

    def invoke(self, request: Request, tenant_ref: str) -> Response:
        store = self.emulator.store
        with store.lock:
            admitted = self.admitted(request, tenant_ref)
            if isinstance(admitted, Response):
                return admitted
            claims, tenant = admitted
            try:
                name, parameters = parse_cmdlet_input(self.json_body(request))
            except ValueError as exc:
                raise HttpError(self.error(request, 400, "BadRequest", f"Invalid CmdletInput: {exc}.")) from None
            request.log["cmdlet"] = canonical_name(name) or name
            try:
                if "$skiptoken" in request.args:
                    return self.next_page(request, tenant, tenant_ref, name, parameters)
                wait = self.budget.admit(store.behaviour, tenant.id, claims.app.client_id, name)
                if wait is not None:
                    # Not run: the caller's budget is spent until the oldest cmdlet of its window leaves it.
                    return self.error(request, 429, "TooManyRequests",
                                      f"The caller has exceeded its budget of cmdlets; {name} was not run. "
                                      f"Retry after {wait} seconds.", {"Retry-After": str(wait)})
                outcome = run_cmdlet(store, tenant, name, parameters)
            except CmdletError as error:
                return Response(error.status, error_body(request, error))
            request.log["wrote"] = outcome.wrote
            if isinstance(outcome.value, list):
                return Response(200, self.envelope(request, tenant_ref, outcome.value, outcome.warnings))
            return self.first_page(request, tenant, tenant_ref, name, parameters, outcome.value)

    def batch(self, request: Request, tenant_ref: str) -> Response:
        behaviour = self.emulator.store.behaviour
        if not behaviour.get("exchange_batch", True):
            return plain_error(404, "NotFound", f"No resource at {request.path}.")
        admitted = self.admitted(request, tenant_ref)
        if isinstance(admitted, Response):
            return admitted
        data = self.json_body(request)
        items = data.get("requests") if isinstance(data, dict) else None
        limit = int(behaviour.get("exchange_batch_limit") or 10)
        if not isinstance(items, list) or not items:
            return self.error(request, 400, "BadRequest", "Invalid batch payload: 'requests' must be a non-empty array.")
        if len(items) > limit:
            return self.error(request, 400, "BadRequest",
                              f"Invalid batch payload: {len(items)} requests, more than the limit of {limit}.")
        seen: set[str] = set()
        for item in items:
            if not isinstance(item, dict) or not all(item.get(key) for key in ("id", "method", "url")):
                return self.error(request, 400, "BadRequest",
                                  "Invalid batch payload: every request needs 'id', 'method' and 'url'.")
            if str(item["id"]) in seen:
                return self.error(request, 400, "BadRequest", f"Duplicate request id '{item['id']}' in the batch.")
            seen.add(str(item["id"]))
        # OData batch semantics: without the odata.continue-on-error preference (which CIPP sends) the service
        # stops at the first failed item and the rest go unanswered.
        keep_going = "odata.continue-on-error" in (request.headers.get("prefer") or "").lower()
        responses = []
        for item in items:
            responses.append(self.run_item(request, tenant_ref, item))
            if responses[-1]["status"] >= 400 and not keep_going:
                break
        return Response(200, batching.finish(request, responses))

    def run_item(self, outer: Request, tenant_ref: str, item: dict[str, Any]) -> dict[str, Any]:
        item_id = str(item["id"])
        url = str(item["url"])
        method = str(item["method"]).upper()
        target = url.split("://", 1)[1].partition("/")[2] if "://" in url else url.lstrip("/")
        if not target.startswith("adminapi/"):
            target = f"adminapi/beta/{tenant_ref}/{target}"
        path_text, _, query_text = target.partition("?")
        if method != "POST" or not path_text.endswith("/InvokeCommand"):
            error = self.error(outer, 400, "BadRequest", f"Invalid request in batch item '{item_id}': {method} {url}.")
            return {"id": item_id, "status": 400, "headers": {"Content-Type": "application/json"},
                    "body": error.body, "_wrote": False}
        return batching.answer_item(self.emulator, outer, item_id, method, "/" + path_text, query_text, item)

    def page_size(self, request: Request) -> int:
        size = int(self.emulator.store.behaviour.get("exchange_page_size") or 1000)
        preference = re.search(r"odata\.maxpagesize\s*=\s*(\d+)", request.headers.get("prefer") or "")
        if preference and int(preference.group(1)) > 0:
            size = min(size, int(preference.group(1)))
        return max(1, size)

    def first_page(self, request: Request, tenant: Tenant, tenant_ref: str, name: str, parameters: dict[str, Any],
                   listing: Listing) -> Response:
        size = self.page_size(request)
        keys = listing.keys
        rows = self.render(tenant, listing, 0, size)
        body = self.envelope(request, tenant_ref, rows, listing.warnings)
        if len(keys) > size:
            # Every page with more to come says so, with or without a link to the rest (the "warning" mode
            # has none: the truncated first page is all there is).
            if MORE_RESULTS_WARNING not in body["@adminapi.warnings"]:
                body["@adminapi.warnings"].append(MORE_RESULTS_WARNING)
            if self.emulator.store.behaviour.get("exchange_paging", "follow") != "warning":
                token = self.cursors.issue(Cursor(tenant.id, _fingerprint(name, parameters), keys, listing.render,
                                                  size, self.cursors.clock(), list(listing.warnings)))
                body["@odata.nextLink"] = self.next_link(request, tenant_ref, token)
        return Response(200, body)

    def next_page(self, request: Request, tenant: Tenant, tenant_ref: str, name: str,
                  parameters: dict[str, Any]) -> Response:
        mode = self.emulator.store.behaviour.get("exchange_paging", "follow")
        cursor = None
        if mode != "expire":
            cursor = self.cursors.take(request.args["$skiptoken"], tenant.id, _fingerprint(name, parameters))
        if cursor is None:
            return Response(400, {"error": {"code": "BadRequest", "message": PAGINATION_EXPIRED}})
        size = self.page_size(request)
        listing = Listing(cursor.keys, cursor.render, [])
        rows = self.render(tenant, listing, cursor.offset, size)
        following = cursor.offset + size
        if following < len(cursor.keys):
            body = self.envelope(request, tenant_ref, rows, [MORE_RESULTS_WARNING])
            token = self.cursors.issue(Cursor(tenant.id, cursor.fingerprint, cursor.keys, cursor.render, following,
                                              cursor.created, cursor.warnings))
            body["@odata.nextLink"] = self.next_link(request, tenant_ref, token)
        else:
            body = self.envelope(request, tenant_ref, rows, cursor.warnings)
        return Response(200, body)

    @staticmethod
    def render(tenant: Tenant, listing: Listing, start: int, size: int) -> list[dict[str, Any]]:
        rows = (listing.render(tenant, key) for key in listing.keys[start:start + size])
        return [row for row in rows if row is not None]

    @staticmethod
    def next_link(request: Request, tenant_ref: str, token: str) -> str:
        # The link keeps the $select of the request it continues.
        select = request.args.get("$select")
        kept = f"$select={quote(select, safe=',')}&" if select else ""
        return f"{request.origin}/adminapi/beta/{tenant_ref}/InvokeCommand?{kept}$skiptoken={token}"

    @staticmethod
    def envelope(request: Request, tenant_ref: str, rows: list[dict[str, Any]], warnings: list[str]) -> dict[str, Any]:
        base = f"{request.origin}/adminapi/beta/{tenant_ref}"
        select = request.args.get("$select")
        if select:
            # Only the properties asked for (case-insensitively), each with its annotation.
            wanted = {name.strip().lower() for name in select.split(",") if name.strip()}
            rows = [{key: value for key, value in row.items() if key.split("@", 1)[0].lower() in wanted}
                    for row in rows]
        return {
            "@odata.context": f"{base}/$metadata#Collection(Exchange.GenericHashTable)",
            "adminapi.warnings@odata.type": COLLECTION_OF_STRING,
            "@adminapi.warnings": list(warnings),
            "value": rows,
        }
