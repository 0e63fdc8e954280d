"""Claude Code: `approval-bot hook claude-code`, a `PreToolUse` command hook that asks Slack.

Claude Code runs the command before each tool call its matcher selects, with the hook input
as JSON on stdin. The hook submits the call (`toolCallId` = `tool_use_id`, `requester.runId` =
`session_id`, the command or file path as the card's prompt), waits for the decision, and
prints `{"hookSpecificOutput": {"permissionDecision": "allow" | "deny", …}}` (`bot.claude_code`).

It fails closed: a bot it cannot reach, or no decision within `--wait` seconds, is a deny that
says so (with `--fail-open`, an allow that says so), and a card nobody decided on in time is
withdrawn, so nobody approves a call that is no longer waiting. A request the bot refuses, an
answer about another call or any other failure is a deny naming it. Input that is not a
`PreToolUse` hook input is exit code 2 with the reason on stderr, which Claude Code treats as
a block. Never a traceback, and never exit code 1 (Claude Code would run the call).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
from dataclasses import dataclass
from typing import Any

from bot.claude_code import (
    AGENT,
    HookInput,
    HookInputError,
    allow,
    answer,
    deny,
    read_hook_input,
    refused,
    undecided,
)
from bot.models import Approval, Priority
from bot.sdk.client import ApprovalClient
from bot.sdk.errors import ApprovalError, ApprovalTimeout, ApprovalUnavailable
from bot.sdk.wire import ToolCall

__all__ = ["DEFAULT_WAIT", "HookOutcome", "add_arguments", "decide_hook", "main", "run"]

#: seconds a call waits for a decision: under the 600 s Claude Code gives a command hook
DEFAULT_WAIT = 540.0
#: seconds spent withdrawing a card nobody decided on, after the wait
WITHDRAW_TIMEOUT = 5.0
PROG = "approval-bot hook claude-code"


@dataclass(frozen=True)
class HookOutcome:
    """What the command hook prints and the code it exits with."""

    exit_code: int
    stdout: str = ""
    stderr: str = ""


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """The flags of `approval-bot hook claude-code`."""
    parser.add_argument("--url", help="the bot (APPROVAL_URL, else http://127.0.0.1:3000)")
    parser.add_argument("--channel", help="channel for the cards (else the routing rules)")
    parser.add_argument("--priority", choices=[p.value for p in Priority])
    parser.add_argument(
        "--wait",
        type=_seconds,
        default=DEFAULT_WAIT,
        help=f"seconds to wait for a decision before denying ({DEFAULT_WAIT:g}); keep it "
        "under the hook's timeout in settings.json",
    )
    parser.add_argument(
        "--fail-open",
        action="store_true",
        help="allow the call when the bot is unreachable or nobody decided in time",
    )


def main(args: argparse.Namespace, url: str, token: str | None) -> int:
    """Run the hook on this process's stdin and stdout; returns the exit code."""
    raw = sys.stdin.buffer.read()
    outcome = asyncio.run(
        run(
            raw,
            url,
            token,
            channel=args.channel,
            priority=args.priority,
            wait=args.wait,
            fail_open=args.fail_open,
        )
    )
    sys.stdout.write(outcome.stdout)
    sys.stderr.write(outcome.stderr)
    return outcome.exit_code


async def run(
    raw: bytes,
    url: str,
    token: str | None,
    *,
    channel: str | None = None,
    priority: Priority | str | None = None,
    wait: float = DEFAULT_WAIT,
    fail_open: bool = False,
) -> HookOutcome:
    """The hook's output for the hook input `raw`, asking the bot at `url`."""
    try:
        hook = read_hook_input(raw)
    except HookInputError as exc:
        return HookOutcome(2, stderr=f"{PROG}: {exc}; the call is denied\n")
    try:
        client = ApprovalClient(url, token)
    except ValueError as exc:
        return HookOutcome(2, stderr=f"{PROG}: {exc}; the call is denied\n")
    try:
        async with client:
            output = await decide_hook(
                client, hook, channel=channel, priority=priority, wait=wait, fail_open=fail_open
            )
    except Exception as exc:  # a crash must not let the call through (exit 1 would)
        reason = f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__
        output = deny(f"The approval hook failed ({reason}), so this call was not approved.")
    return HookOutcome(0, stdout=json.dumps(output) + "\n")


async def decide_hook(
    client: ApprovalClient,
    hook: HookInput,
    *,
    channel: str | None = None,
    priority: Priority | str | None = None,
    wait: float = DEFAULT_WAIT,
    fail_open: bool = False,
) -> dict[str, Any]:
    """Ask about the call `hook` describes and wait up to `wait` seconds: the hook's answer."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + wait
    fields = hook.request_fields(channel=channel, priority=priority)
    try:
        async with asyncio.timeout(max(wait, 1.0)):
            approval = await client.submit(hook.tool_name, hook.tool_input, **fields)
    except (ApprovalUnavailable, TimeoutError) as exc:
        return _unreachable(client, exc, fail_open)
    except ApprovalError as exc:
        return refused(exc.message)
    try:
        if approval.is_pending:
            approval = await client.wait(approval, timeout=max(0.0, deadline - loop.time()))
    except ApprovalTimeout as exc:
        return await _withdraw(client, exc.approval, wait, fail_open)
    except ApprovalUnavailable as exc:
        return _unreachable(client, exc, fail_open)
    except ApprovalError as exc:
        return deny(f"No decision could be read for this call: {exc.message}")
    return answer(approval)


def _unreachable(client: ApprovalClient, exc: Exception, fail_open: bool) -> dict[str, Any]:
    if isinstance(exc, ApprovalError):
        detail = exc.message  # names the bot's URL
    else:
        detail = f"no answer from the approval bot at {client.url} in time"
    if fail_open:
        return allow(
            "The approval bot could not be reached, so this call runs without a decision "
            f"(--fail-open): {detail}"
        )
    return deny(f"The approval bot could not be reached, so this call was not approved: {detail}")


async def _withdraw(
    client: ApprovalClient, approval: Approval, waited: float, fail_open: bool
) -> dict[str, Any]:
    """Withdraw the card nobody decided on; a decision that came meanwhile is the answer."""
    reason = f"Claude Code stopped waiting after {waited:g}s"
    try:
        async with asyncio.timeout(WITHDRAW_TIMEOUT):
            await client.cancel(approval.id, reason, cancelled_by=AGENT)
    except ApprovalError as exc:
        if exc.status == 409:  # decided between the last wait and the cancel
            decided = ToolCall.of(approval).check(await client.get(approval.id))
            if not decided.is_pending:
                return answer(decided)
    except TimeoutError:
        pass  # still denied: the card stays until it expires
    return undecided(approval, waited, fail_open=fail_open)


def _seconds(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number of seconds") from None
    if not 0 <= value < float("inf"):
        raise argparse.ArgumentTypeError(f"{text!r} is not a number of seconds from 0")
    return value
