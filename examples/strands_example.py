"""A Strands agent whose deploy tool waits for a click in Slack."""

from __future__ import annotations

import asyncio

from strands import Agent, tool

from bot.adapters.strands import SlackApproval
from bot.sdk import ApprovalClient

approvals = ApprovalClient()  # APPROVAL_URL and APPROVAL_API_TOKEN


@tool
def deploy_service(version: str) -> str:
    """Send a build to production."""
    return f"deployed {version}"


agent = Agent(
    name="release-bot",
    system_prompt="Ship the build you are asked to ship. Report what the tool said.",
    tools=[deploy_service],
    hooks=[SlackApproval(approvals, tools=["deploy_service"], priority="high")],
    callback_handler=None,
)


async def main() -> str:
    """Ask for 1.4.2 in production; the tool call waits until someone decides in Slack."""
    async with approvals:
        result = await agent.invoke_async("Ship 1.4.2")
    return str(result).strip()


if __name__ == "__main__":
    print(asyncio.run(main()))
