"""An OpenAI Agents SDK agent whose deploy tool waits for a click in Slack."""

from __future__ import annotations

import asyncio

from agents import Agent, function_tool

from bot.adapters.openai_agents import run_with_approvals
from bot.sdk import ApprovalClient


@function_tool(needs_approval=True)
def deploy_service(version: str) -> str:
    """Send a build to production."""
    return f"deployed {version}"


agent = Agent(
    "release-bot",
    instructions="Ship the build you are asked to ship. Report what the tool said.",
    model="gpt-4o-mini",
    tools=[deploy_service],
)


async def main() -> str:
    """Ask for 1.4.2 in production; the run pauses until someone decides in Slack."""
    async with ApprovalClient() as approvals:  # APPROVAL_URL and APPROVAL_API_TOKEN
        result = await run_with_approvals(agent, "Ship 1.4.2", approvals, priority="high")
    return str(result.final_output)


if __name__ == "__main__":
    print(asyncio.run(main()))
