"""One threaded HTTPS origin for tokens, Graph, Exchange and the control API, and the ``Emulator`` itself.

Handler modules (tokens, graph, exchange, control) each expose ``routes(emulator)``; this module owns what
is common to all of them: TLS, HTTP/1.1 keep-alive, routing, the request log, fault injection and added
latency. See docs/architecture.md ("The emulator") for the handler contract.
"""

from __future__ import annotations

import collections
import copy
import datetime
import importlib.util
import itertools
import json
import logging
import re
import shutil
import socket
import ssl
import tempfile
import threading
import time
import uuid
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, Callable, Iterable
from urllib.parse import parse_qsl, unquote, urlsplit

import jwt

from . import certs
from .seed import generate_users, load_document, store_from_document
from .state import TenantStore

LOG = logging.getLogger("m365_emulator")

CONTROL_PREFIX = "/_emulator/"
GRAPH_PATH = re.compile(r"^/(v1\.0|beta)(/|$)")
TOKEN_PATH = re.compile(r"^/[^/]+/(oauth2/|v2\.0/\.well-known/|discovery/)")
EXCHANGE_PATH = re.compile(r"^/adminapi/")
DEFAULT_LOG_SIZE = 100_000


def utc_now_iso(milliseconds: bool = False) -> str:
    now = datetime.datetime.now(datetime.timezone.utc)
    if milliseconds:
        return now.strftime("%Y-%m-%dT%H:%M:%S.") + f"{now.microsecond // 1000:03d}Z"
    return now.strftime("%Y-%m-%dT%H:%M:%S")


class Headers(dict):
    """Header mapping with case-insensitive lookups that keeps the spelling a header was first set with."""

    def __init__(self, items: Iterable[tuple[str, str]] | dict[str, str] = ()):
        super().__init__()
        self._names: dict[str, str] = {}
        pairs = items.items() if isinstance(items, dict) else items
        for key, value in pairs:
            self[key] = value

    def __setitem__(self, key: str, value: str) -> None:
        actual = self._names.setdefault(key.lower(), key)
        super().__setitem__(actual, value)

    def __getitem__(self, key: str) -> str:
        return super().__getitem__(self._names.get(key.lower(), key))

    def __delitem__(self, key: str) -> None:
        super().__delitem__(self._names.pop(key.lower(), key))

    def __contains__(self, key: object) -> bool:
        return isinstance(key, str) and key.lower() in self._names

    def get(self, key: str, default: Any = None) -> Any:
        actual = self._names.get(key.lower())
        return default if actual is None else super().__getitem__(actual)

    def pop(self, key: str, *default: Any) -> Any:
        actual = self._names.pop(key.lower(), None)
        if actual is None:
            if default:
                return default[0]
            raise KeyError(key)
        return super().pop(actual)


class LogEntry(dict):
    """A request-log entry; handlers may set fields as keys or as attributes (``request.log.wrote = True``)."""

    def __getattr__(self, name: str) -> Any:
        try:
            return self[name]
        except KeyError:
            raise AttributeError(name) from None

    def __setattr__(self, name: str, value: Any) -> None:
        self[name] = value


class Response:
    def __init__(self, status: int, body: Any = None, headers: dict[str, str] | None = None):
        self.status = status
        self.body = body
        self.headers = Headers(headers or {})

    def encoded_body(self) -> bytes:
        if self.body is None:
            return b""
        if isinstance(self.body, bytes):
            return self.body
        if isinstance(self.body, str):
            return self.body.encode("utf-8")
        return json.dumps(self.body, separators=(",", ":")).encode("utf-8")

    def json(self) -> Any:
        """The body as JSON data (for in-process callers such as ``$batch``); None when it is not JSON."""
        if self.body is None or isinstance(self.body, (dict, list)):
            return self.body
        try:
            return json.loads(self.encoded_body() or b"null")
        except ValueError:
            return None


class HttpError(Exception):
    """Raise from a handler to answer with ``response``."""

    def __init__(self, response: Response):
        super().__init__(f"HTTP {response.status}")
        self.response = response


class Request:
    def __init__(self, method: str, path: str, query: dict[str, str] | None = None,
                 headers: Headers | dict[str, str] | None = None, body: bytes = b"",
                 base_url: str = "", remote_addr: str = "127.0.0.1"):
        self.method = method.upper()
        self.path = path
        self.query = dict(query or {})
        self.headers = headers if isinstance(headers, Headers) else Headers(headers or {})
        self.body = body or b""
        self.base_url = base_url
        self.remote_addr = remote_addr
        self.request_id = str(uuid.uuid4())
        self.log: LogEntry = LogEntry()
        self._json: Any = None
        self._json_parsed = False

    @property
    def client_request_id(self) -> str:
        return self.headers.get("client-request-id") or self.request_id

    def json(self) -> Any:
        if not self._json_parsed:
            if not self.body.strip():
                raise HttpError(error_response(self, 400, "BadRequest", "A request body is required."))
            try:
                self._json = json.loads(self.body)
            except ValueError as exc:
                raise HttpError(error_response(self, 400, "BadRequest",
                                               f"The request body is not valid JSON: {exc}.")) from None
            self._json_parsed = True
        return self._json

    def bearer_token(self) -> str | None:
        value = self.headers.get("authorization") or ""
        scheme, _, token = value.partition(" ")
        return token.strip() if scheme.lower() == "bearer" and token.strip() else None


def graph_error(request: Request, status: int, code: str, message: str,
                headers: dict[str, str] | None = None) -> Response:
    """Microsoft Graph's error shape, with the innerError every Graph error carries."""
    body = {"error": {"code": code, "message": message, "innerError": {
        "date": utc_now_iso(),
        "request-id": request.request_id,
        "client-request-id": request.client_request_id,
    }}}
    return Response(status, body, headers)


def error_response(request: Request, status: int, code: str, message: str,
                   headers: dict[str, str] | None = None) -> Response:
    """An error in the shape of the service the path belongs to (Graph's shape for Graph paths)."""
    if GRAPH_PATH.match(request.path):
        return graph_error(request, status, code, message, headers)
    return Response(status, {"error": {"code": code, "message": message}}, headers)


_THROTTLE_TEXT = {
    429: ("TooManyRequests", "Too many requests."),
    500: ("generalException", "An unexpected error occurred."),
    502: ("badGateway", "Bad gateway."),
    503: ("serviceNotAvailable", "The service is temporarily unavailable. Retry after the time in Retry-After."),
    504: ("gatewayTimeout", "The gateway timed out."),
}


class Fault:
    """Injected failure: the next ``count`` requests matching path/method/cmdlet get ``status``."""

    _ids = itertools.count(1)

    def __init__(self, spec: dict[str, Any]):
        allowed = {"path", "method", "cmdlet", "status", "count", "retry_after", "body", "headers"}
        unknown = set(spec) - allowed
        if unknown:
            raise ValueError(f"unknown fault fields {sorted(unknown)}; allowed: {sorted(allowed)}")
        self.id = next(self._ids)
        self.spec = {key: spec.get(key) for key in ("path", "method", "cmdlet")}
        try:
            self.path = re.compile(spec["path"]) if spec.get("path") else None
            self.method = re.compile(spec["method"], re.I) if spec.get("method") else None
            self.cmdlet = re.compile(spec["cmdlet"], re.I) if spec.get("cmdlet") else None
        except re.error as exc:
            raise ValueError(f"fault: invalid regular expression: {exc}") from None
        self.status = spec.get("status", 429)
        if not isinstance(self.status, int) or not 400 <= self.status <= 599:
            raise ValueError("fault: status must be an integer from 400 to 599")
        self.remaining = spec.get("count", 1)
        if self.remaining is not None and (not isinstance(self.remaining, int) or self.remaining < 1):
            raise ValueError("fault: count must be a positive integer, or null for every matching request")
        self.retry_after = spec.get("retry_after", 1)
        # Fractional seconds are allowed: Exchange's own client parses Retry-After as a double.
        if self.retry_after is not None and (isinstance(self.retry_after, bool)
                                             or not isinstance(self.retry_after, (int, float))
                                             or self.retry_after < 0):
            raise ValueError("fault: retry_after must be a non-negative number of seconds (1.5 is allowed) or null")
        self.body = spec.get("body")
        self.headers = spec.get("headers") or {}
        if not isinstance(self.headers, dict):
            raise ValueError("fault: headers must be a mapping")
        self.hits = 0

    def matches(self, request: Request, cmdlet: str | None) -> bool:
        if self.path and not self.path.search(request.path):
            return False
        if self.method and not self.method.fullmatch(request.method):
            return False
        if self.cmdlet and not (cmdlet and self.cmdlet.fullmatch(cmdlet)):
            return False
        return True

    def response(self, request: Request) -> Response:
        headers = {str(key): str(value) for key, value in self.headers.items()}
        if self.retry_after is not None:
            headers["Retry-After"] = str(self.retry_after)
        if self.body is not None:
            return Response(self.status, self.body, headers)
        code, message = _THROTTLE_TEXT.get(self.status, ("Fault", f"Injected fault {self.status}."))
        if TOKEN_PATH.match(request.path):
            return Response(self.status, {
                "error": "temporarily_unavailable",
                "error_description": "AADSTS90033: A transient error has occurred. Please try again.",
                "error_codes": [90033], "timestamp": utc_now_iso().replace("T", " ") + "Z",
                "trace_id": request.request_id, "correlation_id": request.client_request_id,
            }, headers)
        return error_response(request, self.status, code, message, headers)

    def describe(self) -> dict[str, Any]:
        return {"id": self.id, **self.spec, "status": self.status, "count": self.remaining,
                "retry_after": self.retry_after, "body": self.body, "headers": self.headers, "hits": self.hits}


Route = tuple[str, "re.Pattern[str]", Callable[[Request, "re.Match[str]"], Response]]


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "m365-emulator"
    # Idle keep-alive connections are closed after this long, so their threads do not linger.
    timeout = 30
    # Buffered writes send status line, headers and body in one segment (flushed after each request);
    # unbuffered, the body waits for the client's delayed ACK of the headers (~40 ms a request).
    wbufsize = -1

    def version_string(self) -> str:
        return self.server_version

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - signature of the base class
        LOG.debug("%s " + format, self.address_string(), *args)

    def _read_body(self) -> bytes:
        if "chunked" in (self.headers.get("Transfer-Encoding") or "").lower():
            chunks = []
            while True:
                size = int(self.rfile.readline().split(b";")[0].strip() or b"0", 16)
                if size == 0:
                    while self.rfile.readline() not in (b"\r\n", b"\n", b""):
                        pass
                    return b"".join(chunks)
                chunks.append(self.rfile.read(size))
                self.rfile.readline()
        length = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(length) if length > 0 else b""

    def _handle(self) -> None:
        emulator: Emulator = self.server.emulator  # type: ignore[attr-defined]
        body = self._read_body()
        parts = urlsplit(self.path)
        host = self.headers.get("Host")
        request = Request(
            method=self.command,
            path=unquote(parts.path) or "/",
            query=dict(parse_qsl(parts.query, keep_blank_values=True)),
            headers=Headers(self.headers.items()),
            body=body,
            base_url=f"https://{host}" if host else emulator.base_url,
            remote_addr=self.client_address[0],
        )
        if not request.path.startswith(CONTROL_PREFIX) and emulator.latency_ms > 0:
            time.sleep(emulator.latency_ms / 1000)
        response = emulator.dispatch(request)
        payload = b"" if self.command == "HEAD" else response.encoded_body()
        self.send_response(response.status)
        headers = response.headers
        if response.status not in (204, 304):
            if "content-type" not in headers and response.body is not None:
                headers["Content-Type"] = ("application/json; charset=utf-8"
                                           if isinstance(response.body, (dict, list))
                                           else "text/plain; charset=utf-8")
            headers["Content-Length"] = str(len(payload))
        for key, value in headers.items():
            self.send_header(key, value)
        self.end_headers()
        if payload and response.status not in (204, 304):
            self.wfile.write(payload)

    do_GET = do_POST = do_PATCH = do_PUT = do_DELETE = do_HEAD = do_OPTIONS = _handle


class _TLSServer(ThreadingHTTPServer):
    daemon_threads = True
    block_on_close = False
    allow_reuse_address = True

    def __init__(self, address: tuple[str, int], emulator: Emulator, context: ssl.SSLContext):
        self.address_family = socket.AF_INET6 if ":" in address[0] else socket.AF_INET
        self.emulator = emulator
        self.context = context
        self.connections: set[ssl.SSLSocket] = set()
        self.connections_lock = threading.Lock()
        super().__init__(address, _Handler)

    def server_bind(self) -> None:
        # HTTPServer.server_bind resolves the host name (getfqdn), which can stall; the name is not needed.
        self.socket.bind(self.server_address)
        self.server_address = self.socket.getsockname()
        self.server_name, self.server_port = self.server_address[0], self.server_address[1]

    def finish_request(self, request: socket.socket, client_address: Any) -> None:
        # The TLS handshake runs here, in the connection's own thread, so a slow or silent client cannot
        # hold up the accept loop.
        request.settimeout(_Handler.timeout)
        request.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        try:
            connection = self.context.wrap_socket(request, server_side=True)
        except (ssl.SSLError, OSError):
            return
        with self.connections_lock:
            self.connections.add(connection)
        try:
            self.RequestHandlerClass(connection, client_address, self)
        except (ssl.SSLError, ConnectionError, TimeoutError, OSError):
            pass
        finally:
            with self.connections_lock:
                self.connections.discard(connection)
            try:
                connection.close()
            except OSError:
                pass

    def close_connections(self) -> None:
        with self.connections_lock:
            connections = list(self.connections)
        for connection in connections:
            try:
                connection.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass

    def handle_error(self, request: Any, client_address: Any) -> None:
        LOG.debug("connection from %s failed", client_address, exc_info=True)


def _optional_module(name: str):
    """Import a sibling module if it exists; a module that exists but fails to import is a real error."""
    if importlib.util.find_spec(f"{__package__}.{name}") is None:
        return None
    return importlib.import_module(f"{__package__}.{name}")


class Emulator:
    """The whole emulator: HTTPS origin (tokens, Graph, Exchange, control API) and SMTP submission.

    ``seed`` is None (the bundled sample tenants), a path to a YAML/JSON seed file, or a seed document.
    ``https_port=0`` / ``smtp_port=0`` pick free ports; ``smtp_port=None`` runs no SMTP server.
    """

    def __init__(self, seed: str | Path | dict[str, Any] | None = None, host: str = "127.0.0.1",
                 https_port: int = 0, smtp_port: int | None = 0, *, latency_ms: int = 0,
                 state_dir: str | Path | None = None, behaviour: dict[str, Any] | None = None,
                 generate: int = 0, log_size: int = DEFAULT_LOG_SIZE):
        self.host = host
        self.https_port = https_port
        self.smtp_port = smtp_port
        self.smtp_host = host
        self.latency_ms = latency_ms
        self.behaviour_overrides = dict(behaviour or {})
        self.generate = generate
        self._seed_document = copy.deepcopy(seed) if isinstance(seed, dict) else _load_seed(seed)
        self._own_state_dir = state_dir is None
        self.state_dir = Path(state_dir) if state_dir else Path(tempfile.mkdtemp(prefix="m365-emulator-"))
        self.messages: list[Any] = []
        self.faults: list[Fault] = []
        self.faults_lock = threading.Lock()
        self._log: collections.deque[LogEntry] = collections.deque(maxlen=log_size)
        self._log_lock = threading.Lock()
        self._seq = itertools.count(1)
        self.ca: certs.CertificateAuthority | None = None
        self.app_certificates: dict[str, certs.AppCertificate] = {}
        self._server: _TLSServer | None = None
        self._thread: threading.Thread | None = None
        self._smtp: Any = None
        self.routes: list[Route] = []
        from .tokens import TokenIssuer
        self.tokens = TokenIssuer()
        self.store: TenantStore = self.build_store(self._seed_document)

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
        self.routes = self._collect_routes()
        self._server = _TLSServer((self.host, self.https_port), self, self.ssl_context())
        self.https_port = self._server.server_address[1]
        self._thread = threading.Thread(target=self._server.serve_forever, kwargs={"poll_interval": 0.02},
                                        name="m365-emulator-https", daemon=True)
        self._thread.start()
        smtp = _optional_module("smtp")
        if smtp is not None and self.smtp_port is not None:
            self._smtp = smtp.SubmissionServer(self, self.smtp_host, self.smtp_port)
            self._smtp.start()
            self.smtp_port = self._smtp.port
        return self

    def stop(self) -> None:
        if self._smtp is not None:
            self._smtp.stop()
            self._smtp = None
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

    def _collect_routes(self) -> list[Route]:
        from . import control, graph, tokens
        routes: list[Route] = []
        routes += control.routes(self)
        routes += tokens.routes(self)
        exchange = _optional_module("exchange")
        if exchange is not None:
            routes += exchange.routes(self)
        # Graph last: it ends with a catch-all that answers unknown Graph paths the way Graph does.
        routes += graph.routes(self)
        return routes

    # -- request log -----------------------------------------------------------------------------------
    @property
    def request_log(self) -> list[LogEntry]:
        with self._log_lock:
            return list(self._log)

    def requests_since(self, seq: int = 0) -> list[LogEntry]:
        with self._log_lock:
            return [entry for entry in self._log if entry["seq"] > seq]

    def clear_request_log(self) -> None:
        with self._log_lock:
            self._log.clear()

    # -- faults ----------------------------------------------------------------------------------------
    def add_fault(self, spec: dict[str, Any]) -> Fault:
        fault = Fault(spec)
        with self.faults_lock:
            self.faults.append(fault)
        return fault

    def clear_faults(self) -> None:
        with self.faults_lock:
            self.faults.clear()

    def _take_fault(self, request: Request, cmdlet: str | None) -> Fault | None:
        with self.faults_lock:
            for fault in self.faults:
                if fault.matches(request, cmdlet):
                    fault.hits += 1
                    if fault.remaining is not None:
                        fault.remaining -= 1
                        if fault.remaining <= 0:
                            self.faults.remove(fault)
                    return fault
        return None

    # -- dispatch --------------------------------------------------------------------------------------
    def dispatch(self, request: Request, parent: int | None = None) -> Response:
        """Answer one request (an HTTP request, or an item of a ``$batch``): faults, routing, logging."""
        control = request.path.startswith(CONTROL_PREFIX)
        entry = request.log = LogEntry(
            seq=next(self._seq), time=utc_now_iso(milliseconds=True), method=request.method,
            path=request.path, tenant=None, cmdlet=_cmdlet_hint(request), status=None, wrote=False,
            client_id=None, fault=False, batch=parent,
        )
        fault = None if control else self._take_fault(request, entry["cmdlet"])
        if fault is not None:
            entry["fault"] = True
            response = fault.response(request)
        else:
            response = self._route(request)
        if GRAPH_PATH.match(request.path):
            response.headers["request-id"] = request.request_id
            response.headers["client-request-id"] = request.client_request_id
        entry["status"] = response.status
        if entry.get("client_id") is None:
            entry["client_id"] = _unverified_client_id(request)
        if not control:
            with self._log_lock:
                self._log.append(entry)
        return response

    def _route(self, request: Request) -> Response:
        path_matched = False
        fallback = None
        try:
            for method, pattern, handler in self.routes:
                match = pattern.fullmatch(request.path)
                if match is None:
                    continue
                if method == "*":
                    # Catch-alls answer only paths no specific route knows.
                    fallback = fallback or (handler, match)
                elif method == request.method:
                    return handler(request, match)
                else:
                    path_matched = True
            if path_matched:
                return error_response(request, 405, "Request_BadRequest",
                                      "Specified HTTP method is not allowed for the request uri.")
            if fallback is not None:
                return fallback[0](request, fallback[1])
            return error_response(request, 404, "NotFound", f"No resource at {request.path}.")
        except HttpError as exc:
            return exc.response
        except Exception:  # noqa: BLE001 - a bug in a handler must answer 500, not kill the connection
            LOG.exception("unhandled error answering %s %s", request.method, request.path)
            return error_response(request, 500, "InternalServerError",
                                  "The emulator failed to answer this request; see its log.")

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
                        "secret": app.secrets[0] if app.secrets else None,
                        "certificate": issued.info() if issued else None,
                        "graph_permissions": list(app.graph_permissions),
                        "exchange_permissions": list(app.exchange_permissions),
                        "directory_roles": list(app.directory_roles),
                    })
                tenants.append({"name": tenant.name, "id": tenant.id, "domains": list(tenant.domains),
                                "apps": apps})
        return {
            "base_url": self.base_url,
            "authority_url": self.base_url,
            "graph_url": self.base_url,
            "exchange_url": self.base_url,
            "control_url": f"{self.base_url}/_emulator",
            "ca_path": self.ca_path,
            "state_dir": str(self.state_dir),
            "smtp_host": self.smtp_host,
            "smtp_port": self.smtp_port if self._smtp is not None else None,
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


def _cmdlet_hint(request: Request) -> str | None:
    """The Exchange cmdlet a request runs, known before routing so that faults can target it."""
    name = request.headers.get("x-cmdletname")
    if name:
        return name
    if request.method == "POST" and request.path.endswith("/InvokeCommand") and request.body:
        try:
            data = json.loads(request.body)
            return data["CmdletInput"]["CmdletName"]
        except (ValueError, KeyError, TypeError):
            return None
    return None


def _unverified_client_id(request: Request) -> str | None:
    """Who sent the request, for the log only (authorization is ``tokens.authorize``'s job)."""
    token = request.bearer_token()
    if not token:
        return None
    try:
        return jwt.decode(token, options={"verify_signature": False}).get("appid")
    except jwt.PyJWTError:
        return None
