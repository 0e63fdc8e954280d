"""Serve the emulated Web API on a real local port."""

from __future__ import annotations

from aiohttp import web

from bot.devslack.api import create_slack_api
from bot.devslack.workspace import Workspace

__all__ = ["start_slack_api"]


async def start_slack_api(
    workspace: Workspace,
    host: str = "127.0.0.1",
    port: int = 0,
    *,
    bot_token: str | None = None,
) -> tuple[web.AppRunner, str]:
    """Start serving; returns the runner (``await runner.cleanup()`` stops it) and the base URL.

    The base URL ends in ``/api/``, ready for ``AsyncWebClient(base_url=...)``; ``port=0`` picks
    a free port. ``workspace.api_url`` is set to it so response_url links resolve.
    """
    runner = web.AppRunner(create_slack_api(workspace, bot_token=bot_token))
    await runner.setup()
    site = web.TCPSite(runner, host, port)
    await site.start()
    bound_port = port
    for address in runner.addresses:
        if isinstance(address, tuple):
            bound_port = int(address[1])
            break
    base_url = f"http://{host}:{bound_port}/api/"
    workspace.api_url = base_url
    return runner, base_url
