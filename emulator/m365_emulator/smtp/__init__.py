"""SMTP client submission: the AUTH decisions from the tenant state, and the aiosmtpd server that speaks them."""

from .server import SmtpService, SubmissionServer

__all__ = ["SmtpService", "SubmissionServer"]
