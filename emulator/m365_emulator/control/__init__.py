"""The control API: how tests inspect and steer the emulator (``/_emulator/...``)."""

from .responses import ControlService

__all__ = ["ControlService"]
