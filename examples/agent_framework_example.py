"""A Microsoft Agent Framework agent whose deploy tool waits for a click in Slack."""

from __future__ import annotations

import asyncio
from typing import Any

from agent_framework import Agent, tool

from bot.adapters.agent_framework import run_with_approvals
from bot.sdk import ApprovalClient


@tool(approval_mode="always_require")
def deploy_service(version: str) -> str:
    """Send a build to production."""
    return f"deployed {version}"


def chat_client() -> Any:
    """The model: OpenAI here (`pip install agent-framework-openai`, OPENAI_API_KEY)."""
    from agent_framework.openai import OpenAIChatClient

    return OpenAIChatClient(model="gpt-4o-mini")


async def main(client: Any = None) -> str:
    """Ask for 1.4.2 in production; the run pauses until someone decides in Slack. `client`:
    the model's chat client (`chat_client()` unless given)."""
    agent = Agent(
        client=client or chat_client(),
        name="release-bot",
        instructions="Ship the build you are asked to ship. Report what the tool said.",
        tools=[deploy_service],
    )
    async with ApprovalClient() as approvals:  # APPROVAL_URL and APPROVAL_API_TOKEN
        response = await run_with_approvals(agent, "Ship 1.4.2", approvals, priority="high")
    return response.text


if __name__ == "__main__":
    print(asyncio.run(main()))
