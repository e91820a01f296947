"""The ``Emulator``: assembles the services it is given on one HTTPS origin (and SMTP submission on a port of its
own), around one tenant store, and starts and stops them.

The services (``identity``, ``graph``, ``exchange``, ``control``, ``smtp``) know nothing of each other's
internals; the core (``core``) routes, injects faults, adds latency and keeps the request log for all of them.
See docs/architecture.md ("The emulator").
"""

from __future__ import annotations

import copy
import shutil
import ssl
import tempfile
import threading
from pathlib import Path
from typing import Any, Callable

from . import certs
from .control import ControlService
from .core import (DEFAULT_LOG_SIZE, Dispatcher, Fault, Faults, HttpsServer, LogEntry, Request, RequestLog, Response,
                   Service)
from .exchange import ExchangeService
from .exchange.models import PageCursors
from .graph import GraphService
from .identity import IdentityService, TokenIssuer, unverified_client_id
from .seed import generate_users, load_document, store_from_document
from .smtp import SmtpService
from .state import TenantStore

# What ``Emulator`` runs unless told otherwise: every service, each made from the emulator itself.
DEFAULT_SERVICES: tuple[Callable[[Any], Service], ...] = (IdentityService, GraphService, ExchangeService,
                                                           ControlService, SmtpService)


class Emulator:
    """The whole emulator: HTTPS origin (tokens, Graph, Exchange, control API) and SMTP submission.

    ``seed`` is None (the bundled sample tenants), a path to a YAML/JSON seed file, or a seed document.
    ``https_port=0`` / ``smtp_port=0`` pick free ports; ``smtp_port=None`` runs no SMTP server. ``mx_port`` (None:
    off, 0: a free port) runs the MX endpoint that connector relay sends to. ``services``
    are the service classes to assemble (default: all of them).
    """

    def __init__(self, seed: str | Path | dict[str, Any] | None = None, host: str = "127.0.0.1",
                 https_port: int = 0, smtp_port: int | None = 0, *, latency_ms: int = 0,
                 state_dir: str | Path | None = None, behaviour: dict[str, Any] | None = None,
                 generate: int = 0, log_size: int = DEFAULT_LOG_SIZE, mx_port: int | None = None,
                 services: tuple[Callable[[Any], Service], ...] = DEFAULT_SERVICES):
        self.host = host
        self.https_port = https_port
        self.smtp_port = smtp_port
        self.smtp_host = host
        self.mx_port = mx_port
        self.latency_ms = latency_ms
        self.behaviour_overrides = dict(behaviour or {})
        self.generate = generate
        self._seed_document = copy.deepcopy(seed) if isinstance(seed, dict) else _load_seed(seed)
        self._own_state_dir = state_dir is None
        self.state_dir = Path(state_dir) if state_dir else Path(tempfile.mkdtemp(prefix="m365-emulator-"))
        self.messages: list[Any] = []
        self.faults = Faults()
        self.log = RequestLog(log_size)
        self.ca: certs.CertificateAuthority | None = None
        self.app_certificates: dict[str, certs.AppCertificate] = {}
        self._server: HttpsServer | None = None
        self._thread: threading.Thread | None = None
        self.services: dict[str, Service] = {}
        for make in services:
            service = make(self)
            self.services[service.name] = service
        self.dispatcher = Dispatcher(list(self.services.values()), self.faults, self.log,
                                     identify=lambda request: unverified_client_id(request.bearer_token()),
                                     latency_ms=lambda: self.latency_ms)
        self.store: TenantStore = self.build_store(self._seed_document)

    # -- the services' shared parts -------------------------------------------------------------------
    @property
    def tokens(self) -> TokenIssuer:
        """The token issuer (signing key, lifetime, issued tokens) of the identity service."""
        identity = self.services["identity"]
        assert isinstance(identity, IdentityService)
        return identity.issuer

    @property
    def exchange_cursors(self) -> PageCursors:
        """The Exchange admin API's paging cursors (tests move their clock)."""
        exchange = self.services["exchange"]
        assert isinstance(exchange, ExchangeService)
        return exchange.cursors

    # -- state -----------------------------------------------------------------------------------------
    def build_store(self, document: dict[str, Any]) -> TenantStore:
        """A store from a seed document plus this emulator's behaviour overrides, bulk users and certificates."""
        document = copy.deepcopy(document)
        if self.behaviour_overrides:
            document["behaviour"] = {**(document.get("behaviour") or {}), **self.behaviour_overrides}
        store = store_from_document(document)
        if self.generate:
            if not store.tenants:
                raise ValueError("generate: the seed has no tenant to add mailboxes to")
            first = store.tenants[0]
            for user in generate_users(first.domains[0], self.generate):
                first.add_user(user)
        if self.ca is not None:
            self._attach_certificates(store)
        return store

    def reset(self, document: dict[str, Any] | None = None) -> None:
        """Replace the whole tenant state with the starting seed, or with ``document``."""
        store = self.build_store(self._seed_document if document is None else document)
        with self.store.lock:
            self.store = store

    def _attach_certificates(self, store: TenantStore) -> None:
        assert self.ca is not None
        for tenant in store.tenants:
            for app in tenant.apps.values():
                issued = self.app_certificates.get(app.client_id)
                if issued is None:
                    issued = self.app_certificates[app.client_id] = self.ca.issue_app_certificate(app.client_id)
                if issued.certificate_pem not in app.certificates:
                    app.certificates.append(issued.certificate_pem)

    # -- lifecycle -------------------------------------------------------------------------------------
    @property
    def base_url(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"https://{host}:{self.https_port}"

    @property
    def ca_path(self) -> str:
        if self.ca is None:
            raise RuntimeError("the emulator is not started")
        return str(self.ca.ca_path)

    def ssl_context(self) -> ssl.SSLContext:
        """Server-side TLS context (HTTPS origin and SMTP STARTTLS)."""
        if self.ca is None:
            raise RuntimeError("the emulator is not started")
        return self.ca.server_ssl_context()

    def client_ssl_context(self) -> ssl.SSLContext:
        """Client-side TLS context that trusts the emulator's CA."""
        if self.ca is None:
            raise RuntimeError("the emulator is not started")
        return self.ca.client_ssl_context()

    def start(self) -> Emulator:
        if self._server is not None:
            return self
        self.ca = certs.CertificateAuthority(self.state_dir)
        self._attach_certificates(self.store)
        self._server = HttpsServer(self.host, self.https_port, self.ssl_context(),
                                   lambda request: self.dispatch(request, delay=True))
        self.https_port = self._server.port
        self._thread = threading.Thread(target=self._server.serve_forever, kwargs={"poll_interval": 0.02},
                                        name="m365-emulator-https", daemon=True)
        self._thread.start()
        smtp = self.services.get("smtp")
        if isinstance(smtp, SmtpService) and self.smtp_port is not None:
            self.smtp_port = smtp.listen(self.smtp_host, self.smtp_port)
        if isinstance(smtp, SmtpService) and self.mx_port is not None:
            self.mx_port = smtp.listen_relay(self.smtp_host, self.mx_port)
        return self

    def stop(self) -> None:
        smtp = self.services.get("smtp")
        if isinstance(smtp, SmtpService):
            smtp.close()
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server.close_connections()
            self._server = None
        if self._thread is not None:
            self._thread.join(timeout=5)
            self._thread = None
        if self._own_state_dir:
            shutil.rmtree(self.state_dir, ignore_errors=True)

    def __enter__(self) -> Emulator:
        return self.start()

    def __exit__(self, *exc_info: Any) -> None:
        self.stop()

    # -- requests --------------------------------------------------------------------------------------
    def dispatch(self, request: Request, parent: int | None = None, delay: bool = False) -> Response:
        """Answer one request (an HTTP request, or an item of a ``$batch`` when ``parent`` is its seq)."""
        return self.dispatcher.dispatch(request, parent, delay)

    @property
    def request_log(self) -> list[LogEntry]:
        return self.log.entries()

    def requests_since(self, seq: int = 0) -> list[LogEntry]:
        return self.log.since(seq)

    def clear_request_log(self) -> None:
        self.log.clear()

    def add_fault(self, spec: dict[str, Any]) -> Fault:
        return self.faults.add(spec)

    def clear_faults(self) -> None:
        self.faults.clear()

    # -- what clients need to connect ------------------------------------------------------------------
    def connection_info(self) -> dict[str, Any]:
        with self.store.lock:
            tenants = []
            for tenant in self.store.tenants:
                apps = []
                for app in tenant.apps.values():
                    issued = self.app_certificates.get(app.client_id)
                    apps.append({
                        "client_id": app.client_id,
                        "display_name": app.display_name,
                        "object_id": app.object_id,
                        "service_principal_id": app.service_principal_id,
                        "secret": app.secrets[0] if app.secrets else None,
                        "certificate": issued.info() if issued else None,
                        "graph_permissions": list(app.graph_permissions),
                        "exchange_permissions": list(app.exchange_permissions),
                        "directory_roles": list(app.directory_roles),
                    })
                tenants.append({"name": tenant.name, "id": tenant.id, "domains": list(tenant.domains),
                                "apps": apps})
        smtp = self.services.get("smtp")
        listening = isinstance(smtp, SmtpService) and smtp.server is not None
        return {
            "base_url": self.base_url,
            "authority_url": self.base_url,
            "graph_url": self.base_url,
            "exchange_url": self.base_url,
            "control_url": f"{self.base_url}/_emulator",
            "ca_path": self.ca_path,
            "state_dir": str(self.state_dir),
            "smtp_host": self.smtp_host,
            "smtp_port": self.smtp_port if listening else None,
            "mx_port": self.mx_port if isinstance(smtp, SmtpService) and smtp.relay is not None else None,
            "tenants": tenants,
        }


_seed_cache: dict[tuple[str, float], dict[str, Any]] = {}
_seed_cache_lock = threading.Lock()


def _load_seed(path: str | Path | None) -> dict[str, Any]:
    """A seed document, parsed once per process and file version (YAML parsing dominates start-up)."""
    key = ("", 0.0) if path is None else (str(Path(path).resolve()), Path(path).stat().st_mtime)
    with _seed_cache_lock:
        if key not in _seed_cache:
            _seed_cache[key] = load_document(path)
        return copy.deepcopy(_seed_cache[key])
