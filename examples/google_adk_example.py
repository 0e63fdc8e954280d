"""A Google ADK agent whose deploy tool waits for a click in Slack."""

from __future__ import annotations

import asyncio

from google.adk.agents import Agent
from google.adk.runners import InMemoryRunner

from bot.adapters.google_adk import ApprovalTool, run_with_approvals
from bot.sdk import ApprovalClient


def deploy_service(version: str) -> str:
    """Send a build to production."""
    return f"deployed {version}"


agent = Agent(
    name="release_bot",
    model="gemini-2.5-flash",
    instruction="Ship the build you are asked to ship. Report what the tool said.",
    tools=[ApprovalTool(deploy_service)],  # asks for confirmation, answered from Slack
)


async def main() -> str:
    """Ask for 1.4.2 in production; the run pauses until someone decides in Slack."""
    runner = InMemoryRunner(agent, app_name="releases")
    session = await runner.session_service.create_session(app_name="releases", user_id="dave")
    async with ApprovalClient() as approvals:  # APPROVAL_URL and APPROVAL_API_TOKEN
        events = await run_with_approvals(
            runner, "Ship 1.4.2", approvals, user_id="dave", session_id=session.id, priority="high"
        )
    reply = events[-1].content
    return reply.parts[0].text or "" if reply and reply.parts else ""


if __name__ == "__main__":
    print(asyncio.run(main()))
