"""Microsoft Graph on the wire (v1.0 and beta): security defaults, per-user MFA, users, directory roles,
Conditional Access, service principals and their app role assignments, sign-in logs and ``$batch``.

Every handler authenticates with ``identity.authorize`` and checks its own application permission, so a
missing permission gives Graph's 403 exactly where Graph would give it.
"""

from __future__ import annotations

import base64
import copy
import json
import uuid
from typing import Any, Callable
from urllib.parse import quote, urlencode

from ..core import HttpError, Request, Response, Service, batching, odata_error
from ..identity import Claims, authorize
from ..state import MFA_STATES, Tenant, User
from . import models
from .urls import FALLBACK_URLS, URLS

GRAPH_CONTENT_TYPE = ("application/json;odata.metadata=minimal;odata.streaming=true;"
                      "IEEE754Compatible=false;charset=utf-8")
BATCH_LIMIT = 20
USERS_PAGE_SIZE = 100
USERS_PAGE_MAX = 999
INSUFFICIENT_PRIVILEGES = "Insufficient privileges to complete the operation."
# Top-level segments Graph knows; used only to name the failing segment of an unknown path the way Graph does.
KNOWN_ROOT_SEGMENTS = {"users", "policies", "identity", "$batch", "me", "groups", "organization", "domains",
                       "applications", "servicePrincipals", "directoryRoles", "subscribedSkus", "reports",
                       "auditLogs"}
SERVICE_PRINCIPAL_TYPE = "microsoft.graph.servicePrincipal"
APPLICATION_TYPE = "microsoft.graph.application"
SIGN_INS_PAGE_MAX = 1000
NON_PREMIUM = ("Authentication_RequestFromNonPremiumTenantOrB2CTenant",
               "Neither tenant is B2C or tenant doesn't have premium license")


def ok(body: Any, status: int = 200) -> Response:
    return Response(status, body, {"Content-Type": GRAPH_CONTENT_TYPE})


def bad_request(request: Request, message: str, code: str = "BadRequest") -> HttpError:
    return HttpError(odata_error(request, 400, code, message))


def require(request: Request, claims: Claims, *, any_of: tuple[str, ...] = (),
            one_set_of: tuple[tuple[str, ...], ...] = ()) -> None:
    """Graph's 403 unless the token's roles hold one of ``any_of``, or every permission of one of ``one_set_of``.

    A ``one_set_of`` refusal names the sets, the least privileged first.
    """
    roles = set(claims.roles)
    if any_of and not roles.intersection(any_of):
        raise HttpError(odata_error(request, 403, "Authorization_RequestDenied", INSUFFICIENT_PRIVILEGES))
    if one_set_of and not any(roles.issuperset(permissions) for permissions in one_set_of):
        needed = ", or ".join(" and ".join(permissions) for permissions in one_set_of)
        raise HttpError(odata_error(request, 403, "Authorization_RequestDenied",
                                    f"{INSUFFICIENT_PRIVILEGES} The application needs {needed}."))


def not_found(request: Request, identity: str) -> HttpError:
    return HttpError(odata_error(
        request, 404, "Request_ResourceNotFound",
        f"Resource '{identity}' does not exist or one of its queried reference-property objects are not present."))


def find_user(request: Request, tenant: Tenant, identity: str) -> User:
    user = models.find_user(tenant, identity)
    if user is None:
        raise not_found(request, identity)
    return user


def find_principal(request: Request, tenant: Tenant, object_id: str) -> models.Principal:
    principal = models.find_service_principal(tenant, object_id)
    if principal is None:
        raise not_found(request, object_id)
    return principal


def alternate_key(request: Request, raw: str) -> str:
    """The value of ``(appId='...')``: quoted, as OData writes a string key."""
    if len(raw) < 2 or raw[0] != "'" or raw[-1] != "'":
        raise bad_request(request, f"Bad Request - Error in query syntax: the key value {raw} must be quoted.",
                          "Request_BadRequest")
    return raw[1:-1].replace("''", "'")


def select(request: Request, known: tuple[str, ...], type_name: str) -> list[str] | None:
    raw = request.args.get("$select")
    if raw is None:
        return None
    names = [name.strip() for name in raw.split(",") if name.strip()]
    for name in names:
        if name not in known:
            raise bad_request(request, f"Could not find a property named '{name}' on type '{type_name}'.",
                              "Request_BadRequest")
    return names


def reject_unsupported_options(request: Request, supported: tuple[str, ...]) -> None:
    for option in request.args:
        if option.startswith("$") and option not in supported:
            raise bad_request(request, f"The query option '{option}' is not supported by the emulator on this "
                                       f"resource; supported: {', '.join(supported) or 'none'}.")


def project(user: User, names: list[str] | None) -> dict[str, Any]:
    properties = models.user_properties(user)
    return {name: properties[name] for name in (names or models.DEFAULT_USER_PROPERTIES)}


def encode_skiptoken(offset: int) -> str:
    return encode_cursor("offset", str(offset))


def decode_skiptoken(request: Request, token: str | None) -> int:
    if not token:
        return 0
    number = decode_cursor(request, token, "offset")
    if not number.isdigit():
        raise bad_request(request, "The $skiptoken is not valid.", "Request_BadRequest")
    return int(number)


def encode_cursor(kind: str, value: str) -> str:
    return base64.urlsafe_b64encode(f"{kind}:{value}".encode()).decode().rstrip("=")


def decode_cursor(request: Request, token: str, kind: str) -> str:
    """What ``encode_cursor(kind, ...)`` put in a ``$skiptoken``; 400 for anything else."""
    try:
        text = base64.urlsafe_b64decode(token + "=" * (-len(token) % 4)).decode()
    except ValueError:
        text = ""
    found, separator, value = text.partition(":")
    if found != kind or not separator:
        raise bad_request(request, "The $skiptoken is not valid.", "Request_BadRequest")
    return value


def page_size(request: Request, default: int, maximum: int) -> int:
    text = request.args.get("$top", str(default))
    if not text.isdigit() or not 1 <= int(text) <= maximum:
        raise bad_request(request, f"Invalid page size specified: '{text}'. Must be between 1 and {maximum} "
                                   "inclusive.", "Request_UnsupportedQuery")
    return int(text)


def next_link(request: Request, version: str, path: str, token: str, *kept: str) -> str:
    """An absolute link to the next page: the same query options, a new ``$skiptoken``."""
    query = {name: request.args[name] for name in kept if name in request.args}
    query["$skiptoken"] = token
    return f"{request.origin}/{version}/{path}?" + urlencode(query, quote_via=quote, safe="$,")


def offset_page(request: Request, version: str, path: str, items: list[Any], default: int,
                maximum: int) -> dict[str, Any]:
    """One page of ``items`` by ``$top``/``$skiptoken``: ``{"value": [...]}`` and a nextLink when more follow."""
    top = page_size(request, default, maximum)
    offset = decode_skiptoken(request, request.args.get("$skiptoken"))
    body: dict[str, Any] = {"value": items[offset:offset + top]}
    if offset + top < len(items):
        body["@odata.nextLink"] = next_link(request, version, path, encode_skiptoken(offset + top),
                                            "$filter", "$select", "$top")
    return body


def filter_of(request: Request, fields: dict[str, models.FilterField], type_name: str) -> Any:
    text = request.args.get("$filter")
    if text is None:
        return None
    try:
        return models.parse_filter(text, fields, type_name)
    except models.FilterError as exc:
        raise bad_request(request, str(exc), exc.code) from None


def projected(properties: dict[str, Any], names: list[str] | None) -> dict[str, Any]:
    return {name: properties[name] for name in names} if names else properties


class GraphService(Service):
    name = "graph"
    urls = URLS
    fallback_urls = FALLBACK_URLS

    def error(self, request: Request, status: int, code: str, message: str,
              headers: dict[str, str] | None = None) -> Response:
        return odata_error(request, status, code, message, headers)

    def finish(self, request: Request, response: Response) -> None:
        response.headers["request-id"] = request.request_id
        response.headers["client-request-id"] = request.client_request_id

    def authorized(self, request: Request) -> Claims:
        return authorize(self.emulator, request, "graph")

    def json_object(self, request: Request) -> dict[str, Any]:
        data = self.json_body(request)
        if not isinstance(data, dict):
            raise bad_request(request, "The request body must be a JSON object.")
        return data

    @staticmethod
    def context(request: Request, version: str, fragment: str) -> str:
        return f"{request.origin}/{version}/$metadata#{fragment}"

    # -- security defaults ---------------------------------------------------------------------------
    def get_security_defaults(self, request: Request, version: str) -> Response:
        claims = self.authorized(request)
        require(request, claims, any_of=models.POLICY_READ)
        with self.emulator.store.lock:
            return ok({"@odata.context": self.context(request, version,
                                                      "policies/identitySecurityDefaultsEnforcementPolicy/$entity"),
                       **models.security_defaults(claims.tenant)})

    def patch_security_defaults(self, request: Request, version: str) -> Response:
        claims = self.authorized(request)
        require(request, claims, one_set_of=models.SECURITY_DEFAULTS_WRITE)
        data = self.json_object(request)
        for name, value in data.items():
            if name in ("id", "displayName", "description"):
                raise bad_request(request, f"Property '{name}' is read-only and cannot be set.")
            if name == "@odata.type":
                if value != models.SECURITY_DEFAULTS_TYPE:
                    raise bad_request(request, f"Invalid @odata.type '{value}' for this resource.")
            elif name != "isEnabled":
                raise bad_request(request, f"Invalid property '{name}'.")
        if "isEnabled" in data and not isinstance(data["isEnabled"], bool):
            raise bad_request(request, "Cannot convert the literal '{}' to the expected type 'Edm.Boolean'."
                              .format(json.dumps(data["isEnabled"])))
        store = self.emulator.store
        with store.lock:
            tenant = store.find_tenant(claims.tenant.id) or claims.tenant
            if "isEnabled" in data:
                tenant.security_defaults_enabled = data["isEnabled"]
        request.log["wrote"] = True
        return Response(204)

    # -- per-user MFA (beta) -------------------------------------------------------------------------
    def get_mfa(self, request: Request, version: str, user: str) -> Response:
        claims = self.authorized(request)
        require(request, claims, any_of=models.POLICY_READ)
        with self.emulator.store.lock:
            found = find_user(request, claims.tenant, user)
            return ok({"@odata.type": models.MFA_REQUIREMENTS_TYPE, "perUserMfaState": found.per_user_mfa_state})

    def patch_mfa(self, request: Request, version: str, user: str) -> Response:
        claims = self.authorized(request)
        require(request, claims, any_of=models.MFA_WRITE)
        data = self.json_object(request)
        for name, value in data.items():
            if name == "@odata.type":
                if value != models.MFA_REQUIREMENTS_TYPE:
                    raise bad_request(request, f"Invalid @odata.type '{value}' for this resource.")
            elif name != "perUserMfaState":
                raise bad_request(request, f"Invalid property '{name}'.")
        state = data.get("perUserMfaState")
        if state not in MFA_STATES:
            raise bad_request(request, f"Invalid value '{state}' for property 'perUserMfaState'; "
                                       f"allowed: {', '.join(MFA_STATES)}.")
        with self.emulator.store.lock:
            models.set_per_user_mfa(find_user(request, claims.tenant, user), state)
        request.log["wrote"] = True
        return Response(204)

    # -- users ---------------------------------------------------------------------------------------
    def get_user(self, request: Request, version: str, user: str) -> Response:
        claims = self.authorized(request)
        require(request, claims, any_of=models.USER_READ)
        reject_unsupported_options(request, ("$select",))
        names = select(request, models.USER_PROPERTIES, "microsoft.graph.user")
        with self.emulator.store.lock:
            found = find_user(request, claims.tenant, user)
            shape = f"users({','.join(names)})/$entity" if names else "users/$entity"
            return ok({"@odata.context": self.context(request, version, shape), **project(found, names)})

    def list_users(self, request: Request, version: str) -> Response:
        claims = self.authorized(request)
        require(request, claims, any_of=models.USER_READ)
        reject_unsupported_options(request, ("$select", "$top", "$skiptoken"))
        names = select(request, models.USER_PROPERTIES, "microsoft.graph.user")
        with self.emulator.store.lock:
            page = offset_page(request, version, "users", list(claims.tenant.users.values()), USERS_PAGE_SIZE,
                               USERS_PAGE_MAX)
            page["value"] = [project(user, names) for user in page["value"]]
        shape = f"users({','.join(names)})" if names else "users"
        return ok({"@odata.context": self.context(request, version, shape), **page})

    # -- directory role membership -------------------------------------------------------------------
    def transitive_member_of(self, request: Request, version: str, user: str) -> Response:
        """The user's directory objects (only directory roles here: the emulator has no groups)."""
        return self.memberships(request, version, user, "directoryObjects")

    def directory_roles_of(self, request: Request, version: str, user: str) -> Response:
        """The same, cast to ``microsoft.graph.directoryRole``."""
        return self.memberships(request, version, user, "directoryRoles")

    def memberships(self, request: Request, version: str, user: str, shape: str) -> Response:
        claims = self.authorized(request)
        require(request, claims, any_of=models.MEMBERSHIP_READ)
        reject_unsupported_options(request, ("$select", "$count"))
        names = select(request, models.DIRECTORY_ROLE_PROPERTIES, "microsoft.graph.directoryRole")
        count = request.args.get("$count")
        if count is not None:
            if count.lower() not in ("true", "false"):
                raise bad_request(request, f"Invalid value '{count}' for the query option '$count'.",
                                  "Request_BadRequest")
            if (request.headers.get("consistencylevel") or "").lower() != "eventual":
                raise bad_request(request, "$count is only supported with the ConsistencyLevel header set to "
                                           "'eventual' (an advanced query).", "Request_BadRequest")
        readable = bool(set(claims.roles).intersection(models.ROLE_READ))
        with self.emulator.store.lock:
            roles = models.directory_roles(claims.tenant, find_user(request, claims.tenant, user), readable)
        items = [{"@odata.type": models.DIRECTORY_ROLE_TYPE,
                  **{name: role[name] for name in (names or models.DIRECTORY_ROLE_PROPERTIES)}} for role in roles]
        if names:
            shape += f"({','.join(names)})"
        body: dict[str, Any] = {"@odata.context": self.context(request, version, shape)}
        if count is not None and count.lower() == "true":
            body["@odata.count"] = len(items)
        body["value"] = items
        return ok(body)

    # -- Conditional Access --------------------------------------------------------------------------
    def list_ca_policies(self, request: Request, version: str) -> Response:
        claims = self.authorized(request)
        require(request, claims, any_of=models.POLICY_READ)
        with self.emulator.store.lock:
            policies = copy.deepcopy(claims.tenant.conditional_access_policies)
        return ok({"@odata.context": self.context(request, version, "identity/conditionalAccess/policies"),
                   "value": policies})

    def get_ca_policy(self, request: Request, version: str, policy: str) -> Response:
        claims = self.authorized(request)
        require(request, claims, any_of=models.POLICY_READ)
        with self.emulator.store.lock:
            for candidate in claims.tenant.conditional_access_policies:
                if str(candidate.get("id", "")).lower() == policy.lower():
                    return ok({"@odata.context": self.context(request, version,
                                                              "identity/conditionalAccess/policies/$entity"),
                               **copy.deepcopy(candidate)})
        raise not_found(request, policy)

    # -- service principals and app registrations ----------------------------------------------------
    def list_service_principals(self, request: Request, version: str) -> Response:
        return self.application_listing(request, version, "servicePrincipals", SERVICE_PRINCIPAL_TYPE,
                                        models.SERVICE_PRINCIPAL_PROPERTIES, models.service_principal_listing)

    def list_applications(self, request: Request, version: str) -> Response:
        return self.application_listing(request, version, "applications", APPLICATION_TYPE,
                                        models.APPLICATION_PROPERTIES, models.application_listing)

    def get_service_principal(self, request: Request, version: str, principal: str) -> Response:
        return self.application_entity(request, version, "servicePrincipals", SERVICE_PRINCIPAL_TYPE,
                                       models.SERVICE_PRINCIPAL_PROPERTIES, principal,
                                       lambda tenant: models.service_principal_properties(tenant, object_id=principal))

    def get_service_principal_by_app_id(self, request: Request, version: str, app_ref: str) -> Response:
        app_id = alternate_key(request, app_ref)
        return self.application_entity(request, version, "servicePrincipals", SERVICE_PRINCIPAL_TYPE,
                                       models.SERVICE_PRINCIPAL_PROPERTIES, f"servicePrincipals(appId='{app_id}')",
                                       lambda tenant: models.service_principal_properties(tenant, app_id=app_id))

    def get_application_by_app_id(self, request: Request, version: str, app_ref: str) -> Response:
        app_id = alternate_key(request, app_ref)
        return self.application_entity(request, version, "applications", APPLICATION_TYPE,
                                       models.APPLICATION_PROPERTIES, f"applications(appId='{app_id}')",
                                       lambda tenant: models.application_by_app_id(tenant, app_id))

    def application_listing(self, request: Request, version: str, entity_set: str, type_name: str,
                            known: tuple[str, ...], listing: Callable[[Tenant], list[dict[str, Any]]]) -> Response:
        """A list of service principals or app registrations, with ``$filter`` (appId, displayName), ``$select``
        and paging."""
        claims = self.authorized(request)
        require(request, claims, any_of=models.APPLICATION_READ)
        reject_unsupported_options(request, ("$filter", "$select", "$top", "$skiptoken"))
        names = select(request, known, type_name)
        predicate = filter_of(request, models.SERVICE_PRINCIPAL_FILTER, type_name)
        with self.emulator.store.lock:
            found = listing(claims.tenant)
        found = [projected(properties, names) for properties in found if predicate is None or predicate(properties)]
        page = offset_page(request, version, entity_set, found, 100, 999)
        return ok({"@odata.context": self.context(request, version, entity_set), **page})

    def application_entity(self, request: Request, version: str, entity_set: str, type_name: str,
                           known: tuple[str, ...], identity: str,
                           find: Callable[[Tenant], dict[str, Any] | None]) -> Response:
        """One service principal or app registration (``$select``), or 404 naming ``identity``."""
        claims = self.authorized(request)
        require(request, claims, any_of=models.APPLICATION_READ)
        reject_unsupported_options(request, ("$select",))
        names = select(request, known, type_name)
        with self.emulator.store.lock:
            properties = find(claims.tenant)
        if properties is None:
            raise not_found(request, identity)
        return ok({"@odata.context": self.context(request, version, f"{entity_set}/$entity"),
                   **projected(properties, names)})

    # -- app role assignments (admin consent of application permissions) ----------------------------
    # ``relation`` appRoleAssignedTo lists and changes the assignments of a resource's roles, appRoleAssignments
    # those a client holds: two views of the same assignments.
    def list_assignments(self, request: Request, version: str, principal: str, relation: str) -> Response:
        claims = self.authorized(request)
        require(request, claims, any_of=models.APP_ROLE_ASSIGNMENT_READ)
        reject_unsupported_options(request, ("$top", "$skiptoken"))
        with self.emulator.store.lock:
            tenant = claims.tenant
            owner = find_principal(request, tenant, principal)
            found = [assignment.properties(tenant) for assignment in self.assignments_of(tenant, owner, relation)]
        page = offset_page(request, version, f"servicePrincipals/{owner.id}/{relation}", found, 100, 999)
        return ok({"@odata.context": self.context(request, version, f"servicePrincipals('{owner.id}')/{relation}"),
                   **page})

    @staticmethod
    def assignments_of(tenant: Tenant, owner: models.Principal, relation: str) -> list[models.Assignment]:
        side = "resource" if relation == "appRoleAssignedTo" else "principal"
        return [assignment for assignment in models.assignments(tenant) if getattr(assignment, side).id == owner.id]

    def add_assignment(self, request: Request, version: str, principal: str, relation: str) -> Response:
        claims = self.authorized(request)
        require(request, claims, any_of=models.APP_ROLE_ASSIGNMENT_WRITE)
        data = self.json_object(request)
        fields = {}
        for name in ("principalId", "resourceId", "appRoleId"):
            value = data.get(name)
            if not isinstance(value, str) or not value.strip():
                raise bad_request(request, f"Property '{name}' is required and must be a non-empty string.",
                                  "Request_BadRequest")
            try:
                fields[name] = str(uuid.UUID(value))
            except ValueError:
                raise bad_request(request, f"Invalid value specified for property '{name}' of resource "
                                           "'AppRoleAssignment'.", "Request_BadRequest") from None
        unknown = sorted(set(data) - {"principalId", "resourceId", "appRoleId", "@odata.type"})
        if unknown:
            raise bad_request(request, f"Property '{unknown[0]}' does not exist on type "
                                       "'microsoft.graph.appRoleAssignment' or is read-only.", "Request_BadRequest")
        with self.emulator.store.lock:
            tenant = claims.tenant
            owner = find_principal(request, tenant, principal)
            # The URL names one end of the assignment; the body must name the same object there.
            own_field = "resourceId" if relation == "appRoleAssignedTo" else "principalId"
            if fields[own_field].lower() != owner.id.lower():
                raise bad_request(request, f"The {own_field} in the request body must be the service principal "
                                           f"'{owner.id}' of the request URL.", "Request_BadRequest")
            client = find_principal(request, tenant, fields["principalId"])
            resource = find_principal(request, tenant, fields["resourceId"])
            role = resource.resource.role(fields["appRoleId"]) if resource.resource else None
            if role is None:
                raise bad_request(request, f"Permission being assigned was not found on application "
                                           f"'{resource.app_id}'.", "Request_BadRequest")
            if client.app is None:
                raise bad_request(request, f"The principal '{client.id}' cannot be assigned app roles here.",
                                  "Request_BadRequest")
            assignment = models.Assignment(client, resource, role)
            if any(existing.id == assignment.id for existing in models.assignments(tenant)):
                raise bad_request(request, "Permission being assigned already exists on the object.",
                                  "Request_BadRequest")
            models.grant(tenant, assignment)
            body = assignment.properties(tenant)
        request.log["wrote"] = True
        shape = f"servicePrincipals('{owner.id}')/{relation}/$entity"
        return ok({"@odata.context": self.context(request, version, shape), **body}, 201)

    def remove_assignment(self, request: Request, version: str, principal: str, relation: str,
                          assignment: str) -> Response:
        claims = self.authorized(request)
        require(request, claims, any_of=models.APP_ROLE_ASSIGNMENT_WRITE)
        with self.emulator.store.lock:
            tenant = claims.tenant
            owner = find_principal(request, tenant, principal)
            found = next((candidate for candidate in self.assignments_of(tenant, owner, relation)
                          if candidate.id == assignment), None)
            if found is None:
                raise not_found(request, assignment)
            models.revoke(tenant, found)
        request.log["wrote"] = True
        return Response(204)

    # -- sign-in logs --------------------------------------------------------------------------------
    def list_sign_ins(self, request: Request, version: str) -> Response:
        claims = self.authorized(request)
        require(request, claims, any_of=models.SIGN_IN_READ)
        if not claims.tenant.entra_id_premium:
            raise HttpError(odata_error(request, 403, *NON_PREMIUM))
        reject_unsupported_options(request, ("$filter", "$top", "$skiptoken"))
        top = page_size(request, SIGN_INS_PAGE_MAX, SIGN_INS_PAGE_MAX)
        predicate = filter_of(request, models.SIGN_IN_FILTER, "microsoft.graph.signIn")
        before = None
        if "$skiptoken" in request.args:
            created, _, record_id = decode_cursor(request, request.args["$skiptoken"], "before").partition("|")
            before = (created, record_id)
        with self.emulator.store.lock:
            found = models.sign_ins_newest_first(claims.tenant, predicate, before)
            page = copy.deepcopy(found[:top])
        body: dict[str, Any] = {"@odata.context": self.context(request, version, "auditLogs/signIns"), "value": page}
        if len(found) > top:
            # The cursor names the last entry sent, so sign-ins written meanwhile never shift a later page.
            last = models.sign_in_order(page[-1])
            body["@odata.nextLink"] = next_link(request, version, "auditLogs/signIns",
                                                encode_cursor("before", "|".join(last)), "$filter", "$top")
        return ok(body)

    # -- $batch --------------------------------------------------------------------------------------
    def batch(self, request: Request, version: str) -> Response:
        data = self.json_object(request)
        items = data.get("requests")
        if not isinstance(items, list) or not items:
            raise bad_request(request, "Invalid batch payload format: 'requests' must be a non-empty array.")
        if len(items) > BATCH_LIMIT:
            raise bad_request(request, f"Invalid batch payload format: the number of requests exceeds the limit "
                                       f"of {BATCH_LIMIT}.")
        seen: set[str] = set()
        for item in items:
            if not isinstance(item, dict) or not all(item.get(key) for key in ("id", "method", "url")):
                raise bad_request(request, "Invalid batch payload format: every request needs 'id', 'method' "
                                           "and 'url'.")
            item_id = str(item["id"])
            if item_id in seen:
                raise bad_request(request, f"Batch request contains duplicate Id '{item_id}'.")
            seen.add(item_id)
            headers = {str(key).lower(): value for key, value in (item.get("headers") or {}).items()}
            if item.get("body") is not None and "content-type" not in headers:
                raise bad_request(request, f"Write request id : {item_id} does not contain Content-Type header "
                                           "or body.")
        responses = [self.run_item(request, version, item) for item in items]
        return ok(batching.finish(request, responses))

    def run_item(self, outer: Request, version: str, item: dict[str, Any]) -> dict[str, Any]:
        item_id = str(item["id"])
        url = str(item["url"])
        method = str(item["method"]).upper()
        path_text, _, query_text = url.partition("?")
        path = "/" + version + "/" + path_text.lstrip("/")
        if "://" in url or method not in ("GET", "POST", "PATCH", "PUT", "DELETE") or path.endswith("/$batch"):
            error = odata_error(outer, 400, "BadRequest", f"Invalid request in batch item '{item_id}': {method} {url}.")
            return {"id": item_id, "status": 400, "headers": {"Content-Type": "application/json"},
                    "body": error.body, "_wrote": False}
        return batching.answer_item(self.emulator, outer, item_id, method, path, query_text, item)

    # -- anything else under /v1.0 or /beta ----------------------------------------------------------
    def unknown(self, request: Request, version: str, rest: str = "") -> Response:
        segments = [segment for segment in request.path.split("/")[2:] if segment]
        if not segments:
            segment = version
        elif segments[0] not in KNOWN_ROOT_SEGMENTS:
            segment = segments[0]
        else:
            segment = segments[-1]
        return odata_error(request, 400, "BadRequest", f"Resource not found for the segment '{segment}'.")
