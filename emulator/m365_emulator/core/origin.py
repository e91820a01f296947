"""The HTTPS origin: werkzeug's threaded WSGI server, with TLS set up per connection in that connection's thread
(so that a slow or silent client cannot hold up the accept loop) and the live connections tracked (so that
``stop`` closes idle keep-alive connections at once)."""

from __future__ import annotations

import io
import logging
import socket
import ssl
import threading
from typing import Any, Callable

from werkzeug.serving import ThreadedWSGIServer, WSGIRequestHandler

from .http import Request, Response

LOG = logging.getLogger("m365_emulator")
SERVER_NAME = "m365-emulator"
# Idle keep-alive connections are closed after this long, so their threads do not linger.
IDLE_TIMEOUT = 30


class _ThisRequest(io.RawIOBase):
    """The connection's input as one request sees it: everything until the reply starts, then nothing.

    werkzeug closes every connection after one request, because http.server cannot skip a request body the
    application left unread, and it empties the socket after each reply. The emulator reads every body in full
    before it answers (``HttpsServer._wsgi``), so it keeps connections alive: that emptying must stop where this
    request ends, or it would swallow the next request on the connection.
    """

    def __init__(self, stream: Any):
        super().__init__()
        self.stream = stream
        self.ended = False

    def readable(self) -> bool:
        return True

    def read(self, size: int = -1) -> bytes:
        return b"" if self.ended else self.stream.read(size)

    def readline(self, size: int = -1) -> bytes:
        return b"" if self.ended else self.stream.readline(size)

    def readinto(self, buffer: Any) -> int:
        data = self.read(len(buffer))
        buffer[:len(data)] = data
        return len(data)


class _Handler(WSGIRequestHandler):
    protocol_version = "HTTP/1.1"
    timeout = IDLE_TIMEOUT
    # Buffered writes send status line, headers and body together (flushed after each request).
    wbufsize = -1

    def version_string(self) -> str:
        return SERVER_NAME

    def run_wsgi(self) -> None:
        connection_input = self.rfile
        self.rfile = _ThisRequest(connection_input)
        try:
            super().run_wsgi()
        finally:
            self.rfile = connection_input

    def send_response(self, code: int, message: str | None = None) -> None:
        # The reply starts: the request (body included) has been read.
        if isinstance(self.rfile, _ThisRequest):
            self.rfile.ended = True
        super().send_response(code, message)

    def send_header(self, keyword: str, value: str) -> None:
        # Keep-alive (see _ThisRequest): a connection closes only when the client asks for it or speaks HTTP/1.0.
        if keyword.lower() == "connection" and value.lower() == "close" and not self.close_connection:
            return
        super().send_header(keyword, value)

    def log(self, type: str, message: str, *args: Any) -> None:  # noqa: A002 - signature of the base class
        LOG.debug("%s " + message, self.address_string(), *args)


class HttpsServer(ThreadedWSGIServer):
    block_on_close = False

    def __init__(self, host: str, port: int, context: ssl.SSLContext, answer: Callable[[Request], Response]):
        family = socket.AF_INET6 if ":" in host else socket.AF_INET
        # Bound and listening here, so that a busy port is an OSError for the caller (werkzeug would exit).
        listener = socket.create_server((host, port), family=family)
        try:
            super().__init__(host, listener.getsockname()[1], self._wsgi, handler=_Handler, fd=listener.fileno())
        finally:
            listener.close()
        self.answer = answer
        # Set after the base class, which would otherwise wrap the listening socket: requests are https.
        self.ssl_context = context
        self._server_version = SERVER_NAME
        self.connections: set[ssl.SSLSocket] = set()
        self.connections_lock = threading.Lock()
        # TLS connections accepted so far (keep-alive carries many requests on one).
        self.accepted = 0

    def _wsgi(self, environ: dict[str, Any], start_response: Callable[..., Any]) -> Any:
        request = Request(environ)
        # Read the whole body before answering, whatever the handler does: the next request on the connection
        # starts right after it.
        request.get_data(cache=True)
        return self.answer(request).to_wsgi()(environ, start_response)

    def finish_request(self, request: Any, client_address: Any) -> None:
        request.settimeout(IDLE_TIMEOUT)
        request.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        try:
            connection = self.ssl_context.wrap_socket(request, server_side=True)
        except (ssl.SSLError, OSError):
            return
        with self.connections_lock:
            self.connections.add(connection)
            self.accepted += 1
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

    def log(self, type: str, message: str, *args: Any) -> None:  # noqa: A002 - signature of the base class
        LOG.debug(message, *args)
