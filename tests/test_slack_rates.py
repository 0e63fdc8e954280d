"""Card rewrites within `chat.update`'s tier, coalesced per card, and never in the way of new
cards.

`chat.update` is Tier 3 (https://api.slack.com/methods/chat.update, "Rate limits: Tier 3,
50+ per minute"; tiers: https://api.slack.com/apis/rate-limits), counted for the whole
workspace: a burst of decisions must not become a burst of rewrites that Slack answers 429.
The emulator limits it as Slack does; these tests count the calls the bot makes.
"""

from __future__ import annotations

import asyncio
from typing import Any

from bot.app import BOT
from bot.devslack import Workspace
from bot.slack.poster import UPDATE_BURST, UPDATE_RATE
from tests.conftest import RigFactory, SlackRig, until
from tests.slack_support import actions_of

CHANNELS = [f"C0RATE{i}" for i in range(10)]


def updates_of(workspace: Workspace, ts: str | None = None) -> list[Any]:
    """`chat.update` calls Slack took (of the card `ts`, if given)."""
    return [
        c
        for c in workspace.calls_to("chat.update", ok=True)
        if ts is None or c.params.get("ts") == ts
    ]


async def posted_cards(rig: SlackRig, count: int) -> list[dict[str, Any]]:
    """`count` approvals over `CHANNELS`, returned once every card is posted."""
    for channel in CHANNELS:
        rig.workspace.add_channel(channel, channel.lower())
    records = [
        await rig.bot.submit(channel=CHANNELS[i % len(CHANNELS)], args={"n": i})
        for i in range(count)
    ]
    for record in records:
        await rig.card(record["id"], timeout=10)
    return records


async def test_a_burst_of_decisions_is_rewritten_at_chat_update_pace_and_new_cards_go_first(
    rig: SlackRig,
) -> None:
    """20 decisions on 20 cards in 10 channels: every decision is made and its agent answered
    at once; the rewrites trail at the tier's pace (a burst of `UPDATE_BURST`, then
    `UPDATE_RATE` a second), never 429; rewrites not made yet wait in the durable outbox; and
    a new card in a channel whose rewrites queue is posted right away."""
    workspace = rig.workspace
    records = await posted_cards(rig, 20)
    started = asyncio.get_running_loop().time()

    decided = await asyncio.gather(*(rig.bot.decide(r["id"]) for r in records))

    assert [status for status, _ in decided] == [200] * 20
    newcomer = await rig.bot.submit(channel=CHANNELS[0], args={"n": "new"})
    card = await rig.card(newcomer["id"], timeout=3)  # not behind the channel's rewrites
    assert actions_of(card)
    await asyncio.sleep(max(0.0, started + 4 - asyncio.get_running_loop().time()))
    seconds = asyncio.get_running_loop().time() - started
    assert len(updates_of(workspace)) <= UPDATE_BURST + UPDATE_RATE * seconds + 1
    assert len(updates_of(workspace)) >= UPDATE_BURST  # the burst goes out at once
    store = rig.bot.server.app[BOT].store
    assert await store.outbox_pending("slack") >= 20 - len(updates_of(workspace))
    assert not [c for c in workspace.calls_to("chat.update") if c.status == 429]


async def test_changes_to_one_card_while_it_waits_for_its_turn_cost_one_rewrite(
    make_rig: RigFactory,
) -> None:
    """Two votes land while the card's first rewrite waits out a 429: the card is drawn
    once, with both votes; the decision is one more rewrite and one reply in its thread."""
    rig = await make_rig('[[rules]]\ntools = ["deploy_*"]\nrequired_approvals = 3\n')
    record = await rig.bot.submit()
    card = await rig.card(record["id"])
    rig.workspace.fail_next("chat.update", status=429, error="ratelimited", retry_after=1)

    service = rig.bot.service
    await service.approve(record["id"], user="U0ALICE")
    await asyncio.sleep(0.2)  # the first rewrite is refused and waits its Retry-After
    await service.approve(record["id"], user="U0BOB")

    async def redrawn() -> bool:
        return bool(updates_of(rig.workspace, card.ts))

    await until(redrawn, timeout=5)
    await asyncio.sleep(1.0)  # anything else queued for the card has had its chance
    [update] = updates_of(rig.workspace, card.ts)
    assert "2 of 3" in str(update.params), update.params

    status, _ = await rig.bot.decide(record["id"])
    assert status == 200

    async def shows_the_decision() -> bool:
        shown = rig.workspace.message(card.channel, card.ts)
        return not actions_of(shown) and len(rig.workspace.thread(card.channel, card.ts)) > 1

    await until(shows_the_decision, timeout=10)
    await asyncio.sleep(0.5)
    assert len(updates_of(rig.workspace, card.ts)) == 2
    assert len(rig.workspace.thread(card.channel, card.ts)) == 2  # the card and one reply
