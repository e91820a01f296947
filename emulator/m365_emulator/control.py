"""The control API under ``/_emulator/``: how tests inspect and steer the emulator.

No authentication, and only loopback clients are answered: it can rewrite the whole tenant.
"""

from __future__ import annotations

import copy
import dataclasses
import ipaddress
import re
from typing import TYPE_CHECKING, Any

import yaml

from .server import HttpError, Request, Response, error_response
from .state import DEFAULT_BEHAVIOUR, App, Tenant, User, role_template_id

if TYPE_CHECKING:
    from .server import Emulator

# Fields the control API may set; the rest (ids, nested collections) have their own endpoints or are fixed.
TENANT_FIELDS = {"name", "domains", "security_defaults_enabled", "transport_smtp_auth_disabled",
                 "default_authentication_policy", "authentication_policies", "conditional_access_policies"}
USER_FIELDS = {field.name for field in dataclasses.fields(User)} - {"id"}
APP_FIELDS = {field.name for field in dataclasses.fields(App)} - {"client_id"}
BEHAVIOUR_CHOICES = {
    "set_response": ("empty", "object"),
    "exchange_paging": ("follow", "expire", "warning"),
    "unlicensed_reply": ("credentials", "criteria"),
}


def _type_ok(annotation: str, value: Any) -> bool:
    """Check ``value`` against a dataclass field annotation of the simple kinds the state classes use."""
    options = [part.strip() for part in annotation.split("|")]
    for option in options:
        if option == "None" and value is None:
            return True
        if option == "bool" and isinstance(value, bool):
            return True
        if option == "str" and isinstance(value, str):
            return True
        if option == "int" and isinstance(value, int) and not isinstance(value, bool):
            return True
        if option.startswith("list[") and isinstance(value, list):
            inner = option[5:-1]
            if all(_type_ok(inner, item) for item in value):
                return True
        if option.startswith("dict[") and isinstance(value, dict):
            return True
        if option == "Any":
            return True
    return False


def _apply(request: Request, target: Any, changes: Any, allowed: set[str], what: str) -> list[str]:
    """Validate ``changes`` for the dataclass ``target`` and set them on it in place; returns the names set."""
    if not isinstance(changes, dict) or not changes:
        raise _bad(request, f"{what}: the body must be a non-empty JSON object of fields to set")
    unknown = sorted(set(changes) - allowed)
    if unknown:
        raise _bad(request, f"{what}: unknown or read-only fields {unknown}; settable: {sorted(allowed)}")
    types = {field.name: str(field.type) for field in dataclasses.fields(target)}
    for name, value in changes.items():
        if not _type_ok(types[name], value):
            raise _bad(request, f"{what}: field '{name}' must be {types[name]}, not {value!r}")
    try:
        # Building a copy runs the dataclass's own validation (MFA states, service plan names, ...)
        # before anything is changed.
        dataclasses.replace(target, **copy.deepcopy(changes))
    except (ValueError, TypeError) as exc:
        raise _bad(request, f"{what}: {exc}") from None
    # Set in place: handlers may hold the object between taking and re-taking the store lock.
    for name, value in changes.items():
        setattr(target, name, copy.deepcopy(value))
    return sorted(changes)


def _bad(request: Request, message: str, status: int = 400) -> HttpError:
    code = {400: "BadRequest", 404: "NotFound", 409: "Conflict"}.get(status, "Error")
    return HttpError(error_response(request, status, code, message))


def _loopback_only(request: Request) -> None:
    try:
        address = ipaddress.ip_address(request.remote_addr.split("%")[0])
    except ValueError:
        address = None
    if address is not None and getattr(address, "ipv4_mapped", None):
        address = address.ipv4_mapped
    if address is None or not address.is_loopback:
        raise _bad(request, "the control API answers loopback clients only", 403)


def _document(request: Request) -> Any:
    """A JSON or YAML body (JSON is YAML)."""
    if not request.body.strip():
        return None
    try:
        return yaml.safe_load(request.body.decode("utf-8"))
    except (yaml.YAMLError, UnicodeDecodeError) as exc:
        raise _bad(request, f"the body is neither JSON nor YAML: {exc}") from None


def _serialisable(message: Any) -> Any:
    if isinstance(message, (dict, list, str, int, float, bool)) or message is None:
        return message
    if dataclasses.is_dataclass(message):
        return dataclasses.asdict(message)
    if hasattr(message, "to_dict"):
        return message.to_dict()
    return str(message)


def _validate_behaviour(request: Request, changes: Any) -> dict[str, Any]:
    if not isinstance(changes, dict) or not changes:
        raise _bad(request, "behaviour: the body must be a non-empty JSON object of switches")
    unknown = sorted(set(changes) - set(DEFAULT_BEHAVIOUR))
    if unknown:
        raise _bad(request, f"behaviour: unknown switches {unknown}; known: {sorted(DEFAULT_BEHAVIOUR)}")
    for name, value in changes.items():
        default = DEFAULT_BEHAVIOUR[name]
        if isinstance(default, bool) and not isinstance(value, bool):
            raise _bad(request, f"behaviour: '{name}' must be true or false")
        if isinstance(default, int) and not isinstance(default, bool) and (
                not isinstance(value, int) or isinstance(value, bool) or value < 1):
            raise _bad(request, f"behaviour: '{name}' must be a positive integer")
        if name in BEHAVIOUR_CHOICES and value not in BEHAVIOUR_CHOICES[name]:
            raise _bad(request, f"behaviour: '{name}' must be one of {list(BEHAVIOUR_CHOICES[name])}")
        if isinstance(default, list):
            if not isinstance(value, list) or not set(value) <= set(default) or len(set(value)) != len(value):
                raise _bad(request, f"behaviour: '{name}' must be a list of distinct names from {default}")
    return changes


def routes(emulator: Emulator):
    def tenant_or_404(request: Request, reference: str) -> Tenant:
        tenant = emulator.store.find_tenant(reference)
        if tenant is None:
            for candidate in emulator.store.tenants:
                if candidate.name.lower() == reference.lower():
                    return candidate
            raise _bad(request, f"no tenant '{reference}' (use its id, a domain or its name)", 404)
        return tenant

    def get_state(request: Request, match: re.Match[str]) -> Response:
        snapshot = emulator.store.snapshot()
        snapshot["emulator"] = {
            "latency_ms": emulator.latency_ms,
            "token_lifetime": emulator.tokens.lifetime,
            "faults": [fault.describe() for fault in list(emulator.faults)],
            "messages": len(emulator.messages),
        }
        return Response(200, snapshot)

    def get_requests(request: Request, match: re.Match[str]) -> Response:
        since = request.query.get("since", "0")
        if not since.lstrip("-").isdigit():
            raise _bad(request, "since must be a request sequence number")
        return Response(200, {"requests": emulator.requests_since(int(since))})

    def delete_requests(request: Request, match: re.Match[str]) -> Response:
        emulator.clear_request_log()
        return Response(204)

    def reset(request: Request, match: re.Match[str]) -> Response:
        document = _document(request)
        try:
            emulator.reset(document)
        except (ValueError, TypeError, KeyError) as exc:
            raise _bad(request, f"reset: the seed document is not valid: {exc}") from None
        emulator.clear_faults()
        emulator.latency_ms = 0
        emulator.tokens.expire_after(None)
        del emulator.messages[:]
        return Response(200, {"reset": True, "tenants": [tenant.name for tenant in emulator.store.tenants]})

    def get_faults(request: Request, match: re.Match[str]) -> Response:
        with emulator.faults_lock:
            return Response(200, {"faults": [fault.describe() for fault in emulator.faults]})

    def add_faults(request: Request, match: re.Match[str]) -> Response:
        document = _document(request)
        specs = document if isinstance(document, list) else [document]
        if not specs or not all(isinstance(spec, dict) for spec in specs):
            raise _bad(request, "faults: the body must be a fault object or a list of them")
        added = []
        try:
            faults = [emulator.add_fault(spec) for spec in specs]
        except ValueError as exc:
            raise _bad(request, str(exc)) from None
        added = [fault.describe() for fault in faults]
        return Response(201, added[0] if isinstance(document, dict) else {"faults": added})

    def delete_faults(request: Request, match: re.Match[str]) -> Response:
        emulator.clear_faults()
        return Response(204)

    def delete_fault(request: Request, match: re.Match[str]) -> Response:
        with emulator.faults_lock:
            for fault in emulator.faults:
                if fault.id == int(match["id"]):
                    emulator.faults.remove(fault)
                    return Response(204)
        raise _bad(request, f"no fault {match['id']}", 404)

    def latency(request: Request, match: re.Match[str]) -> Response:
        document = _document(request)
        value = document.get("ms") if isinstance(document, dict) else None
        if not isinstance(value, int) or isinstance(value, bool) or value < 0:
            raise _bad(request, "latency: send {\"ms\": N} with N a non-negative integer")
        emulator.latency_ms = value
        return Response(200, {"ms": value})

    def expire_tokens(request: Request, match: re.Match[str]) -> Response:
        document = _document(request)
        if not isinstance(document, dict) or not ({"after_seconds", "now"} & set(document)):
            raise _bad(request, "tokens/expire: send {\"after_seconds\": N} (N or null) or {\"now\": true}")
        result: dict[str, Any] = {}
        if "after_seconds" in document:
            seconds = document["after_seconds"]
            if seconds is not None and (not isinstance(seconds, int) or isinstance(seconds, bool) or seconds < 0):
                raise _bad(request, "tokens/expire: after_seconds must be a non-negative integer or null")
            emulator.tokens.expire_after(seconds)
            result["lifetime"] = emulator.tokens.lifetime
        if document.get("now") is True:
            result["expired"] = emulator.tokens.expire_all()
        return Response(200, result)

    def get_behaviour(request: Request, match: re.Match[str]) -> Response:
        with emulator.store.lock:
            return Response(200, copy.deepcopy(emulator.store.behaviour))

    def patch_behaviour(request: Request, match: re.Match[str]) -> Response:
        changes = _validate_behaviour(request, _document(request))
        with emulator.store.lock:
            emulator.store.behaviour.update(copy.deepcopy(changes))
            return Response(200, copy.deepcopy(emulator.store.behaviour))

    def patch_tenant(request: Request, match: re.Match[str]) -> Response:
        changes = _document(request)
        with emulator.store.lock:
            tenant = tenant_or_404(request, match["tenant"])
            _apply(request, tenant, changes, TENANT_FIELDS, f"tenant {tenant.name}")
            return Response(200, tenant.snapshot())

    def patch_user(request: Request, match: re.Match[str]) -> Response:
        changes = _document(request)
        with emulator.store.lock:
            tenant = tenant_or_404(request, match["tenant"])
            user = tenant.find_user(match["identity"])
            if user is None:
                raise _bad(request, f"tenant {tenant.name}: no user '{match['identity']}'", 404)
            if isinstance(changes, dict) and "user_principal_name" in changes:
                other = tenant.find_user(str(changes["user_principal_name"]))
                if other is not None and other is not user:
                    raise _bad(request, f"tenant {tenant.name}: '{changes['user_principal_name']}' is taken", 409)
            _apply(request, user, changes, USER_FIELDS, f"tenant {tenant.name}, user {user.user_principal_name}")
            tenant.reindex()
            return Response(200, dataclasses.asdict(user))

    def add_user(request: Request, match: re.Match[str]) -> Response:
        document = _document(request)
        with emulator.store.lock:
            tenant = tenant_or_404(request, match["tenant"])
            if not isinstance(document, dict):
                raise _bad(request, "users: the body must be a user object (seed format)")
            unknown = sorted(set(document) - {field.name for field in dataclasses.fields(User)})
            if unknown:
                raise _bad(request, f"tenant {tenant.name}: unknown user fields {unknown}")
            try:
                user = tenant.add_user(User(**document))
            except (ValueError, TypeError) as exc:
                raise _bad(request, f"tenant {tenant.name}: {exc}") from None
            return Response(201, dataclasses.asdict(user))

    def patch_app(request: Request, match: re.Match[str]) -> Response:
        changes = _document(request)
        with emulator.store.lock:
            tenant = tenant_or_404(request, match["tenant"])
            app = tenant.apps.get(match["client_id"])
            if app is None:
                raise _bad(request, f"tenant {tenant.name}: no app '{match['client_id']}'", 404)
            for role in (changes or {}).get("directory_roles", []) if isinstance(changes, dict) else []:
                try:
                    role_template_id(str(role))
                except ValueError as exc:
                    raise _bad(request, f"app {app.client_id}: {exc}") from None
            _apply(request, app, changes, APP_FIELDS, f"tenant {tenant.name}, app {app.client_id}")
            return Response(200, dataclasses.asdict(app))

    def get_messages(request: Request, match: re.Match[str]) -> Response:
        return Response(200, {"messages": [_serialisable(message) for message in list(emulator.messages)]})

    def delete_messages(request: Request, match: re.Match[str]) -> Response:
        del emulator.messages[:]
        return Response(204)

    def guarded(handler):
        def wrapper(request: Request, match: re.Match[str]) -> Response:
            _loopback_only(request)
            return handler(request, match)
        return wrapper

    prefix = "/_emulator"
    table = [
        ("GET", r"/state", get_state),
        ("GET", r"/requests", get_requests),
        ("DELETE", r"/requests", delete_requests),
        ("POST", r"/reset", reset),
        ("GET", r"/faults", get_faults),
        ("POST", r"/faults", add_faults),
        ("DELETE", r"/faults", delete_faults),
        ("DELETE", r"/faults/(?P<id>\d+)", delete_fault),
        ("POST", r"/latency", latency),
        ("POST", r"/tokens/expire", expire_tokens),
        ("GET", r"/behaviour", get_behaviour),
        ("PATCH", r"/behaviour", patch_behaviour),
        ("PATCH", r"/tenants/(?P<tenant>[^/]+)", patch_tenant),
        ("POST", r"/tenants/(?P<tenant>[^/]+)/users", add_user),
        ("PATCH", r"/tenants/(?P<tenant>[^/]+)/users/(?P<identity>[^/]+)", patch_user),
        ("PATCH", r"/tenants/(?P<tenant>[^/]+)/apps/(?P<client_id>[^/]+)", patch_app),
        ("GET", r"/messages", get_messages),
        ("DELETE", r"/messages", delete_messages),
    ]
    return [(method, re.compile(prefix + pattern), guarded(handler)) for method, pattern, handler in table]
