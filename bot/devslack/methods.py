"""The Web API methods: each takes parsed parameters and answers Slack's JSON.

A method raises ``ApiFailure`` for the answers Slack gives as ``{"ok": false, "error": …}``;
HTTP concerns (auth, faults, rate limits, recording) live in ``api.py``.
"""

from __future__ import annotations

import base64
import binascii
from collections.abc import Callable
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from typing import Any

from bot.devslack.errors import ApiFailure
from bot.devslack.limits import (
    MAX_BLOCKS_TEXT,
    MAX_UPDATE_TEXT,
    blocks_text_length,
    truncate_message_text,
    validate_message_blocks,
    validate_view,
)
from bot.devslack.model import Channel, Message, View
from bot.devslack.workspace import Workspace

__all__ = ["METHODS", "CallContext", "Method", "check_blocks", "permalink"]

JSON = dict[str, Any]


@dataclass(frozen=True)
class CallContext:
    """What a method may know about the HTTP request: where the emulator is reachable."""

    #: scheme and host of the request, e.g. ``http://127.0.0.1:8888``
    host_url: str
    #: the Web API root the request came through, ending in ``/``, e.g. ``…:8888/api/``
    api_url: str = ""


Method = Callable[[Workspace, JSON, CallContext], JSON]


def _str(params: JSON, name: str, error: str) -> str:
    value = params.get(name)
    if value is None or value == "":
        raise ApiFailure(error)
    return str(value)


def _opt_str(params: JSON, name: str) -> str | None:
    value = params.get(name)
    return None if value is None or value == "" else str(value)


def _flag(params: JSON, name: str) -> bool:
    return params.get(name) in (True, 1, "1", "true", "True")


def _problem_failure(code: str, problems: list[str]) -> ApiFailure:
    messages = [f"[ERROR] {problem}" for problem in problems]
    return ApiFailure(code, errors=problems, response_metadata={"messages": messages})


def check_blocks(blocks: object) -> list[JSON] | None:
    """Message blocks as given, or ``invalid_blocks`` listing every problem, or
    ``msg_blocks_too_long`` past ``MAX_BLOCKS_TEXT`` characters of text in all."""
    if blocks is None:
        return None
    problems = validate_message_blocks(blocks)
    if problems:
        raise _problem_failure("invalid_blocks", problems)
    assert isinstance(blocks, list)
    if blocks_text_length(blocks) > MAX_BLOCKS_TEXT:
        raise ApiFailure("msg_blocks_too_long")
    return blocks


def _check_view(params: JSON, kind: str) -> JSON:
    view = params.get("view")
    if not isinstance(view, dict):
        raise ApiFailure("invalid_arguments", errors=["view: required"])
    problems = validate_view(view)
    if not problems and view.get("type") != kind:
        problems = [f"view.type: must be {kind!r} here"]
    if problems:
        raise _problem_failure("invalid_arguments", problems)
    return view


def permalink(host_url: str, message: Message) -> str:
    """``{host}/archives/C…/p{ts without the dot}``; replies name their thread."""
    link = f"{host_url}/archives/{message.channel}/p{message.ts.replace('.', '')}"
    if message.is_reply:
        link += f"?thread_ts={message.thread_ts}&cid={message.channel}"
    return link


#: the most items one page holds, whatever ``limit`` asks
MAX_PAGE = 1000


def _cursor(offset: int) -> str:
    return base64.b64encode(f"next:{offset}".encode()).decode()


def _offset(params: JSON) -> int:
    """Where a page starts: 0 without a cursor, else what an earlier ``next_cursor`` said."""
    cursor = _opt_str(params, "cursor")
    if cursor is None:
        return 0
    try:
        kind, _, offset = base64.b64decode(cursor, validate=True).decode().partition(":")
        if kind != "next" or not offset.isdigit():
            raise ValueError(cursor)
    except (ValueError, binascii.Error):
        raise ApiFailure("invalid_cursor") from None
    return int(offset)


def _limit(params: JSON) -> int:
    raw = params.get("limit")
    if raw is None or raw == "":
        return 100
    try:
        limit = int(raw)
    except (TypeError, ValueError):
        raise ApiFailure("invalid_limit") from None
    if limit < 1:
        raise ApiFailure("invalid_limit")
    return min(limit, MAX_PAGE)


def _page(items: list[Any], params: JSON, key: str) -> JSON:
    """One page in Slack's cursor pagination: ``next_cursor`` is empty on the last page.

    https://docs.slack.dev/apis/web-api/pagination
    """
    start, limit = _offset(params), _limit(params)
    end = start + limit
    next_cursor = _cursor(end) if end < len(items) else ""
    return {"ok": True, key: items[start:end], "response_metadata": {"next_cursor": next_cursor}}


def _with_has_more(page: JSON) -> JSON:
    """History and replies also say ``has_more``."""
    return {**page, "has_more": bool(page["response_metadata"]["next_cursor"])}


def _channel(ws: Workspace, params: JSON) -> Channel:
    """The ``channel`` argument as the bot sees it (private channels it is not in: not found)."""
    return ws.visible_channel(_str(params, "channel", "channel_not_found"))


def _joined_channel(ws: Workspace, params: JSON) -> Channel:
    """A channel the bot must be in to read, as ``conversations.history`` documents:
    ``not_in_channel``, "Only user tokens can access public channels they are not in"."""
    channel = _channel(ws, params)
    if ws.bot_user_id not in channel.members:
        raise ApiFailure("not_in_channel")
    return channel


# -- auth, users, channels ---------------------------------------------------------------------


def auth_test(ws: Workspace, params: JSON, ctx: CallContext) -> JSON:
    bot = ws.user(ws.bot_user_id)
    return {
        "ok": True,
        "url": f"{ctx.host_url}/",
        "team": ws.team_name,
        "user": bot.name,
        "team_id": ws.team_id,
        "user_id": bot.id,
        "bot_id": ws.bot_id,
        "is_enterprise_install": False,
    }


def users_info(ws: Workspace, params: JSON, ctx: CallContext) -> JSON:
    return {"ok": True, "user": ws.user(_str(params, "user", "user_not_found")).to_slack()}


def usergroups_users_list(ws: Workspace, params: JSON, ctx: CallContext) -> JSON:
    group = ws.usergroup(_str(params, "usergroup", "no_such_subteam"))
    return {"ok": True, "users": list(group.users)}


def conversations_info(ws: Workspace, params: JSON, ctx: CallContext) -> JSON:
    return {"ok": True, "channel": _channel(ws, params).to_slack()}


_CONVERSATION_TYPES = frozenset({"public_channel", "private_channel", "mpim", "im"})


def _kind(channel: Channel) -> str:
    if channel.is_im:
        return "im"
    return "private_channel" if channel.private else "public_channel"


def conversations_list(ws: Workspace, params: JSON, ctx: CallContext) -> JSON:
    """``types`` defaults to public channels; private ones are listed only if the bot is in."""
    types = {t.strip() for t in (_opt_str(params, "types") or "public_channel").split(",")}
    if not types <= _CONVERSATION_TYPES:
        raise ApiFailure("invalid_types")
    channels = [
        c.to_slack()
        for c in ws.channels.values()
        if _kind(c) in types and (not c.is_private or ws.bot_user_id in c.members)
    ]
    return _page(channels, params, "channels")


def conversations_members(ws: Workspace, params: JSON, ctx: CallContext) -> JSON:
    """Member ids, a page at a time (Tier 4): who may decide a card posted in the channel."""
    return _page(list(_channel(ws, params).members), params, "members")


def conversations_open(ws: Workspace, params: JSON, ctx: CallContext) -> JSON:
    users = _str(params, "users", "users_list_not_supplied").split(",")
    if len(users) != 1:
        raise ApiFailure("not_implemented")
    return {"ok": True, "channel": {"id": ws.open_dm(users[0].strip()).id}}


def conversations_join(ws: Workspace, params: JSON, ctx: CallContext) -> JSON:
    """The bot joins a public channel (``channels:join``); a private channel or a DM cannot
    be joined, only invited to. Joining again answers ``already_in_channel`` as a warning."""
    channel = _channel(ws, params)
    if channel.is_private:
        raise ApiFailure("method_not_supported_for_channel_type")
    answer: JSON = {"ok": True}
    if ws.bot_user_id in channel.members:
        answer["warning"] = "already_in_channel"
        answer["response_metadata"] = {"warnings": ["already_in_channel"]}
    ws.join(channel.id, ws.bot_user_id)
    return {**answer, "channel": channel.to_slack()}


def _ts_bound(params: JSON, name: str) -> Decimal | None:
    """``oldest`` or ``latest`` as a number of seconds; Slack answers ``invalid_ts_<name>``
    to one that is not a timestamp."""
    raw = _opt_str(params, name)
    if raw is None:
        return None
    try:
        bound = Decimal(raw)
    except InvalidOperation:
        raise ApiFailure(f"invalid_ts_{name}") from None
    if not bound.is_finite():
        raise ApiFailure(f"invalid_ts_{name}")
    return bound


def _in_window(params: JSON) -> Callable[[Message], bool]:
    """Whether a message falls between ``oldest`` and ``latest``: both bounds exclusive
    unless ``inclusive`` (https://api.slack.com/methods/conversations.history)."""
    oldest, latest = _ts_bound(params, "oldest"), _ts_bound(params, "latest")
    inclusive = _flag(params, "inclusive")

    def within(message: Message) -> bool:
        ts = Decimal(message.ts)
        if oldest is not None and (ts < oldest or (ts == oldest and not inclusive)):
            return False
        return latest is None or ts < latest or (ts == latest and inclusive)

    return within


def _timeline(messages: list[Message], params: JSON) -> list[JSON]:
    """Messages as history and replies show them: metadata only with ``include_all_metadata``
    (https://api.slack.com/metadata/using: "set include_all_metadata to true")."""
    metadata = _flag(params, "include_all_metadata")
    return [m.to_slack(metadata=metadata) for m in messages]


def conversations_history(ws: Workspace, params: JSON, ctx: CallContext) -> JSON:
    """Top-level messages newest first, within ``oldest``/``latest`` when given."""
    within = _in_window(params)
    messages = [m for m in ws.history(_joined_channel(ws, params).id) if within(m)]
    return _with_has_more(_page(_timeline(messages, params), params, "messages"))


def conversations_replies(ws: Workspace, params: JSON, ctx: CallContext) -> JSON:
    """A thread oldest first: its parent always, then the replies within ``oldest``/``latest``."""
    channel = _channel(ws, params).id
    within = _in_window(params)
    parent, *replies = ws.thread(channel, _str(params, "ts", "thread_not_found"))
    messages = [parent, *(m for m in replies if within(m))]
    return _with_has_more(_page(_timeline(messages, params), params, "messages"))


# -- chat --------------------------------------------------------------------------------------


def chat_post_message(ws: Workspace, params: JSON, ctx: CallContext) -> JSON:
    """Public channels take posts without the bot in them only with ``chat:write.public``
    (else ``not_in_channel``); private ones it was not invited to do not exist for it; an
    archived channel takes none (``is_archived``)."""
    where = _channel(ws, params)
    if where.archived:
        raise ApiFailure("is_archived")
    if ws.bot_user_id not in where.members and "chat:write.public" not in ws.scopes:
        raise ApiFailure("not_in_channel")
    channel = where.id
    text = _opt_str(params, "text")
    blocks = check_blocks(params.get("blocks"))
    if text is None and not blocks:
        raise ApiFailure("no_text")
    metadata = params.get("metadata")
    message = ws.post_message(
        channel,
        text=truncate_message_text(text or ""),
        blocks=blocks,
        thread_ts=_opt_str(params, "thread_ts"),
        reply_broadcast=_flag(params, "reply_broadcast"),
        metadata=metadata if isinstance(metadata, dict) else None,
    )
    return {"ok": True, "channel": message.channel, "ts": message.ts, "message": message.to_slack()}


def chat_update(ws: Workspace, params: JSON, ctx: CallContext) -> JSON:
    message = ws.message(_channel(ws, params).id, _str(params, "ts", "message_not_found"))
    if message.bot_id is None:
        raise ApiFailure("cant_update_message")
    text = _opt_str(params, "text")
    if text is not None and len(text) > MAX_UPDATE_TEXT:
        raise ApiFailure("msg_too_long")
    blocks = check_blocks(params.get("blocks"))
    if text is None and blocks is None:
        raise ApiFailure("no_text")
    ws.update_message(message.channel, message.ts, text=text, blocks=blocks)
    metadata = params.get("metadata")
    if isinstance(metadata, dict):  # new metadata replaces the old; none keeps it
        message.metadata = metadata
    return {
        "ok": True,
        "channel": message.channel,
        "ts": message.ts,
        "text": message.text,
        "message": message.to_slack(),
    }


def chat_delete(ws: Workspace, params: JSON, ctx: CallContext) -> JSON:
    message = ws.message(_channel(ws, params).id, _str(params, "ts", "message_not_found"))
    if message.bot_id is None:
        raise ApiFailure("cant_delete_message")
    ws.delete_message(message.channel, message.ts)
    return {"ok": True, "channel": message.channel, "ts": message.ts}


def chat_post_ephemeral(ws: Workspace, params: JSON, ctx: CallContext) -> JSON:
    channel = _channel(ws, params).id
    user = _str(params, "user", "user_not_found")
    text = _opt_str(params, "text")
    blocks = check_blocks(params.get("blocks"))
    if text is None and not blocks:
        raise ApiFailure("no_text")
    ephemeral = ws.post_ephemeral(
        channel,
        user,
        text=truncate_message_text(text or ""),
        blocks=blocks,
        thread_ts=_opt_str(params, "thread_ts"),
    )
    return {"ok": True, "message_ts": ephemeral.ts}


def chat_get_permalink(ws: Workspace, params: JSON, ctx: CallContext) -> JSON:
    message = ws.message(_channel(ws, params).id, _str(params, "message_ts", "message_not_found"))
    return {"ok": True, "channel": message.channel, "permalink": permalink(ctx.host_url, message)}


def reactions_add(ws: Workspace, params: JSON, ctx: CallContext) -> JSON:
    channel = _channel(ws, params).id
    ts = _str(params, "timestamp", "message_not_found")
    ws.add_reaction(channel, ts, _str(params, "name", "invalid_name").strip(":"))
    return {"ok": True}


# -- views -------------------------------------------------------------------------------------


def _view_answer(view: View) -> JSON:
    return {"ok": True, "view": view.to_slack()}


def _trigger_user(ws: Workspace, params: JSON, method: str) -> str:
    """The user whose interaction issued the trigger, once it is spent on ``method``."""
    trigger_id = _opt_str(params, "trigger_id") or _opt_str(params, "interactivity_pointer")
    if trigger_id is None:
        raise ApiFailure("invalid_arguments", errors=["trigger_id: required"])
    return ws.use_trigger(trigger_id, method).user


def views_open(ws: Workspace, params: JSON, ctx: CallContext) -> JSON:
    view = _check_view(params, "modal")
    return _view_answer(ws.open_view(view, user=_trigger_user(ws, params, "views.open")))


def views_push(ws: Workspace, params: JSON, ctx: CallContext) -> JSON:
    view = _check_view(params, "modal")
    return _view_answer(ws.push_view(view, user=_trigger_user(ws, params, "views.push")))


def views_update(ws: Workspace, params: JSON, ctx: CallContext) -> JSON:
    view_id, external_id = _opt_str(params, "view_id"), _opt_str(params, "external_id")
    if view_id is not None:
        current = ws.view(view_id)
    elif external_id is not None:
        current = ws.view_by_external_id(external_id)
    else:
        raise ApiFailure("invalid_arguments", errors=["view_id or external_id: required"])
    if current.closed:
        raise ApiFailure("not_found")
    spec = _check_view(params, current.type)
    return _view_answer(ws.update_view(current, spec, hash=_opt_str(params, "hash")))


def views_publish(ws: Workspace, params: JSON, ctx: CallContext) -> JSON:
    user = _str(params, "user_id", "user_not_found")
    spec = _check_view(params, "home")
    return _view_answer(ws.publish_home(user, spec, hash=_opt_str(params, "hash")))


METHODS: dict[str, Method] = {
    "auth.test": auth_test,
    "chat.delete": chat_delete,
    "chat.getPermalink": chat_get_permalink,
    "chat.postEphemeral": chat_post_ephemeral,
    "chat.postMessage": chat_post_message,
    "chat.update": chat_update,
    "conversations.history": conversations_history,
    "conversations.info": conversations_info,
    "conversations.join": conversations_join,
    "conversations.list": conversations_list,
    "conversations.members": conversations_members,
    "conversations.open": conversations_open,
    "conversations.replies": conversations_replies,
    "reactions.add": reactions_add,
    "usergroups.users.list": usergroups_users_list,
    "users.info": users_info,
    "views.open": views_open,
    "views.publish": views_publish,
    "views.push": views_push,
    "views.update": views_update,
}
