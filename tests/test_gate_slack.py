"""The gate in Slack: who may decide, on which arguments, with which words, and what the card
shows. Each test is a way a careless Slack user or a hostile agent got a call approved, or a
card to lie, on an earlier version; all through signed Slack payloads and the local Slack."""

from __future__ import annotations

import copy
import dataclasses
import json
from typing import Any

import pytest

from bot.devslack import payloads
from tests.conftest import RigFactory, SlackRig, until
from tests.slack_support import text_of

PRIVATE = '[[rules]]\ntools = ["rotate_*"]\nchannel = "C0PRIVATE"\n'
TWO_OF_M = """
[[rules]]
tools = ["deploy_*"]
approvers = ["U0ALICE", "U0BOB", "U0CAROL"]
required_approvals = 2
"""
CRITICAL = '[[rules]]\ntools = ["transfer_*"]\npriority = "critical"\n'


async def record_of(rig: SlackRig, approval_id: str) -> dict[str, Any]:
    _, record = await rig.bot.call("GET", f"/v1/approvals/{approval_id}")
    return record


async def note_for(rig: SlackRig, user: str, containing: str) -> Any:
    async def probe() -> Any:
        notes = rig.workspace.ephemerals_for(user)
        return next((n for n in notes if containing in n.text), None)

    return await until(probe)


async def refusals(rig: SlackRig) -> list[tuple[str | None, str]]:
    events = await rig.bot.service.store.events_since(0)
    return [(e.actor, e.detail.get("reason", "")) for e in events if e.kind == "refused"]


async def home_of(rig: SlackRig, user: str) -> Any:
    before = rig.workspace.home(user)
    await rig.slack.open_home(user)
    return await until(lambda: _fresh_home(rig, user, before))


async def _fresh_home(rig: SlackRig, user: str, before: Any) -> Any:
    home = rig.workspace.home(user)
    return home if home is not None and home is not before else None


def mrkdwn_texts(blocks: list[dict[str, Any]]) -> list[str]:
    """Every string Slack formats (and so could bold, link or ping) in some blocks."""
    found: list[str] = []

    def walk(node: Any) -> None:
        if isinstance(node, dict):
            if node.get("type") == "mrkdwn":
                found.append(str(node.get("text")))
            for value in node.values():
                walk(value)
        elif isinstance(node, list):
            for item in node:
                walk(item)

    walk(blocks)
    return found


# -- 5. anyone in the workspace approved any channel's approval ------------------------------


async def test_only_members_of_a_private_channel_see_or_decide_its_approval(
    make_rig: RigFactory,
) -> None:
    """5: bob, not in #security, saw its approval in App Home with Approve and approved it."""
    rig = await make_rig(PRIVATE)
    record = await rig.bot.submit(toolName="rotate_keys", prompt="Rotate the root signing key")
    card = await rig.card(record["id"])
    assert card.channel == "C0PRIVATE" and not rig.workspace.is_member("C0PRIVATE", "U0BOB")

    bobs_home = await home_of(rig, "U0BOB")
    assert record["id"] not in json.dumps(bobs_home.blocks)
    listed = await rig.slack.slash_command("/approvals", "", user="U0BOB", channel="C0OPS")
    one = await rig.slack.slash_command("/approvals", record["id"], user="U0BOB", channel="C0OPS")
    for answer in (listed.body, one.body):
        assert record["id"] not in answer.replace(f"id {record['id']} for", "")
        assert "root signing key" not in answer

    # A click bob could only send by forging alice's App Home: the service still refuses it.
    alices_home = await home_of(rig, "U0ALICE")
    forged = payloads.view_block_actions_payload(
        rig.workspace,
        user="U0BOB",
        view=alices_home,
        action_id="approve",
        trigger_id=rig.workspace.new_trigger("U0BOB").id,
        action_ts="1.0",
    )
    await rig.slack.send_interaction(forged)
    assert await until(lambda: _refused_by(rig, "U0BOB"))
    assert (await record_of(rig, record["id"]))["progress"]["approvedBy"] == []

    await rig.slack.click_in_view(alices_home.id, "approve", user="U0ALICE")
    decided = await rig.decided(record["id"])
    assert (decided["status"], decided["decision"]["decidedBy"]) == ("approved", "U0ALICE")


async def test_a_non_member_of_a_public_channel_cannot_decide_its_card(
    make_rig: RigFactory,
) -> None:
    """5: anyone in the workspace can open a public channel and click its card; with no
    `approvers`, only the channel's members may decide (CONTRACT: "only members of the card's
    channel may decide", checked with `conversations.members`)."""
    rig = await make_rig('[[rules]]\ntools = ["deploy_*"]\nchannel = "C0DEPLOYS"\n')
    rig.workspace.add_channel("C0DEPLOYS", "deploys", members=["U0ALICE"])
    record = await rig.bot.submit(toolName="deploy_service", args={"target": "prod"})
    card = await rig.card(record["id"])
    assert card.channel == "C0DEPLOYS" and not rig.workspace.is_member("C0DEPLOYS", "U0BOB")

    # The local Slack sends a channel's clicks from its members only; Slack lets anyone
    # preview a public channel, so the bot must not rely on that: a forged click by bob.
    forged = payloads.block_actions_payload(
        rig.workspace,
        user="U0ALICE",
        message=rig.workspace.message(card.channel, card.ts),
        action_id="approve",
        trigger_id=rig.workspace.new_trigger("U0BOB").id,
        response_url="https://hooks.slack.invalid/forged",
        action_ts="1.0",
    )
    forged["user"] = {"id": "U0BOB", "username": "bob", "name": "bob", "team_id": "T0"}
    await rig.slack.send_interaction(forged)
    assert await until(lambda: _refused_by(rig, "U0BOB"))
    assert (await record_of(rig, record["id"]))["status"] == "pending"

    await rig.click(record["id"], "approve", "U0ALICE")
    decided = await rig.decided(record["id"])
    assert decided["decision"]["decidedBy"] == "U0ALICE"


async def test_the_requester_s_own_app_home_entry_offers_no_approve(make_rig: RigFactory) -> None:
    """The requester may reject their own call, never approve or edit it: their App Home
    offers only what they may do, where it offered buttons that were always refused."""
    rig = await make_rig()
    record = await rig.bot.submit(requester={"agent": "bot", "slackUser": "U0DAVE"})

    def actions(home: Any) -> set[str]:
        return {
            element["action_id"]
            for block in home.blocks
            if block["type"] == "actions" and record["id"] in block.get("block_id", "")
            for element in block["elements"]
        }

    assert {"approve", "edit", "reject"} <= actions(await home_of(rig, "U0ALICE"))
    own = actions(await home_of(rig, "U0DAVE"))
    assert "reject" in own and not {"approve", "edit"} & own


async def _refused_by(rig: SlackRig, user: str) -> list[str]:
    return [reason for actor, reason in await refusals(rig) if actor == user]


# -- 6. N-of-M counted a vote for arguments its voter never saw ------------------------------


async def edit_as(rig: SlackRig, approval_id: str, user: str, values: dict[str, str]) -> None:
    await rig.click(approval_id, "edit", user)
    modal = await until(lambda: _open_modal(rig, user))
    await rig.slack.submit_view(modal.id, values)


async def _open_modal(rig: SlackRig, user: str) -> Any:
    return next((v for v in rig.workspace.open_modals(user) if not v.closed), None)


async def test_a_click_on_arguments_edited_since_is_not_counted(make_rig: RigFactory) -> None:
    """6: bob edited staging → prod; alice's Approve on the card as she saw it approved prod."""
    rig = await make_rig(TWO_OF_M)
    record = await rig.bot.submit(toolName="deploy_service", args={"target": "staging"})
    card = await rig.card(record["id"])
    as_alice_saw_it = copy.deepcopy(card.blocks)

    await edit_as(rig, record["id"], "U0BOB", {"arg:target": "prod"})
    edited = await until(lambda: _edited(rig, record["id"]))
    assert edited["progress"]["approvedBy"] == ["U0BOB"]

    # Slack sends the click from the message as alice's client still shows it.
    old = dataclasses.replace(rig.workspace.message(card.channel, card.ts), blocks=as_alice_saw_it)
    target = rig.workspace.new_response_target("U0ALICE", card.channel, card.ts)
    click = payloads.block_actions_payload(
        rig.workspace,
        user="U0ALICE",
        message=old,
        action_id="approve",
        trigger_id=rig.workspace.new_trigger("U0ALICE").id,
        response_url=rig.workspace.response_url(target),
        action_ts="1.0",
    )
    await rig.slack.send_interaction(click)

    note = await note_for(rig, "U0ALICE", "edited")
    assert "prod" in note.text and "not counted" in note.text
    after = await record_of(rig, record["id"])
    assert (after["status"], after["progress"]["approvedBy"]) == ("pending", ["U0BOB"])

    await rig.click(record["id"], "approve", "U0ALICE")  # on the card as it is now
    decided = await rig.decided(record["id"])
    assert decided["decision"]["approvedArgs"] == {"target": "prod"}
    assert decided["decision"]["approvers"] == ["U0BOB", "U0ALICE"]


async def _edited(rig: SlackRig, approval_id: str) -> Any:
    record = await record_of(rig, approval_id)
    return record if record["progress"].get("args") else None


async def test_a_modal_opened_before_an_edit_decides_nothing(make_rig: RigFactory) -> None:
    rig = await make_rig(TWO_OF_M)
    record = await rig.bot.submit(toolName="deploy_service", args={"target": "staging"})
    await rig.click(record["id"], "edit", "U0ALICE")
    alices = await until(lambda: _open_modal(rig, "U0ALICE"))

    await edit_as(rig, record["id"], "U0BOB", {"arg:target": "prod"})
    await until(lambda: _edited(rig, record["id"]))
    answer = await rig.slack.submit_view(alices.id, {"arg:target": "staging"})

    assert answer.json()["response_action"] == "update"
    assert "Arguments changed" in json.dumps(answer.json()["view"])
    after = await record_of(rig, record["id"])
    assert after["progress"]["args"] == {"target": "prod"}
    assert after["progress"]["approvedBy"] == ["U0BOB"]


async def test_approve_typed_before_an_edit_is_not_counted(make_rig: RigFactory) -> None:
    """Slack can deliver a message event late (a retry): `approve` typed while the card said
    staging must not count for prod."""
    rig = await make_rig(TWO_OF_M)
    record = await rig.bot.submit(toolName="deploy_service", args={"target": "staging"})
    card = await rig.card(record["id"])
    typed = rig.workspace.post_message(
        card.channel, text="approve", user="U0ALICE", thread_ts=card.ts
    )

    await edit_as(rig, record["id"], "U0BOB", {"arg:target": "prod"})
    await until(lambda: _edited(rig, record["id"]))
    await rig.slack.send_event(payloads.message_event(rig.workspace, typed))

    await note_for(rig, "U0ALICE", "not counted")
    after = await record_of(rig, record["id"])
    assert (after["status"], after["progress"]["approvedBy"]) == ("pending", ["U0BOB"])


# -- 7. chatter decided --------------------------------------------------------------------


@pytest.mark.parametrize(
    "chatter",
    [
        pytest.param("Yes", id="yes"),
        pytest.param("No idea what this does, ask Bob", id="no-idea"),
        pytest.param("lgtm", id="lgtm"),
        pytest.param("approve after the freeze", id="approve-after"),
        pytest.param("I would not reject this", id="not-reject"),
    ],
)
async def test_thread_chatter_decides_nothing(make_rig: RigFactory, chatter: str) -> None:
    """7: "No idea what this does, ask Bob" rejected a card, with "idea what…" as the reason."""
    rig = await make_rig()
    record = await rig.bot.submit()
    card = await rig.card(record["id"])
    await rig.slack.reply_in_thread(card.channel, card.ts, chatter, user="U0CAROL")
    await rig.slack.reply_in_thread(card.channel, card.ts, "approve", user="U0BOB")

    decided = await rig.decided(record["id"])  # only the explicit command counted
    assert decided["decision"]["decidedBy"] == "U0BOB"
    replies = rig.workspace.thread(card.channel, card.ts)
    [chat] = [m for m in replies if m.user == "U0CAROL"]
    [command] = [m for m in replies if m.user == "U0BOB"]
    assert chat.reactions == {} and "white_check_mark" in command.reactions


@pytest.mark.parametrize(
    ("text", "broadcast", "status"),
    [
        pytest.param("<@U0BOT> approve", False, "approved", id="mention"),
        pytest.param("approve", True, "approved", id="also-sent-to-channel"),
        pytest.param("Reject: wrong region", True, "rejected", id="reject-broadcast"),
    ],
)
async def test_thread_commands(
    make_rig: RigFactory, text: str, broadcast: bool, status: str
) -> None:
    rig = await make_rig()
    record = await rig.bot.submit()
    card = await rig.card(record["id"])
    await rig.slack.reply_in_thread(
        card.channel, card.ts, text, user="U0CAROL", broadcast=broadcast
    )
    decided = await rig.decided(record["id"])
    assert (decided["status"], decided["decision"]["decidedBy"]) == (status, "U0CAROL")


async def test_typing_approve_on_a_critical_card_asks_for_its_confirmation(
    make_rig: RigFactory,
) -> None:
    """7: "Yes" in a critical card's thread skipped the confirmation its button asks for."""
    rig = await make_rig(CRITICAL)
    record = await rig.bot.submit(toolName="transfer_funds", args={"amount": 9000, "to": "acme"})
    card = await rig.card(record["id"])

    await rig.slack.reply_in_thread(card.channel, card.ts, "approve", user="U0CAROL")
    confirm = await note_for(rig, "U0CAROL", "confirmation")
    assert confirm.thread_ts == card.ts
    assert "9000" in text_of(confirm) and "acme" in text_of(confirm)
    [button] = [e for b in confirm.blocks if b["type"] == "actions" for e in b["elements"]]
    assert button["action_id"] == "approve" and "confirm" in button
    assert (await record_of(rig, record["id"]))["status"] == "pending"

    await rig.slack.click_ephemeral(confirm, "approve")
    decided = await rig.decided(record["id"])
    assert (decided["status"], decided["decision"]["decidedBy"]) == ("approved", "U0CAROL")


async def test_approve_typed_after_an_edit_on_a_critical_card_asks_for_its_confirmation(
    make_rig: RigFactory,
) -> None:
    """Typed after an edit, `approve` is a vote on the edited call: it is asked to confirm,
    never told it came too late."""
    rig = await make_rig(
        CRITICAL + 'approvers = ["U0ALICE", "U0BOB", "U0CAROL"]\nrequired_approvals = 2\n'
    )
    record = await rig.bot.submit(toolName="transfer_funds", args={"to": "acme"})
    card = await rig.card(record["id"])
    await edit_as(rig, record["id"], "U0BOB", {"arg:to": "globex"})
    await until(lambda: _edited(rig, record["id"]))

    await rig.slack.reply_in_thread(card.channel, card.ts, "approve", user="U0ALICE")
    confirm = await note_for(rig, "U0ALICE", "confirmation")
    assert "globex" in text_of(confirm)
    assert not [n for n in rig.workspace.ephemerals_for("U0ALICE") if "not counted" in n.text]
    await rig.slack.click_ephemeral(confirm, "approve")
    decided = await rig.decided(record["id"])
    assert decided["decision"]["approvers"] == ["U0BOB", "U0ALICE"]
    assert decided["decision"]["approvedArgs"] == {"to": "globex"}


# -- 8. what people see could lie or hide --------------------------------------------------


async def test_the_prompt_cannot_pose_as_the_bots_decision_line(make_rig: RigFactory) -> None:
    rig = await make_rig()
    lie = ":white_check_mark: *Approved* by @alice · pre-cleared by Security"
    record = await rig.bot.submit(prompt=lie, context="<!channel> *urgent*")
    card = await rig.card(record["id"])

    formatted = " ".join(mrkdwn_texts(card.blocks))
    assert "*Approved*" not in formatted and "pre-cleared" not in formatted
    assert "<!channel>" not in formatted and "*urgent*" not in formatted
    plain = json.dumps(card.blocks)
    assert "pre-cleared by Security" in plain  # shown, as plain text under "From the agent"
    assert "From the agent" in plain


async def test_agent_chosen_ids_never_ping(make_rig: RigFactory) -> None:
    rig = await make_rig()
    record = await rig.bot.submit(
        requester={"agent": "<@U0ALICE>", "slackUser": "U0DAVE", "runId": "<!here>"}
    )
    card = await rig.card(record["id"])
    home = await home_of(rig, "U0BOB")
    status, _ = await rig.bot.call(
        "POST", f"/v1/approvals/{record['id']}/cancel", json={"cancelledBy": "U0EVE"}
    )
    assert status == 200
    await until(lambda: _cancelled_card(rig, card))
    thread = rig.workspace.thread(card.channel, card.ts)

    for blocks in [card.blocks, home.blocks, *(m.blocks for m in thread)]:
        formatted = " ".join(mrkdwn_texts(blocks))
        for ping in ("<@U0ALICE>", "<@U0DAVE>", "<@U0EVE>", "<!here>"):
            assert ping not in formatted
    texts = " ".join(m.text for m in thread)
    assert "<@" not in texts and "<!" not in texts
    assert "U0DAVE" in json.dumps(card.blocks) and "U0EVE" in texts


async def test_agent_chosen_names_cannot_pose_as_the_bots_words(make_rig: RigFactory) -> None:
    """A requester and a `cancelledBy` are the agent's words inside the bot's lines: shown
    inert (a code span), never as bold, emoji or a second line of the bot's."""
    rig = await make_rig()
    lie = ":white_check_mark: *Approved* by alice"
    record = await rig.bot.submit(requester={"agent": lie, "runId": "r1"})
    card = await rig.card(record["id"])
    home = await home_of(rig, "U0BOB")
    status, _ = await rig.bot.call(
        "POST", f"/v1/approvals/{record['id']}/cancel", json={"cancelledBy": f"x\n{lie}"}
    )
    assert status == 200
    await until(lambda: _cancelled_card(rig, card))
    cancelled = rig.workspace.message(card.channel, card.ts)
    thread = rig.workspace.thread(card.channel, card.ts)
    runs = [m for m in rig.workspace.history(card.channel) if "Approvals for run" in m.text]

    shown = [card.blocks, home.blocks, cancelled.blocks, *(m.blocks for m in thread)]
    texts = [*(mrkdwn_texts(blocks) for blocks in shown), [m.text for m in [*thread, *runs]]]
    inside = [text for group in texts for text in group if "Approved* by alice" in text]
    assert len(inside) >= 4  # the card, App Home, the cancelled card, the run's thread
    for text in inside:
        assert f"`{lie}`" in text or "`x " in text, text


async def _cancelled_card(rig: SlackRig, card: Any) -> bool:
    message = rig.workspace.message(card.channel, card.ts)
    return "Cancelled" in text_of(message) and len(rig.workspace.thread(card.channel, card.ts)) > 1


async def test_a_huge_call_names_every_argument_and_says_what_was_cut(
    make_rig: RigFactory,
) -> None:
    """8: 105 KB of arguments showed the first keys then "…"; the last key never appeared."""
    rig = await make_rig()
    args = {
        "rows": [{"id": i, "email": f"user{i}@example.com", "plan": "pro"} for i in range(2000)],
        "query": "UPDATE customers SET plan='free' WHERE 1=1",
    }
    assert len(json.dumps(args)) > 100_000
    record = await rig.bot.submit(toolName="run_sql", args=args)
    card = await rig.card(record["id"])
    shown = text_of(card)

    assert "UPDATE customers SET plan='free' WHERE 1=1" in shown
    assert "rows" in shown and "characters" in shown  # the cut is stated, with its size


async def test_app_home_shows_the_arguments_it_offers_to_approve(make_rig: RigFactory) -> None:
    """8: App Home offered Approve with no arguments shown, and the critical confirmation said
    "the arguments shown on the card"."""
    rig = await make_rig(CRITICAL)
    record = await rig.bot.submit(toolName="transfer_funds", args={"amount": 9000, "to": "acme"})
    await rig.card(record["id"])
    home = await home_of(rig, "U0ALICE")

    shown = json.dumps(home.blocks)
    assert record["id"] in shown and "9000" in shown and "acme" in shown
    [approve] = [
        e
        for b in home.blocks
        if b["type"] == "actions"
        for e in b["elements"]
        if e["action_id"] == "approve"
    ]
    confirm = json.dumps(approve["confirm"])
    assert "9000" in confirm and "acme" in confirm and "shown on the card" not in confirm
