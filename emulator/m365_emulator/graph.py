"""Microsoft Graph (v1.0 and beta): security defaults, per-user MFA, users, Conditional Access, ``$batch``.

Every handler authenticates with ``tokens.authorize`` and checks its own application permission, so a
missing permission gives Graph's 403 exactly where Graph would give it.
"""

from __future__ import annotations

import base64
import copy
import json
import random
import re
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qsl, quote, unquote, urlencode

from .server import HttpError, Request, Response, graph_error
from .state import MFA_STATES, Tenant, User, directory_role_object_id, role_display_name
from .tokens import Claims, authorize

if TYPE_CHECKING:
    from .server import Emulator

GRAPH_CONTENT_TYPE = ("application/json;odata.metadata=minimal;odata.streaming=true;"
                      "IEEE754Compatible=false;charset=utf-8")
SECURITY_DEFAULTS_ID = "00000000-0000-0000-0000-000000000005"
SECURITY_DEFAULTS_DESCRIPTION = (
    "Security defaults is a set of basic identity security mechanisms recommended by Microsoft. When enabled, "
    "these recommendations will be automatically enforced in your organization. Administrators and users will "
    "be better protected from common identity related attacks.")
BATCH_LIMIT = 20
USERS_PAGE_SIZE = 100
USERS_PAGE_MAX = 999
INSUFFICIENT_PRIVILEGES = "Insufficient privileges to complete the operation."

# Read permissions imply nothing about writes; a ReadWrite permission of the same family also allows reads.
USER_READ = ("User.Read.All", "User.ReadWrite.All", "Directory.Read.All", "Directory.ReadWrite.All")
POLICY_READ = ("Policy.Read.All",)
# Writing security defaults: the least privileged permission Microsoft documents, or the older pair that also works.
SECURITY_DEFAULTS_WRITE = (("Policy.ReadWrite.SecurityDefaults",),
                           ("Policy.Read.All", "Policy.ReadWrite.ConditionalAccess"))
MFA_WRITE = ("Policy.ReadWrite.AuthenticationMethod",)
# transitiveMemberOf: Microsoft documents User.Read.All as the least privileged application permission (higher:
# Directory.Read.All, Directory.ReadWrite.All, Group.Read.All, GroupMember.Read.All). Members of a type the app
# may not read come back with limited information: @odata.type and id, every other property null. Directory
# roles are read with RoleManagement.Read.Directory (least privileged for directoryRole) or Directory.Read.All,
# so with User.Read.All alone a role's roleTemplateId is null.
MEMBERSHIP_READ = USER_READ + ("Group.Read.All", "GroupMember.Read.All")
ROLE_READ = ("RoleManagement.Read.Directory", "RoleManagement.Read.All", "RoleManagement.ReadWrite.Directory",
             "Directory.Read.All", "Directory.ReadWrite.All")
DIRECTORY_ROLE_TYPE = "#microsoft.graph.directoryRole"
DIRECTORY_ROLE_PROPERTIES = ("id", "deletedDateTime", "description", "displayName", "roleTemplateId")

DEFAULT_USER_PROPERTIES = ("businessPhones", "displayName", "givenName", "jobTitle", "mail", "mobilePhone",
                           "officeLocation", "preferredLanguage", "surname", "userPrincipalName", "id")
# Top-level segments Graph knows; used only to name the failing segment of an unknown path the way Graph does.
KNOWN_ROOT_SEGMENTS = {"users", "policies", "identity", "$batch", "me", "groups", "organization", "domains",
                       "applications", "servicePrincipals", "directoryRoles", "subscribedSkus", "reports"}


def user_properties(user: User) -> dict[str, Any]:
    return {
        "id": user.id,
        "userPrincipalName": user.user_principal_name,
        "displayName": user.display_name,
        "mail": user.primary_smtp_address if user.has_mailbox else None,
        "mailNickname": user.alias,
        "accountEnabled": True,
        "userType": "Member",
        "givenName": None,
        "surname": None,
        "jobTitle": None,
        "businessPhones": [],
        "mobilePhone": None,
        "officeLocation": None,
        "preferredLanguage": None,
        "usageLocation": "US" if user.licenses else None,
        "proxyAddresses": [f"SMTP:{user.primary_smtp_address}"] if user.has_mailbox else [],
        "assignedPlans": user.assigned_plans(),
    }


def directory_role_properties(tenant: Tenant, template_id: str, readable: bool) -> dict[str, Any]:
    """A user's directory role as Graph lists it among directory objects; limited information when not readable."""
    name = role_display_name(template_id)
    return {
        "id": directory_role_object_id(tenant.id, template_id),
        "deletedDateTime": None,
        "description": f"Members of {name}." if readable else None,
        "displayName": name if readable else None,
        "roleTemplateId": template_id if readable else None,
    }


def ok(body: Any, status: int = 200) -> Response:
    return Response(status, body, {"Content-Type": GRAPH_CONTENT_TYPE})


def no_content() -> Response:
    return Response(204)


def bad_request(request: Request, message: str, code: str = "BadRequest") -> HttpError:
    return HttpError(graph_error(request, 400, code, message))


def require(request: Request, claims: Claims, *, any_of: tuple[str, ...] = (),
            one_set_of: tuple[tuple[str, ...], ...] = ()) -> None:
    """Graph's 403 unless the token's roles hold one of ``any_of``, or every permission of one of ``one_set_of``.

    A ``one_set_of`` refusal names the sets, the least privileged first.
    """
    roles = set(claims.roles)
    if any_of and not roles.intersection(any_of):
        raise HttpError(graph_error(request, 403, "Authorization_RequestDenied", INSUFFICIENT_PRIVILEGES))
    if one_set_of and not any(roles.issuperset(permissions) for permissions in one_set_of):
        needed = ", or ".join(" and ".join(permissions) for permissions in one_set_of)
        raise HttpError(graph_error(request, 403, "Authorization_RequestDenied",
                                    f"{INSUFFICIENT_PRIVILEGES} The application needs {needed}."))


def find_user(request: Request, tenant: Tenant, identity: str) -> User:
    """A user by object id or userPrincipalName (what Graph accepts in /users/{id}), or Graph's 404."""
    user = tenant.find_user(identity)
    if user is None or identity.lower() not in (user.id.lower(), user.user_principal_name.lower()):
        raise HttpError(graph_error(
            request, 404, "Request_ResourceNotFound",
            f"Resource '{identity}' does not exist or one of its queried reference-property objects are not present."))
    return user


def json_object(request: Request) -> dict[str, Any]:
    data = request.json()
    if not isinstance(data, dict):
        raise bad_request(request, "The request body must be a JSON object.")
    return data


def _select(request: Request) -> list[str] | None:
    raw = request.query.get("$select")
    if raw is None:
        return None
    names = [name.strip() for name in raw.split(",") if name.strip()]
    known = user_properties(User(user_principal_name="probe@example.invalid"))
    for name in names:
        if name not in known:
            raise bad_request(request, f"Could not find a property named '{name}' on type 'microsoft.graph.user'.",
                              "Request_BadRequest")
    return names


def _select_names(request: Request, known: tuple[str, ...], type_name: str) -> list[str] | None:
    raw = request.query.get("$select")
    if raw is None:
        return None
    names = [name.strip() for name in raw.split(",") if name.strip()]
    for name in names:
        if name not in known:
            raise bad_request(request, f"Could not find a property named '{name}' on type '{type_name}'.",
                              "Request_BadRequest")
    return names


def _project(user: User, select: list[str] | None) -> dict[str, Any]:
    properties = user_properties(user)
    return {name: properties[name] for name in (select or DEFAULT_USER_PROPERTIES)}


def _reject_unsupported_options(request: Request, supported: tuple[str, ...]) -> None:
    for option in request.query:
        if option.startswith("$") and option not in supported:
            raise bad_request(request, f"The query option '{option}' is not supported by the emulator on this "
                                       f"resource; supported: {', '.join(supported) or 'none'}.")


def routes(emulator: Emulator):
    def context(request: Request, version: str, fragment: str) -> str:
        return f"{request.base_url}/{version}/$metadata#{fragment}"

    def authorized(request: Request) -> Claims:
        return authorize(emulator, request, "graph")

    # -- security defaults ---------------------------------------------------------------------------
    def security_defaults_body(request: Request, version: str, tenant: Tenant) -> dict[str, Any]:
        return {
            "@odata.context": context(request, version, "policies/identitySecurityDefaultsEnforcementPolicy/$entity"),
            "id": SECURITY_DEFAULTS_ID,
            "displayName": "Security Defaults",
            "description": SECURITY_DEFAULTS_DESCRIPTION,
            "isEnabled": tenant.security_defaults_enabled,
        }

    def get_security_defaults(request: Request, match: re.Match[str]) -> Response:
        claims = authorized(request)
        require(request, claims, any_of=POLICY_READ)
        with emulator.store.lock:
            return ok(security_defaults_body(request, match["version"], claims.tenant))

    def patch_security_defaults(request: Request, match: re.Match[str]) -> Response:
        claims = authorized(request)
        require(request, claims, one_set_of=SECURITY_DEFAULTS_WRITE)
        data = json_object(request)
        for name, value in data.items():
            if name in ("id", "displayName", "description"):
                raise bad_request(request, f"Property '{name}' is read-only and cannot be set.")
            if name == "@odata.type":
                if value != "#microsoft.graph.identitySecurityDefaultsEnforcementPolicy":
                    raise bad_request(request, f"Invalid @odata.type '{value}' for this resource.")
            elif name != "isEnabled":
                raise bad_request(request, f"Invalid property '{name}'.")
        if "isEnabled" in data and not isinstance(data["isEnabled"], bool):
            raise bad_request(request, "Cannot convert the literal '{}' to the expected type 'Edm.Boolean'."
                              .format(json.dumps(data["isEnabled"])))
        with emulator.store.lock:
            tenant = emulator.store.find_tenant(claims.tenant.id) or claims.tenant
            if "isEnabled" in data:
                tenant.security_defaults_enabled = data["isEnabled"]
        request.log["wrote"] = True
        return no_content()

    # -- per-user MFA (beta) -------------------------------------------------------------------------
    def get_mfa(request: Request, match: re.Match[str]) -> Response:
        claims = authorized(request)
        require(request, claims, any_of=POLICY_READ)
        with emulator.store.lock:
            user = find_user(request, claims.tenant, match["user"])
            return ok({"@odata.type": "#microsoft.graph.strongAuthenticationRequirements",
                       "perUserMfaState": user.per_user_mfa_state})

    def patch_mfa(request: Request, match: re.Match[str]) -> Response:
        claims = authorized(request)
        require(request, claims, any_of=MFA_WRITE)
        data = json_object(request)
        for name, value in data.items():
            if name == "@odata.type":
                if value != "#microsoft.graph.strongAuthenticationRequirements":
                    raise bad_request(request, f"Invalid @odata.type '{value}' for this resource.")
            elif name != "perUserMfaState":
                raise bad_request(request, f"Invalid property '{name}'.")
        state = data.get("perUserMfaState")
        if state not in MFA_STATES:
            raise bad_request(request, f"Invalid value '{state}' for property 'perUserMfaState'; "
                                       f"allowed: {', '.join(MFA_STATES)}.")
        with emulator.store.lock:
            user = find_user(request, claims.tenant, match["user"])
            # Entra promotes "enabled" to "enforced" as soon as the user has a method registered.
            user.per_user_mfa_state = "enforced" if state == "enabled" and user.mfa_method_registered else state
        request.log["wrote"] = True
        return no_content()

    # -- users ---------------------------------------------------------------------------------------
    def get_user(request: Request, match: re.Match[str]) -> Response:
        claims = authorized(request)
        require(request, claims, any_of=USER_READ)
        _reject_unsupported_options(request, ("$select",))
        select = _select(request)
        with emulator.store.lock:
            user = find_user(request, claims.tenant, match["user"])
            shape = f"users({','.join(select)})/$entity" if select else "users/$entity"
            return ok({"@odata.context": context(request, match["version"], shape), **_project(user, select)})

    def list_users(request: Request, match: re.Match[str]) -> Response:
        claims = authorized(request)
        require(request, claims, any_of=USER_READ)
        _reject_unsupported_options(request, ("$select", "$top", "$skiptoken"))
        select = _select(request)
        top_text = request.query.get("$top", str(USERS_PAGE_SIZE))
        if not top_text.isdigit() or not 1 <= int(top_text) <= USERS_PAGE_MAX:
            raise bad_request(request, f"Invalid page size specified: '{top_text}'. Must be between 1 and "
                                       f"{USERS_PAGE_MAX} inclusive.", "Request_UnsupportedQuery")
        top = int(top_text)
        offset = _decode_skiptoken(request, request.query.get("$skiptoken"))
        with emulator.store.lock:
            users = list(claims.tenant.users.values())
            page = [_project(user, select) for user in users[offset:offset + top]]
            more = offset + top < len(users)
        shape = f"users({','.join(select)})" if select else "users"
        body: dict[str, Any] = {"@odata.context": context(request, match["version"], shape), "value": page}
        if more:
            query = {"$top": str(top), "$skiptoken": _encode_skiptoken(offset + top)}
            if select:
                query["$select"] = ",".join(select)
            body["@odata.nextLink"] = (f"{request.base_url}/{match['version']}/users?"
                                       + urlencode(query, quote_via=quote, safe="$,"))
        return ok(body)

    # -- directory role membership -------------------------------------------------------------------
    def transitive_member_of(request: Request, match: re.Match[str]) -> Response:
        """The user's directory objects (only directory roles here: the emulator has no groups), all of them or
        cast to ``microsoft.graph.directoryRole``."""
        claims = authorized(request)
        require(request, claims, any_of=MEMBERSHIP_READ)
        _reject_unsupported_options(request, ("$select", "$count"))
        select = _select_names(request, DIRECTORY_ROLE_PROPERTIES, "microsoft.graph.directoryRole")
        count = request.query.get("$count")
        if count is not None:
            if count.lower() not in ("true", "false"):
                raise bad_request(request, f"Invalid value '{count}' for the query option '$count'.",
                                  "Request_BadRequest")
            if (request.headers.get("consistencylevel") or "").lower() != "eventual":
                raise bad_request(request, "$count is only supported with the ConsistencyLevel header set to "
                                           "'eventual' (an advanced query).", "Request_BadRequest")
        readable = bool(set(claims.roles).intersection(ROLE_READ))
        with emulator.store.lock:
            user = find_user(request, claims.tenant, match["user"])
            roles = [directory_role_properties(claims.tenant, template, readable)
                     for template in dict.fromkeys(user.role_template_ids)]
        items = [{"@odata.type": DIRECTORY_ROLE_TYPE,
                  **{name: role[name] for name in (select or DIRECTORY_ROLE_PROPERTIES)}} for role in roles]
        shape = "directoryRoles" if match["cast"] else "directoryObjects"
        if select:
            shape += f"({','.join(select)})"
        body: dict[str, Any] = {"@odata.context": context(request, match["version"], shape)}
        if count is not None and count.lower() == "true":
            body["@odata.count"] = len(items)
        body["value"] = items
        return ok(body)

    # -- Conditional Access --------------------------------------------------------------------------
    def list_ca_policies(request: Request, match: re.Match[str]) -> Response:
        claims = authorized(request)
        require(request, claims, any_of=POLICY_READ)
        with emulator.store.lock:
            policies = copy.deepcopy(claims.tenant.conditional_access_policies)
        return ok({"@odata.context": context(request, match["version"], "identity/conditionalAccess/policies"),
                   "value": policies})

    def get_ca_policy(request: Request, match: re.Match[str]) -> Response:
        claims = authorized(request)
        require(request, claims, any_of=POLICY_READ)
        with emulator.store.lock:
            for policy in claims.tenant.conditional_access_policies:
                if str(policy.get("id", "")).lower() == match["policy"].lower():
                    return ok({"@odata.context": context(request, match["version"],
                                                         "identity/conditionalAccess/policies/$entity"),
                               **copy.deepcopy(policy)})
        raise HttpError(graph_error(request, 404, "Request_ResourceNotFound",
                                    f"Resource '{match['policy']}' does not exist or one of its queried "
                                    "reference-property objects are not present."))

    # -- $batch --------------------------------------------------------------------------------------
    def batch(request: Request, match: re.Match[str]) -> Response:
        version = match["version"]
        data = json_object(request)
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
        responses = [run_item(request, version, item) for item in items]
        # Graph answers in any order; shuffle so that clients which rely on the order fail here, not live.
        order = list(range(len(responses)))
        random.shuffle(order)
        if len(order) > 1 and order == sorted(order):
            order.reverse()
        request.log["wrote"] = any(response.pop("_wrote") for response in responses)
        return ok({"responses": [responses[index] for index in order]})

    def run_item(outer: Request, version: str, item: dict[str, Any]) -> dict[str, Any]:
        item_id = str(item["id"])
        url = str(item["url"])
        method = str(item["method"]).upper()
        path_text, _, query_text = url.partition("?")
        path = "/" + version + "/" + unquote(path_text).lstrip("/")
        if "://" in url or method not in ("GET", "POST", "PATCH", "PUT", "DELETE") or path.endswith("/$batch"):
            error = graph_error(outer, 400, "BadRequest", f"Invalid request in batch item '{item_id}': "
                                                          f"{method} {url}.")
            return {"id": item_id, "status": 400, "headers": {"Content-Type": "application/json"},
                    "body": error.body, "_wrote": False}
        headers = {str(key): str(value) for key, value in (item.get("headers") or {}).items()}
        for name in ("authorization", "client-request-id"):
            if outer.headers.get(name) and not any(key.lower() == name for key in headers):
                headers[name] = outer.headers[name]
        body = item.get("body")
        raw = b"" if body is None else (body.encode() if isinstance(body, str) else json.dumps(body).encode())
        inner = Request(method, path, dict(parse_qsl(query_text, keep_blank_values=True)), headers, raw,
                        base_url=outer.base_url, remote_addr=outer.remote_addr)
        response = emulator.dispatch(inner, parent=outer.log.get("seq"))
        if inner.log.get("tenant") and not outer.log.get("tenant"):
            outer.log["tenant"] = inner.log["tenant"]
        result: dict[str, Any] = {
            "id": item_id,
            "status": response.status,
            "headers": {key: value for key, value in response.headers.items()
                        if key.lower() not in ("content-length", "request-id", "client-request-id")},
            "_wrote": bool(inner.log.get("wrote")),
        }
        if response.body is not None:
            parsed = response.json()
            result["body"] = parsed if parsed is not None else response.encoded_body().decode("utf-8", "replace")
        return result

    # -- anything else under /v1.0 or /beta --------------------------------------------------------------
    def unknown(request: Request, match: re.Match[str]) -> Response:
        segments = [segment for segment in request.path.split("/")[2:] if segment]
        if not segments:
            segment = match["version"]
        elif segments[0] not in KNOWN_ROOT_SEGMENTS:
            segment = segments[0]
        else:
            segment = segments[-1]
        return graph_error(request, 400, "BadRequest", f"Resource not found for the segment '{segment}'.")

    version = r"/(?P<version>v1\.0|beta)"
    user = r"(?P<user>[^/]+)"
    return [
        ("GET", re.compile(rf"{version}/policies/identitySecurityDefaultsEnforcementPolicy"), get_security_defaults),
        ("PATCH", re.compile(rf"{version}/policies/identitySecurityDefaultsEnforcementPolicy"),
         patch_security_defaults),
        ("GET", re.compile(rf"/(?P<version>beta)/users/{user}/authentication/requirements"), get_mfa),
        ("PATCH", re.compile(rf"/(?P<version>beta)/users/{user}/authentication/requirements"), patch_mfa),
        ("GET", re.compile(rf"{version}/users"), list_users),
        ("GET", re.compile(rf"{version}/users/{user}"), get_user),
        ("GET", re.compile(rf"{version}/users/{user}/transitiveMemberOf(?P<cast>/microsoft\.graph\.directoryRole)?"),
         transitive_member_of),
        ("GET", re.compile(rf"{version}/identity/conditionalAccess/policies"), list_ca_policies),
        ("GET", re.compile(rf"{version}/identity/conditionalAccess/policies/(?P<policy>[^/]+)"), get_ca_policy),
        ("POST", re.compile(rf"{version}/\$batch"), batch),
        ("*", re.compile(rf"{version}(/.*)?"), unknown),
    ]


def _encode_skiptoken(offset: int) -> str:
    return base64.urlsafe_b64encode(f"offset:{offset}".encode()).decode().rstrip("=")


def _decode_skiptoken(request: Request, token: str | None) -> int:
    if not token:
        return 0
    try:
        text = base64.urlsafe_b64decode(token + "=" * (-len(token) % 4)).decode()
        kind, _, number = text.partition(":")
        if kind == "offset" and number.isdigit():
            return int(number)
    except ValueError:
        pass
    raise bad_request(request, "The $skiptoken is not valid.", "Request_BadRequest")
