"""Requests and replies as the services see them. werkzeug parses requests and writes replies; what is kept
here is what every Microsoft 365 API shares: a request id, the request-log entry a handler fills in, the
bearer token, and the OData error envelope (``{"error": {"code", "message", "innerError"}}``).
"""

from __future__ import annotations

import datetime
import json
import uuid
from typing import Any

from werkzeug.datastructures import Headers
from werkzeug.test import EnvironBuilder
from werkzeug.wrappers import Request as WerkzeugRequest
from werkzeug.wrappers import Response as WerkzeugResponse

JSON_CONTENT_TYPE = "application/json; charset=utf-8"
TEXT_CONTENT_TYPE = "text/plain; charset=utf-8"


def utc_now_iso(milliseconds: bool = False) -> str:
    now = datetime.datetime.now(datetime.timezone.utc)
    if milliseconds:
        return now.strftime("%Y-%m-%dT%H:%M:%S.") + f"{now.microsecond // 1000:03d}Z"
    return now.strftime("%Y-%m-%dT%H:%M:%S")


class LogEntry(dict):
    """A request-log entry; handlers may set fields as keys or as attributes (``request.log.wrote = True``)."""

    def __getattr__(self, name: str) -> Any:
        try:
            return self[name]
        except KeyError:
            raise AttributeError(name) from None

    def __setattr__(self, name: str, value: Any) -> None:
        self[name] = value


class Request(WerkzeugRequest):
    """One HTTP request, or one item of a Graph ``$batch``."""

    def __init__(self, environ: dict[str, Any], populate_request: bool = True, shallow: bool = False):
        super().__init__(environ, populate_request, shallow)
        self.request_id = str(uuid.uuid4())
        self.log: LogEntry = LogEntry()

    @property
    def origin(self) -> str:
        """``https://host:port`` as the client addressed it: links in replies point back there."""
        return self.host_url.rstrip("/")

    @property
    def body(self) -> bytes:
        return self.get_data(cache=True)

    @property
    def client_request_id(self) -> str:
        return self.headers.get("client-request-id") or self.request_id

    def bearer_token(self) -> str | None:
        value = self.headers.get("authorization") or ""
        scheme, _, token = value.partition(" ")
        return token.strip() if scheme.lower() == "bearer" and token.strip() else None


def make_request(method: str, path: str, query: dict[str, str] | str | None = None,
                 headers: dict[str, str] | None = None, body: bytes = b"", base_url: str = "",
                 remote_addr: str = "127.0.0.1") -> Request:
    """A request built in process (a ``$batch`` item, a test); ``path`` may still be percent-encoded."""
    builder = EnvironBuilder(path=path, base_url=base_url or None, method=method.upper(), query_string=query,
                             headers=list((headers or {}).items()), data=body or b"",
                             environ_base={"REMOTE_ADDR": remote_addr})
    try:
        return Request(builder.get_environ())
    finally:
        builder.close()


class _WireResponse(WerkzeugResponse):
    # No Content-Type unless the reply has a body.
    default_mimetype = None


class Response:
    """What a handler answers: ``status``, ``body`` (dict/list sent as JSON, str/bytes as is, or None) and
    ``headers``. A plain value, so that ``$batch`` can read an item's reply without going through HTTP."""

    def __init__(self, status: int, body: Any = None, headers: dict[str, str] | Headers | None = None):
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
        """The body as JSON data; None when it is not JSON."""
        if self.body is None or isinstance(self.body, (dict, list)):
            return self.body
        try:
            return json.loads(self.encoded_body() or b"null")
        except ValueError:
            return None

    def to_wsgi(self) -> WerkzeugResponse:
        headers = Headers(self.headers)
        if self.body is not None and "content-type" not in headers:
            headers["Content-Type"] = JSON_CONTENT_TYPE if isinstance(self.body, (dict, list)) else TEXT_CONTENT_TYPE
        return _WireResponse(self.encoded_body(), status=self.status, headers=headers)


class HttpError(Exception):
    """Raise from a handler to answer with ``response``."""

    def __init__(self, response: Response):
        super().__init__(f"HTTP {response.status}")
        self.response = response


def odata_error(request: Request, status: int, code: str, message: str,
                headers: dict[str, str] | None = None) -> Response:
    """The error envelope of Microsoft's OData APIs (Graph's shape), with the innerError they all carry."""
    body = {"error": {"code": code, "message": message, "innerError": {
        "date": utc_now_iso(),
        "request-id": request.request_id,
        "client-request-id": request.client_request_id,
    }}}
    return Response(status, body, headers)


def plain_error(status: int, code: str, message: str, headers: dict[str, str] | None = None) -> Response:
    """``{"error": {"code", "message"}}``: the emulator's own errors and services without a shape of their own."""
    return Response(status, {"error": {"code": code, "message": message}}, headers)
