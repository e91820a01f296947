"""Exchange Online: the admin API's InvokeCommand endpoint and the cmdlets behind it."""

from .responses import ExchangeService

__all__ = ["ExchangeService"]
