"""An AutoGen (ag2) agent whose deploy tool waits for a click in Slack."""

from __future__ import annotations

import asyncio

from ag2 import Agent, tool
from ag2.config import OpenAIConfig

from bot.adapters.autogen import approval_required
from bot.sdk import ApprovalClient

approvals = ApprovalClient()  # APPROVAL_URL and APPROVAL_API_TOKEN
in_slack = approval_required(
    approvals,
    "Run {tool_name} with {tool_arguments}?",
    denied_message="The reviewer refused {tool_name}: {comment}",
)


@tool(middleware=[in_slack])
def deploy_service(version: str) -> str:
    """Send a build to production."""
    return f"deployed {version}"


agent = Agent(
    "release-bot",
    "Ship the build you are asked to ship. Report what the tool said.",
    config=OpenAIConfig("gpt-4o-mini"),
    tools=[deploy_service],
)


async def main() -> str:
    """Ask for 1.4.2 in production; the tool call waits until someone decides in Slack."""
    async with approvals:
        reply = await agent.ask("Ship 1.4.2")
    return reply.body or ""


if __name__ == "__main__":
    print(asyncio.run(main()))
