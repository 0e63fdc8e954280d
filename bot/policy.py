"""The routing file (`APPROVAL_CONFIG`, TOML): where a call goes, who may decide it, and what
happens when nobody does. Validated once at start and on SIGHUP; a bad file names the file,
the field and the reason.

A rule sets policy; a request may only make it stricter. The request's `channel` wins (the
contract's precedence); its `priority` can raise the rule's but not lower it; its
`timeoutSeconds` can shorten the rule's but not lengthen it; its `allowedDecisions` can narrow
the rule's but not widen them; `onTimeout`, `approvers`, `required_approvals`, `mention` and
`escalate_to` come from the rule alone.
"""

from __future__ import annotations

import fnmatch
import tomllib
from pathlib import Path
from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from bot.config import ConfigError
from bot.errors import Invalid
from bot.models import (
    MAX_TIMEOUT_SECONDS,
    ApprovalRequest,
    DecisionKind,
    OnTimeout,
    Policy,
    Priority,
)
from bot.service import Route

__all__ = ["Routing", "Rule", "load_routing"]

_RANK = {p: i for i, p in enumerate(Priority)}
SlackRef = Annotated[str, Field(min_length=1, max_length=255)]


class Rule(BaseModel):
    """One `[[rules]]` table: applies to tool names matching any of `tools`."""

    model_config = ConfigDict(extra="forbid")

    tools: Annotated[list[Annotated[str, Field(min_length=1)]], Field(min_length=1)]
    channel: SlackRef | None = None
    priority: Priority | None = None
    mention: SlackRef | None = None
    approvers: list[SlackRef] = Field(default_factory=list)
    required_approvals: Annotated[int, Field(ge=1, le=20)] = 1
    timeout_seconds: Annotated[int, Field(ge=1, le=MAX_TIMEOUT_SECONDS)] | None = None
    on_timeout: OnTimeout | None = None
    escalate_to: SlackRef | None = None
    allowed_decisions: Annotated[list[DecisionKind], Field(min_length=1)] | None = None

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

    def matches(self, tool_name: str) -> bool:
        """True when a `tools` glob matches the tool name (case-sensitive)."""
        return any(fnmatch.fnmatchcase(tool_name, pattern) for pattern in self.tools)


class Routing(BaseModel):
    """The whole routing file; `route()` is the service's `Router`."""

    model_config = ConfigDict(extra="forbid")

    default_channel: SlackRef | None = None
    rules: list[Rule] = Field(default_factory=list)

    def rule_for(self, tool_name: str) -> Rule | None:
        """The first rule whose globs match, or None."""
        return next((rule for rule in self.rules if rule.matches(tool_name)), None)

    def route(self, request: ApprovalRequest) -> Route:
        """The defaults and limits the matching rule puts on a request."""
        rule = self.rule_for(request.tool_name)
        if rule is None:
            return Route.of(request, default_channel=self.default_channel)
        priority = rule.priority
        if request.priority is not None and (
            priority is None or _RANK[request.priority] > _RANK[priority]
        ):
            priority = request.priority
        timeout = rule.timeout_seconds
        if request.timeout_seconds is not None:
            timeout = min(timeout or request.timeout_seconds, request.timeout_seconds)
        allowed = rule.allowed_decisions
        if request.allowed_decisions is not None:
            allowed = [d for d in request.allowed_decisions if allowed is None or d in allowed]
            if not allowed:
                raise Invalid(
                    f"the rule for {', '.join(rule.tools)} allows only "
                    f"{', '.join(d.value for d in rule.allowed_decisions or [])}",
                    path="allowedDecisions",
                )
        return Route(
            channel=request.channel or rule.channel or self.default_channel,
            priority=priority,
            timeout_seconds=timeout,
            on_timeout=rule.on_timeout,  # never the request's: it could approve itself
            allowed_decisions=allowed,
            policy=Policy(
                rule=rule.tools,
                approvers=rule.approvers,
                required_approvals=rule.required_approvals,
                mention=rule.mention,
                escalate_to=rule.escalate_to,
            ),
        )


def load_routing(path: str | Path) -> Routing:
    """Read and validate a routing file; raises `ConfigError` naming the file, field and reason."""
    path = Path(path)
    try:
        data = tomllib.loads(path.read_text())
    except OSError as exc:
        raise ConfigError(f"{path}: cannot be read: {exc.strerror}") from exc
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{path}: not valid TOML: {exc}") from exc
    try:
        return Routing.model_validate(data)
    except ValidationError as exc:
        problems = [
            f"{'.'.join(str(p) for p in err['loc']) or '(top)'}: {err['msg']}"
            for err in exc.errors()
        ]
        raise ConfigError(f"{path}: " + "; ".join(problems)) from exc
