# Copyright (c) 2026 m365ops.smtp_auth contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""Typed errors raised by the Microsoft 365 clients.

The clients know nothing of Ansible: they raise these, and the module base turns any of them into one
``fail_json`` whose message names the tenant, the identity, the missing permission or the AADSTS code.
"""

from __future__ import annotations

import json
import re

_AADSTS_PATTERN = re.compile(r"AADSTS(\d+)")


class M365Error(Exception):
    """Base of every error the collection raises about Microsoft 365."""

    kind = "error"
    # Facts a subclass adds, given as keyword arguments and shown by to_dict() (None when not given).
    fields = ()

    def __init__(self, message, status=None, code=None, request_id=None, **facts):
        super().__init__(message)
        unknown = set(facts) - set(self.fields)
        if unknown:
            raise TypeError("%s got unexpected facts %s" % (type(self).__name__, sorted(unknown)))
        self.message = message
        self.status = status
        self.code = code
        self.request_id = request_id
        for name in self.fields:
            setattr(self, name, facts.get(name))

    def __str__(self):
        return self.message

    def to_dict(self):
        """Structured facts for a task result; keys without a value are left out."""
        data = {"type": type(self).__name__, "message": self.message}
        for key in ("status", "code", "request_id") + tuple(self.fields):
            value = getattr(self, key, None)
            if value not in (None, "", []):
                data[key] = value
        return data


class AuthenticationError(M365Error):
    """The identity platform refused the token request (wrong secret, unknown tenant or app, ...)."""

    fields = ("aadsts_code", "description")

    @classmethod
    def from_token_reply(cls, reply, tenant, client_id):
        """Build from an MSAL error dict (``error``, ``error_description``, ``error_codes``, ...)."""
        description = (reply.get("error_description") or "").strip()
        codes = reply.get("error_codes") or []
        aadsts_code = None
        match = _AADSTS_PATTERN.search(description)
        if match:
            aadsts_code = "AADSTS" + match.group(1)
        elif codes:
            aadsts_code = "AADSTS%s" % codes[0]
        # The first sentence carries the meaning; the rest is trace and correlation ids.
        sentence = description.splitlines()[0] if description else reply.get("error", "unknown error")
        sentence = re.split(r"\s+Trace ID:", sentence)[0].strip()
        message = "Token request for app %s in tenant %s failed: %s" % (client_id, tenant, sentence)
        return cls(message, status=reply.get("status"), code=reply.get("error"),
                   request_id=reply.get("correlation_id"), aadsts_code=aadsts_code, description=sentence)


class PermissionDeniedError(M365Error):
    """The app is authenticated but lacks the permission (or role) the operation needs."""

    fields = ("permission", "operation")


class NotFoundError(M365Error):
    """The user, mailbox or object named by ``identity`` does not exist in the tenant."""

    fields = ("identity",)


class ThrottledError(M365Error):
    """Still throttled (429/503) after every allowed retry."""

    fields = ("retry_after",)


class ServiceUnavailableError(ThrottledError):
    """Still 503 (Service Unavailable) after every allowed retry: the service is down or overloaded, which is not
    this app's request rate (a ThrottledError, so code that handles throttling handles it too)."""


def retries_exhausted(service, what, status, text, **facts):
    """The error for a 429 or 503 that every allowed retry met: throttled, or unavailable."""
    if status == 503:
        return ServiceUnavailableError("%s was unavailable (HTTP 503) for %s after every retry: %s"
                                       % (service, what, text), status=status, **facts)
    return ThrottledError("%s kept throttling %s after every retry: %s" % (service, what, text), status=status,
                          **facts)


class TransportError(M365Error):
    """The request never got an HTTP answer: DNS, TLS, refused connection or timeout."""

    fields = ("url",)


class TruncatedResultError(M365Error):
    """A read came back incomplete; acting on it would report or fix drift that is not there."""

    fields = ("cmdlet", "warnings")

    def __init__(self, message, **kwargs):
        super().__init__(message, **kwargs)
        self.warnings = list(self.warnings or [])


class ExchangeCommandError(M365Error):
    """A cmdlet ran through InvokeCommand and failed.

    The outer ``error.message`` is generic ("Error executing cmdlet"); the meaning is in
    ``error.details[0].message`` formatted ``ErrId|ExceptionType|Text``, which lands in ``error_id``,
    ``exception_type`` and ``text``.
    """

    fields = ("cmdlet", "error_id", "exception_type", "text")


class ExchangeObjectNotFoundError(ExchangeCommandError, NotFoundError):
    """ManagementObjectNotFoundException and friends: the identity given to a cmdlet does not exist."""

    fields = ExchangeCommandError.fields + ("identity",)


def parse_json_body(text):
    """Return the decoded JSON body, or None when the body is empty or not JSON (proxies, 403 pages)."""
    if not text:
        return None
    try:
        return json.loads(text)
    except ValueError:
        return None


def plain_text(body, limit=300):
    """A non-JSON error body (an IIS or proxy HTML page) as one line of text."""
    text = re.sub(r"<(script|style)\b.*?</\1>", " ", body or "", flags=re.DOTALL | re.IGNORECASE)
    text = re.sub(r"<[^>]+>", " ", text)
    text = re.sub(r"\s+", " ", text).strip()
    return text[:limit]


def split_exchange_detail(detail_message):
    """Split ``ErrId|ExceptionType|Text`` into its parts; text that is not in that shape is all ``text``."""
    parts = (detail_message or "").split("|", 2)
    if len(parts) == 3 and "." in parts[1]:
        return parts[0].strip() or None, parts[1].strip() or None, parts[2].strip()
    return None, None, (detail_message or "").strip()


def short_exception_type(exception_type):
    """``Microsoft.Exchange.Configuration.Tasks.ManagementObjectNotFoundException`` -> the last segment."""
    return (exception_type or "").rsplit(".", 1)[-1]
