"""Payloads shaped exactly as Slack sends them, built from the workspace's state.

Pure functions: they read the workspace and never change it; ``interactions.py`` records
triggers and response URLs, sends the payloads and applies the bot's answers.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator, Mapping
from typing import Any

from bot.devslack.errors import InteractionError
from bot.devslack.model import Ephemeral, Message, View
from bot.devslack.workspace import Workspace

__all__ = [
    "app_home_opened_event",
    "block_actions_payload",
    "ephemeral_block_actions_payload",
    "event_callback",
    "find_button",
    "message_event",
    "require_member",
    "slash_command_fields",
    "state_values",
    "view_block_actions_payload",
    "view_closed_payload",
    "view_submission_payload",
]

JSON = dict[str, Any]

_TEXT_INPUTS = frozenset({"plain_text_input", "number_input", "email_text_input", "url_text_input"})
_SINGLE_OPTION = frozenset({"static_select", "radio_buttons"})
_MANY_OPTIONS = frozenset({"checkboxes", "multi_static_select"})
#: other input elements: the state key holding their value, and the initial value's key
_SCALAR_INPUTS = {
    "users_select": ("selected_user", "initial_user"),
    "conversations_select": ("selected_conversation", "initial_conversation"),
    "channels_select": ("selected_channel", "initial_channel"),
    "datepicker": ("selected_date", "initial_date"),
    "timepicker": ("selected_time", "initial_time"),
    "multi_users_select": ("selected_users", "initial_users"),
}


def _block_id(block: Mapping[str, Any], index: int) -> str:
    # Slack fills in a block_id the app left out; ours is stable so tests can name it.
    return str(block.get("block_id") or f"block-{index}")


def _user(ws: Workspace, user_id: str) -> JSON:
    user = ws.user(user_id)
    return {"id": user.id, "username": user.name, "name": user.name, "team_id": ws.team_id}


def require_member(ws: Workspace, channel: str, user: str) -> None:
    """Refuse what only a member could do: Slack shows a channel's messages, buttons and
    composer to its members alone, so it never sends such a payload from anyone else."""
    where = ws.channel(channel)
    if not ws.is_member(where.id, user):
        name = where.name if where.is_im else f"#{where.name}"
        raise InteractionError(f"{user} is not a member of {name} ({where.id})")


def _team(ws: Workspace) -> JSON:
    return {"id": ws.team_id, "domain": ws.team_name}


def _envelope(ws: Workspace, kind: str, user: str, trigger_id: str | None) -> JSON:
    payload: JSON = {
        "type": kind,
        "user": _user(ws, user),
        "api_app_id": ws.app_id,
        "token": ws.verification_token,
    }
    if trigger_id is not None:
        payload["trigger_id"] = trigger_id
    payload.update({"team": _team(ws), "enterprise": None, "is_enterprise_install": False})
    return payload


# -- block_actions -----------------------------------------------------------------------------


def _buttons(blocks: list[JSON]) -> Iterator[tuple[str, JSON]]:
    for index, block in enumerate(blocks):
        elements: list[Any] = []
        if block.get("type") == "actions":
            elements = list(block.get("elements") or [])
        elif block.get("type") == "section" and block.get("accessory") is not None:
            elements = [block["accessory"]]
        for element in elements:
            if isinstance(element, dict) and element.get("type") == "button":
                yield _block_id(block, index), element


def find_button(
    blocks: list[JSON], action_id: str, block_id: str | None = None
) -> tuple[str, JSON]:
    """The ``(block_id, button)`` with this ``action_id``; raises ``InteractionError`` if none."""
    for found_block_id, button in _buttons(blocks):
        if button.get("action_id") == action_id and block_id in (None, found_block_id):
            return found_block_id, button
    where = f" in block {block_id!r}" if block_id is not None else ""
    available = sorted(str(b.get("action_id")) for _, b in _buttons(blocks))
    raise InteractionError(f"no button {action_id!r}{where}; buttons: {available}")


def _action(block_id: str, button: JSON, action_ts: str) -> JSON:
    action: JSON = {
        "action_id": button.get("action_id"),
        "block_id": block_id,
        "text": button.get("text"),
        "type": "button",
        "action_ts": action_ts,
    }
    for optional in ("value", "style", "url"):
        if optional in button:
            action[optional] = button[optional]
    return action


def block_actions_payload(
    ws: Workspace,
    *,
    user: str,
    message: Message,
    action_id: str,
    trigger_id: str,
    response_url: str,
    action_ts: str,
    block_id: str | None = None,
) -> JSON:
    """A click on a button of a channel message, by a member of its channel."""
    require_member(ws, message.channel, user)
    found_block_id, button = find_button(message.blocks, action_id, block_id)
    payload = _envelope(ws, "block_actions", user, trigger_id)
    payload["container"] = {
        "type": "message",
        "message_ts": message.ts,
        "channel_id": message.channel,
        "is_ephemeral": False,
    }
    if message.is_reply:
        payload["container"]["thread_ts"] = message.thread_ts
    channel = ws.channel(message.channel)
    payload["channel"] = {"id": channel.id, "name": channel.name}
    payload["message"] = message.to_slack()
    payload["state"] = {"values": {}}
    payload["response_url"] = response_url
    payload["actions"] = [_action(found_block_id, button, action_ts)]
    return payload


def ephemeral_block_actions_payload(
    ws: Workspace,
    *,
    note: Ephemeral,
    action_id: str,
    trigger_id: str,
    response_url: str,
    action_ts: str,
    block_id: str | None = None,
) -> JSON:
    """A click on a button of an ephemeral message, by the one user who sees it. Slack keeps
    no copy of an ephemeral message, so the payload names it in `container` (with
    `is_ephemeral: true`) and carries no `message`."""
    found_block_id, button = find_button(note.blocks, action_id, block_id)
    payload = _envelope(ws, "block_actions", note.user, trigger_id)
    payload["container"] = {
        "type": "message",
        "message_ts": note.ts,
        "channel_id": note.channel,
        "is_ephemeral": True,
    }
    if note.thread_ts is not None:
        payload["container"]["thread_ts"] = note.thread_ts
    channel = ws.channel(note.channel)
    payload["channel"] = {"id": channel.id, "name": channel.name}
    payload["state"] = {"values": {}}
    payload["response_url"] = response_url
    payload["actions"] = [_action(found_block_id, button, action_ts)]
    return payload


def view_block_actions_payload(
    ws: Workspace,
    *,
    user: str,
    view: View,
    action_id: str,
    trigger_id: str,
    action_ts: str,
    block_id: str | None = None,
) -> JSON:
    """A click on a button inside a modal or the App Home."""
    found_block_id, button = find_button(view.blocks, action_id, block_id)
    payload = _envelope(ws, "block_actions", user, trigger_id)
    payload["container"] = {"type": "view", "view_id": view.id}
    payload["view"] = view.to_slack()
    payload["actions"] = [_action(found_block_id, button, action_ts)]
    return payload


# -- views -------------------------------------------------------------------------------------


def _options(element: Mapping[str, Any]) -> list[JSON]:
    options = element.get("options")
    if isinstance(options, list):
        return [o for o in options if isinstance(o, dict)]
    groups = element.get("option_groups") or []
    return [o for g in groups for o in (g.get("options") or []) if isinstance(o, dict)]


def _option(element: Mapping[str, Any], value: object, where: str) -> JSON:
    for option in _options(element):
        if option.get("value") == str(value):
            return option
    known = [o.get("value") for o in _options(element)]
    raise InteractionError(f"{where}: no option {value!r}; options: {known}")


def _element_state(element: Mapping[str, Any], raw: object, given: bool, where: str) -> JSON:
    """One element's entry in ``state.values``; without a value the initial one is submitted."""
    kind = str(element.get("type"))
    state: JSON = {"type": kind}
    if kind in _TEXT_INPUTS:
        value = raw if given else element.get("initial_value")
        state["value"] = None if value is None or value == "" else str(value)
    elif kind in _SINGLE_OPTION:
        if not given:
            state["selected_option"] = element.get("initial_option")
        else:
            state["selected_option"] = None if raw is None else _option(element, raw, where)
    elif kind in _MANY_OPTIONS:
        if not given:
            state["selected_options"] = list(element.get("initial_options") or [])
        else:
            values = [] if raw is None else raw if isinstance(raw, list | tuple) else [raw]
            state["selected_options"] = [_option(element, v, where) for v in values]
    elif kind in _SCALAR_INPUTS:
        key, initial = _SCALAR_INPUTS[kind]
        state[key] = raw if given else element.get(initial)
    else:
        raise InteractionError(f"{where}: cannot fill a {kind!r} element")
    return state


def state_values(view: View, values: Mapping[str, object]) -> dict[str, dict[str, JSON]]:
    """Slack's ``state.values`` for a view's input blocks from plain values.

    ``values`` maps a block_id (or an action_id) to a string, number, option value or list of
    option values; ``None`` empties the field, and a field not named keeps its initial value.
    """
    unused = set(values)
    state: dict[str, dict[str, JSON]] = {}
    for index, block in enumerate(view.blocks):
        element = block.get("element")
        if block.get("type") != "input" or not isinstance(element, dict):
            continue
        block_id = _block_id(block, index)
        action_id = str(element.get("action_id") or f"action-{index}")
        key = block_id if block_id in values else action_id
        given = key in values
        unused.discard(key)
        where = f"{block_id}.{action_id}"
        state[block_id] = {action_id: _element_state(element, values.get(key), given, where)}
    if unused:
        raise InteractionError(f"no input block or action named {sorted(unused)} in {view.id}")
    return state


def view_submission_payload(
    ws: Workspace, *, user: str, view: View, values: JSON, trigger_id: str
) -> JSON:
    """A modal's Submit button, with ``values`` in Slack's ``state.values`` shape."""
    payload = _envelope(ws, "view_submission", user, trigger_id)
    rendered = view.to_slack()
    rendered["state"] = {"values": values}
    payload["view"] = rendered
    payload["response_urls"] = []
    return payload


def view_closed_payload(ws: Workspace, *, user: str, view: View) -> JSON:
    """The user dismissed a modal that asked for ``notify_on_close``."""
    payload = _envelope(ws, "view_closed", user, None)
    payload["view"] = view.to_slack()
    payload["is_cleared"] = False
    return payload


# -- Events API and slash commands -------------------------------------------------------------


def message_event(ws: Workspace, message: Message) -> JSON:
    """The ``message`` event for a message a user posted."""
    event: JSON = {
        "type": "message",
        "channel": message.channel,
        "user": message.user,
        "text": message.text,
        "ts": message.ts,
        "team": ws.team_id,
        "client_msg_id": str(uuid.uuid4()),
        "event_ts": message.ts,
        "channel_type": _channel_type(ws, message.channel),
    }
    if message.is_reply and message.thread_ts is not None:
        event["thread_ts"] = message.thread_ts
        event["parent_user_id"] = ws.message(message.channel, message.thread_ts).user
        if message.reply_broadcast:  # "Also send to #channel"
            event["subtype"] = "thread_broadcast"
    return event


def _channel_type(ws: Workspace, channel_id: str) -> str:
    """``message.groups`` events say ``group`` for a private channel."""
    channel = ws.channel(channel_id)
    return "im" if channel.is_im else "group" if channel.private else "channel"


def app_home_opened_event(ws: Workspace, user: str, event_ts: str) -> JSON:
    event: JSON = {
        "type": "app_home_opened",
        "user": ws.user(user).id,
        "channel": ws.open_dm(user).id,
        "tab": "home",
        "event_ts": event_ts,
    }
    home = ws.home(user)
    if home is not None:
        event["view"] = home.to_slack()
    return event


def event_callback(ws: Workspace, event: JSON, *, event_id: str, event_time: int) -> JSON:
    """The Events API envelope around one event."""
    return {
        "token": ws.verification_token,
        "team_id": ws.team_id,
        "context_team_id": ws.team_id,
        "api_app_id": ws.app_id,
        "event": event,
        "type": "event_callback",
        "event_id": event_id,
        "event_time": event_time,
        "authorizations": [
            {
                "enterprise_id": None,
                "team_id": ws.team_id,
                "user_id": ws.bot_user_id,
                "is_bot": True,
                "is_enterprise_install": False,
            }
        ],
        "is_ext_shared_channel": False,
    }


def slash_command_fields(
    ws: Workspace,
    *,
    command: str,
    text: str,
    user: str,
    channel: str,
    trigger_id: str,
    response_url: str,
) -> dict[str, str]:
    """The form fields of a slash command invocation."""
    member, where = ws.user(user), ws.channel(channel)
    return {
        "token": ws.verification_token,
        "team_id": ws.team_id,
        "team_domain": ws.team_name,
        "channel_id": where.id,
        "channel_name": "directmessage" if where.is_im else where.name,
        "user_id": member.id,
        "user_name": member.name,
        "command": command if command.startswith("/") else f"/{command}",
        "text": text,
        "api_app_id": ws.app_id,
        "is_enterprise_install": "false",
        "response_url": response_url,
        "trigger_id": trigger_id,
    }
