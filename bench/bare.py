"""The reference for `submissions` all at once: a bare aiohttp app answering the same
`POST /v1/approvals` (its body read as JSON, 201 with a small record), served on the event
loop the bot serves on with the same listen queue, and nothing else: no token, no checks,
no store, no card, no access log. What it reaches on the bench's harness is what serving
the requests costs before the bot does anything with them.

`python -m bench.bare PORT` prints a line once it listens, and serves until killed.
"""

from __future__ import annotations

import asyncio
import secrets
import sys

from aiohttp import web

from bot.edge import LISTEN_QUEUE, run_on_serve_loop

__all__ = ["LISTENING", "serve"]

LISTENING = "listening"


async def _submit(request: web.Request) -> web.Response:
    body = await request.json()
    approval_id = "apr_" + secrets.token_hex(10)
    record = {"id": approval_id, "status": "pending", "toolName": body["toolName"]}
    return web.json_response(record, status=201)


async def serve(port: int) -> None:
    """Serve the bare app on 127.0.0.1:`port` until cancelled."""
    app = web.Application()
    app.router.add_post("/v1/approvals", _submit)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", port, backlog=LISTEN_QUEUE).start()
    print(LISTENING, flush=True)
    try:
        await asyncio.Event().wait()
    finally:
        await runner.cleanup()


if __name__ == "__main__":
    run_on_serve_loop(serve(int(sys.argv[1])))
