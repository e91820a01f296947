"""What a service is to the core, and how a request finds its handler.

A service lists its URL rules (its ``urls.py``) and says how its errors look. The core routes with werkzeug's
``Map``; a service's fallback rules answer only paths that no rule of any service knows (Graph's "Resource not
found for the segment").
"""

from __future__ import annotations

import json
import threading
from dataclasses import dataclass, field
from typing import Any, Callable

from werkzeug.exceptions import MethodNotAllowed, NotFound
from werkzeug.routing import Map, Rule

from .http import HttpError, Request, Response, plain_error

Handler = Callable[..., Response]


class Service:
    """One Microsoft 365 service of the emulator. ``emulator`` is the emulator that assembles it: handlers
    reach the tenant store through ``emulator.store`` at request time, since a reset replaces it."""

    name = ""
    # Internal services (the control API) are never logged, delayed or faulted.
    internal = False
    # (methods, werkzeug rule, name of the handler method); methods "*" is any method. A handler is called as
    # ``handler(request, **rule_arguments)``.
    urls: tuple[tuple[str, str, str], ...] = ()
    # Rules that answer only paths no rule of any service knows.
    fallback_urls: tuple[tuple[str, str, str], ...] = ()

    def __init__(self, emulator: Any):
        self.emulator = emulator

    @classmethod
    def rules(cls) -> list[Rule]:
        """The werkzeug rules of this kind of service; each endpoint is (service name, handler method name)."""
        return [cls._rule(*url) for url in cls.urls]

    @classmethod
    def fallback_rules(cls) -> list[Rule]:
        return [cls._rule(*url) for url in cls.fallback_urls]

    @classmethod
    def _rule(cls, methods: str, path: str, handler: str) -> Rule:
        return Rule(path, endpoint=(cls.name, handler), methods=None if methods == "*" else methods.split())

    def error(self, request: Request, status: int, code: str, message: str,
              headers: dict[str, str] | None = None) -> Response:
        """An error in this service's shape."""
        return plain_error(status, code, message, headers)

    def fault(self, request: Request, status: int, code: str, message: str, headers: dict[str, str]) -> Response:
        """The reply to an injected fault (by default an ordinary error of this service)."""
        return self.error(request, status, code, message, headers)

    def admit(self, request: Request) -> None:
        """Raise ``HttpError`` to refuse a request before its handler runs (the control API: loopback only)."""

    def operation(self, request: Request) -> str | None:
        """The operation a request runs, known before it is routed (faults may target it)."""
        return None

    def finish(self, request: Request, response: Response) -> None:
        """Last touches to every reply of this service (headers every reply carries)."""

    def json_body(self, request: Request) -> Any:
        if not request.body.strip():
            raise HttpError(self.error(request, 400, "BadRequest", "A request body is required."))
        try:
            return json.loads(request.body)
        except ValueError as exc:
            raise HttpError(self.error(request, 400, "BadRequest",
                                       f"The request body is not valid JSON: {exc}.")) from None


@dataclass
class Route:
    """Where a request goes: the owning service (None: no service knows the path) and the handler, or the
    status (404, 405) that answers instead."""

    service: Service | None
    handler: Handler | None = None
    arguments: dict[str, Any] = field(default_factory=dict)
    status: int = 200


# werkzeug compiles each rule (a few milliseconds apiece): one pair of maps per kind of service set, shared by
# every emulator made of it. Maps are read-only once built.
_MAPS: dict[tuple[type[Service], ...], tuple[Map, Map]] = {}
_MAPS_LOCK = threading.Lock()


def _maps(kinds: tuple[type[Service], ...]) -> tuple[Map, Map]:
    with _MAPS_LOCK:
        if kinds not in _MAPS:
            rules, fallbacks = Map(strict_slashes=False, merge_slashes=False), Map(strict_slashes=False,
                                                                                  merge_slashes=False)
            for kind in kinds:
                for rule in kind.rules():
                    rules.add(rule)
                for rule in kind.fallback_rules():
                    fallbacks.add(rule)
            _MAPS[kinds] = (rules, fallbacks)
        return _MAPS[kinds]


class Router:
    def __init__(self, services: list[Service]):
        self.services = {service.name: service for service in services}
        self.rules, self.fallbacks = _maps(tuple(type(service) for service in services))

    def _target(self, endpoint: tuple[str, str]) -> tuple[Service, Handler]:
        service = self.services[endpoint[0]]
        return service, getattr(service, endpoint[1])

    def resolve(self, request: Request) -> Route:
        adapter = self.rules.bind("emulator")
        try:
            endpoint, arguments = adapter.match(request.path, request.method)
            return Route(*self._target(endpoint), arguments)
        except MethodNotAllowed as exc:
            endpoint, _arguments = adapter.match(request.path, (exc.valid_methods or ["GET"])[0])
            return Route(self.services[endpoint[0]], status=405)
        except NotFound:
            pass
        try:
            endpoint, arguments = self.fallbacks.bind("emulator").match(request.path, request.method)
            return Route(*self._target(endpoint), arguments)
        except (NotFound, MethodNotAllowed):
            return Route(None, status=404)
