"""Answering one request: routing, fault injection, added latency and the request log, for every service."""

from __future__ import annotations

import logging
import time
from typing import Callable

from .faults import Fault, Faults
from .http import HttpError, LogEntry, Request, Response, plain_error, utc_now_iso
from .requestlog import RequestLog
from .service import Route, Router, Service

LOG = logging.getLogger("m365_emulator")


class Dispatcher:
    """``identify(request)`` names the client of a request for the log when no handler did (from its token);
    ``latency_ms()`` is the delay added to each request of a service that is not internal."""

    def __init__(self, services: list[Service], faults: Faults, log: RequestLog,
                 identify: Callable[[Request], str | None], latency_ms: Callable[[], int]):
        self.router = Router(services)
        self.faults = faults
        self.log = log
        self.identify = identify
        self.latency_ms = latency_ms

    def dispatch(self, request: Request, parent: int | None = None, delay: bool = False) -> Response:
        """Answer one request (an HTTP request, or an item of a ``$batch`` when ``parent`` is its seq)."""
        route = self.router.resolve(request)
        service = route.service
        internal = service is not None and service.internal
        if delay and not internal and self.latency_ms() > 0:
            time.sleep(self.latency_ms() / 1000)
        entry = request.log = LogEntry(
            seq=self.log.next_seq(), time=utc_now_iso(milliseconds=True), method=request.method,
            path=request.path, tenant=None, cmdlet=service.operation(request) if service else None, status=None,
            wrote=False, client_id=None, fault=False, batch=parent,
        )
        fault = None if internal else self.faults.take(request, entry["cmdlet"])
        if fault is not None:
            entry["fault"] = True
            response = self._fault_reply(request, service, fault)
        else:
            response = self._answer(request, route)
        if service is not None:
            service.finish(request, response)
        entry["status"] = response.status
        if entry.get("client_id") is None:
            entry["client_id"] = self.identify(request)
        if not internal:
            self.log.record(entry)
        return response

    @staticmethod
    def _fault_reply(request: Request, service: Service | None, fault: Fault) -> Response:
        headers = fault.reply_headers()
        if fault.body is not None:
            return Response(fault.status, fault.body, headers)
        code, message = fault.reply_text()
        if service is None:
            return plain_error(fault.status, code, message, headers)
        return service.fault(request, fault.status, code, message, headers)

    @staticmethod
    def _answer(request: Request, route: Route) -> Response:
        service = route.service
        if service is None:
            return plain_error(404, "NotFound", f"No resource at {request.path}.")
        if route.status == 405:
            return service.error(request, 405, "Request_BadRequest",
                                 "Specified HTTP method is not allowed for the request uri.")
        try:
            service.admit(request)
            return route.handler(request, **route.arguments)
        except HttpError as exc:
            return exc.response
        except Exception:  # noqa: BLE001 - a bug in a handler must answer 500, not kill the connection
            LOG.exception("unhandled error answering %s %s", request.method, request.path)
            return service.error(request, 500, "InternalServerError",
                                 "The emulator failed to answer this request; see its log.")
