"""Microsoft Graph (v1.0 and beta): what the collection reads and writes."""

from .responses import GraphService

__all__ = ["GraphService"]
