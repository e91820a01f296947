"""The SMTP submission server: aiosmtpd's controller on its own port, with STARTTLS from the emulator's CA."""

from __future__ import annotations

import datetime
import email.utils
from typing import Any, Callable

from aiosmtpd.controller import Controller
from aiosmtpd.smtp import SMTP

from ..core import Service
from .models import FRONTEND, MAX_MESSAGE_SIZE
from .relay import RelayHandler
from .responses import ExchangeSMTP, SubmissionHandler


class _FreePortController(Controller):
    """aiosmtpd's controller, told the port the OS picked when asked for port 0."""

    def _trigger_server(self) -> None:
        # Port 0 asks the OS for a free port; learn which one before aiosmtpd's start-up probe connects to it.
        if self.port == 0 and self.server is not None and self.server.sockets:
            self.port = self.server.sockets[0].getsockname()[1]
        super()._trigger_server()


class _Controller(_FreePortController):
    def __init__(self, handler: SubmissionHandler, host: str, port: int, tls_context: Any, frontend: str):
        super().__init__(handler, hostname=host, port=port, server_hostname=frontend, tls_context=tls_context,
                         authenticator=handler.authenticate_basic, auth_require_tls=True,
                         data_size_limit=MAX_MESSAGE_SIZE, enable_SMTPUTF8=True, decode_data=False)

    def factory(self) -> SMTP:
        # One protocol object per connection, so the greeting carries the time the client connected.
        when = email.utils.format_datetime(datetime.datetime.now(datetime.timezone.utc))
        return ExchangeSMTP(self.handler, ident=f"Microsoft ESMTP MAIL Service ready at {when}", **self.SMTP_kwargs)


class _RelayController(_FreePortController):
    """Port 25 of the MX endpoint: STARTTLS offered, never AUTH."""

    def __init__(self, handler: RelayHandler, host: str, port: int, tls_context: Any, frontend: str):
        super().__init__(handler, hostname=host, port=port, server_hostname=frontend, tls_context=tls_context,
                         data_size_limit=MAX_MESSAGE_SIZE, enable_SMTPUTF8=True, decode_data=False)

    def factory(self) -> SMTP:
        when = email.utils.format_datetime(datetime.datetime.now(datetime.timezone.utc))
        return SMTP(self.handler, ident=f"Microsoft ESMTP MAIL Service ready at {when}", **self.SMTP_kwargs)


class SubmissionServer:
    """SMTP submission for one emulator: ``start()``, ``stop()``, ``port`` (0 picks a free one)."""

    def __init__(self, emulator: Any, host: str = "127.0.0.1", port: int = 0, frontend: str = FRONTEND,
                 tls_context: Any = None, verify: Callable[[str], Any] | None = None):
        self.emulator = emulator
        self.host = host
        self.port = port
        self.frontend = frontend
        self.tls_context = tls_context
        self.handler = SubmissionHandler(emulator, frontend, verify)
        self._controller: _Controller | None = None

    def start(self) -> SubmissionServer:
        if self._controller is not None:
            return self
        context = self.tls_context or self.emulator.ssl_context()
        controller = _Controller(self.handler, self.host, self.port, context, self.frontend)
        controller.start()
        self._controller = controller
        self.port = controller.port
        return self

    def stop(self) -> None:
        if self._controller is not None:
            self._controller.stop()
            self._controller = None

    def __enter__(self) -> SubmissionServer:
        return self.start()

    def __exit__(self, *exc_info: Any) -> None:
        self.stop()


class SmtpService(Service):
    """SMTP submission as one of the emulator's services: no HTTP routes, a port of its own."""

    name = "smtp"

    def __init__(self, emulator: Any):
        super().__init__(emulator)
        self.server: SubmissionServer | None = None
        self.relay: _RelayController | None = None

    def listen_relay(self, address: str, port: int) -> int:
        """Start the MX endpoint on ``address``:``port`` (0 picks a free port); returns the port."""
        if self.relay is None:
            relay = _RelayController(RelayHandler(self.emulator), address, port, self.emulator.ssl_context(),
                                     FRONTEND)
            relay.start()
            self.relay = relay
        return self.relay.port

    def listen(self, address: str, port: int) -> int:
        """Start serving on ``address``:``port`` (0 picks a free port); returns the port."""
        if self.server is None:
            self.server = SubmissionServer(self.emulator, address, port).start()
        return self.server.port

    def close(self) -> None:
        if self.relay is not None:
            self.relay.stop()
            self.relay = None
        if self.server is not None:
            self.server.stop()
            self.server = None
