"""m365_emulator: a local, stateful stand-in for Entra ID tokens, Microsoft Graph, the Exchange Online admin
API and SMTP submission, for tests and demos of the m365ops.smtp_auth collection."""

from .server import Emulator

__all__ = ["Emulator"]
__version__ = "0.1.0"
