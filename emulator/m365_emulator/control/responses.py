"""The control API under ``/_emulator/``: how tests inspect and steer the emulator.

No authentication, and only loopback clients are answered: it can rewrite the whole tenant. It is a service
like the others, driving the emulator through its public methods.
"""

from __future__ import annotations

import copy
import dataclasses
import ipaddress
from typing import Any

import yaml

from ..core import HttpError, Request, Response, Service, plain_error
from ..state import Tenant, User, role_template_id
from . import models
from .urls import URLS


def _bad(message: str, status: int = 400) -> HttpError:
    code = {400: "BadRequest", 404: "NotFound", 409: "Conflict"}.get(status, "Error")
    return HttpError(plain_error(status, code, message))


def _document(request: Request) -> Any:
    """A JSON or YAML body (JSON is YAML)."""
    if not request.body.strip():
        return None
    try:
        return yaml.safe_load(request.body.decode("utf-8"))
    except (yaml.YAMLError, UnicodeDecodeError) as exc:
        raise _bad(f"the body is neither JSON nor YAML: {exc}") from None


def _changed(target: Any, changes: Any, allowed: set[str], what: str) -> None:
    try:
        models.apply_changes(target, changes, allowed, what)
    except ValueError as exc:
        raise _bad(str(exc)) from None


class ControlService(Service):
    name = "control"
    internal = True
    urls = URLS

    def admit(self, request: Request) -> None:
        try:
            address = ipaddress.ip_address((request.remote_addr or "").split("%")[0])
        except ValueError:
            address = None
        if address is not None and getattr(address, "ipv4_mapped", None):
            address = address.ipv4_mapped
        if address is None or not address.is_loopback:
            raise _bad("the control API answers loopback clients only", 403)

    def tenant_or_404(self, reference: str) -> Tenant:
        store = self.emulator.store
        tenant = store.find_tenant(reference)
        if tenant is None:
            for candidate in store.tenants:
                if candidate.name.lower() == reference.lower():
                    return candidate
            raise _bad(f"no tenant '{reference}' (use its id, a domain or its name)", 404)
        return tenant

    def get_state(self, request: Request) -> Response:
        emulator = self.emulator
        snapshot = emulator.store.snapshot()
        snapshot["emulator"] = {
            "latency_ms": emulator.latency_ms,
            "token_lifetime": emulator.tokens.lifetime,
            "faults": emulator.faults.describe(),
            "messages": len(emulator.messages),
        }
        return Response(200, snapshot)

    def get_requests(self, request: Request) -> Response:
        since = request.args.get("since", "0")
        if not since.lstrip("-").isdigit():
            raise _bad("since must be a request sequence number")
        return Response(200, {"requests": self.emulator.requests_since(int(since))})

    def delete_requests(self, request: Request) -> Response:
        self.emulator.clear_request_log()
        return Response(204)

    def reset(self, request: Request) -> Response:
        emulator = self.emulator
        document = _document(request)
        try:
            emulator.reset(document)
        except (ValueError, TypeError, KeyError) as exc:
            raise _bad(f"reset: the seed document is not valid: {exc}") from None
        emulator.clear_faults()
        emulator.latency_ms = 0
        emulator.tokens.expire_after(None)
        del emulator.messages[:]
        return Response(200, {"reset": True, "tenants": [tenant.name for tenant in emulator.store.tenants]})

    def get_faults(self, request: Request) -> Response:
        return Response(200, {"faults": self.emulator.faults.describe()})

    def add_faults(self, request: Request) -> Response:
        document = _document(request)
        specs = document if isinstance(document, list) else [document]
        if not specs or not all(isinstance(spec, dict) for spec in specs):
            raise _bad("faults: the body must be a fault object or a list of them")
        try:
            added = [self.emulator.add_fault(spec).describe() for spec in specs]
        except ValueError as exc:
            raise _bad(str(exc)) from None
        return Response(201, added[0] if isinstance(document, dict) else {"faults": added})

    def delete_faults(self, request: Request) -> Response:
        self.emulator.clear_faults()
        return Response(204)

    def delete_fault(self, request: Request, fault_id: int) -> Response:
        if not self.emulator.faults.remove(fault_id):
            raise _bad(f"no fault {fault_id}", 404)
        return Response(204)

    def latency(self, request: Request) -> Response:
        document = _document(request)
        value = document.get("ms") if isinstance(document, dict) else None
        if not isinstance(value, int) or isinstance(value, bool) or value < 0:
            raise _bad("latency: send {\"ms\": N} with N a non-negative integer")
        self.emulator.latency_ms = value
        return Response(200, {"ms": value})

    def get_tokens(self, request: Request) -> Response:
        return Response(200, {"tokens": self.emulator.tokens.issued()})

    def expire_tokens(self, request: Request) -> Response:
        tokens = self.emulator.tokens
        document = _document(request)
        if not isinstance(document, dict) or not ({"after_seconds", "now"} & set(document)):
            raise _bad("tokens/expire: send {\"after_seconds\": N} (N or null) or {\"now\": true}")
        result: dict[str, Any] = {}
        if "after_seconds" in document:
            seconds = document["after_seconds"]
            if seconds is not None and (not isinstance(seconds, int) or isinstance(seconds, bool) or seconds < 0):
                raise _bad("tokens/expire: after_seconds must be a non-negative integer or null")
            tokens.expire_after(seconds)
            result["lifetime"] = tokens.lifetime
        if document.get("now") is True:
            result["expired"] = tokens.expire_all()
        return Response(200, result)

    def get_behaviour(self, request: Request) -> Response:
        store = self.emulator.store
        with store.lock:
            return Response(200, copy.deepcopy(store.behaviour))

    def patch_behaviour(self, request: Request) -> Response:
        try:
            changes = models.validate_behaviour(_document(request))
        except ValueError as exc:
            raise _bad(str(exc)) from None
        store = self.emulator.store
        with store.lock:
            store.behaviour.update(copy.deepcopy(changes))
            return Response(200, copy.deepcopy(store.behaviour))

    def patch_tenant(self, request: Request, tenant_ref: str) -> Response:
        changes = _document(request)
        with self.emulator.store.lock:
            tenant = self.tenant_or_404(tenant_ref)
            _changed(tenant, changes, models.TENANT_FIELDS, f"tenant {tenant.name}")
            return Response(200, tenant.snapshot())

    def patch_user(self, request: Request, tenant_ref: str, identity: str) -> Response:
        changes = _document(request)
        with self.emulator.store.lock:
            tenant = self.tenant_or_404(tenant_ref)
            user = tenant.find_user(identity)
            if user is None:
                raise _bad(f"tenant {tenant.name}: no user '{identity}'", 404)
            if isinstance(changes, dict) and "user_principal_name" in changes:
                other = tenant.find_user(str(changes["user_principal_name"]))
                if other is not None and other is not user:
                    raise _bad(f"tenant {tenant.name}: '{changes['user_principal_name']}' is taken", 409)
            _changed(user, changes, models.USER_FIELDS, f"tenant {tenant.name}, user {user.user_principal_name}")
            tenant.reindex()
            return Response(200, dataclasses.asdict(user))

    def add_user(self, request: Request, tenant_ref: str) -> Response:
        document = _document(request)
        with self.emulator.store.lock:
            tenant = self.tenant_or_404(tenant_ref)
            if not isinstance(document, dict):
                raise _bad("users: the body must be a user object (seed format)")
            unknown = sorted(set(document) - {field.name for field in dataclasses.fields(User)})
            if unknown:
                raise _bad(f"tenant {tenant.name}: unknown user fields {unknown}")
            try:
                user = tenant.add_user(User(**document))
            except (ValueError, TypeError) as exc:
                raise _bad(f"tenant {tenant.name}: {exc}") from None
            return Response(201, dataclasses.asdict(user))

    def patch_app(self, request: Request, tenant_ref: str, client_id: str) -> Response:
        changes = _document(request)
        with self.emulator.store.lock:
            tenant = self.tenant_or_404(tenant_ref)
            app = tenant.apps.get(client_id)
            if app is None:
                raise _bad(f"tenant {tenant.name}: no app '{client_id}'", 404)
            for role in (changes or {}).get("directory_roles", []) if isinstance(changes, dict) else []:
                try:
                    role_template_id(str(role))
                except ValueError as exc:
                    raise _bad(f"app {app.client_id}: {exc}") from None
            _changed(app, changes, models.APP_FIELDS, f"tenant {tenant.name}, app {app.client_id}")
            return Response(200, dataclasses.asdict(app))

    def get_messages(self, request: Request) -> Response:
        return Response(200, {"messages": [models.serialisable(message) for message in list(self.emulator.messages)]})

    def delete_messages(self, request: Request) -> Response:
        del self.emulator.messages[:]
        return Response(204)
