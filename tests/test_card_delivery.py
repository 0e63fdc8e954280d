"""One card per approval, whatever Slack or the process does; and no agent waits on a card
Slack refuses.

Slack is the devslack emulator, the bot is the real one (in-process, or `approval-bot serve`
killed with SIGKILL). Each test names the Slack documentation of the behaviour it leans on.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import pytest
from slack_sdk.errors import SlackApiError
from slack_sdk.web.async_client import AsyncWebClient

from bot.app import BOT
from bot.devslack import Workspace
from bot.models import ApprovalRequest
from bot.service import ApprovalService
from bot.slack.poster import CardPoster
from bot.store import open_store
from tests.conftest import AGENT_TOKEN, BOT_TOKEN, RigFactory, SlackRig, until
from tests.processes import ServeProcess
from tests.slack_support import actions_of
from tests.test_api import read_sse

AGENT = {"Authorization": f"Bearer {AGENT_TOKEN}"}


def cards_of(workspace: Workspace, channel: str, approval_id: str) -> list[Any]:
    """The messages of `channel` that are cards of `approval_id` (thread replies included)."""
    return [
        m
        for m in workspace.messages[workspace.channel(channel).id]
        if (m.metadata or {}).get("event_type") == "approval_card"
        and (m.metadata or {}).get("event_payload", {}).get("id") == approval_id
    ]


def poster_of(rig: SlackRig) -> CardPoster:
    [poster] = [
        w.handle for w in rig.bot.server.app[BOT].workers if isinstance(w.handle, CardPoster)
    ]
    return poster


@pytest.fixture
async def client(workspace: Workspace) -> AsyncIterator[AsyncWebClient]:
    """The bot's own kind of Web API client, on the emulator."""
    web = AsyncWebClient(token=BOT_TOKEN, base_url=workspace.base_url)
    yield web
    if web.session is not None:
        await web.session.close()


# -- the emulator, as Slack documents it ----------------------------------------------------


async def test_history_shows_message_metadata_only_when_asked(
    workspace: Workspace, client: AsyncWebClient
) -> None:
    """https://api.slack.com/methods/conversations.history: `include_all_metadata` "Return all
    metadata associated with this message", false by default; `oldest` "Only messages after
    this Unix timestamp", `inclusive` to include it. https://api.slack.com/metadata/using."""
    metadata = {"event_type": "approval_card", "event_payload": {"id": "apr_1"}}
    first = await client.chat_postMessage(channel="C0OPS", text="card", metadata=metadata)
    second = await client.chat_postMessage(channel="C0OPS", text="later")

    plain = await client.conversations_history(channel="C0OPS")
    full = await client.conversations_history(channel="C0OPS", include_all_metadata=True)
    after = await client.conversations_history(channel="C0OPS", oldest=first["ts"])
    inclusive = await client.conversations_history(
        channel="C0OPS", oldest=first["ts"], inclusive=True
    )

    assert all("metadata" not in m for m in plain["messages"])
    assert [m.get("metadata") for m in full["messages"]] == [None, metadata]
    assert [m["ts"] for m in after["messages"]] == [second["ts"]]
    assert [m["ts"] for m in inclusive["messages"]] == [second["ts"], first["ts"]]


async def test_replies_show_message_metadata_only_when_asked(
    workspace: Workspace, client: AsyncWebClient
) -> None:
    """https://api.slack.com/methods/conversations.replies: `include_all_metadata`, as for
    history."""
    metadata = {"event_type": "approval_card", "event_payload": {"id": "apr_1"}}
    parent = await client.chat_postMessage(channel="C0OPS", text="run")
    await client.chat_postMessage(
        channel="C0OPS", text="card", thread_ts=parent["ts"], metadata=metadata
    )

    plain = await client.conversations_replies(channel="C0OPS", ts=parent["ts"])
    full = await client.conversations_replies(
        channel="C0OPS", ts=parent["ts"], include_all_metadata=True
    )

    assert all("metadata" not in m for m in plain["messages"])
    assert full["messages"][1]["metadata"] == metadata


async def test_an_archived_channel_refuses_posts(
    workspace: Workspace, client: AsyncWebClient
) -> None:
    """https://api.slack.com/methods/chat.postMessage#errors: `is_archived`, "Channel has been
    archived"."""
    workspace.archive("C0DEPLOY")

    with pytest.raises(SlackApiError) as refused:
        await client.chat_postMessage(channel="C0DEPLOY", text="hello")

    assert refused.value.response["error"] == "is_archived"
    assert (await client.conversations_info(channel="C0DEPLOY"))["channel"]["is_archived"]


async def test_a_refused_token_refuses_every_call(
    workspace: Workspace, client: AsyncWebClient
) -> None:
    """https://api.slack.com/methods/auth.test#errors: `invalid_auth`, `token_revoked`… are
    answered to any method called with that token."""
    workspace.refuse_token("token_revoked")
    for call in (client.auth_test(), client.chat_postMessage(channel="C0OPS", text="x")):
        with pytest.raises(SlackApiError) as refused:
            await call
        assert refused.value.response["error"] == "token_revoked"

    workspace.refuse_token(None)
    assert (await client.auth_test())["ok"]


# -- exactly one card -------------------------------------------------------------------------


async def test_a_post_answered_after_the_client_gave_up_makes_one_card(rig: SlackRig) -> None:
    """Slack posts, but its answer comes after the client's 10 s timeout: the retry finds the
    card with conversations.history (https://api.slack.com/methods/conversations.history,
    `include_all_metadata`) and adopts it instead of posting a second one."""
    rig.workspace.answer_late("chat.postMessage", delay=12)
    record = await rig.bot.submit()

    card = await rig.card(record["id"], timeout=30)

    assert cards_of(rig.workspace, "C0OPS", record["id"]) == [card]
    assert actions_of(card)
    [looked] = rig.workspace.calls_to("conversations.history", ok=True)
    assert looked.params["include_all_metadata"] in ("1", "true", True)
    _, stored = await rig.bot.call("GET", f"/v1/approvals/{record['id']}")
    assert stored["slack"]["permalink"] and stored["slack"]["error"] is None


async def test_earlier_copies_of_a_card_are_kept_once_and_the_rest_rewritten(
    rig: SlackRig,
) -> None:
    """Two copies of a card in the channel (an older bot posted twice) when a post failed with
    a 5xx that may have posted too: the first is kept and shown as the approval stands, the
    second is rewritten with chat.update (https://api.slack.com/methods/chat.update: new
    `blocks` and `metadata` replace the old) to point at it, without buttons."""
    workspace = rig.workspace
    workspace.fail_next("chat.postMessage", status=503, times=3)  # with the client's 2 retries
    record = await rig.bot.submit()
    button = {
        "type": "actions",
        "elements": [
            {
                "type": "button",
                "action_id": "approve",
                "text": {"type": "plain_text", "text": "Approve"},
                "value": record["id"],
            }
        ],
    }
    metadata = {"event_type": "approval_card", "event_payload": {"id": record["id"]}}
    first, second = (
        workspace.post_message("C0OPS", text="card", blocks=[button], metadata=metadata)
        for _ in range(2)
    )

    card = await rig.card(record["id"], timeout=15)

    assert card.ts == first.ts
    assert not workspace.calls_to("chat.postMessage", ok=True)  # nothing posted again
    assert cards_of(workspace, "C0OPS", record["id"]) == [first]
    assert "deploy_service" in card.text and actions_of(card)  # redrawn as the real card
    assert not actions_of(second) and "Duplicate" in second.text
    assert second.metadata["event_type"] == "approval_card_duplicate"


async def card_message(workspace: Workspace, approval_id: str) -> Any:
    cards = cards_of(workspace, "C0OPS", approval_id)
    return cards[0] if cards else None


async def test_killed_before_slack_answered_the_post_restarts_without_a_second_card(
    serve: ServeProcess, workspace: Workspace
) -> None:
    """kill -9 while Slack's answer to chat.postMessage is on its way: the channel the card
    went to was saved first, so the restarted bot looks there (conversations.history,
    https://api.slack.com/methods/conversations.history) and adopts the card. Decided, it is
    the one card rewritten: no orphan keeps live buttons."""
    workspace.answer_late("chat.postMessage", delay=8)
    async with aiohttp.ClientSession() as http:
        await serve.start(http)
        body = {"toolName": "deploy_service", "args": {"version": "1.4.2"}}
        async with http.post(serve.url + "/v1/approvals", json=body, headers=AGENT) as r:
            record = await r.json()
        await until(lambda: card_message(workspace, record["id"]), timeout=10)
        serve.kill()

        await serve.start(http)
        stored = await until(lambda: _posted(http, serve.url, record["id"]), timeout=20)
        body = {"approved": True, "decidedBy": "alice"}
        async with http.post(
            f"{serve.url}/v1/approvals/{record['id']}/decision",
            json=body,
            headers={"Authorization": "Bearer admin-token"},
        ) as r:
            assert r.status == 200

        [card] = cards_of(workspace, "C0OPS", record["id"])
        assert card.ts == stored["slack"]["ts"]
        await until(lambda: _without_buttons(card), timeout=10)


async def test_killed_while_fetching_the_permalink_keeps_the_card_posted(
    serve: ServeProcess, workspace: Workspace
) -> None:
    """kill -9 during a slow chat.getPermalink (https://api.slack.com/methods/chat.getPermalink):
    the card's ts was saved as soon as chat.postMessage answered, so the restarted bot posts
    nothing again and only fetches the permalink."""
    workspace.answer_late("chat.getPermalink", delay=8)
    async with aiohttp.ClientSession() as http:
        await serve.start(http)
        body = {"toolName": "deploy_service", "args": {"version": "1.4.2"}}
        async with http.post(serve.url + "/v1/approvals", json=body, headers=AGENT) as r:
            record = await r.json()
        await until(lambda: card_message(workspace, record["id"]), timeout=10)
        await asyncio.sleep(1)  # the bot is waiting for the permalink now
        serve.kill()

        await serve.start(http)

        async def with_permalink() -> Any:
            stored = await _posted(http, serve.url, record["id"])
            return stored if stored and stored["slack"]["permalink"] else None

        stored = await until(with_permalink, timeout=20)

    [card] = cards_of(workspace, "C0OPS", record["id"])
    assert card.ts == stored["slack"]["ts"]
    assert len(workspace.calls_to("chat.postMessage", ok=True)) == 1


async def _posted(http: aiohttp.ClientSession, url: str, approval_id: str) -> Any:
    async with http.get(f"{url}/v1/approvals/{approval_id}", headers=AGENT) as response:
        record = await response.json()
    return record if record["slack"]["ts"] else None


async def _without_buttons(card: Any) -> bool:
    return not actions_of(card)


# -- cards Slack refuses for good ------------------------------------------------------------


@pytest.mark.parametrize(
    ("channel", "error"),
    [
        pytest.param("C0NOPE", "channel_not_found", id="no-such-channel"),
        pytest.param("C0DEPLOY", "is_archived", id="archived"),
        pytest.param("C0SECRET", "channel_not_found", id="private-not-invited"),
    ],
)
async def test_a_channel_slack_refuses_ends_the_approval_at_once(
    rig: SlackRig, channel: str, error: str
) -> None:
    """https://api.slack.com/methods/chat.postMessage#errors: `channel_not_found` (also for a
    private channel the bot was not invited to: it does not exist for the bot's token),
    `is_archived`. Without a fallback channel the approval ends rejected/undeliverable at once;
    SSE shows `slack.error` first, then the decision, and a waiting agent is answered."""
    rig.workspace.archive("C0DEPLOY")
    rig.workspace.add_channel("C0SECRET", "secret", private=True, members=["U0ALICE"])
    headers = {**AGENT, "Last-Event-ID": "0"}
    async with rig.bot.http.get(rig.bot.url + "/v1/events", headers=headers) as stream:
        record = await rig.bot.submit(channel=channel)
        status, decided = await asyncio.wait_for(
            rig.bot.call("GET", f"/v1/approvals/{record['id']}/wait?timeout=20"), 10
        )
        events = await read_sse(stream, 3)

    assert status == 200 and decided["status"] == "rejected"
    decision = decided["decision"]
    assert (decision["action"], decision["decidedBy"], decision["comment"]) == (
        "undeliverable",
        "system:slack",
        error,
    )
    assert decision["approved"] is False and decided["slack"]["error"] == error
    assert [e["event"] for e in events] == ["pending", "pending", "rejected"]
    refused = json.loads(events[1]["data"])["approval"]
    assert (refused["status"], refused["slack"]["error"]) == ("pending", error)
    assert len(rig.workspace.calls_to("chat.postMessage")) == 1  # not retried


async def test_a_refused_card_lands_in_the_fallback_channel(make_rig: RigFactory) -> None:
    """https://api.slack.com/methods/chat.postMessage#errors `is_archived`: the card goes to
    the routing file's `fallback_channel` instead, `slack.error` says why, and it is decided
    there like any card."""
    rig = await make_rig('fallback_channel = "C0ESCALATE"\n')
    rig.workspace.archive("C0DEPLOY")
    record = await rig.bot.submit(channel="C0DEPLOY")

    card = await rig.card(record["id"])
    _, stored = await rig.bot.call("GET", f"/v1/approvals/{record['id']}")
    assert card.channel == "C0ESCALATE" and actions_of(card)
    assert (stored["status"], stored["slack"]["error"]) == ("pending", "is_archived")

    delivery = await rig.slack.click(card.channel, card.ts, "approve", user="U0ALICE")
    assert delivery.status == 200
    assert (await rig.decided(record["id"]))["status"] == "approved"


async def test_a_fallback_channel_that_refuses_too_ends_the_approval(
    make_rig: RigFactory,
) -> None:
    """Both channels refuse (https://api.slack.com/methods/chat.postMessage#errors): the
    approval ends undeliverable, the comment naming both refusals."""
    rig = await make_rig('fallback_channel = "C0GONE"\n')
    record = await rig.bot.submit(channel="C0NOPE")

    decided = await rig.decided(record["id"])

    assert decided["decision"]["action"] == "undeliverable"
    assert decided["slack"]["error"] == "channel_not_found"
    assert "C0GONE" in decided["decision"]["comment"]


async def test_a_refused_token_ends_the_approval_after_the_window(rig: SlackRig) -> None:
    """https://api.slack.com/methods/chat.postMessage#errors `invalid_auth`: the bot's token,
    not the card, is refused. `slack.error` says so at once and /healthz turns 503
    (https://api.slack.com/methods/auth.test); the card is tried again with backoff until the
    window passes (5 minutes; shortened here), then the approval ends undeliverable."""
    poster_of(rig).token_window = 4
    rig.workspace.refuse_token("invalid_auth")
    record = await rig.bot.submit()

    refused = await until(
        lambda: rig.record_if(record["id"], lambda r: r["slack"]["error"] == "invalid_auth")
    )
    assert refused["status"] == "pending"
    status, health = await rig.bot.call("GET", "/healthz", token=None)
    assert status == 503 and "invalid_auth" in health["checks"]["slack"]

    decided = await rig.decided(record["id"], timeout=10)
    assert (decided["decision"]["action"], decided["decision"]["comment"]) == (
        "undeliverable",
        "invalid_auth",
    )
    assert len(rig.workspace.calls_to("chat.postMessage")) >= 2  # tried again meanwhile


async def test_a_token_fixed_within_the_window_posts_the_card(rig: SlackRig) -> None:
    """The token refused (`token_revoked`, https://api.slack.com/methods/auth.test#errors),
    then accepted again: the card is posted and `slack.error` cleared."""
    rig.workspace.refuse_token("token_revoked")
    record = await rig.bot.submit()
    await until(
        lambda: rig.record_if(record["id"], lambda r: r["slack"]["error"] == "token_revoked")
    )

    rig.workspace.refuse_token(None)
    await rig.card(record["id"], timeout=10)

    _, stored = await rig.bot.call("GET", f"/v1/approvals/{record['id']}")
    assert (stored["status"], stored["slack"]["error"]) == ("pending", None)


async def test_a_slack_error_reaches_webhooks_but_not_the_card_queue(store_url: str) -> None:
    """`slack.error` is a change webhooks deliver (an outbox item for their topic); the card
    topic, whose refusal it is, gets nothing to redo. On both engines."""
    store = open_store(store_url, outbox_topics=("webhook",), update_topics=("slack",))
    await store.open()
    try:
        service = ApprovalService(store, default_channel="C0OPS")
        approval, _ = await service.submit(
            ApprovalRequest(tool_name="deploy_service", args={"version": "1.4.2"})
        )
        before = {t: await store.outbox_pending(t) for t in ("webhook", "slack")}

        refused = await service.set_slack_error(approval.id, "channel_not_found")

        assert refused.slack.error == "channel_not_found"
        assert (await store.get(approval.id)).slack.error == "channel_not_found"
        assert await store.outbox_pending("webhook") == before["webhook"] + 1
        assert await store.outbox_pending("slack") == before["slack"]
        [event] = [
            e for e in await store.events_since(0, states_only=True) if e.kind == "slack_error"
        ]
        assert event.record is not None and event.record["slack"]["error"] == "channel_not_found"
    finally:
        await store.close()
