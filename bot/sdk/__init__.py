"""The agent-facing client: ask a human before a tool runs, and wait for the answer.

Imports nothing server-side: aiohttp, pydantic, the standard library and the wire models.

    ApprovalError(status, code, message)   every error raised here on purpose (409 `conflict`:
    │                                      the toolCallId was already used for another call)
    ├── ApprovalUnavailable                the bot cannot be reached (network error, 502/503/504)
    ├── ApprovalInvalid(path)              422 `invalid`: the bot refused a field; `.path` names it
    ├── ApprovalMismatch                   the bot answered with the record of another call
    ├── ApprovalTimeout                    still pending when the caller's timeout ran out
    └── ApprovalRejected                   `requires_approval`: the call was not approved

`request` always sends a `toolCallId`, so a resubmission resumes the same approval: its waits
reconnect after network errors and restarts of the bot (capped exponential backoff with jitter)
until the caller's timeout, and resubmit once when the bot no longer knows the approval.
Every record the bot answers about a call must be of that call (tool, arguments, toolCallId):
anything else raises `ApprovalMismatch`, so no tool runs on a decision about another call.

One concept per module: `errors` (the tree above and the refusal text), `wire` (request fields
and the JSON both ways), `client` (`ApprovalClient`), `sync` (`SyncApprovalClient`), `gate`
(`requires_approval`) and `schema` (the `argsSchema` a gate or an adapter sends, from a
signature or a framework's tool schema). Import from `bot.sdk`: only the names below are public.
"""

from __future__ import annotations

from bot.models import Action, Approval, Decision, Preview, Priority, Requester, Status
from bot.sdk.client import ApprovalClient
from bot.sdk.errors import (
    ApprovalError,
    ApprovalInvalid,
    ApprovalMismatch,
    ApprovalRejected,
    ApprovalTimeout,
    ApprovalUnavailable,
)
from bot.sdk.gate import requires_approval
from bot.sdk.sync import SyncApprovalClient

__all__ = [
    "Action",
    "Approval",
    "ApprovalClient",
    "ApprovalError",
    "ApprovalInvalid",
    "ApprovalMismatch",
    "ApprovalRejected",
    "ApprovalTimeout",
    "ApprovalUnavailable",
    "Decision",
    "Preview",
    "Priority",
    "Requester",
    "Status",
    "SyncApprovalClient",
    "requires_approval",
]
