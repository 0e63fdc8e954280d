"""Batches, "Approve all N" / "Reject all N…" (issue 16, part 3), through the real HTTP API, the
local Slack and signed payloads: approvals sharing a `requester.runId` (or a `batchId`) get a
summary in their first card's thread and in App Home, and a click on it decides each approval
it listed through the same checks as a click on its card — who may decide, N-of-M, allowed
decisions, critical confirmation, the arguments version shown — and says what was decided and
what was refused and why. On either engine, and across replicas sharing PostgreSQL.
"""

from __future__ import annotations

import contextlib
import copy
import dataclasses
import json
import sqlite3
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from bot.batches import BatchRef, BatchService, BatchView, Shown
from bot.devslack import payloads
from bot.devslack.limits import (
    MAX_BLOCKS_TEXT,
    blocks_text_length,
    validate_message_blocks,
    validate_view,
)
from bot.errors import NotFound
from bot.models import Approval, ApprovalRequest, Priority, Status, utcnow
from bot.policy import Routing
from bot.sdk import ApprovalClient
from bot.service import ApprovalService
from bot.slack.cards.batch import render_batch_result, render_batch_summary
from bot.store import SQLiteStore, open_store
from tests.conftest import (
    AGENT_TOKEN,
    RigFactory,
    Running,
    SlackRig,
    slack_replicas,
    until,
)

RULES = """
default_channel = "C0OPS"

[[rules]]
name = "deploys"
tools = ["deploy_*"]
approvers = ["U0ALICE", "U0BOB"]

[[rules]]
name = "payments"
tools = ["transfer_*"]
approvers = ["U0ALICE", "U0BOB", "U0CAROL"]
required_approvals = 2

[[rules]]
name = "keys"
tools = ["rotate_*"]
approvers = ["U0CAROL"]

[[rules]]
name = "drops"
tools = ["drop_*"]
approvers = ["U0ALICE", "U0BOB"]
priority = "critical"
"""

RUN = {"agent": "release-bot", "runId": "run-1"}


async def ask(rig: SlackRig | Running, tool: str = "deploy_service", **fields: Any) -> Any:
    """Submit a call of run-1 (fields override)."""
    bot = rig.bot if isinstance(rig, SlackRig) else rig
    body = {"toolName": tool, "args": {"version": "1.4.2"}, "requester": RUN, **fields}
    status, record = await bot.call("POST", "/v1/approvals", json=body)
    assert status == 201, record
    return record


async def record_of(rig: SlackRig, approval_id: str) -> Any:
    _, record = await rig.bot.call("GET", f"/v1/approvals/{approval_id}")
    return record


def buttons(blocks: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    """The buttons of some blocks, by action id."""
    return {
        element["action_id"]: element
        for block in blocks
        if block["type"] == "actions"
        for element in block["elements"]
    }


def is_summary(message: Any) -> bool:
    return any(str(b.get("block_id", "")).startswith("batch:") for b in message.blocks)


async def summary(rig: SlackRig, first: dict[str, Any], label: str) -> Any:
    """The batch summary in the thread of `first`'s card, once it shows `label` (a button's
    text, or any words)."""
    card = await rig.card(first["id"])

    async def find() -> Any:
        for message in rig.workspace.thread(card.channel, card.ts):
            if is_summary(message) and label in json.dumps(message.blocks, ensure_ascii=False):
                return message
        return None

    return await until(find)


async def result_for(rig: SlackRig, user: str, words: str) -> Any:
    """The note a batch click left `user` (ephemeral, or a DM from App Home)."""

    async def find() -> Any:
        notes = [*rig.workspace.ephemerals_for(user)]
        notes += rig.workspace.history(rig.workspace.open_dm(user).id)
        for note in notes:
            if words in note.text + json.dumps(note.blocks):
                return note
        return None

    return await until(find)


def fields_of(blocks: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [f for block in blocks for f in block.get("fields", [])]


def said(note: Any) -> str:
    return note.text + json.dumps(note.blocks)


async def refusals(rig: SlackRig | Running) -> list[tuple[str, str | None, str]]:
    bot = rig.bot if isinstance(rig, SlackRig) else rig
    events = await bot.service.store.events_since(0, limit=2000)
    refused = [e for e in events if e.kind == "refused"]
    return [(e.approval_id, e.actor, e.detail.get("reason", "")) for e in refused]


def old_click(rig: SlackRig, message: Any, blocks: Any, user: str, action: str) -> Any:
    """A click on `message` as it looked with `blocks`: Slack sends the message as the
    person's client still shows it."""
    old = dataclasses.replace(message, blocks=blocks)
    target = rig.workspace.new_response_target(user, message.channel, message.ts)
    return payloads.block_actions_payload(
        rig.workspace,
        user=user,
        message=old,
        action_id=action,
        trigger_id=rig.workspace.new_trigger(user).id,
        response_url=rig.workspace.response_url(target),
        action_ts="1.0",
    )


# -- one click, several approvals ------------------------------------------------------------


async def test_a_batch_of_three_is_approved_by_one_click(make_rig: RigFactory) -> None:
    rig = await make_rig(RULES)
    records = [await ask(rig, args={"version": f"1.4.{i}"}) for i in range(3)]
    assert records[0]["batchId"] is None  # grouped by runId

    message = await summary(rig, records[0], "Approve all 3")
    card = await rig.card(records[0]["id"])
    assert message.thread_ts == card.thread_ts is not None  # in the run's thread
    approve = buttons(message.blocks)["batch_approve"]
    assert "3 calls: deploy_service ×3" in approve["confirm"]["text"]["text"]
    assert len(approve["value"]) < 2000
    for i in range(3):  # every call's arguments, in plain text
        assert {"type": "plain_text", "text": f'{{"version":"1.4.{i}"}}', "emoji": False} in (
            fields_of(message.blocks)
        )

    delivery = await rig.slack.click(message.channel, message.ts, "batch_approve", user="U0ALICE")

    assert delivery.status == 200
    for record in records:
        decided = await rig.decided(record["id"])
        assert decided["status"] == "approved"
        assert decided["decision"]["decidedBy"] == "U0ALICE"
        assert decided["decision"]["approvedArgs"] == record["args"]
    note = await result_for(rig, "U0ALICE", "Approve all")
    assert "3 approved" in note.text and "refused" not in note.text
    assert note.thread_ts == message.thread_ts  # under the summary
    redrawn = await summary(rig, records[0], "3 approved")
    assert "batch_approve" not in buttons(redrawn.blocks)  # nothing left to decide
    assert redrawn.ts == message.ts  # the same message, redrawn


async def test_mixed_permissions_decide_what_the_person_may_and_say_why_not_the_rest(
    make_rig: RigFactory,
) -> None:
    rig = await make_rig(RULES)
    mine = await ask(rig)
    own = await ask(rig, requester={**RUN, "slackUser": "U0ALICE"}, args={"version": "2"})
    keys = await ask(rig, "rotate_keys", args={"key": "root"})  # carol's alone
    message = await summary(rig, mine, "Approve all 3")

    await rig.slack.click(message.channel, message.ts, "batch_approve", user="U0ALICE")

    assert (await rig.decided(mine["id"]))["decision"]["decidedBy"] == "U0ALICE"
    note = await result_for(rig, "U0ALICE", "Approve all")
    text = said(note)
    assert "1 approved" in note.text and "2 refused" in note.text
    assert "only <@U0CAROL> can approve it" in text
    assert "you requested this deploy_service call" in text
    for record in (own, keys):
        assert (await record_of(rig, record["id"]))["status"] == "pending"
    refused = await refusals(rig)
    assert (keys["id"], "U0ALICE", "only U0CAROL can approve rotate_keys") in refused

    # the same summary in carol's hands decides hers, and refuses what she may not decide
    redrawn = await summary(rig, mine, "Approve all 2")
    await rig.slack.click(redrawn.channel, redrawn.ts, "batch_approve", user="U0CAROL")
    assert (await rig.decided(keys["id"]))["decision"]["decidedBy"] == "U0CAROL"
    carols = await result_for(rig, "U0CAROL", "Approve all")
    assert "1 approved" in carols.text and "1 refused" in carols.text
    assert "only <@U0ALICE> or <@U0BOB> can approve it" in said(carols)


async def test_n_of_m_in_a_batch_counts_the_vote_and_waits(make_rig: RigFactory) -> None:
    rig = await make_rig(RULES)
    payments = [
        await ask(rig, "transfer_funds", args={"amount": n, "to": "ACME"}) for n in (10, 20)
    ]
    deploy = await ask(rig)
    message = await summary(rig, payments[0], "Approve all 3")
    assert "0 of 2 approved" in json.dumps(message.blocks)
    as_first_drawn = copy.deepcopy(message.blocks)

    await rig.slack.click(message.channel, message.ts, "batch_approve", user="U0ALICE")

    assert (await rig.decided(deploy["id"]))["status"] == "approved"
    note = await result_for(rig, "U0ALICE", "Approve all")
    assert "1 approved" in note.text and "2 counted, waiting for other approvers" in note.text
    assert "(1 of 2)" in said(note)
    for payment in payments:
        record = await record_of(rig, payment["id"])
        assert record["status"] == "pending"
        assert record["progress"]["approvedBy"] == ["U0ALICE"]
    redrawn = await summary(rig, payments[0], "1 of 2 approved")

    await rig.slack.click(redrawn.channel, redrawn.ts, "batch_approve", user="U0BOB")

    for payment in payments:
        decided = await rig.decided(payment["id"])
        assert decided["decision"]["approvers"] == ["U0ALICE", "U0BOB"]
    # alice again, on the old summary: each is already decided, and said so
    await rig.slack.send_interaction(
        old_click(rig, message, as_first_drawn, "U0ALICE", "batch_approve")
    )
    again = await result_for(rig, "U0ALICE", "3 refused")
    assert said(again).count("already decided") == 3


async def test_a_critical_call_is_refused_from_approve_all(make_rig: RigFactory) -> None:
    rig = await make_rig(RULES)
    deploy = await ask(rig)
    drop = await ask(rig, "drop_table", args={"table": "users"})
    assert drop["priority"] == "critical"
    message = await summary(rig, deploy, "Approve all 2")
    approve = buttons(message.blocks)["batch_approve"]
    assert "Approve 1 call: deploy_service." in approve["confirm"]["text"]["text"]
    assert "1 left to their cards (critical" in approve["confirm"]["text"]["text"]
    assert "critical: approve it on its card" in json.dumps(message.blocks)

    await rig.slack.click(message.channel, message.ts, "batch_approve", user="U0BOB")

    assert (await rig.decided(deploy["id"]))["status"] == "approved"
    note = await result_for(rig, "U0BOB", "Approve all")
    assert "1 approved" in note.text and "1 refused" in note.text
    assert "critical: it asks for its own confirmation" in said(note)
    assert (await record_of(rig, drop["id"]))["status"] == "pending"
    assert any(r[0] == drop["id"] and "critical" in r[2] for r in await refusals(rig))


async def test_reject_all_gives_every_decision_the_reason(make_rig: RigFactory) -> None:
    rig = await make_rig(RULES)
    records = [
        await ask(rig),
        await ask(rig, "drop_table", args={"table": "users"}),  # critical: rejecting is safe
        await ask(rig, "transfer_funds", args={"amount": 5}),  # any reject rejects N-of-M
    ]
    message = await summary(rig, records[0], "Reject all 3…")

    await rig.slack.click(message.channel, message.ts, "batch_reject", user="U0BOB")
    [modal] = await until(lambda: _modals(rig, "U0BOB", "batch_reject_modal"))
    assert modal.title == "Reject all 3"
    delivery = await rig.slack.submit_view(modal.id, {"reason": "wrong build <!here>"})

    assert delivery.status == 200
    for record in records:
        decided = await rig.decided(record["id"])
        assert (decided["status"], decided["decision"]["action"]) == ("rejected", "reject")
        assert decided["decision"]["comment"] == "wrong build <!here>"
        assert decided["decision"]["decidedBy"] == "U0BOB"
    assert "3 rejected" in json.dumps(modal.blocks)  # the result replaced the modal
    assert "wrong build <!here>" in json.dumps(modal.blocks)  # as plain text: pings nobody
    assert validate_view(modal.spec) == []


async def _modals(rig: SlackRig, user: str, callback_id: str) -> list[Any]:
    return [
        v
        for v in rig.workspace.open_modals(user)
        if not v.closed and v.spec.get("callback_id") == callback_id
    ]


# -- what a summary binds: the approvals it listed, at the arguments it showed ---------------


async def test_an_old_summary_decides_only_what_it_listed_as_it_showed_it(
    make_rig: RigFactory,
) -> None:
    rig = await make_rig(RULES)
    first = await ask(rig, args={"version": "1.0"})
    edited = await ask(rig, "transfer_funds", args={"amount": 10})  # two approvers needed
    message = await summary(rig, first, "Approve all 2")
    as_alice_saw_it = copy.deepcopy(message.blocks)

    late = await ask(rig, args={"version": "3.0"})  # added after alice's summary was drawn
    await summary(rig, first, "Approve all 3")  # the summary in the thread shows it now
    await rig.click(edited["id"], "edit", "U0BOB")  # bob edits one alice saw
    [edit] = await until(lambda: _modals(rig, "U0BOB", "edit_modal"))
    await rig.slack.submit_view(edit.id, {"arg:amount": "11"})
    await until(lambda: rig.record_if(edited["id"], lambda r: r["progress"]["args"]))

    await rig.slack.send_interaction(
        old_click(rig, message, as_alice_saw_it, "U0ALICE", "batch_approve")
    )

    note = await result_for(rig, "U0ALICE", "Approve all")
    assert "1 approved" in note.text and "1 refused" in note.text
    assert "the arguments of transfer_funds were edited by U0BOB after you saw them" in said(note)
    assert (await rig.decided(first["id"]))["decision"]["decidedBy"] == "U0ALICE"
    assert (await record_of(rig, late["id"]))["status"] == "pending"  # never listed to her
    stale = await record_of(rig, edited["id"])
    assert stale["status"] == "pending" and stale["progress"]["approvedBy"] == ["U0BOB"]

    # the summary as it is now shows the edited arguments: a click on it counts
    current = await summary(rig, first, "1 of 2 approved")
    await rig.slack.click(current.channel, current.ts, "batch_approve", user="U0ALICE")
    decided = await rig.decided(edited["id"])
    assert decided["decision"]["approvers"] == ["U0BOB", "U0ALICE"]
    assert decided["decision"]["approvedArgs"] == stale["progress"]["args"]
    assert (await rig.decided(late["id"]))["decision"]["decidedBy"] == "U0ALICE"


async def test_already_decided_approvals_are_reported(make_rig: RigFactory) -> None:
    rig = await make_rig(RULES)
    records = [await ask(rig, args={"version": f"1.{i}"}) for i in range(3)]
    message = await summary(rig, records[0], "Approve all 3")
    as_shown = copy.deepcopy(message.blocks)
    await rig.click(records[1]["id"], "approve", "U0BOB")
    await rig.decided(records[1]["id"])
    await rig.bot.call("POST", f"/v1/approvals/{records[2]['id']}/cancel", json={})

    await rig.slack.send_interaction(old_click(rig, message, as_shown, "U0ALICE", "batch_approve"))

    note = await result_for(rig, "U0ALICE", "Approve all")
    assert "1 approved" in note.text and "2 refused" in note.text
    text = said(note)
    assert "already decided: :white_check_mark: *Approved* by <@U0BOB>" in text
    assert "already decided: :no_entry_sign: *Cancelled by the agent*" in text
    assert (await record_of(rig, records[1]["id"]))["decision"]["decidedBy"] == "U0BOB"


async def test_a_summary_from_too_long_ago_changes_nothing(make_rig: RigFactory) -> None:
    rig = await make_rig(RULES)
    first = await ask(rig)
    await ask(rig)
    message = await summary(rig, first, "Approve all 2")
    forged = old_click(rig, message, message.blocks, "U0ALICE", "batch_approve")
    forged["actions"][0]["value"] = "bv_" + "0" * 32  # a drawing the bot does not keep

    delivery = await rig.slack.send_interaction(forged)

    assert delivery.status == 200
    note = await result_for(rig, "U0ALICE", "Nothing changed")
    assert "older than the bot keeps them" in note.text
    assert (await record_of(rig, first["id"]))["status"] == "pending"
    garbage = old_click(rig, message, message.blocks, "U0ALICE", "batch_approve")
    garbage["actions"][0]["value"] = '{"id": "apr_x"}'
    assert (await rig.slack.send_interaction(garbage)).status == 400


# -- which calls form a batch ----------------------------------------------------------------


async def test_batch_id_groups_calls_and_run_id_without_one(make_rig: RigFactory) -> None:
    rig = await make_rig(RULES)
    wave = [
        await ask(rig, batchId="wave-7", requester={"agent": "a", "runId": "run-a"}),
        await ask(rig, batchId="wave-7", requester={"agent": "b"}),
        await ask(rig, batchId="wave-7", requester={"agent": "c", "runId": "run-1"}),
    ]
    run = [await ask(rig), await ask(rig)]  # run-1, no batchId
    elsewhere = await ask(rig, batchId="wave-7", channel="C0DEPLOY")  # another channel's
    assert wave[0]["batchId"] == "wave-7" and run[0]["batchId"] is None

    message = await summary(rig, wave[0], "Approve all 3")
    assert "wave-7" in message.text + json.dumps(message.blocks)
    await rig.slack.click(message.channel, message.ts, "batch_approve", user="U0ALICE")

    for record in wave:
        assert (await rig.decided(record["id"]))["status"] == "approved"
    for record in [*run, elsewhere]:
        assert (await record_of(rig, record["id"]))["status"] == "pending"
    run_summary = await summary(rig, run[0], "Approve all 2")
    assert "run-1" in json.dumps(run_summary.blocks)
    service = BatchService(rig.bot.service)
    members = await service.members(BatchRef("C0OPS", "run-1"))
    assert [a.id for a in members] == [r["id"] for r in run]


@pytest.mark.parametrize(
    ("batch_id", "status"),
    [
        pytest.param("b" * 255, 201, id="255-chars"),
        pytest.param("b" * 256, 422, id="256-chars"),
        pytest.param(7, 422, id="not-text"),
    ],
)
async def test_batch_id_has_run_ids_limits(bot: Running, batch_id: Any, status: int) -> None:
    body = {"toolName": "deploy_service", "args": {}, "batchId": batch_id}
    answer, record = await bot.call("POST", "/v1/approvals", json=body)
    assert answer == status, record
    if status == 422:
        assert "batchId" in json.dumps(record)


async def test_the_sdk_sends_a_batch_id(bot: Running) -> None:
    async with ApprovalClient(bot.url, AGENT_TOKEN) as client:
        approval = await client.submit("deploy_service", {"service": "web"}, batch_id="wave-8")
    _, record = await bot.call("GET", f"/v1/approvals/{approval.id}")
    assert record["batchId"] == "wave-8"


# -- App Home --------------------------------------------------------------------------------


async def test_app_home_shows_each_batch_the_viewer_can_act_on(make_rig: RigFactory) -> None:
    rig = await make_rig(RULES)
    records = [await ask(rig, args={"n": i}) for i in range(3)]
    keys = await ask(rig, "rotate_keys")  # carol's only

    await rig.slack.open_home("U0ALICE")
    home = await until(lambda: _home_with(rig, "U0ALICE", "Approve all 3"))
    assert keys["id"] not in json.dumps(home.blocks)
    await rig.slack.open_home("U0CAROL")  # one approval of the batch is hers: no batch
    carols = await until(lambda: _home_with(rig, "U0CAROL", "Waiting for you"))
    assert "batch_approve" not in json.dumps(carols.blocks)

    delivery = await rig.slack.click_in_view(home.id, "batch_approve", user="U0ALICE")

    assert delivery.status == 200
    for record in records:
        assert (await rig.decided(record["id"]))["decision"]["decidedBy"] == "U0ALICE"
    dm = await result_for(rig, "U0ALICE", "3 approved")  # no channel in App Home: a DM
    assert dm.channel == rig.workspace.open_dm("U0ALICE").id
    await until(lambda: _home_with(rig, "U0ALICE", "batch_approve", shown=False))


async def test_reject_all_from_app_home_redraws_it(make_rig: RigFactory) -> None:
    rig = await make_rig(RULES)
    records = [await ask(rig, args={"n": i}) for i in range(2)]
    await rig.slack.open_home("U0BOB")
    home = await until(lambda: _home_with(rig, "U0BOB", "Reject all 2"))

    await rig.slack.click_in_view(home.id, "batch_reject", user="U0BOB")
    [modal] = await until(lambda: _modals(rig, "U0BOB", "batch_reject_modal"))
    await rig.slack.submit_view(modal.id, {"reason": "not today"})

    for record in records:
        decided = await rig.decided(record["id"])
        assert decided["decision"]["comment"] == "not today"
    await until(lambda: _home_with(rig, "U0BOB", "batch_reject", shown=False))


async def _home_with(rig: SlackRig, user: str, words: str, *, shown: bool = True) -> Any:
    home = rig.workspace.home(user)
    if home is None:
        return None
    return home if (words in json.dumps(home.blocks, ensure_ascii=False)) is shown else None


# -- Block Kit's limits ----------------------------------------------------------------------


def _approval(i: int, **fields: Any) -> Approval:
    values: dict[str, Any] = {
        "id": f"apr_{i:020d}",
        "status": Status.PENDING,
        "tool_name": "deploy_service",
        "tool_call_id": f"call_{i}",
        "args": {"version": f"1.4.{i}", "env": "prod"},
        "channel": "C0OPS",
        "created_at": utcnow(),
        "batch_id": "wave",
        **fields,
    }
    return Approval(**values)


@pytest.mark.parametrize("home", [pytest.param(False, id="thread"), pytest.param(True, id="home")])
def test_a_summary_of_60_fits_block_kit_and_binds_what_it_lists(home: bool) -> None:
    big = {"script": "x" * 5000, "note": "<!channel> & friends"}
    approvals = [_approval(i) for i in range(57)]
    approvals += [
        _approval(57, args=big),
        _approval(58, priority=Priority.CRITICAL),
        _approval(59, tool_name="t" * 128),
    ]

    drawing = render_batch_summary(BatchRef("C0OPS", "wave"), approvals, home=home)
    blocks = drawing.message["blocks"]

    if home:
        assert validate_view({"type": "home", "blocks": blocks}) == []
        assert len(blocks) <= 15  # it shares App Home's 100 blocks with the rest
    else:
        assert validate_message_blocks(blocks) == []
        assert blocks_text_length(blocks) <= MAX_BLOCKS_TEXT - 2000
    listed = [shown.approval_id for shown in drawing.view.items]
    assert listed == [a.id for a in approvals[: len(listed)]]  # the oldest first
    text = json.dumps(blocks)
    if home:
        assert len(listed) == 40 and "20 more not listed here (20 pending)" in text
    else:
        assert len(listed) == 60
    assert buttons(blocks)["batch_approve"]["text"]["text"] == f"Approve all {len(listed)}"
    assert buttons(blocks)["batch_reject"]["value"] == drawing.view.id
    assert "<!channel>" not in text  # agent text is plain, never a ping
    if not home:
        [cut] = [s for s in drawing.view.items if not s.whole]
        assert cut.approval_id == approvals[57].id  # too long to show: left to its card


async def test_sixty_approvals_in_one_batch_are_drawn_and_decided(make_rig: RigFactory) -> None:
    rig = await make_rig(RULES)
    records = [await ask(rig, args={"n": i}) for i in range(60)]

    message = await summary(rig, records[0], "Approve all 60")
    assert validate_message_blocks(message.blocks) == []
    await rig.slack.open_home("U0ALICE")
    home = await until(lambda: _home_with(rig, "U0ALICE", "Approve all 40"))
    assert validate_view(home.spec) == []

    for _ in range(3):  # what Slack's 3 s leave untried is decided by clicking again
        await rig.slack.click(message.channel, message.ts, "batch_approve", user="U0ALICE")
        note = await result_for(rig, "U0ALICE", "Approve all")
        assert validate_message_blocks(note.blocks) == []
        rig.workspace.ephemerals.clear()
        if "60 approved" in note.text or "not tried" not in said(note):
            break
        message = await summary(rig, records[0], "approved")
    for record in records:
        assert (await record_of(rig, record["id"]))["status"] == "approved"


# -- the store, on each engine, and replicas --------------------------------------------------


def _request(i: int, key: str, channel: str = "C0OPS") -> ApprovalRequest:
    return ApprovalRequest.model_validate(
        {
            "toolName": "deploy_service",
            "toolCallId": f"call_{key}_{channel}_{i}",
            "args": {"n": i},
            "channel": channel,
            "requester": {"agent": "release-bot", "runId": key},
        }
    )


async def test_batches_are_shared_by_stores_on_one_database(store_url: str) -> None:
    """Two stores on one database (replicas on PostgreSQL): a batch's approvals, its summary
    and its drawings are the database's, so a drawing made on one is decided on the other."""
    routing = Routing.model_validate({"rules": [{"tools": ["deploy_*"], "approvers": ["U0ALICE"]}]})
    stores = [open_store(store_url), open_store(store_url)]
    for store in stores:
        await store.open()
    try:
        one, two = (ApprovalService(s, default_channel="C0OPS", router=routing) for s in stores)
        made = [(await one.submit(_request(i, "run-9")))[0] for i in range(3)]
        await two.submit(_request(9, "run-9", channel="C0DEPLOY"))  # another channel
        await two.submit(_request(9, "run-8"))  # another run
        ref = BatchRef("C0OPS", "run-9")

        members = await BatchService(two).members(ref)
        assert [a.id for a in members] == [a.id for a in made]
        view = await BatchService(one).keep(BatchView.of(ref, [Shown.of(a) for a in made[:2]]))
        assert await BatchService(two).view(view.id) == view
        with pytest.raises(NotFound):
            await BatchService(two).view("bv_" + "0" * 32)

        result = await BatchService(two).decide_batch(view, "U0ALICE", approve=True)

        assert [i.outcome.value for i in result.items] == ["decided", "decided"]
        assert (await one.get(made[2].id)).status is Status.PENDING  # not in the drawing
        assert await one.store.set_batch_summary("C0OPS", "run-9", "C0OPS", "1.1") == (
            "C0OPS",
            "1.1",
        )
        # the first summary remembered stays, whichever store posted another
        assert await two.store.set_batch_summary("C0OPS", "run-9", "C0OPS", "2.2") == (
            "C0OPS",
            "1.1",
        )
        assert await two.store.batch_summary("C0OPS", "run-9") == ("C0OPS", "1.1")
        assert await two.store.batch_summary("C0OPS", "run-8") is None
    finally:
        for store in stores:
            await store.close()


async def test_an_upgrade_puts_the_pending_approvals_of_a_run_in_its_batch(
    db_path: Path,
) -> None:
    """Approvals stored before batches existed: the pending ones join their run's batch."""
    store = SQLiteStore(db_path)
    await store.open()
    service = ApprovalService(store, default_channel="C0OPS")
    made = [(await service.submit(_request(i, "run-7")))[0] for i in range(3)]
    await service.decide(made[2].id, approved=False, decided_by="alice")
    await store.close()
    with contextlib.closing(sqlite3.connect(db_path)) as conn:  # back to the schema before
        conn.executescript(
            "DROP INDEX approvals_batch; DROP TABLE batch_summaries; DROP TABLE batch_views;"
            " ALTER TABLE approvals DROP COLUMN batch_key;"
            " DELETE FROM migrations WHERE version = 9;"
        )

    store = SQLiteStore(db_path)
    await store.open()
    try:
        members = await store.batch("C0OPS", "run-7", 10)
    finally:
        await store.close()

    assert [a.id for a in members] == [a.id for a in made[:2]]


async def test_what_the_time_to_answer_leaves_is_left_untried(service: ApprovalService) -> None:
    service.router = Routing.model_validate(
        {"rules": [{"tools": ["deploy_*"], "approvers": ["U0ALICE"]}]}
    )
    made = [(await service.submit(_request(i, "run-5")))[0] for i in range(3)]
    answer_due = iter([False, True, True])

    result = await BatchService(service).decide_batch(
        BatchRef("C0OPS", "run-5"), "U0ALICE", approve=True, stop=lambda: next(answer_due)
    )

    assert [i.outcome.value for i in result.items] == ["decided", "untried", "untried"]
    assert [(await service.get(a.id)).status for a in made] == [
        Status.APPROVED,
        Status.PENDING,
        Status.PENDING,
    ]
    report = render_batch_result(result)
    assert report["text"] == "*Approve all:* 1 approved, 2 not tried."
    assert "click Approve all again for the rest" in json.dumps(report["blocks"])


@pytest.fixture
async def replicas(pg_server: str, workspace: Any, tmp_path: Path) -> AsyncIterator[list[SlackRig]]:
    """Two bots on one PostgreSQL database and one Slack, each with its own Slack hands."""
    config = tmp_path / "approvals.toml"
    config.write_text(RULES)
    async with slack_replicas(pg_server, workspace, config) as rigs:
        yield rigs


async def test_replicas_post_one_summary_and_decide_it_through_either(
    replicas: list[SlackRig],
) -> None:
    a, b = replicas
    records = [await ask(rig, args={"n": n}) for n, rig in enumerate((a, b, a))]
    message = await summary(a, records[0], "Approve all 3")

    await b.slack.click(message.channel, message.ts, "batch_approve", user="U0BOB")  # through B

    for record in records:
        assert (await a.decided(record["id"]))["decision"]["decidedBy"] == "U0BOB"
    card = await a.card(records[0]["id"])
    assert len([m for m in a.workspace.thread(card.channel, card.ts) if is_summary(m)]) == 1
