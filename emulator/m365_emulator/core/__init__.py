"""The emulator's core: requests and replies, routing, fault injection, latency, the request log and the HTTPS
server. It knows no Microsoft 365 service; services plug in through ``Service``."""

from .dispatch import Dispatcher
from .faults import Fault, Faults
from .http import HttpError, LogEntry, Request, Response, make_request, odata_error, plain_error, utc_now_iso
from .origin import HttpsServer
from .requestlog import DEFAULT_LOG_SIZE, RequestLog
from .service import Route, Router, Service

__all__ = ["DEFAULT_LOG_SIZE", "Dispatcher", "Fault", "Faults", "HttpError", "HttpsServer", "LogEntry", "Request",
           "RequestLog", "Response", "Route", "Router", "Service", "make_request", "odata_error", "plain_error",
           "utc_now_iso"]
