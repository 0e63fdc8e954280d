"""Pure data: the approval record, its decision and the request an agent submits.

Wire names are camelCase (pydantic aliases); Python attributes are snake_case. Nothing here
does I/O.
"""

from __future__ import annotations

import hashlib
import json
import re
import secrets
from collections.abc import Mapping
from datetime import UTC, datetime
from enum import StrEnum
from typing import Annotated, Any, Self

from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    PlainSerializer,
    model_validator,
)
from pydantic.alias_generators import to_camel

from bot.schemas import check_plain_json, compile_schema

__all__ = [
    "EVERY_DECISION",
    "MAX_TIMEOUT_SECONDS",
    "TOOL_NAME",
    "Action",
    "Approval",
    "ApprovalRequest",
    "CancelInput",
    "Decision",
    "DecisionInput",
    "DecisionKind",
    "OnTimeout",
    "Policy",
    "Preview",
    "PreviewKind",
    "Priority",
    "Progress",
    "Requester",
    "SlackRef",
    "Status",
    "args_fingerprint",
    "args_version",
    "format_time",
    "new_approval_id",
    "new_tool_call_id",
    "utcnow",
]

MAX_TIMEOUT_SECONDS = 7 * 24 * 3600
MAX_TEXT = 10_000
#: the most a preview's body may hold, in UTF-8 bytes
MAX_PREVIEW_BYTES = 64 * 1024


class Status(StrEnum):
    """Where an approval stands."""

    #: waiting for a human
    PENDING = "pending"
    #: approved by a human, by the API, or automatically at timeout
    APPROVED = "approved"
    #: rejected, or answered with feedback for the model
    REJECTED = "rejected"
    #: nobody answered in time and `onTimeout` was `reject`
    EXPIRED = "expired"
    #: the agent withdrew the request
    CANCELLED = "cancelled"


class Priority(StrEnum):
    """How loudly the card asks for attention."""

    LOW = "low"
    NORMAL = "normal"
    HIGH = "high"
    CRITICAL = "critical"


class Action(StrEnum):
    """What produced a decision."""

    #: one-click approve with the original arguments
    APPROVE = "approve"
    #: approve with edited arguments
    EDIT = "edit"
    #: reject, optionally with a reason
    REJECT = "reject"
    #: do not run; the comment goes back to the model
    FEEDBACK = "feedback"
    #: decided by the expiry policy
    TIMEOUT = "timeout"
    #: withdrawn by the agent
    CANCEL = "cancel"
    #: Slack refused the card for good, and no fallback channel took it: nobody could decide
    UNDELIVERABLE = "undeliverable"


class DecisionKind(StrEnum):
    """The choices a card may offer (`allowedDecisions`)."""

    APPROVE = "approve"
    EDIT = "edit"
    REJECT = "reject"
    FEEDBACK = "feedback"


#: every `DecisionKind`, in order (iterating the enum itself costs a microsecond a request)
EVERY_DECISION = tuple(DecisionKind)


class PreviewKind(StrEnum):
    """How the card shows a preview's body."""

    #: a unified diff: a code block with its `+`/`-` lines
    DIFF = "diff"
    #: plain text: a code block, shown as written
    TEXT = "text"
    #: Markdown, converted to escaped mrkdwn (headings, lists, code; links as text)
    MARKDOWN = "markdown"


class OnTimeout(StrEnum):
    """What happens when nobody decides in time."""

    REJECT = "reject"
    APPROVE = "approve"
    ESCALATE = "escalate"


def utcnow() -> datetime:
    """The current time, timezone-aware UTC."""
    return datetime.now(UTC)


def format_time(value: datetime) -> str:
    """`2026-11-21T05:30:00Z`: the one timestamp spelling on the wire (cut from `isoformat`,
    a third cheaper than `strftime`: each record answered or audited spells several)."""
    return value.astimezone(UTC).isoformat(timespec="seconds")[:19] + "Z"


def _as_utc(value: datetime) -> datetime:
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


WireTime = Annotated[
    datetime,
    AfterValidator(_as_utc),
    PlainSerializer(format_time, return_type=str, when_used="json"),
]


def new_approval_id() -> str:
    """A fresh `apr_…` id."""
    return "apr_" + secrets.token_hex(10)


def new_tool_call_id() -> str:
    """A fresh `call_…` id for requests that bring none."""
    return "call_" + secrets.token_hex(10)


def args_fingerprint(args: dict[str, Any]) -> str:
    """A stable hash of arguments, to tell a resubmission from a different call."""
    canonical = _CANONICAL.encode(args)
    return hashlib.sha256(canonical.encode("utf-8", "surrogatepass")).hexdigest()


#: the one spelling of a JSON value that `args_fingerprint` hashes
_CANONICAL = json.JSONEncoder(sort_keys=True, separators=(",", ":"), ensure_ascii=False)


def args_version(args: dict[str, Any]) -> str:
    """A short name for one version of an approval's arguments.

    Every vote carries the version its voter saw (button values, modal metadata), so a vote
    cast on arguments that were edited since counts for nothing.
    """
    return args_fingerprint(args)[:16]


def _check_schema(schema: dict[str, Any] | None) -> dict[str, Any] | None:
    if schema is not None:
        compile_schema(schema)  # SchemaRefused (a ValueError) says what cannot be run safely
    return schema


def _check_json(value: dict[str, Any]) -> dict[str, Any]:
    check_plain_json(value)  # no NaN, no lone surrogate, at most 32 levels deep
    return value


def _unique(values: list[DecisionKind]) -> list[DecisionKind]:
    if len(set(values)) != len(values):
        raise ValueError("must not repeat a decision")
    return values


JsonObject = Annotated[dict[str, Any], AfterValidator(_check_json)]
JsonSchema = Annotated[dict[str, Any] | None, AfterValidator(_check_schema)]
Text = Annotated[str, Field(max_length=MAX_TEXT)]
SlackId = Annotated[str, Field(min_length=1, max_length=255)]


class WireModel(BaseModel):
    """Base for every wire shape: camelCase out, either spelling in."""

    model_config = ConfigDict(
        alias_generator=to_camel,
        populate_by_name=True,
        serialize_by_alias=True,
        use_enum_values=False,
    )

    def to_wire(self) -> dict[str, Any]:
        """The JSON-ready dict with camelCase keys."""
        return self.model_dump(mode="json", by_alias=True)

    def wire_json(self) -> str:
        """`to_wire()` as JSON text, serialized in one step (a third of the time of
        `json.dumps(self.to_wire())`, which each decision and its answers used to pay)."""
        return self.model_dump_json(by_alias=True)


class Requester(WireModel):
    """Who is asking: the agent, the Slack user it acts for, and its run."""

    model_config = ConfigDict(extra="allow")

    agent: Annotated[str, Field(max_length=255)] | None = None
    slack_user: Annotated[str, Field(max_length=255)] | None = None
    run_id: Annotated[str, Field(max_length=255)] | None = None

    @model_validator(mode="after")
    def _plain(self) -> Requester:
        """Extra keys are the agent's too: plain JSON, like `args` (a 422, never a 500)."""
        if self.model_extra:
            check_plain_json(self.model_extra)
        return self


def _check_preview_body(value: str) -> str:
    try:
        size = len(value.encode("utf-8"))
    except UnicodeEncodeError:
        raise ValueError(
            "must be valid Unicode: it holds a lone surrogate (like \\ud800)"
        ) from None
    if size > MAX_PREVIEW_BYTES:
        raise ValueError(f"must be at most {MAX_PREVIEW_BYTES:,} bytes of UTF-8, not {size:,}")
    return value


class Preview(WireModel):
    """What the call will change, for the reviewer: a diff, a text or a Markdown document
    (`preview` of a request). Shown on the card, cut to fit, and whole in a paged modal."""

    model_config = ConfigDict(extra="forbid")

    kind: PreviewKind
    body: Annotated[str, Field(strict=True), AfterValidator(_check_preview_body)]


#: what a tool name may be: rules match it as written, so no look-alikes, spaces or controls
TOOL_NAME = re.compile(r"[A-Za-z0-9_.:/-]{1,128}")
#: a channel id (`C…`, `G…`) or a channel name; user, DM and group-DM ids are not channels
_CHANNEL = re.compile(r"[CG][A-Z0-9]{2,254}|#?[a-z0-9][a-z0-9._-]{0,79}")


def _check_tool_name(value: str) -> str:
    if not TOOL_NAME.fullmatch(value):
        raise ValueError(
            "must be 1 to 128 ASCII letters, digits or _ . : / - (no spaces, control, "
            "zero-width or look-alike characters)"
        )
    return value


def _check_channel(value: str) -> str:
    if value[:1] in ("U", "W", "D") or value.startswith("@"):
        raise ValueError(
            "must be a channel, not a person or a direct message: an agent does not pick "
            "its approver"
        )
    if not _CHANNEL.fullmatch(value):
        raise ValueError("must be a channel id (C…, G…) or a channel name (#ops)")
    return value


def _keeps_reject(values: list[DecisionKind]) -> list[DecisionKind]:
    if DecisionKind.REJECT not in values:
        raise ValueError('must include "reject": a reviewer can always say no')
    return values


class ApprovalRequest(WireModel):
    """The body of `POST /v1/approvals`: written by an agent, so trusted with nothing.

    Fields are checked here on their own; `bot.policy` refuses what would loosen the rule
    that matches (an `onTimeout` of approve, a shorter wait before an approval by timeout).
    """

    model_config = ConfigDict(extra="forbid")

    tool_name: Annotated[str, AfterValidator(_check_tool_name)]
    tool_call_id: SlackId | None = None
    args: JsonObject
    args_schema: JsonSchema = None
    prompt: Text | None = None
    channel: Annotated[str, Field(min_length=1), AfterValidator(_check_channel)] | None = None
    thread_ts: Annotated[str, Field(pattern=r"^\d{1,12}\.\d{1,9}$")] | None = None
    priority: Priority | None = None
    requester: Requester = Field(default_factory=Requester)
    #: groups this call with others for "Approve all" / "Reject all" (else `requester.runId`)
    batch_id: Annotated[str, Field(max_length=255)] | None = None
    context: Text | None = None
    preview: Preview | None = None
    timeout_seconds: Annotated[int, Field(ge=1, le=MAX_TIMEOUT_SECONDS, strict=True)] | None = None
    on_timeout: OnTimeout | None = None
    allowed_decisions: (
        Annotated[
            list[DecisionKind],
            Field(min_length=1),
            AfterValidator(_unique),
            AfterValidator(_keeps_reject),
        ]
        | None
    ) = None
    metadata: JsonObject = Field(default_factory=dict)


class SlackRef(WireModel):
    """Where the card lives once posted, or why Slack would not take it."""

    model_config = ConfigDict(frozen=True)

    channel: str | None = None
    ts: str | None = None
    permalink: str | None = None
    #: Slack's error code when it refused the card for good (`channel_not_found`,
    #: `invalid_auth`…), set as soon as known; the card may still land in a fallback channel
    error: str | None = None
    #: the channel a post was last sent to before its `ts` was known: Slack may hold a card
    #: there that the bot never heard back about (kept in the store, never on the wire)
    posting: str | None = Field(default=None, exclude=True)


class Decision(WireModel):
    """How an approval ended: who, what, why, and the arguments to run with."""

    approved: bool
    action: Action
    approved_args: dict[str, Any] | None = None
    decided_by: str
    approvers: list[str] = Field(default_factory=list)
    decided_by_name: str | None = None
    comment: str | None = None
    decided_at: WireTime


class Policy(WireModel):
    """What the routing file decided for this approval when it was submitted."""

    #: the `tools` globs of the rule that matched, or None when none did
    rule: list[str] | None = None
    #: Slack user ids and user group ids who may decide; empty means anyone in the channel
    approvers: list[str] = Field(default_factory=list)
    required_approvals: int = 1
    #: "here", a user group id or a user id to mention on the card
    mention: str | None = None
    #: a channel to re-post the card to, or a user group to mention, at the first expiry
    escalate_to: str | None = None
    #: how `decidedBy` and the audit name the rule (its `name`, else its number from 1)
    rule_name: str | None = None
    #: the longest standing approval ("Approve & allow…") the rule permits, in seconds; null:
    #: none (`bot.grants`)
    allow_standing: int | None = None


class Progress(WireModel):
    """An N-of-M approval on its way: who approved the current arguments so far."""

    model_config = ConfigDict(frozen=True)

    approved_by: list[str] = Field(default_factory=list)
    #: the arguments being approved, when someone edited them (null: the original ones)
    args: dict[str, Any] | None = None
    edited_by: str | None = None
    edited_at: WireTime | None = None
    #: nobody decided by the first expiry, so it was escalated and extended once
    escalated: bool = False


#: a new record's card and progress: one of each, shared (both are frozen, and a record is
#: copied with changes, never changed in place); each new record built its own, a tenth of
#: building it
_NOT_POSTED = SlackRef()
_NO_PROGRESS = Progress()


class Approval(WireModel):
    """The approval record, as stored and as every `/v1` answer shows it."""

    id: str
    status: Status
    tool_name: str
    tool_call_id: str
    args: dict[str, Any]
    args_schema: dict[str, Any] | None = None
    prompt: str | None = None
    channel: str
    priority: Priority = Priority.NORMAL
    requester: Requester = Field(default_factory=Requester)
    batch_id: str | None = None
    context: str | None = None
    preview: Preview | None = None
    thread_ts: str | None = None
    timeout_seconds: int | None = None
    on_timeout: OnTimeout = OnTimeout.REJECT
    allowed_decisions: list[DecisionKind] = Field(default_factory=lambda: list(EVERY_DECISION))
    metadata: dict[str, Any] = Field(default_factory=dict)
    created_at: WireTime
    expires_at: WireTime | None = None
    slack: SlackRef = Field(default_factory=lambda: _NOT_POSTED)
    decision: Decision | None = None
    policy: Policy = Field(default_factory=Policy)
    progress: Progress = Field(default_factory=lambda: _NO_PROGRESS)

    @property
    def is_pending(self) -> bool:
        """True while nobody has decided."""
        return self.status is Status.PENDING

    @property
    def batch_key(self) -> str | None:
        """The batch it belongs to (`bot.batches`): its `batchId`, else `requester.runId`."""
        return self.batch_id or self.requester.run_id or None

    @property
    def current_args(self) -> dict[str, Any]:
        """The arguments being approved now: an edit's, else the original ones."""
        return self.progress.args if self.progress.args is not None else self.args

    @property
    def args_version(self) -> str:
        """The version of `current_args` a vote must name to count (`args_version`), made once
        a record, or known from the stored fingerprint (`fingerprinted`): each card and each
        vote's check needs it, and for a call of 8,000 objects it held the interpreter 5 ms."""
        version: str | None = self.__dict__.get(_ARGS_VERSION)
        if version is None:
            version = self.__dict__[_ARGS_VERSION] = args_version(self.current_args)
        return version

    def fingerprinted(self, fingerprint: str) -> Self:
        """This record, knowing its `args_version` from `fingerprint`, the `args_fingerprint`
        of its `args`, unless they were edited since."""
        if self.progress.args is None:
            self.__dict__[_ARGS_VERSION] = fingerprint[:16]
        return self

    def wire_json(self) -> str:
        """`WireModel.wire_json`, made once a record: the snapshot its audit event keeps (made
        in the store's writer thread) is also the API's answer. A record is never changed in
        place, only copied with changes (`model_copy`), and a copy starts without it."""
        text: str | None = self.__dict__.get(_WIRE_JSON)
        if text is None:
            text = self.__dict__[_WIRE_JSON] = super().wire_json()
        return text

    def model_copy(self, *, update: Mapping[str, Any] | None = None, deep: bool = False) -> Self:
        copy = super().model_copy(update=update, deep=deep)
        copy.__dict__.pop(_WIRE_JSON, None)
        copy.__dict__.pop(_ARGS_VERSION, None)
        return copy


#: where an `Approval` keeps its `wire_json()` and `args_version` (not fields: neither
#: serialized nor compared)
_WIRE_JSON = "_wire_json"
_ARGS_VERSION = "_args_version"


class CancelInput(WireModel):
    """The optional body of `POST /v1/approvals/{id}/cancel`."""

    model_config = ConfigDict(extra="forbid")

    reason: Text | None = None
    cancelled_by: Annotated[str, Field(min_length=1, max_length=255)] | None = None


class DecisionInput(WireModel):
    """The body of `POST /v1/approvals/{id}/decision`."""

    model_config = ConfigDict(extra="forbid")

    approved: Annotated[bool, Field(strict=True)]
    decided_by: Annotated[str, Field(min_length=1, max_length=255)]
    comment: Text | None = None
    approved_args: JsonObject | None = None
