"""The local Slack emulator, driven through the real slack_sdk client and real HTTP."""

from __future__ import annotations

import asyncio
import json
import types
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qs

import aiohttp
import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer
from hypothesis import given
from hypothesis import strategies as st
from slack_bolt.adapter.aiohttp import to_aiohttp_response, to_bolt_request
from slack_bolt.async_app import AsyncAck, AsyncApp
from slack_sdk.errors import SlackApiError
from slack_sdk.http_retry import builtin_async_handlers
from slack_sdk.http_retry.builtin_async_handlers import (
    AsyncRateLimitErrorRetryHandler,
    AsyncServerErrorRetryHandler,
)
from slack_sdk.http_retry.builtin_interval_calculators import FixedValueRetryIntervalCalculator
from slack_sdk.signature import SignatureVerifier
from slack_sdk.web.async_client import AsyncWebClient

from bot.devslack import (
    WORKSPACE_KEY,
    ApiFailure,
    Deliverer,
    InteractionError,
    View,
    Workspace,
    create_slack_api,
    payloads,
    sign,
    signed_headers,
    start_slack_api,
    state_values,
    validate_message_blocks,
    validate_view,
)
from bot.devslack.limits import truncate_message_text

SECRET = "test-signing-secret"
TOKEN = "xoxb-test"

# -- fixtures ----------------------------------------------------------------------------------


@pytest.fixture
def ws() -> Workspace:
    return Workspace()


@pytest.fixture
async def base_url(ws: Workspace) -> AsyncIterator[str]:
    runner, url = await start_slack_api(ws)
    yield url
    await runner.cleanup()


@pytest.fixture
def client(base_url: str) -> AsyncWebClient:
    return AsyncWebClient(token=TOKEN, base_url=base_url)


@dataclass
class RecordingBot:
    """A tiny bot: verifies each request's signature, records it, answers as scripted."""

    received: list[dict[str, Any]] = field(default_factory=list)
    answer: Callable[[dict[str, Any]], Awaitable[web.StreamResponse]] | None = None
    verifier: SignatureVerifier = field(default_factory=lambda: SignatureVerifier(SECRET))

    async def handle(self, request: web.Request) -> web.StreamResponse:
        body = await request.read()
        if not self.verifier.is_valid_request(body, dict(request.headers)):
            return web.json_response({"error": "invalid signature"}, status=401)
        if request.content_type == "application/json":
            data: dict[str, Any] = json.loads(body)
        else:
            fields = {k: v[0] for k, v in parse_qs(body.decode()).items()}
            data = json.loads(fields["payload"]) if "payload" in fields else fields
        data["_headers"] = dict(request.headers)
        self.received.append(data)
        if self.answer is not None:
            return await self.answer(data)
        return web.Response(status=200)


@pytest.fixture
async def recording_bot() -> AsyncIterator[tuple[RecordingBot, str]]:
    bot = RecordingBot()
    app = web.Application()
    app.router.add_post("/slack/events", bot.handle)
    server = TestServer(app, host="127.0.0.1")
    await server.start_server()
    yield bot, str(server.make_url("/slack/events"))
    await server.close()


@pytest.fixture
async def deliverer(
    ws: Workspace, base_url: str, recording_bot: tuple[RecordingBot, str]
) -> AsyncIterator[Deliverer]:
    async with Deliverer(ws, recording_bot[1], SECRET) as slack:
        yield slack


def button(action_id: str, text: str = "Go", value: str = "v") -> dict[str, Any]:
    return {
        "type": "button",
        "action_id": action_id,
        "text": {"type": "plain_text", "text": text},
        "value": value,
    }


def section(text: str, block_id: str | None = None) -> dict[str, Any]:
    block: dict[str, Any] = {"type": "section", "text": {"type": "mrkdwn", "text": text}}
    if block_id is not None:
        block["block_id"] = block_id
    return block


def card() -> list[dict[str, Any]]:
    return [
        section("*deploy_service*", "summary"),
        {
            "type": "actions",
            "block_id": "decide",
            "elements": [button("approve", "Approve", "apr_1"), button("reject", "Reject…")],
        },
    ]


def modal(*blocks: dict[str, Any], **extra: Any) -> dict[str, Any]:
    return {
        "type": "modal",
        "callback_id": "edit",
        "title": {"type": "plain_text", "text": "Edit"},
        "submit": {"type": "plain_text", "text": "Save"},
        "blocks": list(blocks),
        **extra,
    }


def text_input(block_id: str, action_id: str = "value", **element: Any) -> dict[str, Any]:
    return {
        "type": "input",
        "block_id": block_id,
        "label": {"type": "plain_text", "text": block_id},
        "element": {"type": "plain_text_input", "action_id": action_id, **element},
    }


def options(*values: str) -> list[dict[str, Any]]:
    return [{"text": {"type": "plain_text", "text": v}, "value": v} for v in values]


# -- chat --------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "channel",
    [
        pytest.param("C0OPS", id="id"),
        pytest.param("ops", id="name"),
        pytest.param("#ops", id="hash-name"),
    ],
)
async def test_post_message_resolves_channel_names_to_ids(
    ws: Workspace, client: AsyncWebClient, channel: str
) -> None:
    response = await client.chat_postMessage(channel=channel, text="hello", blocks=card())

    assert response["channel"] == "C0OPS"
    assert response["message"]["blocks"] == card()
    assert response["message"]["bot_id"] == "B0BOT"
    stored = ws.message("C0OPS", response["ts"])
    assert stored.text == "hello"
    assert stored.user == "U0BOT"
    assert ws.calls_to("chat.postMessage")[0].params["channel"] == channel


async def test_unknown_channel_is_refused(client: AsyncWebClient) -> None:
    with pytest.raises(SlackApiError) as caught:
        await client.chat_postMessage(channel="#nowhere", text="hi")
    assert caught.value.response["error"] == "channel_not_found"


async def test_timestamps_are_unique_and_increasing(ws: Workspace, client: AsyncWebClient) -> None:
    ws.rate_limit_per_channel = None  # five posts in a row to one channel
    stamps = [(await client.chat_postMessage(channel="ops", text=str(i)))["ts"] for i in range(5)]
    assert stamps == sorted(stamps, key=float)
    assert len(set(stamps)) == 5
    assert all(len(ts.split(".")[1]) == 6 for ts in stamps)


async def test_thread_replies_count_and_stay_out_of_history(
    ws: Workspace, client: AsyncWebClient
) -> None:
    parent = await client.chat_postMessage(channel="ops", text="card")
    reply = await client.chat_postMessage(channel="ops", text="decided", thread_ts=parent["ts"])

    replies = await client.conversations_replies(channel="C0OPS", ts=parent["ts"])
    history = await client.conversations_history(channel="C0OPS")

    assert [m["ts"] for m in replies["messages"]] == [parent["ts"], reply["ts"]]
    assert replies["messages"][0]["reply_count"] == 1
    assert replies["messages"][1]["thread_ts"] == parent["ts"]
    assert [m["ts"] for m in history["messages"]] == [parent["ts"]]
    assert ws.message("ops", parent["ts"]).reply_count == 1


async def test_update_rewrites_the_message(ws: Workspace, client: AsyncWebClient) -> None:
    posted = await client.chat_postMessage(channel="ops", text="pending", blocks=card())

    updated = await client.chat_update(
        channel="C0OPS", ts=posted["ts"], text="approved", blocks=[section("Approved")]
    )

    assert updated["ts"] == posted["ts"]
    stored = ws.message("C0OPS", posted["ts"])
    assert (stored.text, stored.blocks) == ("approved", [section("Approved")])
    assert stored.to_slack()["edited"]["ts"] > posted["ts"]


@pytest.mark.parametrize(
    ("ts", "text", "error"),
    [
        pytest.param("1.000001", "x", "message_not_found", id="unknown-ts"),
        pytest.param(None, "x" * 4001, "msg_too_long", id="text-over-4000"),
    ],
)
async def test_update_refusals(
    client: AsyncWebClient, ts: str | None, text: str, error: str
) -> None:
    posted = await client.chat_postMessage(channel="ops", text="pending")
    with pytest.raises(SlackApiError) as caught:
        await client.chat_update(channel="C0OPS", ts=ts or posted["ts"], text=text)
    assert caught.value.response["error"] == error


async def test_update_accepts_exactly_4000_chars(client: AsyncWebClient) -> None:
    posted = await client.chat_postMessage(channel="ops", text="pending")
    response = await client.chat_update(channel="C0OPS", ts=posted["ts"], text="x" * 4000)
    assert len(response["message"]["text"]) == 4000


async def test_long_message_text_is_truncated_not_refused(
    ws: Workspace, client: AsyncWebClient
) -> None:
    response = await client.chat_postMessage(channel="ops", text="y" * 40_010)
    assert len(ws.message("ops", response["ts"]).text) == 40_000
    assert truncate_message_text("abc") == "abc"


async def test_ephemeral_is_stored_for_its_user(ws: Workspace, client: AsyncWebClient) -> None:
    response = await client.chat_postEphemeral(
        channel="#deploy", user="U0BOB", text="only you", blocks=[section("not allowed")]
    )

    [ephemeral] = ws.ephemerals_for("U0BOB")
    assert ephemeral.ts == response["message_ts"]
    assert (ephemeral.channel, ephemeral.text) == ("C0DEPLOY", "only you")
    assert ws.ephemerals_for("U0ALICE") == []


async def test_permalinks_use_the_request_host_and_name_threads(
    client: AsyncWebClient, base_url: str
) -> None:
    parent = await client.chat_postMessage(channel="ops", text="card")
    reply = await client.chat_postMessage(channel="ops", text="r", thread_ts=parent["ts"])
    host = base_url.removesuffix("/api/")

    top = await client.chat_getPermalink(channel="C0OPS", message_ts=parent["ts"])
    threaded = await client.chat_getPermalink(channel="C0OPS", message_ts=reply["ts"])

    assert top["permalink"] == f"{host}/archives/C0OPS/p{parent['ts'].replace('.', '')}"
    assert threaded["permalink"] == (
        f"{host}/archives/C0OPS/p{reply['ts'].replace('.', '')}?thread_ts={parent['ts']}&cid=C0OPS"
    )


async def test_delete_removes_the_message(ws: Workspace, client: AsyncWebClient) -> None:
    posted = await client.chat_postMessage(channel="ops", text="oops")
    await client.chat_delete(channel="C0OPS", ts=posted["ts"])
    assert ws.history("ops") == []


async def test_reactions_add_once_per_user(ws: Workspace, client: AsyncWebClient) -> None:
    posted = await client.chat_postMessage(channel="ops", text="card")
    await client.reactions_add(channel="C0OPS", timestamp=posted["ts"], name="white_check_mark")

    with pytest.raises(SlackApiError) as caught:
        await client.reactions_add(channel="C0OPS", timestamp=posted["ts"], name="white_check_mark")

    assert caught.value.response["error"] == "already_reacted"
    assert ws.message("ops", posted["ts"]).reactions == {"white_check_mark": ["U0BOT"]}


# -- directory ---------------------------------------------------------------------------------


async def test_users_and_usergroups(client: AsyncWebClient) -> None:
    alice = await client.users_info(user="U0ALICE")
    sre = await client.usergroups_users_list(usergroup="S0SRE")
    oncall = await client.usergroups_users_list(usergroup="S0ONCALL")

    assert alice["user"]["name"] == "alice"
    assert alice["user"]["profile"]["display_name"] == "alice"
    assert sre["users"] == ["U0ALICE", "U0BOB"]
    assert oncall["users"] == ["U0CAROL"]
    with pytest.raises(SlackApiError) as caught:
        await client.users_info(user="U0NOBODY")
    assert caught.value.response["error"] == "user_not_found"


async def test_conversations_info_and_list(client: AsyncWebClient) -> None:
    """``conversations.list`` lists public channels unless ``types`` asks for more.

    https://docs.slack.dev/reference/methods/conversations.list ("types": default
    public_channel; mix public_channel, private_channel, mpim, im).
    """
    info = await client.conversations_info(channel="C0PAYMENTS")
    listing = await client.conversations_list()
    both = await client.conversations_list(types="public_channel,private_channel")

    assert info["channel"]["name"] == "payments"
    assert {c["id"] for c in listing["channels"]} == {
        "C0OPS",
        "C0DEPLOY",
        "C0PAYMENTS",
        "C0ESCALATE",
    }
    assert {c["id"] for c in both["channels"]} == {c["id"] for c in listing["channels"]} | {
        "C0PRIVATE"
    }
    with pytest.raises(SlackApiError) as caught:
        await client.conversations_list(types="public_channel,shared")
    assert caught.value.response["error"] == "invalid_types"


# -- channels and their members ----------------------------------------------------------------


async def test_public_channels_hold_everyone_and_private_ones_their_members(
    ws: Workspace, client: AsyncWebClient
) -> None:
    """``is_private``, ``is_member`` (is the calling bot in it) and ``num_members``.

    https://docs.slack.dev/reference/objects/conversation-object and
    https://docs.slack.dev/reference/methods/conversations.info
    """
    quiet = ws.add_channel("C0QUIET", "quiet", members=["U0ALICE", "U0BOB"])
    ws.add_channel("C0HR", "hr", private=True, members=["U0DAVE"])

    ops = (await client.conversations_info(channel="C0OPS"))["channel"]
    security = (await client.conversations_info(channel="C0PRIVATE"))["channel"]
    quiet_info = (await client.conversations_info(channel="quiet"))["channel"]

    assert (ops["is_private"], ops["is_member"], ops["num_members"]) == (False, True, 5)
    assert ws.channels["C0OPS"].members == ["U0BOT", "U0ALICE", "U0BOB", "U0CAROL", "U0DAVE"]
    assert (security["name"], security["is_private"], security["is_member"]) == (
        "security",
        True,
        True,
    )
    assert ws.channels["C0PRIVATE"].members == ["U0ALICE", "U0CAROL", "U0BOT"]
    assert (quiet_info["is_private"], quiet_info["is_member"], quiet_info["num_members"]) == (
        False,
        False,
        2,
    )
    assert ws.channels["C0HR"].members == ["U0DAVE"]  # the bot was not invited
    assert quiet.to_slack()["is_member"] is False
    with pytest.raises(ApiFailure, match="user_not_found"):
        ws.add_channel("C0BAD", "bad", members=["U0NOBODY"])


def test_new_people_join_the_default_channels_only(ws: Workspace) -> None:
    """New members join a workspace's default channels; private ones need an invite, and
    bots join nothing by themselves.

    https://slack.com/help/articles/201898998 ("Set default channels for new members": public
    channels only) and https://docs.slack.dev/reference/methods/conversations.invite
    """
    ws.add_channel("C0QUIET", "quiet", members=["U0ALICE"])
    ws.add_user("U0ERIN", "erin", "Erin Ellis")
    ws.add_user("U0ROBOT", "robot", "Another Bot", is_bot=True)

    assert ws.is_member("C0OPS", "U0ERIN")
    assert not ws.is_member("C0PRIVATE", "U0ERIN")
    assert not ws.is_member("C0QUIET", "U0ERIN")
    assert not ws.is_member("C0OPS", "U0ROBOT")


async def test_join_and_leave_change_who_is_in_a_channel(ws: Workspace) -> None:
    """Joining twice changes nothing (Slack only warns ``already_in_channel``), nor does
    leaving a channel one is not in; a direct message has no members to change.

    https://docs.slack.dev/reference/methods/conversations.join (warning already_in_channel;
    error method_not_supported_for_channel_type)
    """
    start = ws.feed.last_seq

    ws.join("C0PRIVATE", "U0BOB")
    ws.join("#security", "U0BOB")
    ws.leave("C0PRIVATE", "U0ALICE")
    ws.leave("C0PRIVATE", "U0ALICE")

    assert ws.channels["C0PRIVATE"].members == ["U0CAROL", "U0BOT", "U0BOB"]
    changes = await ws.changes_since(start, timeout=0.01)
    assert [(c.kind, c.data["user"]) for c in changes] == [
        ("channel.joined", "U0BOB"),
        ("channel.left", "U0ALICE"),
    ]
    with pytest.raises(ApiFailure, match="method_not_supported_for_channel_type"):
        ws.join("U0ALICE", "U0BOB")  # a user id names the bot's DM with them
    with pytest.raises(ApiFailure, match="channel_not_found"):
        ws.join("C0NOWHERE", "U0BOB")


async def test_conversations_members_pages_with_next_cursor(
    ws: Workspace, client: AsyncWebClient
) -> None:
    """Member ids a page at a time; ``response_metadata.next_cursor`` is empty on the last.

    https://docs.slack.dev/reference/methods/conversations.members and
    https://docs.slack.dev/apis/web-api/pagination
    """
    first = await client.conversations_members(channel="C0OPS", limit=2)
    pages = [page["members"] async for page in first]  # slack_sdk follows next_cursor
    everyone = await client.conversations_members(channel="C0OPS")
    private = await client.conversations_members(channel="C0PRIVATE")

    assert pages == [["U0BOT", "U0ALICE"], ["U0BOB", "U0CAROL"], ["U0DAVE"]]
    cursors = [c.response["response_metadata"]["next_cursor"] for c in ws.calls[:3]]
    assert cursors[0] and cursors[1] and cursors[2] == ""
    assert [c.params.get("cursor") for c in ws.calls[:3]] == [None, *cursors[:2]]
    assert everyone["members"] == ["U0BOT", "U0ALICE", "U0BOB", "U0CAROL", "U0DAVE"]
    assert everyone["response_metadata"] == {"next_cursor": ""}
    assert private["members"] == ["U0ALICE", "U0CAROL", "U0BOT"]


@pytest.mark.parametrize(
    ("params", "error"),
    [
        pytest.param({"channel": "C0NOWHERE"}, "channel_not_found", id="unknown-channel"),
        pytest.param({"channel": "C0HR"}, "channel_not_found", id="private-without-the-bot"),
        pytest.param({"channel": "C0OPS", "cursor": "bm9wZQ=="}, "invalid_cursor", id="cursor"),
        pytest.param({"channel": "C0OPS", "limit": "0"}, "invalid_limit", id="limit-zero"),
        pytest.param({"channel": "C0OPS", "limit": "many"}, "invalid_limit", id="limit-word"),
    ],
)
async def test_conversations_members_refusals(
    ws: Workspace, client: AsyncWebClient, params: dict[str, str], error: str
) -> None:
    """A private channel the bot is not in is ``channel_not_found``, as if it did not exist.

    https://docs.slack.dev/reference/methods/conversations.members (errors:
    channel_not_found, invalid_cursor, invalid_limit)
    """
    ws.add_channel("C0HR", "hr", private=True, members=["U0DAVE"])
    with pytest.raises(SlackApiError) as caught:
        await client.conversations_members(**params)
    assert caught.value.response["error"] == error


async def test_a_private_channel_the_bot_is_not_in_does_not_exist_for_it(
    ws: Workspace, client: AsyncWebClient
) -> None:
    """Posting, reading and listing all answer as for an unknown channel until it is invited.

    https://docs.slack.dev/reference/methods/chat.postMessage ("channel_not_found: Value
    passed for channel was invalid"; chat:write.public covers public channels only:
    https://docs.slack.dev/reference/scopes/chat:write.public) and
    https://docs.slack.dev/reference/methods/conversations.info
    """
    ws.add_channel("C0HR", "hr", private=True, members=["U0DAVE"])

    for call in (
        client.chat_postMessage(channel="C0HR", text="hi"),
        client.chat_postMessage(channel="#hr", text="hi"),
        client.conversations_info(channel="C0HR"),
        client.conversations_history(channel="C0HR"),
        client.chat_postEphemeral(channel="C0HR", user="U0DAVE", text="psst"),
    ):
        with pytest.raises(SlackApiError) as caught:
            await call
        assert caught.value.response["error"] == "channel_not_found"
    listing = await client.conversations_list(types="private_channel")
    assert [c["id"] for c in listing["channels"]] == ["C0PRIVATE"]
    assert ws.history("C0HR") == []

    ws.join("C0HR", "U0BOT")  # invited
    posted = await client.chat_postMessage(channel="C0HR", text="hi")
    assert posted["channel"] == "C0HR"


async def test_the_bot_posts_in_public_channels_it_is_not_in(
    ws: Workspace, client: AsyncWebClient
) -> None:
    """``chat:write.public`` lets an app post to public channels it is not a member of.

    https://docs.slack.dev/reference/scopes/chat:write.public
    """
    ws.add_channel("C0QUIET", "quiet", members=["U0ALICE"])

    posted = await client.chat_postMessage(channel="C0QUIET", text="card")

    assert posted["channel"] == "C0QUIET"
    assert not ws.is_member("C0QUIET", "U0BOT")  # posting does not make it a member


async def test_ephemeral_to_someone_not_in_the_channel_is_refused(
    ws: Workspace, client: AsyncWebClient
) -> None:
    """``user_not_in_channel``: the recipient must be in the channel.

    https://docs.slack.dev/reference/methods/chat.postEphemeral ("user: id of the user who
    will receive the ephemeral message. The user should be in the channel"; errors:
    user_not_in_channel)
    """
    with pytest.raises(SlackApiError) as caught:
        await client.chat_postEphemeral(channel="C0PRIVATE", user="U0BOB", text="psst")

    assert caught.value.response["error"] == "user_not_in_channel"
    assert ws.ephemerals_for("U0BOB") == []
    await client.chat_postEphemeral(channel="C0PRIVATE", user="U0CAROL", text="psst")
    assert [e.text for e in ws.ephemerals_for("U0CAROL")] == ["psst"]


async def test_auth_test_names_the_bot(client: AsyncWebClient) -> None:
    response = await client.auth_test()
    assert (response["user_id"], response["bot_id"], response["team_id"]) == (
        "U0BOT",
        "B0BOT",
        "T0DEV",
    )


async def test_unknown_method(client: AsyncWebClient, ws: Workspace) -> None:
    with pytest.raises(SlackApiError) as caught:
        await client.api_call("chat.scheduleMessage", json={"channel": "ops"})
    assert caught.value.response["error"] == "unknown_method"
    assert ws.calls_to("chat.scheduleMessage")[0].ok is False


# -- views -------------------------------------------------------------------------------------


async def test_views_open_push_update(ws: Workspace, client: AsyncWebClient) -> None:
    trigger, inside = ws.new_trigger("U0ALICE"), ws.new_trigger("U0ALICE")

    opened = await client.views_open(trigger_id=trigger.id, view=modal(text_input("version")))
    pushed = await client.views_push(trigger_id=inside.id, view=modal(section("sure?")))
    view_id = opened["view"]["id"]
    with pytest.raises(SlackApiError) as conflict:
        await client.views_update(view_id=view_id, hash="stale", view=modal(section("x")))
    updated = await client.views_update(
        view_id=view_id, hash=opened["view"]["hash"], view=modal(section("new"))
    )

    assert view_id.startswith("V")
    assert (trigger.used_by, inside.used_by) == ("views.open", "views.push")
    assert conflict.value.response["error"] == "hash_conflict"
    assert updated["view"]["blocks"] == [section("new")]
    assert updated["view"]["hash"] != opened["view"]["hash"]
    assert [v.id for v in ws.open_modals("U0ALICE")] == [view_id, pushed["view"]["id"]]
    assert ws.views[pushed["view"]["id"]].previous_view_id == view_id


async def test_views_push_stops_at_three(ws: Workspace, client: AsyncWebClient) -> None:
    def trigger() -> str:
        return ws.new_trigger("U0BOB").id

    await client.views_open(trigger_id=trigger(), view=modal(section("1")))
    await client.views_push(trigger_id=trigger(), view=modal(section("2")))
    await client.views_push(trigger_id=trigger(), view=modal(section("3")))

    with pytest.raises(SlackApiError) as caught:
        await client.views_push(trigger_id=trigger(), view=modal(section("4")))

    assert caught.value.response["error"] == "push_limit_reached"
    assert len(ws.open_modals("U0BOB")) == 3


async def test_views_publish_home(ws: Workspace, client: AsyncWebClient) -> None:
    home = {"type": "home", "blocks": [section("Pending approvals: 0")]}
    first = await client.views_publish(user_id="U0CAROL", view=home)
    second = await client.views_publish(
        user_id="U0CAROL", view={**home, "blocks": [section("Pending approvals: 1")]}
    )

    assert first["view"]["id"] == second["view"]["id"]
    view = ws.home("U0CAROL")
    assert view is not None
    assert view.blocks == [section("Pending approvals: 1")]
    with pytest.raises(SlackApiError) as caught:
        await client.views_publish(user_id="U0CAROL", view=modal(section("x")))
    assert caught.value.response["error"] == "invalid_arguments"


async def test_invalid_view_is_refused_with_its_problems(
    ws: Workspace, client: AsyncWebClient
) -> None:
    too_long_title = modal(section("x"), title={"type": "plain_text", "text": "t" * 25})
    with pytest.raises(SlackApiError) as caught:
        await client.views_open(trigger_id=ws.new_trigger("U0ALICE").id, view=too_long_title)
    assert caught.value.response["error"] == "invalid_arguments"
    assert caught.value.response["errors"] == ["view.title.text: 25 > 24"]


# -- Block Kit limits --------------------------------------------------------------------------


def many_blocks(count: int) -> list[dict[str, Any]]:
    return [section(f"line {i}") for i in range(count)]


@pytest.mark.parametrize(
    ("blocks", "problem"),
    [
        pytest.param([section("x" * 3001)], "blocks[0].text.text: 3001 > 3000", id="section-3001"),
        pytest.param(many_blocks(51), "blocks: 51 blocks > 50", id="51-blocks"),
        pytest.param(
            [section("a", "same"), section("b", "same")],
            "blocks[1].block_id: duplicate 'same'",
            id="duplicate-block-id",
        ),
        pytest.param(
            [{"type": "actions", "elements": [button("go", value="v" * 2001)]}],
            "blocks[0].elements[0].value: 2001 > 2000",
            id="button-value-2001",
        ),
        pytest.param(
            [{"type": "header", "text": {"type": "mrkdwn", "text": "hi"}}],
            "blocks[0].text.type: must be plain_text, not 'mrkdwn'",
            id="header-mrkdwn",
        ),
        pytest.param([{"type": "carousel"}], "blocks[0]: unknown block type 'carousel'", id="type"),
        pytest.param(
            [{"type": "section", "block_id": "s"}], "blocks[0]: needs text or fields", id="empty"
        ),
    ],
)
async def test_invalid_blocks_are_refused(
    ws: Workspace, client: AsyncWebClient, blocks: list[dict[str, Any]], problem: str
) -> None:
    with pytest.raises(SlackApiError) as caught:
        await client.chat_postMessage(channel="ops", text="card", blocks=blocks)

    assert caught.value.response["error"] == "invalid_blocks"
    assert problem in caught.value.response["errors"]
    [call] = ws.calls_to("chat.postMessage")
    assert call.ok is False
    assert call.params["blocks"] == blocks
    assert ws.history("ops") == []


def blocks_at_the_limits() -> list[dict[str, Any]]:
    max_button = {
        "type": "button",
        "action_id": "a" * 255,
        "text": {"type": "plain_text", "text": "b" * 75},
        "value": "v" * 2000,
        "url": "https://example.com/" + "u" * 2980,
        "confirm": {
            "title": {"type": "plain_text", "text": "t" * 100},
            "text": {"type": "mrkdwn", "text": "x" * 300},
            "confirm": {"type": "plain_text", "text": "c" * 30},
            "deny": {"type": "plain_text", "text": "d" * 30},
        },
    }
    fields = [{"type": "mrkdwn", "text": "f" * 2000} for _ in range(10)]
    context = [{"type": "mrkdwn", "text": "c"} for _ in range(10)]
    buttons = [button(f"b{i}") for i in range(24)]
    blocks: list[dict[str, Any]] = [
        {"type": "header", "text": {"type": "plain_text", "text": "h" * 150}},
        {"type": "section", "block_id": "i" * 255, "text": {"type": "mrkdwn", "text": "s" * 3000}},
        {"type": "section", "fields": fields},
        {"type": "context", "elements": context},
        {"type": "actions", "elements": [max_button, *buttons]},
        {"type": "divider"},
    ]
    return blocks + many_blocks(50 - len(blocks))


def test_blocks_exactly_at_the_limits_are_valid() -> None:
    """Every per-block limit at once passes validation; so much text in one message is still
    refused as a whole (``msg_blocks_too_long``, see test_devslack_strict.py)."""
    blocks = blocks_at_the_limits()
    assert len(blocks) == 50

    assert validate_message_blocks(blocks) == []


@pytest.mark.parametrize(
    ("view", "problem"),
    [
        pytest.param(
            modal(text_input("v"), private_metadata="m" * 3001),
            "view.private_metadata: 3001 > 3000",
            id="private-metadata",
        ),
        pytest.param(
            modal(text_input("v"), callback_id="c" * 256),
            "view.callback_id: 256 > 255",
            id="callback-id",
        ),
        pytest.param(
            {**modal(text_input("v")), "submit": None},
            "view.submit: required when the modal has input blocks",
            id="inputs-need-submit",
        ),
        pytest.param(modal(*many_blocks(101)), "view.blocks: 101 blocks > 100", id="101-blocks"),
        pytest.param(
            modal(text_input("v", max_length=3001)),
            "view.blocks[0].element.max_length: 3001 > 3000",
            id="max-length",
        ),
        pytest.param(
            modal(
                {
                    "type": "input",
                    "block_id": "n",
                    "label": {"type": "plain_text", "text": "n"},
                    "element": {
                        "type": "number_input",
                        "is_decimal_allowed": False,
                        "min_value": "1",
                        "initial_value": "0.5",
                    },
                }
            ),
            "view.blocks[0].element.initial_value: '0.5' is not an integer "
            "(is_decimal_allowed is false)",
            id="number-not-integer",
        ),
        pytest.param(
            modal(
                {
                    "type": "input",
                    "block_id": "p",
                    "label": {"type": "plain_text", "text": "p"},
                    "element": {
                        "type": "static_select",
                        "options": options("low", "high"),
                        "initial_option": options("urgent")[0],
                    },
                }
            ),
            "view.blocks[0].element.initial_option: value 'urgent' is not among the options",
            id="initial-option",
        ),
        pytest.param(
            modal(section("x" * 2900) | {"block_id": "b"}, *[section("y" * 2900)] * 90),
            " bytes > 250000",
            id="over-250kB",
        ),
    ],
)
def test_view_limits(view: dict[str, Any], problem: str) -> None:
    problems = validate_view(view)
    assert any(problem in p for p in problems), problems


def test_view_at_the_limits_is_valid() -> None:
    view = modal(
        *many_blocks(99),
        text_input("v", max_length=3000, multiline=True, initial_value="x" * 3000),
        title={"type": "plain_text", "text": "t" * 24},
        private_metadata="m" * 3000,
    )
    assert validate_view(view) == []


@pytest.mark.parametrize(
    ("blocks", "problem"),
    [
        pytest.param(
            [{"type": "actions", "elements": [{"type": "button", "text": {"type": "plain_text"}}]}],
            "blocks[0].elements[0].action_id: required",
            id="button-without-action-id",
        ),
        pytest.param(
            [{"type": "actions", "elements": [{"type": "button", "action_id": "a"}]}],
            "blocks[0].elements[0].text: required",
            id="button-without-text",
        ),
        pytest.param(
            [{"type": "section", "text": {"type": "mrkdwn"}}],
            "blocks[0].text.text: required",
            id="text-without-text",
        ),
        pytest.param(
            [{"type": "section", "fields": [{"type": "mrkdwn", "text": "f"}] * 11}],
            "blocks[0].fields: 11 items > 10",
            id="11-fields",
        ),
        pytest.param(
            [{"type": "context", "elements": [{"type": "mrkdwn", "text": "c"}] * 11}],
            "blocks[0].elements: 11 items > 10",
            id="11-context-elements",
        ),
        pytest.param(
            [{"type": "actions", "elements": [button(f"b{i}") for i in range(26)]}],
            "blocks[0].elements: 26 items > 25",
            id="26-actions",
        ),
        pytest.param(
            [{"type": "actions", "elements": [button("b", text="t" * 76)]}],
            "blocks[0].elements[0].text.text: 76 > 75",
            id="button-text-76",
        ),
        pytest.param(
            [
                {
                    "type": "actions",
                    "elements": [
                        button("b")
                        | {
                            "confirm": {
                                "title": {"type": "plain_text", "text": "t" * 101},
                                "text": {"type": "mrkdwn", "text": "sure?"},
                                "confirm": {"type": "plain_text", "text": "Yes"},
                                "deny": {"type": "plain_text", "text": "No"},
                            }
                        }
                    ],
                }
            ],
            "blocks[0].elements[0].confirm.title.text: 101 > 100",
            id="confirm-title-101",
        ),
        pytest.param(
            [section("x") | {"accessory": {"type": "plain_text_input", "action_id": "a"}}],
            "blocks[0].accessory: element type 'plain_text_input' is not allowed here",
            id="input-as-accessory",
        ),
        pytest.param(
            [{"type": "section", "block_id": "b" * 256, "text": {"type": "mrkdwn", "text": "x"}}],
            "blocks[0].block_id: 256 > 255",
            id="block-id-256",
        ),
    ],
)
def test_message_block_problems(blocks: list[dict[str, Any]], problem: str) -> None:
    assert problem in validate_message_blocks(blocks)


@given(length=st.integers(min_value=1, max_value=3100))
def test_section_text_is_valid_up_to_3000_chars(length: int) -> None:
    assert (validate_message_blocks([section("x" * length)]) == []) is (length <= 3000)


def test_rich_text_and_images_are_accepted() -> None:
    blocks = [
        {"type": "rich_text", "elements": [{"type": "rich_text_section", "elements": []}]},
        {"type": "image", "image_url": "https://example.com/a.png", "alt_text": "a"},
        {
            "type": "context",
            "elements": [{"type": "image", "image_url": "https://e.com/i.png", "alt_text": "i"}],
        },
    ]
    assert validate_message_blocks(blocks) == []


# -- faults, rate limits, auth -----------------------------------------------------------------


@pytest.fixture
def no_retry_jitter(monkeypatch: pytest.MonkeyPatch) -> None:
    # slack_sdk sleeps Retry-After plus up to a second of jitter; keep the tests fast.
    monkeypatch.setattr(builtin_async_handlers, "random", types.SimpleNamespace(random=lambda: 0.0))


async def test_429_with_retry_after_is_served(ws: Workspace, client: AsyncWebClient) -> None:
    ws.fail_next("chat.postMessage", status=429, retry_after=7)

    with pytest.raises(SlackApiError) as caught:
        await client.chat_postMessage(channel="ops", text="hi")

    assert caught.value.response.status_code == 429
    assert caught.value.response.headers["Retry-After"] == "7"
    assert caught.value.response["error"] == "ratelimited"
    assert ws.calls_to("chat.postMessage")[0].faulted
    assert ws.history("ops") == []


@pytest.mark.usefixtures("no_retry_jitter")
async def test_rate_limit_retry_handler_retries_through_429s(ws: Workspace, base_url: str) -> None:
    ws.fail_next("chat.postMessage", status=429, retry_after=0, times=3)
    client = AsyncWebClient(
        token=TOKEN,
        base_url=base_url,
        retry_handlers=[AsyncRateLimitErrorRetryHandler(max_retry_count=3)],
    )

    response = await client.chat_postMessage(channel="ops", text="eventually")

    calls = ws.calls_to("chat.postMessage")
    assert [c.status for c in calls] == [429, 429, 429, 200]
    assert [c.faulted for c in calls] == [True, True, True, False]
    assert ws.message("ops", response["ts"]).text == "eventually"


async def test_503_faults_and_server_error_retries(ws: Workspace, base_url: str) -> None:
    ws.fail_next("chat.update", status=503, times=2)
    plain = AsyncWebClient(token=TOKEN, base_url=base_url)
    posted = await plain.chat_postMessage(channel="ops", text="pending")
    with pytest.raises(SlackApiError) as caught:
        await plain.chat_update(channel="C0OPS", ts=posted["ts"], text="done")
    retrying = AsyncWebClient(
        token=TOKEN,
        base_url=base_url,
        retry_handlers=[
            AsyncServerErrorRetryHandler(
                max_retry_count=2, interval_calculator=FixedValueRetryIntervalCalculator(0.01)
            )
        ],
    )

    await retrying.chat_update(channel="C0OPS", ts=posted["ts"], text="done")

    assert caught.value.response.status_code == 503
    assert [c.status for c in ws.calls_to("chat.update")] == [503, 503, 200]
    assert ws.message("ops", posted["ts"]).text == "done"
    assert ws.faults.pending() == 0


async def test_scripted_error_without_http_failure(ws: Workspace, client: AsyncWebClient) -> None:
    ws.fail_next("users.info", error="fatal_error")
    with pytest.raises(SlackApiError) as caught:
        await client.users_info(user="U0ALICE")
    assert caught.value.response.status_code == 200
    assert caught.value.response["error"] == "fatal_error"
    assert (await client.users_info(user="U0ALICE"))["user"]["id"] == "U0ALICE"


async def test_per_channel_rate_limit(ws: Workspace, client: AsyncWebClient) -> None:
    now = [1_700_000_000.0]
    ws.clock = lambda: now[0]
    ws.rate_limit_per_channel = 1.0
    ws.rate_limit_burst = 2

    for _ in range(2):
        await client.chat_postMessage(channel="ops", text="burst")
    with pytest.raises(SlackApiError) as caught:
        await client.chat_postMessage(channel="ops", text="too fast")
    await client.chat_postMessage(channel="deploy", text="another channel")
    now[0] += 1.0
    await client.chat_postMessage(channel="ops", text="a second later")

    assert caught.value.response.status_code == 429
    assert caught.value.response.headers["Retry-After"] == "1"
    assert [m.text for m in ws.history("ops")] == ["a second later", "burst", "burst"]


async def test_wrong_or_missing_token_is_invalid_auth(ws: Workspace) -> None:
    runner, url = await start_slack_api(ws, bot_token="xoxb-right")
    try:
        for token in ("xoxb-wrong", None):
            with pytest.raises(SlackApiError) as caught:
                await AsyncWebClient(token=token, base_url=url).auth_test()
            assert caught.value.response["error"] == "invalid_auth"
        ok = await AsyncWebClient(token="xoxb-right", base_url=url).auth_test()
        async with aiohttp.ClientSession() as http:
            form = {"token": "xoxb-right", "user": "U0DAVE"}
            async with http.post(url + "users.info", data=form) as response:
                by_form_field = await response.json()
    finally:
        await runner.cleanup()
    assert ok["ok"] is True
    assert by_form_field["user"]["name"] == "dave"


async def test_form_encoded_blocks_arrive_as_json_strings(
    ws: Workspace, client: AsyncWebClient
) -> None:
    response = await client.api_call(
        "chat.postMessage",
        data={"channel": "#payments", "text": "t", "blocks": json.dumps(card())},
    )
    assert ws.message("C0PAYMENTS", response["ts"]).blocks == card()


async def test_mounted_as_subapp(ws: Workspace) -> None:
    api = create_slack_api(ws)
    outer = web.Application()
    outer.add_subapp("/slack/api", api)
    server = TestServer(outer, host="127.0.0.1")
    await server.start_server()
    try:
        client = AsyncWebClient(token=TOKEN, base_url=str(server.make_url("/slack/api/")))
        response = await client.chat_postMessage(channel="ops", text="mounted")
    finally:
        await server.close()
    assert ws.message("ops", response["ts"]).text == "mounted"
    assert api[WORKSPACE_KEY] is ws


# -- signing -----------------------------------------------------------------------------------


def test_signature_matches_slack_sdk() -> None:
    body = b"payload=%7B%7D"
    headers = signed_headers(SECRET, body)
    verifier = SignatureVerifier(SECRET)

    assert verifier.is_valid_request(body, headers)
    assert not verifier.is_valid_request(body + b"x", headers)
    assert not SignatureVerifier("other").is_valid_request(body, headers)
    assert headers["Content-Type"] == "application/x-www-form-urlencoded"
    assert signed_headers(SECRET, b'{"a":1}')["Content-Type"] == "application/json"
    assert sign(SECRET, body, 1) == verifier.generate_signature(timestamp="1", body=body)


# -- interactions ------------------------------------------------------------------------------


async def json_answer(body: dict[str, Any]) -> web.Response:
    return web.json_response(body)


async def plain_answer(text: str, status: int = 200) -> web.Response:
    return web.Response(text=text, status=status)


async def test_click_sends_a_signed_block_actions_payload(
    ws: Workspace, deliverer: Deliverer, recording_bot: tuple[RecordingBot, str]
) -> None:
    bot, _ = recording_bot
    message = ws.post_message("ops", text="card", blocks=card())

    delivery = await deliverer.click("ops", message.ts, "approve", user="U0ALICE")

    assert delivery.status == 200
    [payload] = bot.received
    assert payload["type"] == "block_actions"
    assert payload["user"] == {
        "id": "U0ALICE",
        "username": "alice",
        "name": "alice",
        "team_id": "T0DEV",
    }
    assert payload["container"] == {
        "type": "message",
        "message_ts": message.ts,
        "channel_id": "C0OPS",
        "is_ephemeral": False,
    }
    assert payload["channel"] == {"id": "C0OPS", "name": "ops"}
    assert payload["message"]["blocks"] == card()
    [action] = payload["actions"]
    assert (action["action_id"], action["block_id"], action["value"]) == (
        "approve",
        "decide",
        "apr_1",
    )
    assert action["text"]["text"] == "Approve"
    assert ws.triggers[payload["trigger_id"]].user == "U0ALICE"
    assert payload["response_url"].startswith(ws.api_url + "response/")


async def test_click_on_a_missing_button_raises(
    ws: Workspace, deliverer: Deliverer, recording_bot: tuple[RecordingBot, str]
) -> None:
    message = ws.post_message("ops", text="card", blocks=card())

    with pytest.raises(InteractionError, match="'edit'"):
        await deliverer.click("ops", message.ts, "edit", user="U0ALICE")
    with pytest.raises(InteractionError, match="no message"):
        await deliverer.click("ops", "1.000001", "approve", user="U0ALICE")
    assert recording_bot[0].received == []


async def test_people_act_only_in_channels_they_are_in(
    ws: Workspace, deliverer: Deliverer, recording_bot: tuple[RecordingBot, str]
) -> None:
    """Slack shows a channel's messages, buttons and composer to its members only, so it never
    sends a click, a message event or a slash command from anyone else.

    https://docs.slack.dev/reference/interaction-payloads/block_actions-payload and
    https://docs.slack.dev/reference/objects/conversation-object ("is_private: the
    conversation is privileged between two or more members")
    """
    message = ws.post_message("C0PRIVATE", text="card", blocks=card())
    triggers = len(ws.triggers)

    with pytest.raises(InteractionError, match="U0BOB is not a member of #security"):
        await deliverer.click("C0PRIVATE", message.ts, "approve", user="U0BOB")
    with pytest.raises(InteractionError, match="not a member"):
        await deliverer.reply_in_thread("C0PRIVATE", message.ts, "lgtm", user="U0DAVE")
    with pytest.raises(InteractionError, match="not a member"):
        await deliverer.slash_command("/approvals", user="U0BOB", channel="#security")
    with pytest.raises(InteractionError, match="not a member"):
        payloads.block_actions_payload(
            ws,
            user="U0BOB",
            message=message,
            action_id="approve",
            trigger_id="t",
            response_url="http://127.0.0.1:9/unused",
            action_ts="1.0",
        )
    with pytest.raises(InteractionError, match="no channel"):
        await deliverer.post_as_user("C0NOWHERE", "hi", user="U0BOB")

    assert recording_bot[0].received == []
    assert len(ws.triggers) == triggers  # nothing handed out for a click that never happened
    assert ws.thread("C0PRIVATE", message.ts) == [message]
    await deliverer.click("C0PRIVATE", message.ts, "approve", user="U0CAROL")
    assert recording_bot[0].received[0]["channel"] == {"id": "C0PRIVATE", "name": "security"}


async def test_a_message_in_a_private_channel_is_a_group_event(
    ws: Workspace, deliverer: Deliverer, recording_bot: tuple[RecordingBot, str]
) -> None:
    """``message.groups`` events say ``channel_type: group``.

    https://docs.slack.dev/reference/events/message.groups ("Differentiate private channels
    ... by looking for the event's channel_type field set to group")
    """
    card_message = ws.post_message("C0PRIVATE", text="card", blocks=card())

    await deliverer.reply_in_thread("C0PRIVATE", card_message.ts, "why?", user="U0ALICE")

    [body] = recording_bot[0].received
    assert body["event"]["channel_type"] == "group"


async def test_wrong_signing_secret_is_refused_by_the_bot(
    ws: Workspace, recording_bot: tuple[RecordingBot, str]
) -> None:
    message = ws.post_message("ops", text="card", blocks=card())
    async with Deliverer(ws, recording_bot[1], "not-the-secret") as impostor:
        delivery = await impostor.click("ops", message.ts, "approve", user="U0BOB")
    assert delivery.status == 401
    assert recording_bot[0].received == []


async def test_bot_opens_a_modal_from_a_click_and_answers_via_response_url(
    ws: Workspace,
    deliverer: Deliverer,
    recording_bot: tuple[RecordingBot, str],
    client: AsyncWebClient,
) -> None:
    bot, _ = recording_bot

    async def open_modal(payload: dict[str, Any]) -> web.Response:
        await client.views_open(trigger_id=payload["trigger_id"], view=modal(text_input("note")))
        async with aiohttp.ClientSession() as http:
            note = {"text": "opened", "response_type": "ephemeral"}
            async with http.post(payload["response_url"], json=note) as answer:
                assert answer.status == 200
        return web.Response()

    bot.answer = open_modal
    message = ws.post_message("ops", text="card", blocks=card())

    await deliverer.click("ops", message.ts, "reject", user="U0CAROL")

    [view] = ws.open_modals("U0CAROL")
    assert view.callback_id == "edit"
    assert [e.text for e in ws.ephemerals_for("U0CAROL")] == ["opened"]


@pytest.mark.parametrize(
    ("change", "expected"),
    [
        pytest.param({"replace_original": True, "text": "done"}, "done", id="replace"),
        pytest.param({"delete_original": True}, None, id="delete"),
    ],
)
async def test_response_url_replaces_or_deletes_the_original(
    ws: Workspace, base_url: str, change: dict[str, Any], expected: str | None
) -> None:
    message = ws.post_message("ops", text="card", blocks=card())
    target = ws.new_response_target("U0ALICE", "C0OPS", message.ts)

    async with (
        aiohttp.ClientSession() as http,
        http.post(ws.response_url(target), json=change) as response,
    ):
        assert response.status == 200

    assert [m.text for m in ws.history("ops")] == ([expected] if expected else [])


async def test_view_submission_with_errors_keeps_the_view_open(
    ws: Workspace, deliverer: Deliverer, recording_bot: tuple[RecordingBot, str]
) -> None:
    bot, _ = recording_bot
    bot.answer = lambda payload: json_answer(
        {"response_action": "errors", "errors": {"version": "not a semver"}}
    )
    view = ws.open_view(modal(text_input("version", initial_value="1.4.2")), user="U0ALICE")

    delivery = await deliverer.submit_view(view.id, {"version": "one"})

    [payload] = bot.received
    assert payload["type"] == "view_submission"
    assert payload["view"]["id"] == view.id
    assert payload["view"]["type"] == "modal"
    assert payload["view"]["callback_id"] == "edit"
    assert payload["view"]["state"]["values"] == {
        "version": {"value": {"type": "plain_text_input", "value": "one"}}
    }
    assert payload["user"]["id"] == "U0ALICE"
    assert delivery.json()["response_action"] == "errors"
    assert not view.closed
    assert view.errors == {"version": "not a semver"}
    assert ws.open_modals("U0ALICE") == [view]


@pytest.mark.parametrize(
    ("answer", "open_titles"),
    [
        pytest.param(None, ["Root"], id="empty-body-closes"),
        pytest.param({"response_action": "clear"}, [], id="clear"),
        pytest.param(
            {
                "response_action": "update",
                "view": modal(section("ok"), title={"type": "plain_text", "text": "Done"}),
            },
            ["Root", "Done"],
            id="update",
        ),
        pytest.param(
            {
                "response_action": "push",
                "view": modal(section("more"), title={"type": "plain_text", "text": "More"}),
            },
            ["Root", "Edit", "More"],
            id="push",
        ),
    ],
)
async def test_view_submission_answers_are_applied(
    ws: Workspace,
    deliverer: Deliverer,
    recording_bot: tuple[RecordingBot, str],
    answer: dict[str, Any] | None,
    open_titles: list[str],
) -> None:
    bot, _ = recording_bot
    if answer is not None:
        bot.answer = lambda payload: json_answer(answer)
    root = ws.open_view(
        modal(section("root"), title={"type": "plain_text", "text": "Root"}), user="U0BOB"
    )
    edit = ws.push_view(modal(text_input("note")), user="U0BOB")

    delivery = await deliverer.submit_view(edit.id, {"note": "hi"})

    assert delivery.problems == []
    assert [v.title for v in ws.open_modals("U0BOB")] == open_titles
    assert edit.closed is (answer is None or answer["response_action"] == "clear")
    assert root.closed is (open_titles == [])


def test_state_values_from_plain_values() -> None:
    view = View(
        id="V1",
        user="U0ALICE",
        hash="h",
        spec=modal(
            text_input("version", initial_value="1.0"),
            text_input("note"),
            {
                "type": "input",
                "block_id": "replicas",
                "label": {"type": "plain_text", "text": "replicas"},
                "element": {
                    "type": "number_input",
                    "action_id": "n",
                    "is_decimal_allowed": False,
                },
            },
            {
                "type": "input",
                "block_id": "priority",
                "label": {"type": "plain_text", "text": "priority"},
                "element": {
                    "type": "static_select",
                    "action_id": "p",
                    "options": options("low", "high"),
                },
            },
            {
                "type": "input",
                "block_id": "regions",
                "label": {"type": "plain_text", "text": "regions"},
                "element": {
                    "type": "checkboxes",
                    "action_id": "r",
                    "options": options("eu", "us"),
                },
            },
            {
                "type": "input",
                "block_id": "mode",
                "label": {"type": "plain_text", "text": "mode"},
                "element": {
                    "type": "radio_buttons",
                    "action_id": "m",
                    "options": options("fast", "safe"),
                    "initial_option": options("safe")[0],
                },
            },
        ),
    )

    values = state_values(
        view, {"replicas": 3, "priority": "high", "regions": ["eu", "us"], "note": None}
    )

    assert values == {
        "version": {"value": {"type": "plain_text_input", "value": "1.0"}},
        "note": {"value": {"type": "plain_text_input", "value": None}},
        "replicas": {"n": {"type": "number_input", "value": "3"}},
        "priority": {"p": {"type": "static_select", "selected_option": options("high")[0]}},
        "regions": {"r": {"type": "checkboxes", "selected_options": options("eu", "us")}},
        "mode": {"m": {"type": "radio_buttons", "selected_option": options("safe")[0]}},
    }
    with pytest.raises(InteractionError, match="no option 'urgent'"):
        state_values(view, {"priority": "urgent"})
    with pytest.raises(InteractionError, match="versoin"):
        state_values(view, {"versoin": "2.0"})


async def test_click_inside_a_view(
    ws: Workspace, deliverer: Deliverer, recording_bot: tuple[RecordingBot, str]
) -> None:
    home = ws.publish_home(
        "U0DAVE", {"type": "home", "blocks": [{"type": "actions", "elements": [button("refresh")]}]}
    )

    await deliverer.click_in_view(home.id, "refresh")

    [payload] = recording_bot[0].received
    assert payload["container"] == {"type": "view", "view_id": home.id}
    assert payload["view"]["type"] == "home"
    assert payload["actions"][0]["action_id"] == "refresh"
    assert payload["user"]["id"] == "U0DAVE"


async def test_thread_reply_is_stored_and_sent_as_a_message_event(
    ws: Workspace, deliverer: Deliverer, recording_bot: tuple[RecordingBot, str]
) -> None:
    card_message = ws.post_message("ops", text="card", blocks=card())

    delivery = await deliverer.reply_in_thread("ops", card_message.ts, "why?", user="U0BOB")

    assert delivery.ok
    [reply] = ws.thread("ops", card_message.ts)[1:]
    assert (reply.user, reply.text, reply.bot_id) == ("U0BOB", "why?", None)
    [body] = recording_bot[0].received
    assert body["type"] == "event_callback"
    assert body["event_id"].startswith("Ev")
    assert body["event"]["type"] == "message"
    assert body["event"]["thread_ts"] == card_message.ts
    assert body["event"]["ts"] == reply.ts
    assert body["event"]["channel_type"] == "channel"
    assert body["_headers"]["Content-Type"] == "application/json"


async def test_event_retries_repeat_the_event_id(
    deliverer: Deliverer, recording_bot: tuple[RecordingBot, str]
) -> None:
    await deliverer.open_home("U0ALICE")
    first = recording_bot[0].received[0]
    await deliverer.send_event(first["event"], event_id=first["event_id"], retry_num=1)

    retry = recording_bot[0].received[1]
    assert first["event"]["type"] == "app_home_opened"
    assert retry["event_id"] == first["event_id"]
    assert retry["_headers"]["X-Slack-Retry-Num"] == "1"


async def test_slash_command_is_form_encoded(
    ws: Workspace, deliverer: Deliverer, recording_bot: tuple[RecordingBot, str]
) -> None:
    await deliverer.slash_command("/approvals", "pending", user="U0CAROL", channel="#deploy")

    [fields] = recording_bot[0].received
    assert fields["command"] == "/approvals"
    assert fields["text"] == "pending"
    assert (fields["user_id"], fields["channel_id"]) == ("U0CAROL", "C0DEPLOY")
    assert fields["trigger_id"] in ws.triggers
    assert fields["_headers"]["Content-Type"] == "application/x-www-form-urlencoded"


@pytest.mark.parametrize(
    ("answer", "note", "posted"),
    [
        pytest.param({"text": "3 pending"}, "3 pending", None, id="ephemeral-by-default"),
        pytest.param(
            {"response_type": "ephemeral", "blocks": [section("*3* pending")]},
            "",
            None,
            id="blocks",
        ),
        pytest.param(
            {"response_type": "in_channel", "text": "3 pending"}, None, "3 pending", id="in-channel"
        ),
        pytest.param("Usage: /approvals mine", "Usage: /approvals mine", None, id="plain-text"),
        pytest.param("", None, None, id="empty-ack"),
    ],
)
async def test_a_slash_commands_answer_is_shown_as_slack_shows_it(
    ws: Workspace,
    deliverer: Deliverer,
    recording_bot: tuple[RecordingBot, str],
    answer: dict[str, Any] | str,
    note: str | None,
    posted: str | None,
) -> None:
    """Issue 15: `/approvals` answered, but the emulator showed nothing of the answer. Slack
    shows the immediate response to its user only, unless it says `in_channel`
    (https://docs.slack.dev/interactivity/implementing-slash-commands#responding_to_commands)."""
    if isinstance(answer, dict):
        recording_bot[0].answer = lambda _: json_answer(answer)
    else:
        recording_bot[0].answer = lambda _: plain_answer(answer)

    delivery = await deliverer.slash_command("/approvals", user="U0CAROL", channel="#deploy")

    assert (delivery.status, delivery.problems) == (200, [])
    notes = ws.ephemerals_for("U0CAROL")
    assert [n.text for n in notes] == ([] if note is None else [note])
    assert [m.text for m in ws.history("deploy")] == ([] if posted is None else [posted])
    if notes:
        assert notes[0].channel == "C0DEPLOY" and ws.ephemeral_anchors == {}


async def test_a_failed_slash_command_is_an_error_the_user_sees(
    ws: Workspace, deliverer: Deliverer, recording_bot: tuple[RecordingBot, str]
) -> None:
    recording_bot[0].answer = lambda _: plain_answer("boom", status=500)
    delivery = await deliverer.slash_command("/approvals", user="U0CAROL", channel="#deploy")
    assert delivery.problems == ["/approvals failed: the bot answered HTTP 500"]
    assert ws.ephemerals_for("U0CAROL") == []


async def test_a_clicks_note_is_shown_under_the_message_clicked(
    ws: Workspace, deliverer: Deliverer, client: AsyncWebClient
) -> None:
    """Issue 15: a refusal landed at the bottom of the channel, far from the card clicked.
    A note posted for the clicker in that channel soon after (chat.postEphemeral, or the
    click's response_url) is anchored to the message clicked."""
    card_a = ws.post_message("ops", text="a", blocks=card())
    ws.post_message("ops", text="b", blocks=card())
    await deliverer.click("ops", card_a.ts, "approve", user="U0CAROL")

    posted = await client.chat_postEphemeral(channel="C0OPS", user="U0CAROL", text="refused")
    elsewhere = await client.chat_postEphemeral(channel="C0DEPLOY", user="U0CAROL", text="x")
    someone_else = await client.chat_postEphemeral(channel="C0OPS", user="U0BOB", text="y")

    assert ws.ephemeral_anchors == {posted["message_ts"]: card_a.ts}
    assert elsewhere["message_ts"] not in ws.ephemeral_anchors
    assert someone_else["message_ts"] not in ws.ephemeral_anchors


async def test_a_response_url_note_is_shown_under_its_message(ws: Workspace, base_url: str) -> None:
    message = ws.post_message("ops", text="card", blocks=card())
    target = ws.new_response_target("U0ALICE", "C0OPS", message.ts)
    async with (
        aiohttp.ClientSession() as http,
        http.post(ws.response_url(target), json={"text": "only you"}) as response,
    ):
        assert response.status == 200
    [note] = ws.ephemerals_for("U0ALICE")
    assert ws.ephemeral_anchors == {note.ts: message.ts}


async def test_a_note_long_after_a_click_or_after_a_command_is_not_the_clicks(
    ws: Workspace, deliverer: Deliverer
) -> None:
    now = [1_800_000_000.0]
    ws.clock = lambda: now[0]
    message = ws.post_message("ops", text="card", blocks=card())

    await deliverer.click("ops", message.ts, "approve", user="U0CAROL")
    now[0] += 11  # past CLICK_NOTE_WINDOW: the bot's answer to the click is long done
    late = ws.post_ephemeral("C0OPS", "U0CAROL", text="late")

    await deliverer.click("ops", message.ts, "approve", user="U0CAROL")
    await deliverer.slash_command("/approvals", user="U0CAROL", channel="#ops")
    after_command = ws.post_ephemeral("C0OPS", "U0CAROL", text="listing")

    assert ws.ephemeral_anchors == {}
    assert (late.text, after_command.text) == ("late", "listing")


async def test_change_feed_wakes_a_waiting_reader(ws: Workspace) -> None:
    start = ws.feed.last_seq
    assert await ws.changes_since(start, timeout=0.01) == []

    waiting = asyncio.create_task(ws.changes_since(start, timeout=1.0))
    await asyncio.sleep(0)
    ws.post_message("ops", text="hello")
    changes = await waiting

    assert [c.kind for c in changes] == ["message.posted"]
    assert changes[0].seq == start + 1
    assert changes[0].data["message"]["text"] == "hello"


async def test_bolt_app_round_trip(ws: Workspace, base_url: str) -> None:
    app = AsyncApp(client=AsyncWebClient(token=TOKEN, base_url=base_url), signing_secret=SECRET)

    @app.action("reject")
    async def on_reject(ack: AsyncAck, body: dict[str, Any], client: AsyncWebClient) -> None:
        await ack()
        note = text_input("reason")
        await client.views_open(trigger_id=body["trigger_id"], view=modal(note))

    @app.view("edit")
    async def on_submit(ack: AsyncAck, view: dict[str, Any]) -> None:
        reason = view["state"]["values"]["reason"]["value"]["value"]
        await ack(response_action="errors", errors={"reason": f"{reason!r} is too short"})

    async def events(request: web.Request) -> web.Response:
        return await to_aiohttp_response(await app.async_dispatch(await to_bolt_request(request)))

    bot_app = web.Application()
    bot_app.router.add_post("/slack/events", events)
    server = TestServer(bot_app, host="127.0.0.1")
    await server.start_server()
    message = ws.post_message("ops", text="card", blocks=card())
    try:
        async with Deliverer(ws, str(server.make_url("/slack/events")), SECRET) as slack:
            await slack.click("ops", message.ts, "reject", user="U0ALICE")
            for _ in range(100):  # the listener runs after the ack
                if ws.open_modals("U0ALICE"):
                    break
                await asyncio.sleep(0.01)
            [view] = ws.open_modals("U0ALICE")
            delivery = await slack.submit_view(view.id, {"reason": "no"})
    finally:
        await server.close()

    assert delivery.status == 200
    assert view.errors == {"reason": "'no' is too short"}
    assert not view.closed
    assert ws.calls_to("auth.test", ok=True)
