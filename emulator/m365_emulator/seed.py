"""Build a TenantStore from a YAML/JSON seed document, and generate large tenants for benchmarks."""

from __future__ import annotations

import datetime
from importlib import resources
from pathlib import Path
from typing import Any

import yaml

from .state import (DEFAULT_BEHAVIOUR, SIGN_IN_FAILURES, App, ServicePrincipal, Tenant, TenantStore, User,
                    authentication_policy_settings, sign_in_record)

SAMPLE_SEED = "sample_tenant.yaml"

_USER_KEYS = {
    "user_principal_name", "id", "display_name", "password", "licenses", "per_user_mfa_state",
    "mfa_method_registered", "has_mailbox", "recipient_type_details", "primary_smtp_address",
    "smtp_client_authentication_disabled", "authentication_policy", "mailbox_permissions", "send_as",
    "directory_roles", "restricted_sender",
}
_APP_KEYS = {
    "client_id", "display_name", "object_id", "service_principal_id", "secrets", "certificates",
    "graph_permissions", "exchange_permissions", "directory_roles",
}
# A seeded sign-in: who, when (relative to the moment the seed is loaded, so that it stays inside the 30 days a
# usage report looks at), from where, with which app (none: basic authentication) and which refusal (none: it
# succeeded).
_SIGN_IN_KEYS = {
    "user_principal_name", "days_ago", "hours_ago", "minutes_ago", "ip_address", "app_id", "blocker",
}


def _checked(kind: str, entry: dict[str, Any], allowed: set[str]) -> dict[str, Any]:
    unknown = set(entry) - allowed
    if unknown:
        raise ValueError(f"seed: {kind} {entry.get('user_principal_name') or entry.get('client_id') or entry.get('name')}"
                         f" has unknown keys {sorted(unknown)}")
    return entry


def generate_users(domain: str, count: int, prefix: str = "device", licenses: list[str] | None = None,
                   every_nth_enabled: int = 0) -> list[User]:
    """Deterministic bulk mailboxes: ``prefix00001@domain`` ... ; every Nth one has SMTP AUTH explicitly on."""
    plans = licenses if licenses is not None else ["EXCHANGE_S_STANDARD"]
    users = []
    for number in range(1, count + 1):
        enabled = bool(every_nth_enabled) and number % every_nth_enabled == 0
        users.append(User(
            user_principal_name=f"{prefix}{number:05d}@{domain}",
            id=f"00000000-0000-4000-8000-{number:012d}",
            password=f"Bulk-{number:05d}!",
            licenses=list(plans),
            smtp_client_authentication_disabled=False if enabled else None,
        ))
    return users


def seeded_sign_in(tenant: Tenant, entry: dict[str, Any], now: datetime.datetime,
                   client_app_used: str) -> dict[str, Any]:
    entry = _checked("sign-in", entry, _SIGN_IN_KEYS)
    if not entry.get("user_principal_name"):
        raise ValueError(f"seed: tenant {tenant.name}: a sign-in needs user_principal_name")
    blocker = entry.get("blocker")
    if blocker is not None and blocker not in SIGN_IN_FAILURES:
        raise ValueError(f"seed: sign-in of {entry.get('user_principal_name')}: unknown blocker {blocker!r}; "
                         f"known: {sorted(SIGN_IN_FAILURES)}")
    upn = str(entry["user_principal_name"])
    ago = datetime.timedelta(days=entry.get("days_ago", 0), hours=entry.get("hours_ago", 0),
                             minutes=entry.get("minutes_ago", 0))
    app = None
    if entry.get("app_id"):
        app = tenant.apps.get(entry["app_id"])
        if app is None:
            raise ValueError(f"seed: sign-in of {upn}: no app {entry['app_id']} in tenant {tenant.name}")
    return sign_in_record(upn, user=tenant.find_user(upn), app=app, ip_address=str(entry.get("ip_address", "")),
                          client_app_used=client_app_used, blocker=blocker, created=now - ago)


def tenant_from_seed(entry: dict[str, Any], behaviour: dict[str, Any] | None = None) -> Tenant:
    entry = dict(entry)
    apps = [App(**_checked("app", app, _APP_KEYS)) for app in entry.pop("apps", [])]
    users = [User(**_checked("user", user, _USER_KEYS)) for user in entry.pop("users", [])]
    principals = [ServicePrincipal(**sp) for sp in entry.pop("service_principals", [])]
    generate = entry.pop("generate", None)
    policies = entry.pop("authentication_policies", {})
    sign_ins = entry.pop("sign_ins", [])
    tenant = Tenant(**entry)
    tenant.apps = {app.client_id: app for app in apps}
    try:
        tenant.authentication_policies = {name: authentication_policy_settings(settings)
                                          for name, settings in policies.items()}
    except ValueError as exc:
        raise ValueError(f"seed: tenant {tenant.name}: {exc}") from None
    tenant.service_principals = principals
    for user in users:
        tenant.add_user(user)
    if generate:
        for user in generate_users(tenant.domains[0], **generate):
            tenant.add_user(user)
    now = datetime.datetime.now(datetime.timezone.utc)
    client_app_used = (behaviour or {}).get("sign_in_client_app") or DEFAULT_BEHAVIOUR["sign_in_client_app"]
    records = [seeded_sign_in(tenant, sign_in, now, client_app_used) for sign_in in sign_ins]
    for record in sorted(records, key=lambda record: record["createdDateTime"]):
        tenant.add_sign_in(record)
    return tenant


def store_from_document(document: dict[str, Any]) -> TenantStore:
    if not isinstance(document, dict) or not isinstance(document.get("tenants"), list):
        raise ValueError("seed: the document must be a mapping with a 'tenants' list")
    behaviour = document.get("behaviour")
    tenants = [tenant_from_seed(entry, behaviour) for entry in document["tenants"]]
    return TenantStore(tenants, behaviour=behaviour)


def load_document(path: str | Path | None = None) -> dict[str, Any]:
    """Read a seed file (YAML or JSON; JSON is YAML); None reads the bundled sample tenant."""
    if path is None:
        text = resources.files(__package__).joinpath("data").joinpath(SAMPLE_SEED).read_text(encoding="utf-8")
    else:
        text = Path(path).read_text(encoding="utf-8")
    return yaml.safe_load(text)


def load_store(path: str | Path | None = None) -> TenantStore:
    return store_from_document(load_document(path))
