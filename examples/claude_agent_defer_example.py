"""A Claude Agent SDK agent whose deploy call may wait hours for Slack: deferred, then resumed."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Sequence
from dataclasses import replace

from claude_agent_sdk import (
    ClaudeAgentOptions,
    HookMatcher,
    Message,
    ResultMessage,
    Transport,
    create_sdk_mcp_server,
    query,
    tool,
)

from bot.adapters.claude_agent import slack_hook, slack_permission, wait_for_deferred
from bot.sdk import ApprovalClient


@tool("deploy_service", "Send a build to production.", {"version": str})
async def deploy_service(args: dict[str, str]) -> dict[str, object]:
    return {"content": [{"type": "text", "text": f"deployed {args['version']}"}]}


release = create_sdk_mcp_server("release", tools=[deploy_service])
#: seconds a call waits in the hook before the run is deferred: under the matcher's timeout
WAIT = 45.0


async def result_of(messages: AsyncIterator[Message]) -> ResultMessage:
    results = [message async for message in messages if isinstance(message, ResultMessage)]
    return results[-1]


async def main(transports: Sequence[Transport] = ()) -> str:
    """Ship 1.4.2; past `WAIT` the run ends, and resumes once someone decided in Slack.

    No `transports` runs the Claude Code CLI; the test suite passes scripted ones, one a run.
    """
    scripted = iter(transports)
    async with ApprovalClient() as approvals:  # APPROVAL_URL and APPROVAL_API_TOKEN
        gate = HookMatcher(
            matcher="mcp__release__.*", hooks=[slack_hook(approvals, wait=WAIT)], timeout=60
        )
        options = ClaudeAgentOptions(
            mcp_servers={"release": release},
            hooks={"PreToolUse": [gate]},
            can_use_tool=slack_permission(approvals),  # answers from the same card, if asked
        )
        result = await result_of(
            query(prompt="Ship 1.4.2", options=options, transport=next(scripted, None))
        )
        while result.deferred_tool_use is not None:
            await wait_for_deferred(approvals, result)  # no Claude Code process meanwhile
            resumed = replace(options, resume=result.session_id)
            result = await result_of(
                query(prompt="Go on.", options=resumed, transport=next(scripted, None))
            )
    return result.result or ""


if __name__ == "__main__":
    print(asyncio.run(main()))
