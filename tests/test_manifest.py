"""manifest.yml must declare everything the app listens for, and nothing it does not."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml
from slack_bolt.async_app import AsyncApp
from slack_sdk.web.async_client import AsyncWebClient

from bot.service import ApprovalService
from bot.slack.cards import ACTION_IDS, CALLBACK_IDS
from bot.slack.listeners import register_listeners
from bot.store import SQLiteStore

MANIFEST: dict[str, Any] = yaml.safe_load(
    (Path(__file__).parent.parent / "manifest.yml").read_text()
)
#: a `message` listener receives these subscriptions
MESSAGE_EVENTS = {"message.channels", "message.groups"}


@pytest.fixture
def registered(tmp_path: Path) -> dict[str, list[str]]:
    app = AsyncApp(client=AsyncWebClient(token="xoxb-x"), signing_secret="s")
    service = ApprovalService(SQLiteStore(tmp_path / "m.db"))
    return register_listeners(app, service).registered


def test_every_event_listened_for_is_subscribed_and_back(registered: dict[str, list[str]]) -> None:
    subscribed = set(MANIFEST["settings"]["event_subscriptions"]["bot_events"])
    expected = {e for e in registered["event"] if e != "message"}
    if "message" in registered["event"]:
        expected |= MESSAGE_EVENTS
    assert subscribed == expected


def test_every_command_is_declared_and_back(registered: dict[str, list[str]]) -> None:
    declared = {c["command"] for c in MANIFEST["features"]["slash_commands"]}
    assert declared == set(registered["command"])
    assert all(len(c) <= 32 for c in declared)


def test_every_button_and_modal_the_cards_use_has_a_listener(
    registered: dict[str, list[str]],
) -> None:
    assert MANIFEST["settings"]["interactivity"]["is_enabled"] is True
    assert set(ACTION_IDS) == set(registered["action"])
    assert set(CALLBACK_IDS) == set(registered["view"])


def test_requests_go_to_the_bots_one_endpoint() -> None:
    settings = MANIFEST["settings"]
    urls = [
        settings["event_subscriptions"]["request_url"],
        settings["interactivity"]["request_url"],
        *(c["url"] for c in MANIFEST["features"]["slash_commands"]),
    ]
    assert all(url.startswith("https://") and url.endswith("/slack/events") for url in urls)


def test_scopes_cover_the_web_api_methods_the_bot_calls() -> None:
    scopes = set(MANIFEST["oauth_config"]["scopes"]["bot"])
    needed = {
        "chat:write",  # chat.postMessage, chat.update, chat.postEphemeral
        "users:read",  # users.info
        "usergroups:read",  # usergroups.users.list
        "reactions:write",  # reactions.add
        "commands",  # /approvals
        "channels:history",  # message.channels
        "groups:history",  # message.groups
        "channels:read",  # conversations.members of a public channel (who may decide)
        "groups:read",  # … of a private one
    }
    assert needed <= scopes


def test_display_limits() -> None:
    info = MANIFEST["display_information"]
    assert len(info["name"]) <= 35 and len(info["description"]) <= 140
    assert MANIFEST["features"]["app_home"]["home_tab_enabled"] is True
