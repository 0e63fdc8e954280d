"""Claude Code's `PreToolUse` hooks, read as approval requests and answered with decisions.

Pure translation, no I/O: `read_hook_input` checks what Claude Code sends (on a command hook's
stdin, or as an `http` hook's body), `HookInput.request_fields` is the approval to ask for, and
`answer` / `allow` / `deny` are what to print or return. `approval-bot hook claude-code`
(`bot.adapters.claude_code`) and `POST /v1/hooks/claude-code` (`bot.api`) share them.

    stdin / body  {"hook_event_name": "PreToolUse", "tool_name": "Bash",
                   "tool_input": {"command": "rm -rf build"}, "tool_use_id": "toolu_…",
                   "session_id": "…", "cwd": "/repo", "transcript_path": "…", …}
    the request   toolName = tool_name, args = tool_input, toolCallId = tool_use_id,
                  requester.runId = session_id, prompt = the command or the file path,
                  preview = an Edit's or MultiEdit's change as a diff
    the answer    {"hookSpecificOutput": {"hookEventName": "PreToolUse",
                   "permissionDecision": "allow" | "deny",
                   "permissionDecisionReason": "…", "updatedInput": approvedArgs}}

`updatedInput` comes only with `allow`, and is the complete input to run with (a reviewer's
edit included). A refusal's reason is the text a gated tool hands its model (`refusal`), with
the reviewer's comment in it.
"""

from __future__ import annotations

import difflib
import json
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from bot.models import MAX_PREVIEW_BYTES, Action, Approval, Priority, Requester
from bot.sdk.errors import refusal

__all__ = [
    "AGENT",
    "EVENT",
    "HookInput",
    "HookInputError",
    "allow",
    "answer",
    "deny",
    "read_hook_input",
    "refused",
    "undecided",
]

#: the only hook event answered: the others expect other answers
EVENT = "PreToolUse"
#: `requester.agent` on every card asked for by a hook
AGENT = "claude-code"
#: the tool input fields that say best what a call does, in order: the first present is the
#: card's prompt (Bash's command, the file a Write, Edit or Read touches, a fetch's URL…)
PROMPT_FIELDS = ("command", "file_path", "notebook_path", "url", "path", "pattern", "query")
#: a prompt is a headline: the whole input is on the card as its arguments
MAX_PROMPT = 500
#: the largest hook input read (the bot takes bodies up to 1 MiB)
MAX_INPUT = 1024 * 1024

Permission = Literal["allow", "deny"]


class HookInputError(ValueError):
    """What Claude Code sent is not a `PreToolUse` hook input; the message says what is wrong."""


class HookInput(BaseModel):
    """The fields of a `PreToolUse` hook input this bot reads; Claude Code sends more."""

    model_config = ConfigDict(extra="allow", frozen=True)

    hook_event_name: str = EVENT
    tool_name: str = Field(min_length=1)
    tool_input: dict[str, Any]
    tool_use_id: str | None = Field(default=None, min_length=1, max_length=255)
    session_id: str | None = Field(default=None, max_length=255)
    cwd: str | None = None
    transcript_path: str | None = None
    permission_mode: str | None = None

    def request_fields(
        self, *, channel: str | None = None, priority: Priority | str | None = None
    ) -> dict[str, Any]:
        """The optional fields of the approval to ask for (`SubmitFields`, snake_case).

        The tool name and `tool_input` are its `toolName` and `args`. Without a `tool_use_id`
        (Claude Code before it sent one), `tool_call_id` is None and one is made up.
        """
        return {
            "tool_call_id": self.tool_use_id,
            "prompt": self.prompt(),
            "channel": channel,
            "priority": priority,
            "requester": Requester(agent=AGENT, run_id=self.session_id),
            "context": f"Claude Code in {self.cwd}" if self.cwd else None,
            "metadata": {"claudeCode": self.where()},
            "preview": self.preview(),
        }

    def preview(self) -> dict[str, str] | None:
        """An Edit's or MultiEdit's change as a diff of the text it replaces (hunk lines count
        from that text, not the file); None for other tools, or when it would not fit."""
        if self.tool_name == "Edit":
            edits: Any = [self.tool_input]
        elif self.tool_name == "MultiEdit":
            edits = self.tool_input.get("edits")
        else:
            return None
        path = str(self.tool_input.get("file_path") or "the file")
        lines: list[str] = []
        for edit in edits if isinstance(edits, list) else []:
            old = edit.get("old_string") if isinstance(edit, dict) else None
            new = edit.get("new_string") if isinstance(edit, dict) else None
            if not (isinstance(old, str) and isinstance(new, str)):
                return None
            lines += difflib.unified_diff(
                old.splitlines(), new.splitlines(), path, path, lineterm="", n=5
            )
        body = "\n".join(lines)
        if not body or len(body.encode("utf-8", "surrogatepass")) > MAX_PREVIEW_BYTES:
            return None
        return {"kind": "diff", "body": body}

    def prompt(self) -> str | None:
        """What the call does in a line: its command, file path or URL, cut to `MAX_PROMPT`."""
        for name in PROMPT_FIELDS:
            value = self.tool_input.get(name)
            if isinstance(value, str) and value.strip():
                text = value.strip()
                return text if len(text) <= MAX_PROMPT else text[: MAX_PROMPT - 1] + "…"
        return None

    def where(self) -> dict[str, str]:
        """The session the call comes from, for the record's metadata."""
        fields = {
            "sessionId": self.session_id,
            "cwd": self.cwd,
            "transcriptPath": self.transcript_path,
            "permissionMode": self.permission_mode,
        }
        return {name: value for name, value in fields.items() if value}


def read_hook_input(raw: bytes | str) -> HookInput:
    """The hook input in `raw`; `HookInputError` naming the problem when it is not one."""
    if len(raw) > MAX_INPUT:
        raise HookInputError(f"the hook input is over {MAX_INPUT} bytes")
    try:
        data = json.loads(raw)
    except (ValueError, UnicodeDecodeError) as exc:
        raise HookInputError(f"the hook input is not JSON: {exc}") from None
    except RecursionError:
        raise HookInputError("the hook input is not JSON: nested too deeply") from None
    if not isinstance(data, dict):
        raise HookInputError(f"the hook input must be a JSON object, not {type(data).__name__}")
    try:
        hook = HookInput.model_validate(data)
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(part) for part in first["loc"]) or "the hook input"
        problem = "is required" if first["type"] == "missing" else first["msg"].lower()
        raise HookInputError(f"{where} {problem}") from None
    if hook.hook_event_name != EVENT:
        raise HookInputError(
            f"hook_event_name is {hook.hook_event_name[:40]!r}: this hook answers {EVENT} only"
        )
    return hook


def allow(reason: str, updated_input: dict[str, Any] | None = None) -> dict[str, Any]:
    """Claude Code runs the call (with `updated_input` when given)."""
    output: dict[str, Any] = {
        "hookEventName": EVENT,
        "permissionDecision": "allow",
        "permissionDecisionReason": reason,
    }
    if updated_input is not None:
        output["updatedInput"] = updated_input
    return {"hookSpecificOutput": output}


def deny(reason: str) -> dict[str, Any]:
    """Claude Code does not run the call and tells the model `reason`."""
    return {
        "hookSpecificOutput": {
            "hookEventName": EVENT,
            "permissionDecision": "deny",
            "permissionDecisionReason": reason,
        }
    }


def refused(message: str) -> dict[str, Any]:
    """The answer when the bot would not ask about the call (a field it refuses, a reused id)."""
    return deny(f"The approval bot refused to ask about this call: {message}")


def answer(approval: Approval) -> dict[str, Any]:
    """The answer for a decided approval: allow with the arguments to run with, or deny."""
    decision = approval.decision
    if decision is None:
        raise ValueError(f"approval {approval.id} is {approval.status}, with no decision yet")
    if not decision.approved:
        return deny(refusal(decision, approval.tool_name))
    who = decision.decided_by_name or decision.decided_by
    if decision.action is Action.TIMEOUT:
        reason = "Approved automatically: nobody decided in Slack in time"
    elif decision.action is Action.EDIT:
        reason = f"Approved in Slack by {who}, with edited input"
    else:
        reason = f"Approved in Slack by {who}"
    if decision.comment:
        reason = f"{reason}: {decision.comment}"
    args = approval.args if decision.approved_args is None else decision.approved_args
    return allow(reason, dict(args))


def undecided(approval: Approval, waited: float, *, fail_open: bool) -> dict[str, Any]:
    """The answer when nobody decided within `waited` seconds (the approval was withdrawn)."""
    what = f"Nobody decided on this {approval.tool_name} call in Slack within {waited:g}s"
    if fail_open:
        return allow(f"{what}; allowed without a decision (--fail-open)")
    return deny(f"{what}, so it did not run. Ask again if it is still needed.")
