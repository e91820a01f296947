# Copyright (c) 2026 m365ops.smtp_auth contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""Connection options shared by every module: the argument spec, the national clouds, the settings object."""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from urllib.parse import urlsplit

from ansible.module_utils.errors import AnsibleFallbackNotFound


@dataclass(frozen=True)
class Cloud:
    """Hosts of one Microsoft 365 cloud. Each service's base URL is also its token audience, so scopes always
    come from here, never from the URL overrides that point the clients elsewhere (a proxy, the emulator)."""

    authority_url: str
    graph_url: str
    exchange_url: str
    # SMTP client submission (port 587, STARTTLS). The US government and China hosts come from third-party
    # code and write-ups only; an operator can always name another with the probe's host option.
    smtp_host: str

    @property
    def graph_scope(self):
        return self.graph_url + "/.default"

    @property
    def exchange_scope(self):
        return self.exchange_url + "/.default"


CLOUDS = {
    "global": Cloud("https://login.microsoftonline.com", "https://graph.microsoft.com",
                    "https://outlook.office365.com", "smtp.office365.com"),
    "usgov_high": Cloud("https://login.microsoftonline.us", "https://graph.microsoft.us",
                        "https://outlook.office365.us", "smtp.office365.us"),
    # The DoD admin API host and token audience that ScubaGear and Microsoft's CSS-Exchange endpoint table use;
    # webmail.apps.mil is only the old remote PowerShell address.
    "usgov_dod": Cloud("https://login.microsoftonline.us", "https://dod-graph.microsoft.us",
                       "https://outlook-dod.office365.us", "smtp.office365.us"),
    "china": Cloud("https://login.partner.microsoftonline.cn", "https://microsoftgraph.chinacloudapi.cn",
                   "https://partner.outlook.cn", "smtp.partner.outlook.cn"),
}

DEFAULT_TIMEOUT = 30
DEFAULT_MAX_RETRIES = 4
# Beyond these a typo, not a choice: each retry may wait up to 300 s (Retry-After is capped there), so 20
# retries already allow well over an hour of throttling; a timeout longer than an hour hides a dead endpoint.
MAX_TIMEOUT = 3600
MAX_RETRIES = 20
# Requests in flight at once per service (Exchange cmdlets, Graph $batch requests). Exchange Online and Graph
# throttle per app and tenant, so beyond a handful more threads only earn 429s; the ceiling keeps a typo from
# opening hundreds of connections.
DEFAULT_CONCURRENCY = 4
MAX_CONCURRENCY = 16

_GUID = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$", re.IGNORECASE)
# A tenant is named in the authority URL path: its GUID or one of its DNS domains, nothing else.
_DOMAIN = re.compile(r"^(?=.{1,253}$)[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?"
                     r"(?:\.[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?)+$")
_URL_OPTIONS = (("authority_url", "M365_AUTHORITY_URL"), ("graph_url", "M365_GRAPH_URL"),
                ("exchange_url", "M365_EXCHANGE_URL"))


def is_guid(value):
    return isinstance(value, str) and bool(_GUID.match(value))


def env_fallback(*names, **_options):
    """Ansible's env_fallback, except that an empty variable counts as unset: an AWX credential injector sets
    every variable of its type, empty for an input the credential leaves blank (a secret when the app signs in
    with a certificate), and an empty secret must not clash with the certificate."""
    for name in names:
        if os.environ.get(name):
            return os.environ[name]
    raise AnsibleFallbackNotFound


# The longest Retry-After a run waits out; a longer one fails the request at once, saying how long was asked.
DEFAULT_MAX_RETRY_WAIT = 300


def connection_argument_spec():
    """The connection options, each with its ``M365_*`` environment fallback. Documented in the
    ``m365ops.smtp_auth.connection`` doc fragment; keep the two in step."""
    return dict(
        # Not required here: connection_errors() names every way to give them when they are missing.
        tenant_id=dict(type="str", fallback=(env_fallback, ["M365_TENANT_ID"])),
        client_id=dict(type="str", fallback=(env_fallback, ["M365_CLIENT_ID"])),
        client_secret=dict(type="str", no_log=True, fallback=(env_fallback, ["M365_CLIENT_SECRET"])),
        client_certificate_path=dict(type="path", fallback=(env_fallback, ["M365_CLIENT_CERTIFICATE_PATH"])),
        client_certificate_password=dict(type="str", no_log=True,
                                         fallback=(env_fallback, ["M365_CLIENT_CERTIFICATE_PASSWORD"])),
        cloud=dict(type="str", default="global", choices=sorted(CLOUDS),
                   fallback=(env_fallback, ["M365_CLOUD"])),
        authority_url=dict(type="str", fallback=(env_fallback, ["M365_AUTHORITY_URL"])),
        graph_url=dict(type="str", fallback=(env_fallback, ["M365_GRAPH_URL"])),
        exchange_url=dict(type="str", fallback=(env_fallback, ["M365_EXCHANGE_URL"])),
        ca_path=dict(type="path", fallback=(env_fallback, ["M365_CA_PATH"])),
        validate_certs=dict(type="bool", default=True),
        timeout=dict(type="int", default=DEFAULT_TIMEOUT),
        max_retries=dict(type="int", default=DEFAULT_MAX_RETRIES),
        max_retry_wait=dict(type="int", default=DEFAULT_MAX_RETRY_WAIT,
                            fallback=(env_fallback, ["M365_MAX_RETRY_WAIT"])),
        token_cache=dict(type="path", fallback=(env_fallback, ["M365_TOKEN_CACHE"])),
        concurrency=dict(type="int", default=DEFAULT_CONCURRENCY, fallback=(env_fallback, ["M365_CONCURRENCY"])),
    )


CONNECTION_MUTUALLY_EXCLUSIVE = [("client_secret", "client_certificate_path")]

CREDENTIALS_HELP = (
    "give tenant_id (or M365_TENANT_ID), client_id (or M365_CLIENT_ID), and either client_secret (or "
    "M365_CLIENT_SECRET) or client_certificate_path (or M365_CLIENT_CERTIFICATE_PATH; add "
    "client_certificate_password or M365_CLIENT_CERTIFICATE_PASSWORD when its key is encrypted), as module "
    "options, in module_defaults for group/m365ops.smtp_auth.m365, or in the environment")


def connection_errors(params, need_credentials=True):
    """What is wrong with the connection options, one message each, before any request is made."""
    errors = []
    timeout = params.get("timeout")
    if timeout is not None and timeout <= 0:
        errors.append("timeout must be a number of seconds greater than 0, not %s" % timeout)
    elif timeout is not None and timeout > MAX_TIMEOUT:
        errors.append("timeout must be at most %d seconds, not %s" % (MAX_TIMEOUT, timeout))
    max_retries = params.get("max_retries")
    if max_retries is not None and max_retries < 0:
        errors.append("max_retries must be 0 or more, not %s" % max_retries)
    elif max_retries is not None and max_retries > MAX_RETRIES:
        errors.append("max_retries must be at most %d, not %s" % (MAX_RETRIES, max_retries))
    tenant_id = params.get("tenant_id")
    if tenant_id and not (_GUID.match(tenant_id) or _DOMAIN.match(tenant_id)):
        errors.append("tenant_id (or M365_TENANT_ID) must be the tenant's GUID or one of its domains "
                      "(contoso.onmicrosoft.com), not %r" % tenant_id)
    client_id = params.get("client_id")
    if client_id and not _GUID.match(client_id):
        errors.append("client_id (or M365_CLIENT_ID) must be the application (client) id of the app registration, "
                      "a GUID such as 6f1c2b7e-43d1-4c8e-9a77-0b4f0a3e5d21, not %r" % client_id)
    for option, variable in _URL_OPTIONS:
        url = params.get(option)
        if url and not _is_https_url(url):
            # MSAL refuses any other authority, and a token must never travel in clear text.
            errors.append("%s (or %s) must be an https:// URL such as https://graph.microsoft.com, not %r"
                          % (option, variable, url))
    certificate = params.get("client_certificate_path")
    if certificate and not os.path.exists(certificate):
        errors.append("client_certificate_path (or M365_CLIENT_CERTIFICATE_PATH) is %s, which does not exist"
                      % certificate)
    elif certificate and os.path.isdir(certificate):
        errors.append("client_certificate_path (or M365_CLIENT_CERTIFICATE_PATH) is %s, which is a directory, "
                      "not a PEM or PFX file" % certificate)
    max_retry_wait = params.get("max_retry_wait")
    if max_retry_wait is not None and max_retry_wait < 0:
        errors.append("max_retry_wait must be 0 or more seconds, not %s" % max_retry_wait)
    concurrency = params.get("concurrency")
    if concurrency is not None and not 1 <= concurrency <= MAX_CONCURRENCY:
        errors.append("concurrency (or M365_CONCURRENCY) must be from 1 to %d requests at once, not %s"
                      % (MAX_CONCURRENCY, concurrency))
    token_cache = params.get("token_cache")
    if token_cache and os.path.isdir(token_cache):
        errors.append("token_cache (or M365_TOKEN_CACHE) is %s, which is a directory, not a file" % token_cache)
    elif token_cache and not os.path.isdir(os.path.dirname(os.path.abspath(token_cache))):
        errors.append("token_cache (or M365_TOKEN_CACHE) is %s, whose directory does not exist" % token_cache)
    ca_path = params.get("ca_path")
    if ca_path and not os.path.exists(ca_path):
        errors.append("ca_path (or M365_CA_PATH) is %s, which does not exist" % ca_path)
    elif ca_path and not os.access(ca_path, os.R_OK):
        errors.append("ca_path (or M365_CA_PATH) is %s, which cannot be read" % ca_path)
    if need_credentials:
        missing = [name for name in ("tenant_id", "client_id") if not params.get(name)]
        if not (params.get("client_secret") or params.get("client_certificate_path")):
            missing.append("client_secret or client_certificate_path")
        if missing:
            errors.append("Missing %s. To sign in to Microsoft 365, %s." % (", ".join(missing), CREDENTIALS_HELP))
    return errors


@dataclass(frozen=True)
class ConnectionSettings:
    """Everything a client needs to reach one tenant; built from module parameters or by hand in tests."""

    # None only in a module that may never sign in (connection_errors() has the final word before a request).
    tenant_id: str | None = None
    client_id: str | None = None
    client_secret: str | None = None
    client_certificate_path: str | None = None
    client_certificate_password: str | None = None
    cloud: str = "global"
    authority_url: str | None = None
    graph_url: str | None = None
    exchange_url: str | None = None
    ca_path: str | None = None
    validate_certs: bool = True
    timeout: int = DEFAULT_TIMEOUT
    max_retries: int = DEFAULT_MAX_RETRIES
    max_retry_wait: int = DEFAULT_MAX_RETRY_WAIT
    token_cache: str | None = None
    concurrency: int = DEFAULT_CONCURRENCY

    @classmethod
    def from_params(cls, params):
        names = cls.__dataclass_fields__
        return cls(**{name: params.get(name) for name in names if params.get(name) is not None})

    @property
    def endpoints(self):
        return CLOUDS[self.cloud]

    @property
    def authority_base(self):
        return _strip(self.authority_url or self.endpoints.authority_url)

    @property
    def authority(self):
        return "%s/%s" % (self.authority_base, self.tenant_id)

    @property
    def graph_base(self):
        return _strip(self.graph_url or self.endpoints.graph_url)

    @property
    def exchange_base(self):
        return _strip(self.exchange_url or self.endpoints.exchange_url)

    @property
    def verify(self):
        """What requests gets as ``verify``: a CA bundle path, or a bool."""
        if not self.validate_certs:
            return False
        return self.ca_path or True


def _is_https_url(url):
    try:
        parts = urlsplit(url)
        return parts.scheme == "https" and bool(parts.hostname)
    except ValueError:
        return False


def _strip(url):
    return url.rstrip("/")
