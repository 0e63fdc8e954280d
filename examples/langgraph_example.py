"""A LangChain agent whose `deploy_service` calls wait for a decision in Slack.

Start the bot (`approval-bot dev`), export APPROVAL_URL and APPROVAL_API_TOKEN, then run
`python examples/langgraph_example.py` and approve, edit or reject the card.
"""

from __future__ import annotations

import asyncio
import uuid
from typing import Any

from langchain.agents import create_agent
from langchain.agents.middleware import HumanInTheLoopMiddleware
from langchain_core.language_models.fake_chat_models import GenericFakeChatModel
from langchain_core.messages import AIMessage
from langchain_core.tools import tool
from langgraph.checkpoint.memory import InMemorySaver

from bot.adapters.langgraph import run_with_approvals
from bot.sdk import ApprovalClient


@tool
def deploy_service(version: str) -> str:
    """Deploy a build of the service to production."""
    return f"deployed {version}"


class ScriptedModel(GenericFakeChatModel):
    """An offline stand-in for a chat model: use `init_chat_model(...)` for a real one."""

    def bind_tools(self, tools: Any, **kwargs: Any) -> ScriptedModel:
        return self


def offline_model() -> ScriptedModel:
    """A model that asks to deploy 1.4.2, then says it is done."""
    ship = {
        "id": "call_" + uuid.uuid4().hex[:12],
        "name": "deploy_service",
        "args": {"version": "1.4.2"},
    }
    return ScriptedModel(messages=iter([AIMessage("", tool_calls=[ship]), AIMessage("Shipped.")]))


async def main() -> None:
    agent = create_agent(
        offline_model(),
        tools=[deploy_service],
        middleware=[HumanInTheLoopMiddleware(interrupt_on={"deploy_service": True})],
        checkpointer=InMemorySaver(),
    )
    config = {"configurable": {"thread_id": "release-1.4.2"}}
    request = {"messages": [{"role": "user", "content": "Ship 1.4.2 to production."}]}

    async with ApprovalClient() as client:  # APPROVAL_URL and APPROVAL_API_TOKEN
        result = await run_with_approvals(agent, request, config, client, priority="high")

    for message in result["messages"]:
        print(f"{message.type}: {message.content}")


if __name__ == "__main__":
    asyncio.run(main())
