"""The tenant's MX endpoint (``<domain-with-dashes>.mail.protection.outlook.com:25``) as connector relay meets it:
no AUTH; mail to the organisation's own domains is accepted from anyone, mail to anywhere else only from a source
address an enabled OnPremises inbound connector of the sender's tenant lists. Otherwise RCPT TO answers
``550 5.7.64 TenantAttribution; Relay Access Denied`` (Microsoft Learn's page on that NDR).

Loopback addresses stand in for public ones: 127.0.0.2 is another source than 127.0.0.1 (a client binds it)."""

from __future__ import annotations

import datetime
import email.parser
import email.policy
import secrets
from typing import Any

from .models import FRONTEND, record_message
from .responses import _suffix

RELAY_DENIED = (550, "5.7.64 TenantAttribution; Relay Access Denied")


class RelayHandler:
    """aiosmtpd hooks of the MX endpoint: tenant attribution by connector at RCPT TO, the record of accepted mail."""

    def __init__(self, emulator: Any, frontend: str = FRONTEND):
        self.emulator = emulator
        self.frontend = frontend

    def attribution(self, peer: str, sender: str, recipient: str) -> tuple[Any, Any] | None:
        """``(tenant, connector)`` that accepts ``recipient`` from ``peer``; connector None for the tenant's own
        domains. None: relay denied."""
        with self.emulator.store.lock:
            tenants = self.emulator.store.tenants
            for tenant in tenants:
                if tenant.owns_domain_of(sender):
                    connector = tenant.relay_connector(peer)
                    if connector is not None:
                        return tenant, dict(connector)
            owner = next((tenant for tenant in tenants if tenant.owns_domain_of(recipient)), None)
            return (owner, None) if owner is not None else None

    async def handle_RCPT(self, server: Any, session: Any, envelope: Any, address: str,
                          rcpt_options: list[str]) -> str:
        peer = session.peer[0] if session.peer else ""
        found = self.attribution(peer, envelope.mail_from or "", address)
        if found is None:
            code, text = RELAY_DENIED
            return f"{code} {text} {_suffix(self.frontend)}"
        envelope.rcpt_tos.append(address)
        if found[1] is not None:
            session.relay_connector = found[1]["name"]
        session.relay_tenant = found[0].id
        return "250 2.1.5 Recipient OK"

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        content = envelope.original_content or b""
        headers = email.parser.BytesHeaderParser(policy=email.policy.default).parsebytes(content)
        message_id = f"<{secrets.token_hex(16).upper()}@{self.frontend.lower()}>"
        record_message(self.emulator.messages, {
            "tenant": getattr(session, "relay_tenant", None), "user_id": None, "mailbox": None,
            "mail_from": envelope.mail_from, "rcpt_tos": list(envelope.rcpt_tos),
            "subject": str(headers.get("Subject") or ""), "size": len(content), "auth_mechanism": None,
            "relay_connector": getattr(session, "relay_connector", None),
            "source_address": session.peer[0] if session.peer else "",
            "time": datetime.datetime.now(datetime.timezone.utc).isoformat(), "message_id": message_id,
        })
        return f"250 2.6.0 {message_id} [Hostname={self.frontend}] Queued mail for delivery"
