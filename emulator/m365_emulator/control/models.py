"""What the control API may change in the tenant state, and how a change is checked before it is made."""

from __future__ import annotations

import copy
import dataclasses
from typing import Any

from ..state import DEFAULT_BEHAVIOUR, App, User

# Fields the control API may set; the rest (ids, nested collections) have their own endpoints or are fixed.
TENANT_FIELDS = {"name", "domains", "security_defaults_enabled", "transport_smtp_auth_disabled",
                 "default_authentication_policy", "authentication_policies", "conditional_access_policies",
                 "entra_id_premium", "inbound_connectors"}
USER_FIELDS = {field.name for field in dataclasses.fields(User)} - {"id"}
APP_FIELDS = {field.name for field in dataclasses.fields(App)} - {"client_id"}
BEHAVIOUR_CHOICES = {
    "set_response": ("empty", "object"),
    "exchange_paging": ("follow", "expire", "warning"),
    "unlicensed_reply": ("credentials", "criteria"),
    "sign_in_client_app": ("Authenticated SMTP", "SMTP"),
    "mailbox_permission_user": ("display_name", "identity", "app_id"),
    "authentication_policy_shows": ("name", "distinguished_name"),
    "inbound_connector_sender_domains": ("address_space", "domain"),
    "smtp_connection_limit_reply": ("sender_thread", "concurrent_connections", "off"),
    "smtp_message_rate_reply": ("quota", "rate", "off"),
    "send_as_denied_at": ("mail_from", "data"),
}


def type_ok(annotation: str, value: Any) -> bool:
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
            if all(type_ok(inner, item) for item in value):
                return True
        if option.startswith("dict[") and isinstance(value, dict):
            return True
        if option == "Any":
            return True
    return False


def apply_changes(target: Any, changes: Any, allowed: set[str], what: str) -> list[str]:
    """Validate ``changes`` for the dataclass ``target`` and set them on it in place; returns the names set.
    ValueError (naming the field) and nothing changed when they are not valid."""
    if not isinstance(changes, dict) or not changes:
        raise ValueError(f"{what}: the body must be a non-empty JSON object of fields to set")
    unknown = sorted(set(changes) - allowed)
    if unknown:
        raise ValueError(f"{what}: unknown or read-only fields {unknown}; settable: {sorted(allowed)}")
    types = {field.name: str(field.type) for field in dataclasses.fields(target)}
    for name, value in changes.items():
        if not type_ok(types[name], value):
            raise ValueError(f"{what}: field '{name}' must be {types[name]}, not {value!r}")
    try:
        # Building a copy runs the dataclass's own validation (MFA states, service plan names, ...)
        # before anything is changed.
        dataclasses.replace(target, **copy.deepcopy(changes))
    except (ValueError, TypeError) as exc:
        raise ValueError(f"{what}: {exc}") from None
    # Set in place: handlers may hold the object between taking and re-taking the store lock.
    for name, value in changes.items():
        setattr(target, name, copy.deepcopy(value))
    return sorted(changes)


def validate_behaviour(changes: Any) -> dict[str, Any]:
    if not isinstance(changes, dict) or not changes:
        raise ValueError("behaviour: the body must be a non-empty JSON object of switches")
    unknown = sorted(set(changes) - set(DEFAULT_BEHAVIOUR))
    if unknown:
        raise ValueError(f"behaviour: unknown switches {unknown}; known: {sorted(DEFAULT_BEHAVIOUR)}")
    for name, value in changes.items():
        default = DEFAULT_BEHAVIOUR[name]
        if isinstance(default, bool) and not isinstance(value, bool):
            raise ValueError(f"behaviour: '{name}' must be true or false")
        if isinstance(default, int) and not isinstance(default, bool) and (
                not isinstance(value, int) or isinstance(value, bool) or value < 1):
            raise ValueError(f"behaviour: '{name}' must be a positive integer")
        if name in BEHAVIOUR_CHOICES and value not in BEHAVIOUR_CHOICES[name]:
            raise ValueError(f"behaviour: '{name}' must be one of {list(BEHAVIOUR_CHOICES[name])}")
        if isinstance(default, list):
            if not isinstance(value, list) or not set(value) <= set(default) or len(set(value)) != len(value):
                raise ValueError(f"behaviour: '{name}' must be a list of distinct names from {default}")
    return changes


def serialisable(message: Any) -> Any:
    if isinstance(message, (dict, list, str, int, float, bool)) or message is None:
        return message
    if dataclasses.is_dataclass(message) and not isinstance(message, type):
        return dataclasses.asdict(message)
    if hasattr(message, "to_dict"):
        return message.to_dict()
    return str(message)
