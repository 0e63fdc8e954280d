"""Adapters that put agent frameworks' tool approvals through the approval bot.

One module per framework, each imported on its own and only with that framework installed
(`pip install 'approval-bot[langgraph]'` and so on); importing this package imports none:

    bot.adapters.langgraph       LangGraph: run a graph, answering its `HumanInTheLoopMiddleware`,
                                 agent-inbox and other interrupts (`run_with_approvals`)
    bot.adapters.langchain       those interrupts' values read, and their resume values built
    bot.adapters.langgraph_interrupts   other shapes (`InterruptMapping`), and those of
                                 LangGraph's documents (`REVIEW_TOOL_CALLS`, `TOOL_PARAMETERS`)
    bot.adapters.openai_agents   OpenAI Agents SDK: `result.interruptions`
    bot.adapters.pydantic_ai     Pydantic AI: `DeferredToolRequests`
    bot.adapters.autogen         AutoGen (ag2): an `approval_required` tool middleware
    bot.adapters.google_adk      Google ADK: `adk_request_confirmation` answered (`ApprovalTool`)
    bot.adapters.agent_framework Microsoft Agent Framework: function approval requests
    bot.adapters.claude_agent    Claude Agent SDK: a `can_use_tool` callback (`slack_permission`)
                                 and a `PreToolUse` hook that defers long waits (`slack_hook`)
    bot.adapters.strands         Strands Agents: a `BeforeToolCallEvent` hook (`SlackApproval`)
    bot.adapters.claude_code     Claude Code: `approval-bot hook claude-code`, a PreToolUse
                                 command hook (no package needed)

Frameworks that call plain functions as tools need no adapter: `bot.sdk.requires_approval`
gates the function (for LangChain, put `@tool` above it). MCP clients use `approval-bot mcp`
(`bot.mcp_server`).
"""

__all__: list[str] = []
