"""The errors the SDK raises on purpose, and the refusal text a gated tool hands to a model.

ApprovalError(status, code, message)   every error raised here on purpose (409 `conflict`:
│                                      the toolCallId was already used for another call)
├── ApprovalUnavailable                the bot cannot be reached (network error, 502/503/504)
├── ApprovalInvalid(path)              422 `invalid`: the bot refused a field; `.path` names it
├── ApprovalMismatch                   the bot answered with the record of another call
├── ApprovalTimeout                    still pending when the caller's timeout ran out
└── ApprovalRejected                   `requires_approval`: the call was not approved
"""

from __future__ import annotations

from collections.abc import Sequence

from bot.models import Action, Approval, Decision

__all__ = [
    "ApprovalError",
    "ApprovalInvalid",
    "ApprovalMismatch",
    "ApprovalRejected",
    "ApprovalTimeout",
    "ApprovalUnavailable",
    "refusal",
]


class ApprovalError(Exception):
    """A failure of the approval bot or of the way it was asked; `code` is the wire error code."""

    def __init__(self, status: int | None, code: str, message: str) -> None:
        super().__init__(f"{code} (HTTP {status}): {message}" if status else message)
        self.status = status
        self.code = code
        self.message = message


class ApprovalUnavailable(ApprovalError):
    """The bot could not be reached, or answered that it cannot serve right now."""


class ApprovalInvalid(ApprovalError):
    """The bot refused a request field (422): a request may make the policy stricter, never looser.

    `.path` is the field at fault as the bot names it (`channel`, `onTimeout`, `args.version`),
    or None from a bot that does not say.
    """

    def __init__(self, status: int, code: str, message: str, path: str | None) -> None:
        if path and not message.startswith(f"{path}:"):
            message = f"{path}: {message}"
        super().__init__(status, code, message)
        self.path = path


class ApprovalMismatch(ApprovalError):
    """The bot answered with the record of another call: its decision is not this call's.

    An approval is for one call. A bot that answers a reused `toolCallId` with the record of
    another tool or other arguments (an old bot, or a compromised one) must never let this
    call run on a decision nobody made about it. `.approval` is the record answered;
    `.differences` says what differs, without the argument values.
    """

    def __init__(self, approval: Approval, tool_name: str, differences: Sequence[str]) -> None:
        super().__init__(
            None,
            "mismatch",
            f"the approval bot answered {tool_name} with the record of another call "
            f"(approval {approval.id!r:.80}: {'; '.join(differences)}); its decision is not "
            f"for this call, so {tool_name} must not run on it",
        )
        self.approval = approval
        self.differences = tuple(differences)


class ApprovalTimeout(ApprovalError):
    """Nobody decided before the caller's timeout; `.approval` is the still-pending record."""

    def __init__(self, approval: Approval, waited: float) -> None:
        super().__init__(
            None,
            "timeout",
            f"approval {approval.id} ({approval.tool_name}) is still pending after {waited:g}s",
        )
        self.approval = approval


class ApprovalRejected(ApprovalError):
    """The call was rejected, sent back with feedback, expired or cancelled; see `.decision`."""

    def __init__(self, decision: Decision, tool_name: str | None = None) -> None:
        what = tool_name or "the tool call"
        who = decision.decided_by_name or decision.decided_by
        if decision.action is Action.FEEDBACK:
            text = f"{what} was sent back by {who} with feedback"
        elif decision.action is Action.TIMEOUT:
            text = f"{what} was not approved in time"
        elif decision.action is Action.CANCEL:
            text = f"{what} was cancelled by {who}"
        else:
            text = f"{what} was rejected by {who}"
        super().__init__(
            None, "rejected", f"{text}: {decision.comment}" if decision.comment else text
        )
        self.decision = decision
        self.tool_name = tool_name
        #: the same text `on_reject="message"` returns, ready to hand back to the model
        self.refusal = refusal(decision, tool_name or "unnamed")


def refusal(decision: Decision, tool_name: str) -> str:
    """What the model is told instead of the result when `decision` did not approve the call."""
    if decision.action is Action.FEEDBACK:
        text = f"The user did not run this tool call ({tool_name}) and gave feedback instead"
    elif decision.action is Action.TIMEOUT:
        text = f"Nobody approved this tool call ({tool_name}) in time, so it did not run"
    elif decision.action is Action.CANCEL:
        text = f"This tool call ({tool_name}) was cancelled and did not run"
    else:
        text = f"The user rejected this tool call ({tool_name})"
    return f"{text}: {decision.comment}" if decision.comment else f"{text}."
