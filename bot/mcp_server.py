"""An MCP server with one tool, `request_approval`: a human decides in Slack before an agent acts.

    approval-bot mcp                        stdio, for desktop and IDE clients
    approval-bot mcp --http [--port 3001]   streamable HTTP at http://127.0.0.1:3001/mcp

The tool takes the fields of `POST /v1/approvals`, submits them through `ApprovalClient`
(APPROVAL_URL, APPROVAL_API_TOKEN) and answers with the approval record as JSON, with the
decision's `approved`, `approvedArgs`, `decidedBy` and `comment` on top and a `note` for the
model. Many clients give up on a tool call after about 60 s, so it waits at most `wait` seconds
(50): still pending, it answers with the pending record, and calling again with the same
`toolCallId` (and arguments) resumes the same approval. Anything but a record of the call asked
about (a refused field, a `toolCallId` taken by another call, a bot answering about another
call) is an error result naming what is wrong, never a decision the model could act on.

Works with the MCP SDK 2 (`MCPServer`) and 1 (`FastMCP`), imported only when a server is built,
so the rest of the bot never needs it.
"""

from __future__ import annotations

import argparse
import importlib
import sys
from collections.abc import Mapping, Sequence
from typing import Annotated, Any, Literal, Unpack

from pydantic import Field

from bot.models import Action, Approval
from bot.sdk.client import ApprovalClient
from bot.sdk.errors import ApprovalError, ApprovalTimeout, refusal
from bot.sdk.wire import SubmitFields, new_tool_call_id

__all__ = [
    "DEFAULT_HOST",
    "DEFAULT_PORT",
    "DEFAULT_WAIT",
    "add_arguments",
    "approval_result",
    "create_server",
    "main",
    "request_approval",
    "run",
]

DEFAULT_HOST = "127.0.0.1"
DEFAULT_PORT = 3001
#: how long one tool call waits for a human: under the ~60 s many MCP clients allow a call
DEFAULT_WAIT = 50.0

Transport = Literal["stdio", "http"]

TOOL_DESCRIPTION = """\
Ask a human to approve a tool call in Slack before you run it, and wait for the decision.
Run the tool only when `approved` is true, and then with exactly `approvedArgs`: the complete
arguments, which the reviewer may have edited (an argument they leave out is not passed).
Give `argsSchema` (the tool's JSON schema) so the reviewer cannot approve arguments it cannot
take. When `approved` is false, do not run it; `comment` says why.
When `status` is still "pending", call request_approval again with the same toolName, args
and toolCallId to keep waiting for the same approval. An error is no approval: do not run the
tool; it names the field to fix, or says the toolCallId belongs to another call (use a new one)."""

INSTRUCTIONS = (
    "Call request_approval before any dangerous or irreversible action and follow its answer."
)


async def request_approval(
    client: ApprovalClient,
    tool_name: str,
    args: Mapping[str, Any],
    *,
    wait: float = DEFAULT_WAIT,
    **fields: Unpack[SubmitFields],
) -> dict[str, Any]:
    """Submit (or resume, by `tool_call_id`) an approval and wait up to `wait` seconds for it."""
    fields["tool_call_id"] = fields.get("tool_call_id") or new_tool_call_id()
    approval = await client.submit(tool_name, args, **fields)
    if approval.is_pending and wait > 0:
        try:
            approval = await client.wait(approval, timeout=wait)
        except ApprovalTimeout as exc:
            approval = exc.approval
    return approval_result(approval, wait)


def approval_result(approval: Approval, waited: float) -> dict[str, Any]:
    """The tool's answer: the decision's main fields and a note for the model, then the record."""
    decision = approval.decision
    return {
        "approved": None if decision is None else decision.approved,
        "approvedArgs": None if decision is None else decision.approved_args,
        "decidedBy": None if decision is None else decision.decided_by,
        "comment": None if decision is None else decision.comment,
        "note": _note(approval, waited),
        **approval.to_wire(),
    }


def _note(approval: Approval, waited: float) -> str:
    """One sentence telling the model what to do next."""
    tool = approval.tool_name
    decision = approval.decision
    if decision is None:
        return (
            f"No decision yet after {waited:g}s: do not run {tool} yet. Call request_approval "
            f'again with the same toolName, args and toolCallId "{approval.tool_call_id}" '
            "to keep waiting for this approval."
        )
    if not decision.approved:
        return f"{refusal(decision, tool)} Do not run it."
    who = decision.decided_by_name or decision.decided_by
    if decision.action is Action.TIMEOUT:
        text = f"Approved automatically when nobody decided in time: run {tool} with approvedArgs."
    elif decision.action is Action.EDIT:
        text = f"Approved by {who} with edited arguments: run {tool} with approvedArgs."
    else:
        text = f"Approved by {who}: run {tool} with approvedArgs."
    return f"{text} Their comment: {decision.comment}" if decision.comment else text


# -- the MCP server --------------------------------------------------------------------------

_Priority = Literal["low", "normal", "high", "critical"]
_OnTimeout = Literal["reject", "approve", "escalate"]
_Decision = Literal["approve", "edit", "reject", "feedback"]


def create_server(
    *,
    url: str | None = None,
    token: str | None = None,
    wait: float = DEFAULT_WAIT,
    host: str = DEFAULT_HOST,
    port: int = DEFAULT_PORT,
) -> Any:
    """The MCP server (`MCPServer`, or `FastMCP` on the SDK 1) offering `request_approval`.

    `url` and `token` default to APPROVAL_URL and APPROVAL_API_TOKEN; `host` and `port` serve
    the HTTP transport.
    """
    if wait < 0:
        raise ValueError(f"wait must be zero or more seconds, not {wait}")
    ApprovalClient(url, token)  # a bad URL fails here, not at the first call
    server_class, tool_error, modern = _sdk()
    where = {} if modern else {"host": host, "port": port}
    server = server_class("approval-bot", instructions=INSTRUCTIONS, log_level="WARNING", **where)

    async def request_approval_tool(
        toolName: Annotated[str, Field(description="The tool you want to run.")],
        args: Annotated[dict[str, Any], Field(description="Its arguments, a JSON object.")],
        prompt: Annotated[str | None, Field(description="One line for the reviewer.")] = None,
        channel: Annotated[str | None, Field(description="Slack channel id or #name.")] = None,
        priority: _Priority | None = None,
        toolCallId: Annotated[
            str | None,
            Field(description="Your id for this call; the same id resumes the same approval."),
        ] = None,
        context: Annotated[str | None, Field(description="Why, or links, for the card.")] = None,
        preview: Annotated[
            dict[str, Any] | None,
            Field(
                description='What the call will change, shown on the card: {"kind": "diff" | '
                '"text" | "markdown", "body": "…"}, at most 64 KiB.'
            ),
        ] = None,
        argsSchema: Annotated[
            dict[str, Any] | None, Field(description="JSON Schema that edits must satisfy.")
        ] = None,
        threadTs: Annotated[str | None, Field(description="Post in this Slack thread.")] = None,
        requester: Annotated[
            dict[str, Any] | None, Field(description='{"agent", "slackUser", "runId"}')
        ] = None,
        timeoutSeconds: Annotated[int | None, Field(ge=1)] = None,
        onTimeout: _OnTimeout | None = None,
        allowedDecisions: list[_Decision] | None = None,
        metadata: dict[str, Any] | None = None,
        batchId: Annotated[
            str | None,
            Field(description="Groups your calls so a reviewer can approve them all at once."),
        ] = None,
    ) -> dict[str, Any]:
        try:
            async with ApprovalClient(url, token) as client:
                return await request_approval(
                    client,
                    toolName,
                    args,
                    wait=wait,
                    tool_call_id=toolCallId,
                    prompt=prompt,
                    channel=channel,
                    priority=priority,
                    context=context,
                    preview=preview,
                    args_schema=argsSchema,
                    thread_ts=threadTs,
                    requester=requester,
                    timeout_seconds=timeoutSeconds,
                    on_timeout=onTimeout,
                    allowed_decisions=allowedDecisions,
                    metadata=metadata,
                    batch_id=batchId,
                )
        except ApprovalError as exc:
            raise tool_error(str(exc)) from exc

    server.add_tool(request_approval_tool, name="request_approval", description=TOOL_DESCRIPTION)
    return server


def _sdk() -> tuple[Any, type[Exception], bool]:
    """The installed MCP SDK's server class and tool error, and whether it is the SDK 2."""
    try:
        modern = importlib.import_module("mcp.server.mcpserver")
        errors = importlib.import_module("mcp.server.mcpserver.exceptions")
        return modern.MCPServer, errors.ToolError, True
    except ModuleNotFoundError:
        pass
    try:
        legacy = importlib.import_module("mcp.server.fastmcp")
        errors = importlib.import_module("mcp.server.fastmcp.exceptions")
    except ModuleNotFoundError as exc:
        raise ModuleNotFoundError(
            "approval-bot mcp needs the MCP SDK: pip install 'approval-bot[mcp]'", name="mcp"
        ) from exc
    return legacy.FastMCP, errors.ToolError, False


def run(
    transport: Transport = "stdio",
    *,
    host: str = DEFAULT_HOST,
    port: int = DEFAULT_PORT,
    wait: float = DEFAULT_WAIT,
    url: str | None = None,
    token: str | None = None,
) -> None:
    """Serve `request_approval` over stdio, or streamable HTTP at http://host:port/mcp."""
    if transport not in ("stdio", "http"):
        raise ValueError(f'transport must be "stdio" or "http", not {transport!r}')
    server = create_server(url=url, token=token, wait=wait, host=host, port=port)
    if transport == "stdio":
        server.run("stdio")
    elif _sdk()[2]:
        server.run("streamable-http", host=host, port=port)
    else:
        server.run("streamable-http")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """The flags of `approval-bot mcp`."""
    parser.add_argument("--http", action="store_true", help="serve streamable HTTP, not stdio")
    parser.add_argument("--host", default=None, help=f"interface for --http ({DEFAULT_HOST})")
    parser.add_argument("--port", type=int, default=None, help=f"port for --http ({DEFAULT_PORT})")
    parser.add_argument(
        "--wait",
        type=float,
        default=DEFAULT_WAIT,
        help=f"seconds one call waits before answering 'pending' ({DEFAULT_WAIT:g})",
    )
    parser.add_argument("--url", help="the bot (APPROVAL_URL, else http://127.0.0.1:3000)")


def main(argv: Sequence[str] | None = None) -> int:
    """`python -m bot.mcp_server [--http] [--port 3001]`: the same as `approval-bot mcp`."""
    from bot.cli import main as cli_main  # the CLI imports this module

    return cli_main(["mcp", *(sys.argv[1:] if argv is None else argv)])


if __name__ == "__main__":
    sys.exit(main())
