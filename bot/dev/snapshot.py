"""What the workspace page draws, as one JSON document: the directory, the recent messages and
threads of the channels the chosen user is in, and what only they see (ephemeral notes, modals,
App Home)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from bot.dev.agents import AgentRun
from bot.dev.examples import Example
from bot.devslack import Message, View, Workspace

__all__ = ["MESSAGES_PER_CHANNEL", "snapshot"]

JSON = dict[str, Any]

#: the newest top-level messages the page gets per channel
MESSAGES_PER_CHANNEL = 100


def _message(message: Message) -> JSON:
    return {**message.to_slack(), "channel": message.channel}


def _view(view: View) -> JSON:
    return {**view.to_slack(), "errors": dict(view.errors)}


def _channel(ws: Workspace, channel_id: str) -> tuple[list[JSON], dict[str, list[JSON]]]:
    """Top-level messages (oldest first) and the replies of each of their threads."""
    everything = ws.messages.get(channel_id, [])
    top = [m for m in everything if not m.is_reply or m.reply_broadcast][-MESSAGES_PER_CHANNEL:]
    shown = {m.ts for m in top if not m.is_reply}
    threads: dict[str, list[JSON]] = {}
    for message in everything:
        if message.is_reply and message.thread_ts in shown:
            threads.setdefault(str(message.thread_ts), []).append(_message(message))
    return [_message(m) for m in top], threads


def snapshot(
    ws: Workspace, user: str, runs: Sequence[AgentRun], examples: Sequence[Example]
) -> JSON:
    """The page's state as `user` sees it, numbered with the feed's last change.

    As in Slack's sidebar, a member sees the channels they are in (private ones only that
    way) and their direct messages with the bot once it wrote to them.
    """
    channels = [
        c
        for c in ws.channels.values()
        if (not c.is_im and user in c.members) or (c.user == user and ws.messages[c.id])
    ]
    messages: dict[str, list[JSON]] = {}
    threads: dict[str, dict[str, list[JSON]]] = {}
    for channel in channels:
        messages[channel.id], threads[channel.id] = _channel(ws, channel.id)
    home = ws.home(user)
    return {
        "seq": ws.feed.last_seq,
        "me": user,
        "team": {"id": ws.team_id, "name": ws.team_name},
        "bot": {"id": ws.bot_user_id, "name": ws.users[ws.bot_user_id].real_name},
        "users": [
            {"id": u.id, "name": u.name, "realName": u.real_name, "isBot": u.is_bot}
            for u in ws.users.values()
        ],
        "usergroups": [{"id": g.id, "handle": g.handle} for g in ws.usergroups.values()],
        "channels": [
            {"id": c.id, "name": c.name, "isIm": c.is_im, "isPrivate": c.private, "user": c.user}
            for c in channels
        ],
        "messages": messages,
        "threads": threads,
        "ephemerals": [e.to_slack() for e in ws.ephemerals_for(user)],
        "modals": [_view(v) for v in ws.open_modals(user)],
        "home": _view(home) if home is not None else None,
        "agents": [run.to_json() for run in runs],
        "examples": [example.to_json() for example in examples],
    }
