"""An MCP client asks for approval: it starts `approval-bot mcp` and calls `request_approval`.

Start the bot (`approval-bot dev`), export APPROVAL_URL and APPROVAL_API_TOKEN, then run
`python examples/mcp_example.py` and decide on the card.
"""

from __future__ import annotations

import asyncio
import os
import sys

from mcp import ClientSession, StdioServerParameters
from mcp.client.stdio import stdio_client

# The same server as `approval-bot mcp`; it reads APPROVAL_URL and APPROVAL_API_TOKEN.
SERVER = StdioServerParameters(
    command=sys.executable, args=["-m", "bot.mcp_server"], env=dict(os.environ)
)


async def main() -> None:
    request = {
        "toolName": "deploy_service",
        "args": {"version": "1.4.2"},
        "prompt": "Ship 1.4.2 to production?",
        "priority": "high",
    }
    async with stdio_client(SERVER) as (read, write), ClientSession(read, write) as session:
        await session.initialize()
        while True:
            result = await session.call_tool("request_approval", request)
            if result.is_error:
                raise SystemExit(result.content[0].text)
            answer = result.structured_content
            if answer["status"] != "pending":
                break
            request["toolCallId"] = answer["toolCallId"]  # keep waiting on the same approval

    print(answer["note"])
    if answer["approved"]:
        print(f"deploying with {answer['approvedArgs']}")


if __name__ == "__main__":
    asyncio.run(main())
