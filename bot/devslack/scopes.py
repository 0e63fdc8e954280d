"""OAuth scopes and event subscriptions: what the app's manifest grants, and what each method needs.

A Web API method called without its scope answers, as Slack does (https://api.slack.com/methods:
each method page lists the scopes it requires), ``{"ok": false, "error": "missing_scope",
"needed": "<scope>", "provided": "<granted scopes, comma-separated>"}``.
By default a ``Workspace`` grants exactly the bot scopes of the repository's ``manifest.yml``
(``oauth_config.scopes.bot``) and delivers only the events it subscribes to
(``settings.event_subscriptions.bot_events``); a test wanting another app passes
``Workspace(scopes=..., bot_events=...)``.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any

import yaml

from bot.devslack.errors import ApiFailure
from bot.devslack.model import Channel

__all__ = [
    "ALL_SCOPES",
    "MANIFEST",
    "AppManifest",
    "channel_scope",
    "check_scope",
    "load_manifest",
    "message_event_type",
]

JSON = dict[str, Any]

#: the app manifest at the root of the repository
MANIFEST = Path(__file__).resolve().parents[2] / "manifest.yml"

#: conversation kind → the word its scopes use (``channels:read``, ``groups:history``…)
_FAMILY = {"public_channel": "channels", "private_channel": "groups", "im": "im", "mpim": "mpim"}

#: message event type per conversation kind (``message.channels`` for a public channel…)
_MESSAGE_EVENTS = {
    "public_channel": "message.channels",
    "private_channel": "message.groups",
    "im": "message.im",
    "mpim": "message.mpim",
}


def _kind(channel: Channel) -> str:
    if channel.is_im:
        return "im"
    return "private_channel" if channel.private else "public_channel"


def channel_scope(channel: Channel, action: str) -> str:
    """The scope reading or writing this kind of conversation needs: ``channels:history``
    for a public channel, ``groups:history`` for a private one, ``im:history`` for a DM."""
    return f"{_FAMILY[_kind(channel)]}:{action}"


def message_event_type(channel: Channel) -> str:
    """The event a message in this conversation arrives as (``message.channels``…)."""
    return _MESSAGE_EVENTS[_kind(channel)]


@dataclass(frozen=True)
class AppManifest:
    """The parts of ``manifest.yml`` the emulator obeys."""

    scopes: frozenset[str]
    bot_events: frozenset[str]


@lru_cache(maxsize=4)
def load_manifest(path: Path = MANIFEST) -> AppManifest:
    """Bot scopes and bot events from an app manifest (read once per path); without one,
    every scope and event the emulator knows."""
    if not path.is_file():
        return AppManifest(ALL_SCOPES, frozenset({"app_home_opened", *_MESSAGE_EVENTS.values()}))
    data = yaml.safe_load(path.read_text()) or {}
    oauth = data.get("oauth_config") or {}
    scopes = (oauth.get("scopes") or {}).get("bot") or []
    settings = data.get("settings") or {}
    events = (settings.get("event_subscriptions") or {}).get("bot_events") or []
    return AppManifest(frozenset(map(str, scopes)), frozenset(map(str, events)))


# -- what each method needs ----------------------------------------------------------------

#: ``(workspace, params) -> scopes`` for methods whose scope depends on their arguments;
#: every scope returned is needed. The workspace is typed loosely to avoid an import cycle.
Needs = Callable[[Any, JSON], list[str]]


def _fixed(*scopes: str) -> Needs:
    return lambda ws, params: list(scopes)


def _by_channel(action: str) -> Needs:
    """The scope for the ``channel`` argument's kind; a public channel's when it is unknown
    (the method itself then answers ``channel_not_found``)."""

    def needs(ws: Any, params: JSON) -> list[str]:
        try:
            channel = ws.channel(str(params.get("channel") or ""))
        except ApiFailure:
            return [f"channels:{action}"]
        return [channel_scope(channel, action)]

    return needs


def _by_types(ws: Any, params: JSON) -> list[str]:
    """``conversations.list`` reads each kind of conversation its ``types`` asks for."""
    types = str(params.get("types") or "public_channel").split(",")
    return [f"{_FAMILY[t.strip()]}:read" for t in types if t.strip() in _FAMILY]


#: scopes a bot token needs per method (methods absent here need none: ``auth.test``,
#: ``chat.getPermalink``, ``views.*``)
METHOD_SCOPES: dict[str, Needs] = {
    "chat.delete": _fixed("chat:write"),
    "chat.postEphemeral": _fixed("chat:write"),
    "chat.postMessage": _fixed("chat:write"),
    "chat.update": _fixed("chat:write"),
    "conversations.history": _by_channel("history"),
    "conversations.info": _by_channel("read"),
    "conversations.join": _fixed("channels:join"),
    "conversations.list": _by_types,
    "conversations.members": _by_channel("read"),
    "conversations.open": _fixed("im:write"),
    "conversations.replies": _by_channel("history"),
    "reactions.add": _fixed("reactions:write"),
    "usergroups.users.list": _fixed("usergroups:read"),
    "users.info": _fixed("users:read"),
}

#: every scope some emulated method can ask for, plus ``chat:write.public``
ALL_SCOPES = frozenset(
    {
        "channels:history",
        "channels:join",
        "channels:read",
        "chat:write",
        "chat:write.public",
        "commands",
        "groups:history",
        "groups:read",
        "im:history",
        "im:read",
        "im:write",
        "mpim:history",
        "mpim:read",
        "reactions:write",
        "usergroups:read",
        "users:read",
    }
)


def needed_scopes(ws: Any, method: str, params: JSON) -> list[str]:
    """The scopes ``method`` needs for these arguments."""
    needs = METHOD_SCOPES.get(method)
    return needs(ws, params) if needs is not None else []


def check_scope(ws: Any, method: str, params: JSON, granted: Iterable[str]) -> None:
    """Refuse a call whose scope was not granted, naming what it needed and what it had."""
    have = set(granted)
    missing = [scope for scope in needed_scopes(ws, method, params) if scope not in have]
    if missing:
        raise ApiFailure("missing_scope", needed=",".join(missing), provided=",".join(sorted(have)))
