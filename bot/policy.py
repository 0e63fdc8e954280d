"""Policy: the routing file (`APPROVAL_CONFIG`, TOML) and how a request meets it.

The file says where a call goes, who may decide it, and what happens when nobody does. It is
validated once at start and on SIGHUP; a bad file names the file, the field and the reason.

Every request field is written by an agent (or a model driving one), so a request may make the
policy stricter, never looser (the contract's "What a request may ask for"):

    channel          the rule's channel wins; the request's only where no rule names one
    priority         may raise the rule's; a lower one is ignored
    timeoutSeconds   may lengthen the wait, and shorten it unless the call would then be
                     approved by waiting (422)
    onTimeout        reject or escalate; approve only where the rule itself approves (422)
    allowedDecisions narrows the rule's set; it always keeps reject (422 otherwise)

`approvers`, `required_approvals`, `mention` and `escalate_to` come from the rule alone.
"""

from __future__ import annotations

import fnmatch
import re
import tomllib
from collections.abc import Sequence
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, Literal, Protocol

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    PrivateAttr,
    ValidationError,
    field_validator,
    model_validator,
)

if TYPE_CHECKING:
    import cel

from bot.conditions import (
    Condition,
    ConditionError,
    ConditionFailed,
    call_context,
    compile_condition,
)
from bot.config import ConfigError
from bot.errors import Invalid, NotAllowed
from bot.grants import parse_duration
from bot.models import (
    EVERY_DECISION,
    MAX_TIMEOUT_SECONDS,
    ApprovalRequest,
    DecisionKind,
    OnTimeout,
    Policy,
    Priority,
    utcnow,
)

__all__ = [
    "NotAnApprover",
    "PolicyDecision",
    "Route",
    "Router",
    "Routing",
    "Rule",
    "either",
    "load_routing",
    "rule_label",
    "verb_for",
]

_RANK = {p: i for i, p in enumerate(Priority)}
SlackRef = Annotated[str, Field(min_length=1, max_length=255)]


@dataclass(frozen=True, slots=True)
class Route:
    """Where a request goes and under which policy; None falls back to the bot's defaults."""

    channel: str | None = None
    priority: Priority | None = None
    timeout_seconds: int | None = None
    on_timeout: OnTimeout = OnTimeout.REJECT
    allowed_decisions: list[DecisionKind] = field(default_factory=lambda: list(EVERY_DECISION))
    policy: Policy = field(default_factory=Policy)
    #: the rule decides the call itself (`decision`): no card with buttons, nobody asked
    decision: PolicyDecision | None = None
    #: rules whose `when` could not be evaluated for this call, and why (for the audit)
    skipped: tuple[dict[str, str], ...] = ()


@dataclass(frozen=True, slots=True)
class PolicyDecision:
    """A rule's own `decision`: who decided (`policy:<rule>`), why, and whether a card without
    buttons tells the channel (`notify`)."""

    approved: bool
    decided_by: str
    reason: str
    notify: bool


class Router(Protocol):
    """Finds the route of a request (the routing file implements this)."""

    @property
    def fallback_channel(self) -> str | None:
        """Where a card goes when Slack refuses its own channel for good; None: nowhere."""

    def route(self, request: ApprovalRequest) -> Route: ...


class Rule(BaseModel):
    """One `[[rules]]` table: applies to tool names matching any of `tools`, and to calls for
    which its `when` (CEL, `bot.conditions`) holds."""

    model_config = ConfigDict(extra="forbid")

    name: Annotated[str, Field(min_length=1, max_length=80)] | None = None
    tools: Annotated[list[Annotated[str, Field(min_length=1)]], Field(min_length=1)]
    when: Annotated[str, Field(min_length=1)] | None = None
    #: decided by the rule itself, with `reason` as the comment; `notify` posts a card
    #: without buttons
    decision: Literal["approve", "reject"] | None = None
    reason: Annotated[str, Field(min_length=1, max_length=2000)] | None = None
    notify: bool = False
    channel: SlackRef | None = None
    priority: Priority | None = None
    mention: SlackRef | None = None
    approvers: list[SlackRef] = Field(default_factory=list)
    required_approvals: Annotated[int, Field(ge=1, le=20)] = 1
    timeout_seconds: Annotated[int, Field(ge=1, le=MAX_TIMEOUT_SECONDS)] | None = None
    on_timeout: OnTimeout | None = None
    escalate_to: SlackRef | None = None
    allowed_decisions: Annotated[list[DecisionKind], Field(min_length=1)] | None = None
    #: the longest standing approval its approvers may grant ("Approve & allow…"), as a span
    #: like "1h" (`bot.grants`); never on a critical rule
    allow_standing: str | None = None

    @field_validator("allow_standing")
    @classmethod
    def _span(cls, value: str | None) -> str | None:
        if value is not None:
            parse_duration(value)  # a ValueError names the span that is wrong
        return value

    @cached_property
    def standing_seconds(self) -> int | None:
        """`allow_standing` in seconds, or None (read on every submission the rule routes:
        a private attribute cost a lookup through pydantic's `__getattr__`)."""
        return None if self.allow_standing is None else parse_duration(self.allow_standing)

    @field_validator("mention")
    @classmethod
    def _mention(cls, value: str | None) -> str | None:
        if value is not None and value != "here" and value[0] not in "SUW":
            raise ValueError('must be "here", a user group id (S…) or a user id (U…)')
        return value

    @field_validator("approvers")
    @classmethod
    def _approvers(cls, values: list[str]) -> list[str]:
        for value in values:
            if value[0] not in "SUW" or not value.isalnum():
                raise ValueError(f"{value!r} is not a Slack user id (U…) or user group id (S…)")
        return values

    @field_validator("allowed_decisions")
    @classmethod
    def _keeps_reject(cls, values: list[DecisionKind] | None) -> list[DecisionKind] | None:
        if values is not None and DecisionKind.REJECT not in values:
            raise ValueError('must include "reject": a reviewer can always say no')
        return values

    _condition: Condition | None = PrivateAttr(default=None)

    @field_validator("when")
    @classmethod
    def _compiles(cls, source: str | None) -> str | None:
        if source is not None:
            compile_condition(source)  # a ConditionError says where; `load_routing` uses it
        return source

    @model_validator(mode="after")
    def _decides_alone(self) -> Rule:
        if self.when is not None:
            self._condition = compile_condition(self.when)
        if self.allow_standing is not None and self.priority is Priority.CRITICAL:
            raise ValueError("a critical rule never allows standing approvals: drop allow_standing")
        if self.decision is None:
            if self.reason is not None or self.notify:
                raise ValueError("`reason` and `notify` go with `decision`")
            return self
        asks = [name for name in _ASKING if name in self.model_fields_set]
        if asks:
            raise ValueError(
                f"a rule with `decision` decides without asking anyone: drop {', '.join(asks)}"
            )
        return self

    def matches(self, tool_name: str) -> bool:
        """True when a `tools` glob matches the tool name (case-sensitive)."""
        return self._globs.match(tool_name) is not None

    @cached_property
    def _globs(self) -> re.Pattern[str]:
        """The `tools` globs as one pattern (`fnmatch.fnmatchcase` matches each so)."""
        return re.compile("|".join(fnmatch.translate(pattern) for pattern in self.tools))

    def holds(self, context: cel.Context) -> bool:
        """True when the rule has no `when`, or it holds; `ConditionFailed` when it cannot
        be evaluated."""
        return self._condition is None or self._condition.holds(context)


class Routing(BaseModel):
    """The whole routing file; `route()` is the service's `Router`. Empty: no file."""

    model_config = ConfigDict(extra="forbid")

    default_channel: SlackRef | None = None
    #: where a card goes when Slack refuses its own channel for good (`channel_not_found`,
    #: `is_archived`…); without one, such an approval ends `rejected`/`undeliverable`
    fallback_channel: SlackRef | None = None
    rules: list[Rule] = Field(default_factory=list)

    def match(self, request: ApprovalRequest) -> tuple[int | None, list[dict[str, str]]]:
        """The index of the first rule whose `tools` and `when` both match the request, or
        None; and the rules skipped because their `when` failed, with why. A failure never
        matches: the next rule is tried."""
        context: cel.Context | None = None
        skipped: list[dict[str, str]] = []
        for index, rule in enumerate(self.rules):
            if not rule.matches(request.tool_name):
                continue
            if rule.when is not None and context is None:
                context = call_context(request, utcnow())
            try:
                if context is None or rule.holds(context):
                    return index, skipped
            except ConditionFailed as exc:
                skipped.append({"rule": rule_label(rule, index), "error": str(exc)})
        return None, skipped

    def route(self, request: ApprovalRequest) -> Route:
        """The matching rule applied to a request; `Invalid` (422) for what would loosen it."""
        index, skipped = self.match(request)
        matched = None if index is None else self.rules[index]
        rule = matched or _NO_RULE
        decision = None
        label = None if index is None else rule_label(rule, index)
        if matched is not None and matched.decision is not None:
            assert label is not None
            decision = PolicyDecision(
                approved=matched.decision == "approve",
                decided_by=f"policy:{label}",
                reason=matched.reason or f"decided by the routing file's rule {label}",
                notify=matched.notify,
            )
        on_timeout = _on_timeout(rule, request)
        return Route(
            decision=decision,
            skipped=tuple(skipped),
            channel=rule.channel or request.channel or self.default_channel,
            priority=_higher(rule.priority, request.priority),
            timeout_seconds=_timeout(rule, request, on_timeout),
            on_timeout=on_timeout,
            allowed_decisions=_narrowed(rule.allowed_decisions, request.allowed_decisions),
            policy=Policy(
                rule=matched.tools if matched else None,
                approvers=rule.approvers,
                required_approvals=rule.required_approvals,
                mention=rule.mention,
                escalate_to=rule.escalate_to,
                rule_name=label,
                allow_standing=rule.standing_seconds,
            ),
        )


#: what applies where no rule matches: the request's own values, within the same limits
_NO_RULE = Rule(tools=["*"])

#: what a rule that asks people sets, and a rule with `decision` cannot
_ASKING = (
    "approvers",
    "required_approvals",
    "mention",
    "timeout_seconds",
    "on_timeout",
    "escalate_to",
    "allowed_decisions",
    "allow_standing",
)


def rule_label(rule: Rule, index: int) -> str:
    """How the audit and `decidedBy` name a rule: its `name`, else its number (from 1)."""
    return rule.name or str(index + 1)


_VERBS = {DecisionKind.APPROVE: "approve", DecisionKind.EDIT: "edit"}
#: what the approvers may do with a call, said to someone who tried to reject it or answer it
_DECIDE = "approve or reject"


class NotAnApprover(NotAllowed):
    """Someone the policy does not name tried to decide. Says who may instead: the rule's
    `approvers` (users, and the members of its user groups), else the members of the card's
    channels.

    `message` names them by Slack id, for the audit trail and any edge; the Slack edge renders
    the same facts as mentions (`bot.slack.cards.refusal_note`)."""

    def __init__(
        self,
        tool_name: str,
        kind: DecisionKind,
        approvers: Sequence[str],
        channels: Sequence[str],
    ) -> None:
        #: the tool of the approval, the decision tried, and who may make it
        self.tool_name = tool_name
        self.kind = kind
        self.approvers = list(approvers)
        self.channels = [channel for channel in channels if channel]
        users = [a for a in self.approvers if not a.startswith("S")]
        groups = [f"members of {a}" for a in self.approvers if a.startswith("S")]
        who = either([*users, *groups]) if self.approvers else f"members of {either(self.channels)}"
        super().__init__(f"only {who} can {verb_for(kind)} {tool_name}")


def verb_for(kind: DecisionKind) -> str:
    """What a person tried, said of who may: "approve", "edit", else "approve or reject"."""
    return _VERBS.get(kind, _DECIDE)


def either(names: Sequence[str]) -> str:
    """Names joined as alternatives: `a`, `a or b`, `a, b or c`."""
    if len(names) <= 1:
        return "".join(names) or "nobody"
    return f"{', '.join(names[:-1])} or {names[-1]}"


def _higher(rule: Priority | None, asked: Priority | None) -> Priority | None:
    if rule is None or (asked is not None and _RANK[asked] > _RANK[rule]):
        return asked
    return rule


def _on_timeout(rule: Rule, request: ApprovalRequest) -> OnTimeout:
    ruled = rule.on_timeout or OnTimeout.REJECT
    if request.on_timeout is None:
        return ruled
    if request.on_timeout is OnTimeout.APPROVE and ruled is not OnTimeout.APPROVE:
        raise Invalid(
            '"approve" is for the routing file alone: no call approves itself by waiting',
            path="onTimeout",
        )
    return request.on_timeout


def _timeout(rule: Rule, request: ApprovalRequest, on_timeout: OnTimeout) -> int | None:
    asked = request.timeout_seconds
    if asked is None:
        return rule.timeout_seconds
    shortens = rule.timeout_seconds is None or asked < rule.timeout_seconds
    if shortens and on_timeout is OnTimeout.APPROVE:
        after = f"after {rule.timeout_seconds} s" if rule.timeout_seconds else "never"
        raise Invalid(
            f"the routing rule approves at timeout ({after}); a request may lengthen that "
            "wait, never shorten it",
            path="timeoutSeconds",
        )
    return asked


def _narrowed(
    rule: list[DecisionKind] | None, asked: list[DecisionKind] | None
) -> list[DecisionKind]:
    offered = rule or list(EVERY_DECISION)
    return offered if asked is None else [d for d in offered if d in asked]


def load_routing(path: str | Path) -> Routing:
    """Read and validate a routing file; raises `ConfigError` naming the file, field and reason."""
    path = Path(path)
    try:
        text = path.read_text()
        data = tomllib.loads(text)
    except OSError as exc:
        raise ConfigError(f"{path}: cannot be read: {exc.strerror}") from exc
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{path}: not valid TOML: {exc}") from exc
    try:
        return Routing.model_validate(data)
    except ValidationError as exc:
        problems = [_problem(path, text, err) for err in exc.errors()]
        raise ConfigError("; ".join(problems)) from exc


def _problem(path: Path, text: str, err: Any) -> str:
    """One validation error in words: `file: field: reason`, and for a `when` that does not
    compile, `file:line:column: rule N ("name") when: reason` pointing into the file."""
    loc = err["loc"]
    where = ".".join(str(p) for p in loc) or "(top)"
    problem = err.get("ctx", {}).get("error")
    if not (isinstance(problem, ConditionError) and loc[:1] == ("rules",) and len(loc) == 3):
        return f"{path}: {where}: {err['msg']}"
    index = int(loc[1])
    rule = (tomllib.loads(text).get("rules") or [{}])[index]
    named = f' ("{rule["name"]}")' if isinstance(rule.get("name"), str) else ""
    line, column = _in_file(text, index, problem)
    return f"{path}:{line}:{column}: rule {index + 1}{named} `when`: {problem.message}"


def _in_file(text: str, index: int, problem: ConditionError) -> tuple[int, int]:
    """Where in the file the expression's (line, column) is: from the `when =` line of the
    `index`-th `[[rules]]` table (a best effort for multi-line strings)."""
    lines = text.splitlines()
    headers = [n for n, line in enumerate(lines) if line.strip().startswith("[[rules]]")]
    start = headers[index] if index < len(headers) else 0
    for n in range(start, len(lines)):
        key, eq, value = lines[n].partition("=")
        if eq and key.strip() == "when":
            opening = len(key) + 1 + (len(value) - len(value.lstrip()))
            quote = 3 if value.lstrip()[:3] in ('"""', "'''") else 1
            if problem.line == 1:
                return n + 1, opening + quote + problem.column
            return n + problem.line, problem.column
    return start + 1, 1
