"""One error tree for the whole bot. Edges translate it once: the API into JSON, Slack into
an ephemeral note or an inline modal error.

    BotError                       500-free base: every subclass knows its wire code
    ├── BadRequest          400    unreadable body or query
    ├── Unauthorized        401    missing or wrong bearer token
    ├── Forbidden           403    right token, wrong power (agent token on /decision)
    │   └── NotAllowed      403    a Slack user who may not decide this approval
    ├── NotFound            404    unknown approval id
    ├── Conflict            409    toolCallId reused with other arguments
    │   ├── AlreadyDecided  409    the approval left `pending` before this decision
    │   ├── StaleVote       409    a vote on arguments that were edited since its voter saw them
    │   └── AlreadyVoted    409    an approver approving again: counted once already
    ├── PayloadTooLarge     413    body over the size limit
    ├── Invalid             422    a field failed validation (carries the field path)
    │   └── InvalidEdit     422    edited arguments do not match `argsSchema`
    └── Unavailable         503    the store or Slack cannot be reached (e.g. a stale lock)
"""

from __future__ import annotations

from typing import TYPE_CHECKING, ClassVar

if TYPE_CHECKING:
    from bot.models import Approval

__all__ = [
    "AlreadyDecided",
    "AlreadyVoted",
    "BadRequest",
    "BotError",
    "Conflict",
    "Forbidden",
    "Invalid",
    "InvalidEdit",
    "NotAllowed",
    "NotFound",
    "PayloadTooLarge",
    "StaleVote",
    "Unauthorized",
    "Unavailable",
]


class BotError(Exception):
    """Base of every error the bot raises on purpose."""

    code: ClassVar[str] = "error"
    status: ClassVar[int] = 400

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message

    def to_wire(self) -> dict[str, object]:
        """The JSON body an API client sees."""
        return {"error": self.code, "message": self.message}


class BadRequest(BotError):
    code = "bad_request"
    status = 400


class Unauthorized(BotError):
    code = "unauthorized"
    status = 401


class Forbidden(BotError):
    code = "forbidden"
    status = 403


class NotAllowed(Forbidden):
    """A person tried a decision the policy does not give them."""


class NotFound(BotError):
    code = "not_found"
    status = 404


class Conflict(BotError):
    code = "conflict"
    status = 409


class AlreadyDecided(Conflict):
    """The compare-and-set lost: somebody decided first. Carries the winning record."""

    def __init__(self, approval: Approval) -> None:
        decision = approval.decision
        who = (decision.decided_by_name or decision.decided_by) if decision else None
        suffix = f" by {who}" if who else ""
        super().__init__(f"approval {approval.id} is already {approval.status.value}{suffix}")
        self.approval = approval


class StaleVote(Conflict):
    """A vote cast on arguments that were edited since: it counts for nothing. Carries the
    record as it stands, so the voter can be shown the current arguments."""

    def __init__(self, approval: Approval) -> None:
        who = f" by {approval.progress.edited_by}" if approval.progress.edited_by else ""
        super().__init__(
            f"the arguments of {approval.tool_name} were edited{who} after you saw them, "
            "so your vote was not counted; review the current arguments"
        )
        self.approval = approval


class AlreadyVoted(Conflict):
    """An approver approving what they approved already: still pending, counted once."""

    def __init__(self, approval: Approval) -> None:
        done, required = len(approval.progress.approved_by), approval.policy.required_approvals
        super().__init__(f"you already approved this ({done} of {required}); it waits for others")
        self.approval = approval


class PayloadTooLarge(BotError):
    code = "payload_too_large"
    status = 413


class Invalid(BotError):
    code = "invalid"
    status = 422

    def __init__(self, message: str, path: str = "") -> None:
        super().__init__(f"{path}: {message}" if path else message)
        self.path = path

    def to_wire(self) -> dict[str, object]:
        return {**super().to_wire(), "path": self.path}


class InvalidEdit(Invalid):
    """Edited arguments that `argsSchema` refuses."""


class Unavailable(BotError):
    code = "unavailable"
    status = 503
