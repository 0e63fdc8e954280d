"""The Slack surface end to end: the real bot, the devslack Web API, signed interactions."""

from __future__ import annotations

import asyncio
import copy
import json
import os
import sys
import time
from typing import Any
from urllib.parse import urlencode

import pytest
from slack_sdk.web.async_client import AsyncWebClient

from bot.app import BOT
from bot.devslack import payloads, signed_headers
from bot.slack.surface import SlackReachability
from tests.conftest import BOT_TOKEN, SIGNING_SECRET, SlackRig, until
from tests.slack_support import actions_of, decided_by, text_of

SCHEMA = {
    "type": "object",
    "properties": {
        "service": {"type": "string", "enum": ["api", "web", "worker"]},
        "replicas": {"type": "integer", "minimum": 1, "maximum": 10},
        "canary": {"type": "boolean"},
    },
    "required": ["service", "replicas"],
}


async def test_a_submission_posts_one_card_and_stores_where(rig: SlackRig) -> None:
    record = await rig.bot.submit(prompt="Send build 1.4.2 to prod?", priority="high")

    card = await rig.card(record["id"])
    # the ts is saved as soon as Slack answers the post, the permalink a call later
    stored = await until(lambda: rig.record_if(record["id"], lambda r: r["slack"]["permalink"]))

    assert card.channel == "C0OPS"
    assert actions_of(card) == ["approve", "edit", "reject", "feedback"]
    assert "Send build 1.4.2 to prod?" in text_of(card)
    assert "<!here>" in card.text  # high priority asks for attention
    assert stored["slack"]["channel"] == "C0OPS"
    assert stored["slack"]["permalink"].endswith(card.ts.replace(".", ""))
    assert len(rig.workspace.calls_to("chat.postMessage", ok=True)) == 1


async def test_allowed_decisions_limit_the_buttons(rig: SlackRig) -> None:
    record = await rig.bot.submit(allowedDecisions=["approve", "reject"])
    assert actions_of(await rig.card(record["id"])) == ["approve", "reject"]


async def test_approve_is_one_click_and_rewrites_the_card(rig: SlackRig) -> None:
    record = await rig.bot.submit()
    waiter = asyncio.create_task(
        rig.bot.call("GET", f"/v1/approvals/{record['id']}/wait?timeout=10")
    )

    delivery = await rig.click(record["id"], "approve", "U0ALICE")
    _, decided = await asyncio.wait_for(waiter, 5)

    assert delivery.status == 200
    assert decided["status"] == "approved"
    assert decided_by(decided) == ("approve", "U0ALICE", "alice")
    assert decided["decision"]["approvedArgs"] == record["args"]
    card = await until(lambda: _rewritten(rig, decided))
    assert actions_of(card) == []
    assert "Approved" in text_of(card) and "<@U0ALICE>" in text_of(card)
    replies = rig.workspace.thread(card.channel, card.ts)[1:]
    assert len(replies) == 1 and "U0ALICE" in text_of(replies[0])


async def _rewritten(rig: SlackRig, record: dict[str, Any]) -> Any:
    card = rig.workspace.message(record["slack"]["channel"], record["slack"]["ts"])
    return (
        card if not actions_of(card) and rig.workspace.thread(card.channel, card.ts)[1:] else None
    )


async def stale_click(rig: SlackRig, seen: Any, action: str, user: str) -> Any:
    """A click on the card as `user` last saw it (their client had not refreshed yet)."""
    payload = payloads.block_actions_payload(
        rig.workspace,
        user=user,
        message=seen,
        action_id=action,
        block_id=None,
        trigger_id=rig.workspace.new_trigger(user).id,
        response_url="http://127.0.0.1:1/unused",
        action_ts=str(time.time()),
    )
    return await rig.slack.send_interaction(payload)


async def test_a_late_click_is_told_who_won_and_changes_nothing(rig: SlackRig) -> None:
    record = await rig.bot.submit()
    card = await rig.card(record["id"])
    seen_by_bob = copy.deepcopy(card)
    await rig.slack.click(card.channel, card.ts, "approve", user="U0ALICE")
    decided = await rig.decided(record["id"])

    await stale_click(rig, seen_by_bob, "approve", "U0BOB")
    note = await until(lambda: _ephemeral(rig, "U0BOB"))

    assert "already decided" in note.text and "<@U0ALICE>" in note.text
    assert (await rig.record_if(record["id"], lambda r: r)) == decided


async def _ephemeral(rig: SlackRig, user: str) -> Any:
    notes = rig.workspace.ephemerals_for(user)
    return notes[-1] if notes else None


async def test_30_concurrent_clicks_make_one_decision(rig: SlackRig) -> None:
    record = await rig.bot.submit()
    card = await rig.card(record["id"])
    users = [f"U0USER{i:02d}" for i in range(30)]
    for user in users:
        rig.workspace.add_user(user, f"user{user[-2:]}", f"User {user[-2:]}")

    deliveries = await asyncio.gather(
        *(rig.slack.click(card.channel, card.ts, "approve", user=u) for u in users)
    )
    decided = await rig.decided(record["id"])
    await until(lambda: _count_ephemerals(rig, 29))

    assert all(d.status == 200 for d in deliveries)
    assert decided["decision"]["decidedBy"] in users
    events = [e for e in await rig.bot.service.store.events_since(0) if e.status]
    assert [e.kind for e in events] == ["submitted", "approved"]


async def _count_ephemerals(rig: SlackRig, count: int) -> bool:
    return len(rig.workspace.ephemerals) >= count


async def test_reject_opens_a_modal_and_records_the_reason(rig: SlackRig) -> None:
    record = await rig.bot.submit()
    await rig.click(record["id"], "reject", "U0BOB")
    [modal] = await until(lambda: _modals(rig, "U0BOB"))
    assert modal.spec["callback_id"] == "reject_modal"

    delivery = await rig.slack.submit_view(modal.id, {"reason": "not during the freeze"})
    decided = await rig.decided(record["id"])

    assert delivery.status == 200 and modal.closed
    assert decided["status"] == "rejected"
    assert decided["decision"]["action"] == "reject"
    assert decided["decision"]["comment"] == "not during the freeze"
    assert decided["decision"]["decidedBy"] == "U0BOB"
    assert decided["decision"]["approvedArgs"] is None


async def _modals(rig: SlackRig, user: str) -> list[Any]:
    return [v for v in rig.workspace.open_modals(user) if not v.closed]


async def test_feedback_needs_text_then_goes_back_to_the_model(rig: SlackRig) -> None:
    record = await rig.bot.submit()
    await rig.click(record["id"], "feedback", "U0CAROL")
    [modal] = await until(lambda: _modals(rig, "U0CAROL"))

    empty = await rig.slack.submit_view(modal.id, {"feedback": ""})
    assert empty.json()["response_action"] == "errors" and "feedback" in modal.errors
    assert (await rig.record_if(record["id"], lambda r: r))["status"] == "pending"

    await rig.slack.submit_view(modal.id, {"feedback": "Deploy to staging first."})
    decided = await rig.decided(record["id"])
    assert (decided["status"], decided["decision"]["action"]) == ("rejected", "feedback")
    assert decided["decision"]["comment"] == "Deploy to staging first."


async def test_edit_modal_is_typed_from_the_schema(rig: SlackRig) -> None:
    record = await rig.bot.submit(
        args={"service": "api", "replicas": 3, "canary": False}, argsSchema=SCHEMA
    )
    await rig.click(record["id"], "edit", "U0ALICE")
    [modal] = await until(lambda: _modals(rig, "U0ALICE"))

    elements = {b["block_id"]: b["element"]["type"] for b in modal.blocks if b["type"] == "input"}
    assert elements == {
        "arg:service": "static_select",
        "arg:replicas": "number_input",
        "arg:canary": "checkboxes",
        "comment": "plain_text_input",
    }
    replicas = next(b for b in modal.blocks if b.get("block_id") == "arg:replicas")["element"]
    assert (replicas["min_value"], replicas["max_value"]) == ("1", "10")


async def test_invalid_edit_is_answered_in_the_modal_and_decides_nothing(rig: SlackRig) -> None:
    record = await rig.bot.submit(args={"service": "api", "replicas": 3}, argsSchema=SCHEMA)
    await rig.click(record["id"], "edit", "U0ALICE")
    [modal] = await until(lambda: _modals(rig, "U0ALICE"))

    delivery = await rig.slack.submit_view(modal.id, {"arg:replicas": "50"})

    assert delivery.json()["response_action"] == "errors"
    assert "arg:replicas" in modal.errors and not modal.closed
    assert (await rig.record_if(record["id"], lambda r: r))["status"] == "pending"


async def test_edit_approves_with_the_edited_arguments(rig: SlackRig) -> None:
    record = await rig.bot.submit(args={"service": "api", "replicas": 3}, argsSchema=SCHEMA)
    waiter = asyncio.create_task(
        rig.bot.call("GET", f"/v1/approvals/{record['id']}/wait?timeout=10")
    )
    await rig.click(record["id"], "edit", "U0ALICE")
    [modal] = await until(lambda: _modals(rig, "U0ALICE"))

    await rig.slack.submit_view(modal.id, {"arg:replicas": "5", "comment": "more headroom"})
    _, decided = await asyncio.wait_for(waiter, 5)

    decision = decided["decision"]
    assert (decided["status"], decision["action"]) == ("approved", "edit")
    assert decision["approvedArgs"] == {"service": "api", "replicas": 5}
    assert decision["comment"] == "more headroom"
    card = await until(lambda: _rewritten(rig, decided))
    assert "replicas" in text_of(card) and "5" in text_of(card)


async def test_a_modal_open_while_someone_else_decides_says_so(rig: SlackRig) -> None:
    record = await rig.bot.submit()
    await rig.click(record["id"], "reject", "U0BOB")
    [modal] = await until(lambda: _modals(rig, "U0BOB"))
    await rig.click(record["id"], "approve", "U0ALICE")
    await rig.decided(record["id"])

    delivery = await rig.slack.submit_view(modal.id, {"reason": "too late"})

    assert delivery.json()["response_action"] == "update"
    assert "already decided" in json.dumps(modal.spec)
    decided = await rig.record_if(record["id"], lambda r: r)
    assert (decided["status"], decided["decision"]["decidedBy"]) == ("approved", "U0ALICE")


async def test_the_requester_cannot_approve_their_own_call(rig: SlackRig) -> None:
    record = await rig.bot.submit(requester={"agent": "release-bot", "slackUser": "U0DAVE"})

    await rig.click(record["id"], "approve", "U0DAVE")
    note = await until(lambda: _ephemeral(rig, "U0DAVE"))

    assert "cannot approve" in note.text
    assert (await rig.record_if(record["id"], lambda r: r))["status"] == "pending"
    refused = [e for e in await rig.bot.service.store.events_since(0) if e.kind == "refused"]
    assert len(refused) == 1 and refused[0].actor == "U0DAVE"


@pytest.mark.parametrize(
    ("reply", "status", "comment", "reaction"),
    [
        pytest.param("<@U0BOT> approve", "approved", None, "white_check_mark", id="mention"),
        pytest.param("Approve", "approved", None, "white_check_mark", id="approve"),
        pytest.param("reject: wrong region", "rejected", "wrong region", "x", id="reject"),
    ],
)
async def test_deciding_by_replying_in_the_thread(
    rig: SlackRig, reply: str, status: str, comment: str | None, reaction: str
) -> None:
    record = await rig.bot.submit()
    card = await rig.card(record["id"])

    await rig.slack.reply_in_thread(card.channel, card.ts, reply, user="U0CAROL")
    decided = await rig.decided(record["id"])

    assert (decided["status"], decided["decision"]["comment"]) == (status, comment)
    assert decided["decision"]["decidedBy"] == "U0CAROL"
    reply_message = rig.workspace.thread(card.channel, card.ts)[1]
    await until(lambda: _reacted(reply_message, reaction))


async def _reacted(message: Any, name: str) -> bool:
    return name in message.reactions


async def test_thread_chatter_decides_nothing(rig: SlackRig) -> None:
    record = await rig.bot.submit()
    card = await rig.card(record["id"])
    delivery = await rig.slack.reply_in_thread(
        card.channel, card.ts, "who owns this?", user="U0BOB"
    )
    await asyncio.sleep(0.2)
    assert delivery.status == 200
    assert (await rig.record_if(record["id"], lambda r: r))["status"] == "pending"


async def test_the_bot_joins_a_public_channel_it_posts_in(rig: SlackRig) -> None:
    """Slack sends message events only from channels the app is in
    (https://api.slack.com/events/message.channels); `chat:write.public` posts without joining,
    so the bot joins (https://api.slack.com/methods/conversations.join) or never hears
    `approve` typed under its card."""
    rig.workspace.add_channel("C0NOBOT", "no-bot", members=["U0ALICE", "U0CAROL"])
    record = await rig.bot.submit(channel="C0NOBOT")
    card = await rig.card(record["id"])
    assert rig.workspace.is_member("C0NOBOT", rig.workspace.bot_user_id)

    await rig.slack.reply_in_thread(card.channel, card.ts, "approve", user="U0CAROL")
    decided = await rig.decided(record["id"])
    assert decided["decision"]["decidedBy"] == "U0CAROL"


async def test_a_modal_slack_refuses_to_open_is_explained(rig: SlackRig) -> None:
    """A trigger id is good for 3 s (https://api.slack.com/interactivity/handling#modal_responses);
    past that `views.open` answers `expired_trigger_id` and no modal appears: the person who
    clicked is told, rather than left with a button that did nothing."""
    record = await rig.bot.submit()
    rig.workspace.trigger_ttl = 0  # every trigger has expired by the time the bot uses it
    await rig.click(record["id"], "reject", "U0CAROL")

    note = await until(lambda: _ephemeral(rig, "U0CAROL"))
    assert "click again" in note.text
    assert await _modals(rig, "U0CAROL") == []
    assert (await rig.record_if(record["id"], lambda r: r))["status"] == "pending"


async def test_thread_ts_posts_the_card_as_a_reply(rig: SlackRig) -> None:
    parent = rig.workspace.post_message("C0OPS", text="incident #42", user="U0BOB")
    record = await rig.bot.submit(threadTs=parent.ts)
    card = await rig.card(record["id"])
    assert card.thread_ts == parent.ts


async def test_one_thread_per_agent_run(rig: SlackRig) -> None:
    run = {"agent": "release-bot", "runId": "run-7"}
    first = await rig.bot.submit(toolCallId="a", requester=run)
    second = await rig.bot.submit(toolCallId="b", requester=run)
    cards = [await rig.card(first["id"]), await rig.card(second["id"])]

    assert cards[0].thread_ts == cards[1].thread_ts is not None
    [parent] = [m for m in rig.workspace.history("C0OPS") if m.ts == cards[0].thread_ts]
    assert "run-7" in parent.text


@pytest.mark.parametrize(
    "headers",
    [
        pytest.param({"X-Slack-Signature": "v0=" + "0" * 64}, id="forged"),
        pytest.param({"X-Slack-Request-Timestamp": str(int(time.time()) - 600)}, id="10-min-old"),
    ],
)
async def test_bad_signatures_are_refused_and_decide_nothing(
    rig: SlackRig, headers: dict[str, str]
) -> None:
    record = await rig.bot.submit()
    card = await rig.card(record["id"])
    payload = {
        "type": "block_actions",
        "user": {"id": "U0ALICE", "username": "alice", "name": "alice", "team_id": "T0DEV"},
        "container": {"type": "message", "message_ts": card.ts, "channel_id": card.channel},
        "trigger_id": "1.2.3",
        "actions": [{"action_id": "approve", "block_id": "b", "value": record["id"]}],
    }
    body = urlencode({"payload": json.dumps(payload)}).encode()
    timestamp = int(headers.get("X-Slack-Request-Timestamp", time.time()))
    signed = signed_headers(SIGNING_SECRET, body, timestamp)
    signed.update(headers)

    async with rig.bot.http.post(rig.bot.url + "/slack/events", data=body, headers=signed) as r:
        assert r.status == 401
    await asyncio.sleep(0.1)
    assert (await rig.record_if(record["id"], lambda r: r))["status"] == "pending"


async def test_cards_survive_429s_and_503s_and_are_posted_exactly_once(rig: SlackRig) -> None:
    rig.workspace.fail_next("chat.postMessage", status=429, retry_after=0, times=3)
    rig.workspace.fail_next("chat.postMessage", status=503, times=2)

    records = [await rig.bot.submit(toolCallId=f"call_{i}") for i in range(3)]
    cards = [await rig.card(r["id"], timeout=15) for r in records]

    posted = rig.workspace.calls_to("chat.postMessage", ok=True)
    assert len(posted) == 3
    assert len({c.ts for c in cards}) == 3
    assert len(rig.workspace.calls_to("chat.postMessage", ok=False)) == 5


async def test_a_channel_slack_refuses_ends_the_approval_not_retried_forever(
    rig: SlackRig,
) -> None:
    record = await rig.bot.submit(channel="C0NOPE")

    decided = await rig.decided(record["id"])
    assert decided["status"] == "rejected"
    assert decided["decision"]["action"] == "undeliverable"
    assert decided["slack"]["error"] == "channel_not_found"
    assert len(rig.workspace.calls_to("chat.postMessage")) == 1


async def test_view_full_arguments_pages_through_large_args(rig: SlackRig) -> None:
    big = {f"key_{i}": "x" * 500 for i in range(40)}
    record = await rig.bot.submit(args=big)
    card = await rig.card(record["id"])
    assert "view_args" in actions_of(card)

    await rig.slack.click(card.channel, card.ts, "view_args", user="U0ALICE")
    [modal] = await until(lambda: _modals(rig, "U0ALICE"))
    assert modal.spec["callback_id"] == "args_modal"
    assert "key_0" in json.dumps(modal.blocks)


async def test_healthz_reports_slack_reachability(rig: SlackRig) -> None:
    status, body = await rig.bot.call("GET", "/healthz", token=None)
    assert (status, body["ok"]) == (200, True)
    assert body["checks"]["slack"].startswith("ok as")


async def test_slack_down_is_reported(workspace: Any) -> None:
    client = AsyncWebClient(token=BOT_TOKEN, base_url=workspace.base_url)
    client.retry_handlers.clear()
    reachability = SlackReachability(client, ttl=0)
    workspace.fail_next("auth.test", status=503, times=1)

    name, ok, detail = await reachability.check()
    assert (name, ok) == ("slack", False)
    assert detail.startswith("Slack unavailable: HTTP 503")

    name, ok, detail = await reachability.check()
    assert ok and detail.startswith("ok as")


async def test_healthz_is_503_while_a_dependency_is_down(rig: SlackRig) -> None:
    async def slack_down() -> tuple[str, bool, str]:
        return "slack", False, "Slack unreachable: ConnectionRefusedError"

    rig.bot.server.app[BOT].api.health_checks.append(slack_down)
    status, body = await rig.bot.call("GET", "/healthz", token=None)
    assert (status, body["ok"]) == (503, False)
    assert body["checks"]["slack"].startswith("Slack unreachable")


async def test_a_decision_from_the_cli_rewrites_the_card(rig: SlackRig) -> None:
    record = await rig.bot.submit()
    card = await rig.card(record["id"])
    settings = rig.bot.settings
    cli = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "bot",
        "decide",
        record["id"],
        "--reject",
        "--comment",
        "not today",
        env={
            "PATH": os.environ.get("PATH", ""),
            "APPROVAL_DB": settings.db,
            "SLACK_BOT_TOKEN": settings.slack_bot_token or "",
        },
    )
    assert await cli.wait() == 0

    async def rewritten() -> bool:
        shown = rig.workspace.message(card.channel, card.ts)
        return not actions_of(shown) and "not today" in text_of(shown)

    await until(rewritten)
