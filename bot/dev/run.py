"""`approval-bot dev` and `approval-bot demo`: the bot with a local workspace on one port, and
three example requests sent to a running bot."""

from __future__ import annotations

import asyncio
import json
import secrets
import shutil
import sys
from pathlib import Path
from typing import Any, TextIO

from aiohttp import web

from bot import edge
from bot.app import BOT, create_app
from bot.channel_names import channel_label, known_names
from bot.config import ConfigError, Settings
from bot.dev.examples import EXAMPLES
from bot.dev.kept import DevFiles, WorkspaceKeeper, kept_token, load_workspace
from bot.dev.workspace import SLACK_API_PREFIX, DevWorkspace
from bot.models import Approval
from bot.policy import Routing
from bot.sdk import ApprovalClient, ApprovalError, ApprovalUnavailable
from bot.service import Router
from bot.slack.surface import SlackSurface

__all__ = ["DEV", "banner", "create_dev_app", "demo", "dev_settings", "run_demo", "run_dev"]

#: the workspace extension of a dev app: `app[DEV].workspace` is the emulated Slack
DEV: web.AppKey[DevWorkspace] = web.AppKey("dev_workspace", DevWorkspace)

DEFAULT_CHANNEL = "C0OPS"


def dev_settings(base: Settings, *, port: int | None = None) -> Settings:
    """`base` made local: fresh Slack secrets, the Web API on this app, tokens filled in."""
    port = base.port if port is None else port
    if port == 0:
        raise ConfigError("approval-bot dev needs a fixed port: pass --port N with N > 0")
    origin = f"http://127.0.0.1:{port}"
    values: dict[str, Any] = base.model_dump()
    values.update(
        host="127.0.0.1",
        port=port,
        url=origin,
        slack_bot_token="xoxb-dev-" + secrets.token_hex(12),
        slack_signing_secret=secrets.token_hex(32),
        slack_app_token=None,
        slack_api_url=origin + SLACK_API_PREFIX,
        api_token=base.api_token or secrets.token_urlsafe(24),
        admin_token=base.admin_token or secrets.token_urlsafe(24),
        channel=base.channel or DEFAULT_CHANNEL,
    )
    return Settings.model_validate(values)


def create_dev_app(settings: Settings, *, router: Router | None = None) -> web.Application:
    """The bot, the emulated Slack it talks to, and the workspace page, as one app. The
    workspace is the one kept beside the database by the last run, and is kept there again."""
    kept = DevFiles.beside(settings.db).workspace
    surface = SlackSurface(settings, verify_on_start=False)
    workspace = DevWorkspace(settings, workspace=load_workspace(kept))
    app = create_app(settings, router=router, extensions=[surface, workspace])
    app[DEV] = workspace
    WorkspaceKeeper(workspace.workspace, kept).install(app)
    return app


def shell_command(name: str = "approval-bot") -> str:
    """How to run this package's console script `name` from any terminal: its bare name when
    it is on PATH, else its full path in the environment running now (`…/.venv/bin/…`)."""
    here = Path(sys.executable).parent / name
    if shutil.which(name) == str(here) or not here.exists():
        return name
    return str(here)


def routing_words(settings: Settings, app: web.Application | None = None) -> str:
    """Which routing file the bot uses, and how many rules it has."""
    if not settings.config:
        return "no routing file (approvals.toml or APPROVAL_CONFIG)"
    router = app[BOT].service.router if app is not None else None
    rules = len(router.rules) if isinstance(router, Routing) else None
    counted = "" if rules is None else f" ({rules} rule{'' if rules == 1 else 's'})"
    return f"routing {settings.config}{counted}"


def banner(settings: Settings, app: web.Application | None = None) -> str:
    """What `approval-bot dev` prints once it listens: where to look, and the agent token."""
    workspace = app[DEV] if app is not None else None
    channel = settings.channel or DEFAULT_CHANNEL
    if workspace is not None and channel in workspace.workspace.channels:
        channel = "#" + workspace.workspace.channels[channel].name
    demo = f"APPROVAL_API_TOKEN={settings.api_token} {shell_command()} demo"
    return "\n".join(
        [
            "approval-bot dev: a local Slack workspace with the bot in it",
            "",
            f"  workspace    {settings.url}",
            f"  agent API    {settings.url}/v1",
            f"  agent token  {settings.api_token}",
            "",
            f"  try it       {demo}",
            "",
            f"database {settings.db} · {routing_words(settings, app)} · default channel {channel}",
            "Ctrl-C stops",
        ]
    )


def run_dev(settings: Settings, *, router: Router | None = None) -> int:
    """Serve the dev app on 127.0.0.1 until interrupted, with the agent token of the last run
    (kept beside the database) unless `APPROVAL_API_TOKEN` names one."""
    if settings.api_token is None:
        token = kept_token(DevFiles.beside(settings.db).token)
        settings = settings.model_copy(update={"api_token": token})
    dev = dev_settings(settings)
    app = create_dev_app(dev, router=router)

    def announce() -> None:
        print(banner(dev, app), flush=True)

    try:
        edge.run(app, "127.0.0.1", dev.port, ready=announce, access_log=None, shutdown_timeout=3)
    except OSError as exc:
        reason = exc.strerror or str(exc)
        print(
            f"approval-bot dev: cannot listen on 127.0.0.1:{dev.port}: {reason} "
            "(another bot running? pick another --port)",
            file=sys.stderr,
        )
        return 1
    return 0


def _decision_line(approval: Approval) -> str:
    decision = approval.decision
    line = f"  {approval.id}  {approval.tool_name:<15} {approval.status.value}"
    if decision is None:
        return line
    who = decision.decided_by_name or decision.decided_by
    line += f" ({decision.action.value}) by {who}"
    if decision.comment:
        line += f": {decision.comment}"
    if decision.approved_args is not None:
        line += f"\n      runs with {json.dumps(decision.approved_args, ensure_ascii=False)}"
    return line


async def run_demo(url: str, token: str | None, *, out: TextIO = sys.stdout) -> int:
    """Submit the three example calls, print their ids, then each decision as it comes."""
    async with ApprovalClient(url, token=token) as client:
        try:
            approvals = [
                await client.submit(item.tool_name, item.args, **item.fields) for item in EXAMPLES
            ]
        except ApprovalUnavailable as exc:
            print(f"approval-bot demo: {exc.message}; is `approval-bot dev` running?", file=out)
            return 1
        except ApprovalError as exc:
            hint = " (pass --token, or set APPROVAL_API_TOKEN)" if exc.status == 401 else ""
            print(f"approval-bot demo: {exc.code}: {exc.message}{hint}", file=out)
            return 1
        print(f"submitted {len(approvals)} requests to {client.url}:", file=out)
        # read again: a card posted by now names its channel as Slack resolved it
        approvals = [await client.get(a.id) for a in approvals]
        names = known_names(approvals)
        for approval in approvals:
            where = channel_label(approval, names)
            line = f"  {approval.id}  {approval.tool_name:<15} {approval.priority.value:<9} {where}"
            print(line, file=out)
        print(f"waiting for decisions; decide them at {client.url}", file=out, flush=True)
        try:
            for waiting in asyncio.as_completed([client.wait(a.id) for a in approvals]):
                print(_decision_line(await waiting), file=out, flush=True)
        except ApprovalError as exc:
            print(f"approval-bot demo: {exc.code}: {exc.message}", file=out)
            return 1
    return 0


def demo(url: str, token: str | None) -> int:
    """`approval-bot demo`: `run_demo` until done or interrupted."""
    try:
        return asyncio.run(run_demo(url, token))
    except KeyboardInterrupt:
        return 130
