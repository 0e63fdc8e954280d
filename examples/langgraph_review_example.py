"""LangGraph's "review tool calls" graph, its human review answered in Slack.

The graph is the guide's own: `human_review_node` asks with
`interrupt({"question": ..., "tool_call": ...})` and reads `{"action": "continue" | "update" |
"feedback", "data": ...}`. Start the bot (`approval-bot dev`), export APPROVAL_URL and
APPROVAL_API_TOKEN, run `python examples/langgraph_review_example.py` and decide on the card.
"""

from __future__ import annotations

import asyncio
import uuid
from typing import Any, Literal

from langchain_core.language_models.fake_chat_models import GenericFakeChatModel
from langchain_core.messages import AIMessage
from langchain_core.tools import tool
from langgraph.checkpoint.memory import MemorySaver
from langgraph.graph import END, START, MessagesState, StateGraph
from langgraph.types import Command, interrupt

from bot.adapters.langgraph import REVIEW_TOOL_CALLS, run_with_approvals
from bot.sdk import ApprovalClient


@tool
def weather_search(city: str) -> str:
    """Search for the weather"""
    return f"Sunny in {city}!"


class ScriptedModel(GenericFakeChatModel):
    """An offline stand-in for a chat model: use `ChatAnthropic(...)` for a real one."""

    def bind_tools(self, tools: Any, **kwargs: Any) -> ScriptedModel:
        return self


def offline_model() -> ScriptedModel:
    """A model that looks up the weather in sf, then sums up what the tool said."""
    search = {
        "id": "call_" + uuid.uuid4().hex[:12],
        "name": "weather_search",
        "args": {"city": "sf"},
    }
    return ScriptedModel(messages=iter([AIMessage("", tool_calls=[search]), AIMessage("Done.")]))


def build_graph(model: Any) -> Any:
    def call_llm(state: MessagesState) -> dict[str, Any]:
        return {"messages": [model.invoke(state["messages"])]}

    def human_review_node(state: MessagesState) -> Command[Literal["call_llm", "run_tool"]]:
        last_message = state["messages"][-1]
        tool_call = last_message.tool_calls[-1]
        human_review = interrupt({"question": "Is this correct?", "tool_call": tool_call})
        review_action = human_review["action"]
        review_data = human_review.get("data")
        if review_action == "continue":
            return Command(goto="run_tool")
        if review_action == "update":
            updated_message = {
                "role": "ai",
                "content": last_message.content,
                "tool_calls": [
                    {"id": tool_call["id"], "name": tool_call["name"], "args": review_data}
                ],
                "id": last_message.id,
            }
            return Command(goto="run_tool", update={"messages": [updated_message]})
        tool_message = {
            "role": "tool",
            "content": review_data,
            "name": tool_call["name"],
            "tool_call_id": tool_call["id"],
        }
        return Command(goto="call_llm", update={"messages": [tool_message]})

    def run_tool(state: MessagesState) -> dict[str, Any]:
        new_messages = []
        for tool_call in state["messages"][-1].tool_calls:
            result = weather_search.invoke(tool_call["args"])
            new_messages.append(
                {
                    "role": "tool",
                    "name": tool_call["name"],
                    "content": result,
                    "tool_call_id": tool_call["id"],
                }
            )
        return {"messages": new_messages}

    def route_after_llm(state: MessagesState) -> Literal["__end__", "human_review_node"]:
        return "human_review_node" if state["messages"][-1].tool_calls else END

    builder = StateGraph(MessagesState)
    builder.add_node(call_llm)
    builder.add_node(run_tool)
    builder.add_node(human_review_node)
    builder.add_edge(START, "call_llm")
    builder.add_conditional_edges("call_llm", route_after_llm)
    builder.add_edge("run_tool", "call_llm")
    return builder.compile(checkpointer=MemorySaver())


async def main() -> None:
    graph = build_graph(offline_model())
    config = {"configurable": {"thread_id": "weather-1"}}
    request = {"messages": [{"role": "user", "content": "what's the weather in sf?"}]}

    async with ApprovalClient() as client:  # APPROVAL_URL and APPROVAL_API_TOKEN
        result = await run_with_approvals(
            graph, request, config, client, interrupts=REVIEW_TOOL_CALLS
        )

    for message in result["messages"]:
        print(f"{message.type}: {message.content}")


if __name__ == "__main__":
    asyncio.run(main())
