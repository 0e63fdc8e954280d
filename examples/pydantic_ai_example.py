"""A Pydantic AI agent whose deploy tool waits for a click in Slack."""

from __future__ import annotations

import asyncio

from pydantic_ai import Agent, DeferredToolRequests

from bot.adapters.pydantic_ai import run_with_approvals
from bot.sdk import ApprovalClient

agent = Agent(
    "openai:gpt-4o-mini",
    name="release-bot",
    instructions="Ship the build you are asked to ship. Report what the tool said.",
    output_type=[str, DeferredToolRequests],
)


@agent.tool_plain(requires_approval=True)
def deploy_service(version: str) -> str:
    """Send a build to production."""
    return f"deployed {version}"


async def main() -> str:
    """Ask for 1.4.2 in production; the run pauses until someone decides in Slack."""
    async with ApprovalClient() as approvals:  # APPROVAL_URL and APPROVAL_API_TOKEN
        result = await run_with_approvals(agent, "Ship 1.4.2", approvals, priority="high")
    return str(result.output)


if __name__ == "__main__":
    print(asyncio.run(main()))
