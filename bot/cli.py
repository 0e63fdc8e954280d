"""`approval-bot` subcommands: serve the bot, or read and decide on the same store."""

from __future__ import annotations

import argparse
import asyncio
import csv
import io
import json
import logging
import os
import re
import sys
import time
from collections.abc import Sequence
from datetime import timedelta
from pathlib import Path
from typing import Any

from bot import edge, mcp_server, policy_commands
from bot.adapters import claude_code
from bot.app import BOT, create_app, queued_topics
from bot.channel_names import channel_label, known_names
from bot.config import ConfigError, Settings
from bot.dev import demo, run_dev
from bot.errors import BotError, NotFound
from bot.models import Status, format_time, utcnow
from bot.policy import Routing
from bot.service import ApprovalService
from bot.slack.poster import SLACK_TOPIC
from bot.slack.surface import SlackSurface
from bot.store import is_postgres_url, open_store

__all__ = ["main", "parse_span"]

log = logging.getLogger("bot")


def parse_span(text: str) -> timedelta:
    """`90s`, `15m`, `12h`, `1d`, `2w` → a timedelta."""
    match = re.fullmatch(r"\s*(\d+)\s*([smhdw])\s*", text)
    if not match:
        raise argparse.ArgumentTypeError(f"{text!r} is not a span like 30m, 12h, 1d or 2w")
    unit = {"s": "seconds", "m": "minutes", "h": "hours", "d": "days", "w": "weeks"}
    return timedelta(**{unit[match[2]]: int(match[1])})


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="approval-bot", description="A Slack approval gate for AI agents' tool calls."
    )
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    serve = sub.add_parser("serve", help="run the bot: agent API, Slack events, timers")
    serve.add_argument("--host", default=None, help="interface to listen on (127.0.0.1)")
    serve.add_argument("--port", type=int, default=None, help="port to listen on (3000)")
    serve.add_argument("--socket-mode", action="store_true", help="receive Slack over Socket Mode")
    serve.add_argument(
        "--insecure-no-auth",
        action="store_true",
        help="accept agent calls without APPROVAL_API_TOKEN (local experiments only)",
    )

    listing = sub.add_parser("list", help="list approvals, newest first")
    listing.add_argument("--status", choices=[s.value for s in Status])
    listing.add_argument("--limit", type=int, default=50)
    listing.add_argument("--format", choices=["table", "json"], default="table")

    decide = sub.add_parser("decide", help="approve or reject a pending approval")
    decide.add_argument("id", help="the approval id (apr_…)")
    verdict = decide.add_mutually_exclusive_group(required=True)
    verdict.add_argument("--approve", action="store_true")
    verdict.add_argument("--reject", action="store_true")
    decide.add_argument("--comment", help="why; shown to the agent and on the card")
    decide.add_argument("--as", dest="who", default="cli", help="who decides (recorded)")

    dev = sub.add_parser("dev", help="run the bot with a local Slack workspace in the browser")
    dev.add_argument("--port", type=int, default=None, help="port on 127.0.0.1 (3000)")

    example = sub.add_parser("demo", help="send three example requests to a running bot and wait")
    example.add_argument("--url", help="the bot (APPROVAL_URL, else http://127.0.0.1:3000)")
    example.add_argument("--token", help="the agent token (APPROVAL_API_TOKEN)")

    mcp = sub.add_parser("mcp", help="serve the request_approval tool to MCP clients")
    mcp_server.add_arguments(mcp)

    hook = sub.add_parser("hook", help="answer an agent's permission hook from Slack")
    agents = hook.add_subparsers(dest="agent", required=True, metavar="AGENT")
    claude_code.add_arguments(
        agents.add_parser(
            "claude-code",
            help="Claude Code's PreToolUse command hook: the hook input on stdin, the decision "
            "on stdout",
        )
    )

    policy_commands.add_arguments(sub.add_parser("policy", help="check or try a routing file"))

    audit = sub.add_parser("audit", help="print the audit trail")
    audit.add_argument("--since", type=parse_span, default=parse_span("1d"))
    audit.add_argument("--format", choices=["json", "csv"], default="json")
    return parser


def _on_service(settings: Settings, work: Any, *, cards: bool = False) -> Any:
    """`await work(service)` on the bot's existing database (never a new, empty one: `list` run
    in the wrong directory would create it). With `cards`, what `work` changes is queued for
    the running bot's Slack cards too."""
    if not is_postgres_url(settings.db) and not Path(settings.db).exists():
        raise ConfigError(
            f"no database at {settings.db} here; run where the bot runs, or set APPROVAL_DB"
        )
    return asyncio.run(_with_service(settings, work, cards=cards))


async def _with_service(settings: Settings, work: Any, *, cards: bool = False) -> Any:
    states, updates = queued_topics(settings)
    if cards and SLACK_TOPIC not in updates:
        updates.append(SLACK_TOPIC)
    store = open_store(settings.db, outbox_topics=states, update_topics=updates)
    await store.open()
    try:
        return await work(ApprovalService(store, default_channel=settings.channel))
    finally:
        await store.close()


def _print_list(args: argparse.Namespace, settings: Settings) -> int:
    async def work(service: ApprovalService) -> list[Any]:
        status = Status(args.status) if args.status else None
        page = await service.find(status=status, limit=args.limit)
        return page.items

    items = _on_service(settings, work)
    if args.format == "json":
        print(json.dumps([a.to_wire() for a in items], indent=2))
        return 0
    rows = [("ID", "STATUS", "TOOL", "CHANNEL", "CREATED", "DECIDED BY")]
    names = known_names(items)
    for a in items:
        who = a.decision.decided_by_name or a.decision.decided_by if a.decision else ""
        channel = channel_label(a, names)
        rows.append((a.id, a.status.value, a.tool_name, channel, format_time(a.created_at), who))
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    for row in rows:
        print("  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True)))
    return 0


async def _has_slack_card(service: ApprovalService, approval_id: str) -> bool:
    """Whether a bot with Slack serves this approval, so its card must follow a decision made
    here: the card was posted (or sent, or refused), or Slack work waits in the outbox, its
    own post among it. The CLI needs no Slack token for that (`approval-bot dev` makes its own
    up): it queues the card's work and the running bot delivers it. A database no Slack bot
    serves gets none, as nothing would ever deliver it."""
    try:
        slack = (await service.get(approval_id)).slack
    except NotFound:
        return False  # `decide` says so
    if slack.ts or slack.posting or slack.error:
        return True
    return await service.store.outbox_pending(SLACK_TOPIC) > 0


def _decide(args: argparse.Namespace, settings: Settings) -> int:
    async def work(service: ApprovalService) -> Any:
        return await service.decide(
            args.id,
            approved=args.approve,
            decided_by=args.who,
            decided_by_name=args.who,
            comment=args.comment,
        )

    has_card = _on_service(settings, lambda service: _has_slack_card(service, args.id))
    approval = _on_service(settings, work, cards=has_card)
    print(f"{approval.id} {approval.status.value} by {args.who}")
    return 0


def _audit(args: argparse.Namespace, settings: Settings) -> int:
    async def work(service: ApprovalService) -> Any:
        return await service.store.events_between(utcnow() - args.since)

    rows = [event.to_wire() for event in _on_service(settings, work)]
    if args.format == "json":
        print(json.dumps(rows, indent=2))
        return 0
    out = io.StringIO()
    fields = ["id", "at", "approvalId", "kind", "status", "actor", "argsBefore", "argsAfter"]
    writer = csv.DictWriter(out, fieldnames=[*fields, "detail"], extrasaction="ignore")
    writer.writeheader()
    for row in rows:
        writer.writerow(
            {
                **row,
                **{k: json.dumps(row[k]) for k in ("argsBefore", "argsAfter", "detail")},
            }
        )
    sys.stdout.write(out.getvalue())
    return 0


def _serve(args: argparse.Namespace, settings: Settings) -> int:
    settings.require("slack_bot_token", why="for serve")
    if args.socket_mode:
        settings.require("slack_app_token", why="for --socket-mode")
    else:
        settings.require("slack_signing_secret", why="in HTTP mode (or use --socket-mode)")
    if not args.insecure_no_auth:
        settings.require("api_token", why="for serve (or pass --insecure-no-auth)")
    elif settings.api_token is None:
        log.warning("agent API open without a token (--insecure-no-auth)")
    app = create_app(settings, extensions=[SlackSurface(settings, socket_mode=args.socket_mode)])
    routing = app[BOT].service.router
    if not settings.channel and not (isinstance(routing, Routing) and routing.default_channel):
        raise ConfigError(
            "APPROVAL_CHANNEL must be set for serve, or default_channel in the routing file"
        )
    listening = f"approval-bot listening on http://{settings.host}:{settings.port}"
    edge.run(
        app,
        settings.host,
        settings.port,
        ready=lambda: print(listening, flush=True),  # once the store opened and Slack answered
        shutdown_timeout=5,
        access_log_class=edge.AccessLog,
    )
    return 0


def _dev(args: argparse.Namespace, settings: Settings) -> int:
    return run_dev(settings)


def _demo(args: argparse.Namespace, settings: Settings) -> int:
    return demo(args.url or settings.url, args.token or settings.api_token)


def _hook(args: argparse.Namespace, settings: Settings) -> int:
    return claude_code.main(args, args.url or settings.url, settings.api_token)


def _mcp(args: argparse.Namespace, settings: Settings) -> int:
    try:
        mcp_server.run(
            "http" if args.http else "stdio",
            host=args.host or mcp_server.DEFAULT_HOST,
            port=mcp_server.DEFAULT_PORT if args.port is None else args.port,
            wait=args.wait,
            url=args.url or settings.url,
            token=settings.api_token,
        )
    except (ModuleNotFoundError, ValueError) as exc:  # the extra is missing, or a bad --wait
        print(f"approval-bot mcp: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        pass
    return 0


def _policy(args: argparse.Namespace, settings: Settings) -> int:
    return policy_commands.run(args)


COMMANDS = {
    "serve": _serve,
    "dev": _dev,
    "demo": _demo,
    "mcp": _mcp,
    "hook": _hook,
    "list": _print_list,
    "decide": _decide,
    "audit": _audit,
    "policy": _policy,
}


class LogLines(logging.Formatter):
    """`2026-12-06 04:21:39,388 INFO bot.http: …`, the date formatted once a second, not for
    every line: at hundreds of requests a second, each with its access line, that adds up."""

    def __init__(self) -> None:
        super().__init__("%(asctime)s %(levelname)s %(name)s: %(message)s")
        self._second = -1
        self._date = ""

    def formatTime(self, record: logging.LogRecord, datefmt: str | None = None) -> str:
        second = int(record.created)
        if second != self._second:
            self._second, self._date = (
                second,
                time.strftime("%Y-%m-%d %H:%M:%S", self.converter(second)),
            )
        return f"{self._date},{int(record.msecs):03d}"


def configure_logging() -> None:
    """INFO and up to stderr, a line each. The records leave out the thread, process and
    calling line (logging's documented optimisations): no line shows them."""
    logging.logThreads = logging.logProcesses = logging.logMultiprocessing = False
    logging._srcfile = None
    handler = logging.StreamHandler()
    handler.setFormatter(LogLines())
    logging.basicConfig(level=logging.INFO, handlers=[handler])


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the `approval-bot` console script."""
    args = _parser().parse_args(argv)
    configure_logging()
    settings = None
    try:
        settings = Settings.load(host=getattr(args, "host", None), port=getattr(args, "port", None))
        status = COMMANDS[args.command](args, settings)
        sys.stdout.flush()  # here, so a reader that stopped early is seen below
        return status
    except BrokenPipeError:
        # `approval-bot audit | head`: the reader has all it wanted; say nothing more to it
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 0
    except ConfigError as exc:
        print(f"approval-bot: configuration: {exc}", file=sys.stderr)
        return 2
    except BotError as exc:
        # Agents and Slack users never see where the database is; whoever ran this command
        # chose it, and needs to know which file is locked (never a URL: it may hold a password).
        where = ""
        if settings is not None and "database" in exc.message and "://" not in settings.db:
            where = f" (APPROVAL_DB={settings.db})"
        print(f"approval-bot: {exc.code}: {exc.message}{where}", file=sys.stderr)
        return 1
