"""Errors of the Slack emulator.

DevSlackError            base of everything raised here
├── ApiFailure           a Web API call Slack would refuse; carries Slack's error code
└── InteractionError     a payload cannot be built from the workspace (no such button, view…)
"""

from __future__ import annotations

from typing import Any

__all__ = ["ApiFailure", "DeliveryFailed", "DevSlackError", "InteractionError"]


class DevSlackError(Exception):
    """Base of every error raised by the emulator."""


class ApiFailure(DevSlackError):
    """A refused Web API call, answered as ``{"ok": false, "error": code, **extra}``."""

    def __init__(self, code: str, **extra: Any) -> None:
        super().__init__(code)
        self.code = code
        self.extra = extra

    def to_response(self) -> dict[str, Any]:
        """The JSON body Slack answers for this failure."""
        return {"ok": False, "error": self.code, **self.extra}


class InteractionError(DevSlackError, LookupError):
    """An interaction names something the workspace does not hold."""


class DeliveryFailed(DevSlackError):
    """The bot's URL did not answer: connection refused, or no answer within the timeout.

    ``reason`` is what Slack would name the failure when it retries an event
    (``http_timeout``, ``connection_failed``; ``timeout`` over Socket Mode), ``None`` when it
    would not retry."""

    def __init__(self, message: str, *, reason: str | None = None) -> None:
        super().__init__(message)
        self.reason = reason
