"""A Claude Agent SDK agent whose deploy tool waits for a click in Slack."""

from __future__ import annotations

import asyncio

from claude_agent_sdk import (
    ClaudeAgentOptions,
    ResultMessage,
    Transport,
    create_sdk_mcp_server,
    query,
    tool,
)

from bot.adapters.claude_agent import slack_permission
from bot.sdk import ApprovalClient


@tool("deploy_service", "Send a build to production.", {"version": str})
async def deploy_service(args: dict[str, str]) -> dict[str, object]:
    return {"content": [{"type": "text", "text": f"deployed {args['version']}"}]}


release = create_sdk_mcp_server("release", tools=[deploy_service])


async def main(transport: Transport | None = None) -> str:
    """Ask for 1.4.2 in production; the tool call waits until someone decides in Slack.

    `transport` None runs the Claude Code CLI; the test suite passes a scripted one.
    """
    said = ""
    async with ApprovalClient() as approvals:  # APPROVAL_URL and APPROVAL_API_TOKEN
        options = ClaudeAgentOptions(
            mcp_servers={"release": release},
            can_use_tool=slack_permission(approvals, priority="high"),
        )
        async for message in query(prompt="Ship 1.4.2", options=options, transport=transport):
            if isinstance(message, ResultMessage):
                said = message.result or ""
    return said


if __name__ == "__main__":
    print(asyncio.run(main()))
