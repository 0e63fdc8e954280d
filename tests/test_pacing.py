"""Cards under Slack's per-channel posting limit: paced per channel, each posted once, a 429
holding only its channel, and a busy channel's backlog shown instead of anything dropped.

Most tests raise the emulator's limit (and the bot's pace) to 5–10 posts a second to stay
fast; one runs at Slack's real pace of one post a second.
"""

from __future__ import annotations

import asyncio
import json
import time
from typing import Any

from bot.app import BOT
from bot.devslack.model import ApiCall
from bot.slack.pacing import ChannelPacer, backlog_lines, backlog_note
from bot.slack.poster import CardPoster
from tests.conftest import SlackRig, until

# -- the pacer alone ---------------------------------------------------------------------------


async def test_the_pacer_allows_a_burst_then_spaces_posts() -> None:
    pacer = ChannelPacer(rate=20, burst=3, guard=0)
    burst = [await pacer.wait("C1") for _ in range(3)]
    started = time.monotonic()
    first = await pacer.wait("C1")
    for _ in range(5):
        await pacer.wait("C1")

    assert all(w < 0.01 for w in burst), burst
    assert first > 0.04  # the burst is spent: one interval of 1/20 s
    assert 0.29 < time.monotonic() - started < 0.45  # six more posts, six intervals


async def test_a_hold_stops_one_channel_only() -> None:
    pacer = ChannelPacer(rate=50, burst=1, guard=0)
    await pacer.wait("C1")
    await pacer.hold("C1", 0.3)

    held = asyncio.create_task(pacer.wait("C1"))
    assert await pacer.wait("C2") < 0.01
    assert 0.25 < await held < 0.5


async def test_a_channel_name_and_its_id_share_one_budget() -> None:
    pacer = ChannelPacer(rate=10, burst=1, guard=0)
    await pacer.wait("#deploy")
    pacer.learn("#deploy", "C0DEPLOY")

    assert await pacer.wait("C0DEPLOY") > 0.05


def test_backlog_words() -> None:
    pacer = ChannelPacer()
    assert backlog_note(12, pacer) == (
        "12 more requests were queued for this channel when this card was posted; "
        "cards are posted about one per second."
    )
    lines = backlog_lines({"C0DEPLOY": 12, "ops": 7, "C0PAYMENTS": 2}, pacer)
    assert lines == [
        ":hourglass_flowing_sand: 12 requests queued for <#C0DEPLOY>; "
        "cards are posted about one per second.",
        ":hourglass_flowing_sand: 7 requests queued for #ops; "
        "cards are posted about one per second.",
    ]
    assert backlog_lines({"<!here>": 9}) == [
        ":hourglass_flowing_sand: 9 requests queued for #&lt;!here&gt;; "
        "cards are posted about one per second."
    ]
    assert backlog_lines({}) == []


# -- the bot against the emulated Web API ------------------------------------------------------


def poster_of(rig: SlackRig) -> CardPoster:
    [worker] = rig.bot.server.app[BOT].workers
    poster = worker.handle
    assert isinstance(poster, CardPoster)
    return poster


def limit(rig: SlackRig, rate: float, burst: int = 3) -> ChannelPacer:
    """Slack allows `rate` posts a second per channel after `burst`; the bot paces to match."""
    rig.workspace.rate_limit_per_channel = rate
    rig.workspace.rate_limit_burst = burst
    pacer = poster_of(rig).pacer
    pacer.rate, pacer.burst = rate, burst
    return pacer


def posts(rig: SlackRig, channel: str, *, ok: bool | None = True) -> list[ApiCall]:
    """Top-level `chat.postMessage` calls to `channel` (thread replies left out)."""
    return [
        call
        for call in rig.workspace.calls_to("chat.postMessage", ok=ok)
        if call.params.get("channel") == channel and not call.params.get("thread_ts")
    ]


def rate_limited(rig: SlackRig) -> list[ApiCall]:
    return [c for c in rig.workspace.calls_to("chat.postMessage") if c.status == 429]


async def submit(rig: SlackRig, channel: str, count: int, tag: str) -> list[dict[str, Any]]:
    return [
        await rig.bot.submit(channel=channel, toolCallId=f"{tag}_{i}", prompt=f"{tag} card {i}")
        for i in range(count)
    ]


async def all_posted(rig: SlackRig, records: list[dict[str, Any]], timeout: float) -> None:
    for record in records:
        await rig.card(record["id"], timeout=timeout)


def card_ids(calls: list[ApiCall]) -> list[str]:
    return [call.params["metadata"]["event_payload"]["id"] for call in calls]


def span(calls: list[ApiCall]) -> float:
    return calls[-1].at - calls[0].at


async def test_cards_to_one_channel_are_paced_and_each_posted_once(rig: SlackRig) -> None:
    limit(rig, rate=10, burst=3)
    records = await submit(rig, "C0DEPLOY", 30, "load")
    await all_posted(rig, records, timeout=15)

    posted = posts(rig, "C0DEPLOY")
    assert card_ids(posted) == [r["id"] for r in records]  # once each, in order
    assert len(rig.workspace.messages["C0DEPLOY"]) == 30
    assert len(rate_limited(rig)) <= 2
    assert 2.4 < span(posted) < 4.5  # (30 - 3) / 10 s = 2.7 s


async def test_a_busy_channel_does_not_delay_another(rig: SlackRig) -> None:
    limit(rig, rate=5, burst=3)
    deploy = await submit(rig, "C0DEPLOY", 25, "busy")
    started = time.time()
    ops = await submit(rig, "C0OPS", 3, "quiet")
    await all_posted(rig, ops, timeout=5)
    ops_done = time.time() - started
    await all_posted(rig, deploy, timeout=20)

    assert ops_done < 1.5  # within its own burst, not after #deploy's ~4.4 s queue
    assert posts(rig, "C0DEPLOY")[-1].at - started > 3
    assert card_ids(posts(rig, "C0OPS")) == [r["id"] for r in ops]
    assert card_ids(posts(rig, "C0DEPLOY")) == [r["id"] for r in deploy]
    assert len(rate_limited(rig)) <= 2


async def test_retry_after_holds_only_the_channel_that_got_it(rig: SlackRig) -> None:
    rig.workspace.fail_next("chat.postMessage", status=429, retry_after=2)
    [held] = await submit(rig, "C0DEPLOY", 1, "held")
    await until(lambda: _faults_spent(rig))
    refused_at = rate_limited(rig)[0].at
    [later] = await submit(rig, "C0DEPLOY", 1, "later")
    [other] = await submit(rig, "C0OPS", 1, "other")

    await rig.card(other["id"], timeout=1.5)
    assert time.time() - refused_at < 2  # #ops went ahead during #deploy's Retry-After
    await all_posted(rig, [held, later], timeout=10)

    deploy = posts(rig, "C0DEPLOY", ok=None)
    assert [c.status for c in deploy] == [429, 200, 200]  # nothing sent while held: no storm
    assert deploy[1].at - refused_at > 1.9
    assert card_ids(deploy[1:]) == [held["id"], later["id"]]  # the refused card kept its place


async def _faults_spent(rig: SlackRig) -> bool:
    return rig.workspace.faults.pending() == 0 and bool(rate_limited(rig))


async def test_a_decision_on_a_queued_card_posts_one_decided_card(rig: SlackRig) -> None:
    limit(rig, rate=5, burst=1)
    records = await submit(rig, "C0DEPLOY", 6, "queued")
    last = records[-1]
    status, _ = await rig.bot.decide(last["id"])
    assert status == 200
    assert (await rig.record_if(last["id"], lambda r: r))["slack"]["ts"] is None  # still queued

    await all_posted(rig, records, timeout=10)
    card = await rig.card(last["id"])
    await until(lambda: _replies(rig, card))

    tops = [m for m in rig.workspace.messages["C0DEPLOY"] if m.thread_ts is None]
    mine = [m for m in tops if (m.metadata or {}).get("event_payload", {}).get("id") == last["id"]]
    assert [m.ts for m in mine] == [card.ts]  # one card, never a second one
    shown = json.dumps(card.blocks)
    assert "Approved" in shown and '"type": "actions"' not in shown  # never left pending
    assert len(tops) == 6
    await asyncio.sleep(0.3)  # anything doubled would show by now
    assert len(rig.workspace.thread(card.channel, card.ts)) == 2  # the card and one reply


async def _replies(rig: SlackRig, card: Any) -> bool:
    return len(rig.workspace.thread(card.channel, card.ts)) > 1


def notes_of(message: Any) -> str:
    return " ".join(
        element.get("text", "")
        for block in message.blocks
        if block["type"] == "context"
        for element in block["elements"]
    )


async def test_cards_of_a_busy_channel_say_how_many_wait(rig: SlackRig) -> None:
    pacer = limit(rig, rate=10, burst=3)
    await pacer.hold("C0DEPLOY", 1.5)  # let the whole queue build before the first card goes out
    records = await submit(rig, "C0DEPLOY", 12, "note")
    await all_posted(rig, records, timeout=10)

    for position, record in enumerate(records):
        notes = notes_of(await rig.card(record["id"]))
        behind = len(records) - position - 1
        if behind >= 5:
            assert f"{behind} more requests were queued for this channel" in notes, position
        else:
            assert "queued" not in notes, position

    async def drained() -> bool:  # the last item leaves the lane once its post has returned
        return poster_of(rig).backlog == {}

    await until(drained, timeout=2)  # nothing left over once delivered


async def test_at_slacks_real_pace_one_card_a_second(rig: SlackRig) -> None:
    limit(rig, rate=1, burst=3)
    records = await submit(rig, "C0DEPLOY", 12, "real")
    await all_posted(rig, records, timeout=20)

    posted = posts(rig, "C0DEPLOY")
    assert card_ids(posted) == [r["id"] for r in records]
    assert len(rate_limited(rig)) <= 1
    assert 8.5 < span(posted) < 11  # (12 - 3) cards at one a second
    # The burst went out as the queue formed; the fourth card waited a second behind eight.
    assert "8 more requests were queued" in notes_of(await rig.card(records[3]["id"]))


def test_app_home_says_which_channels_are_backed_up() -> None:
    from bot.slack.cards import render_home

    lines = backlog_lines({"C0DEPLOY": 12, "C0OPS": 1, "<!here>": 7})
    view = render_home([], [], notes=lines)
    shown = json.dumps(view["blocks"])

    assert "12 requests queued for <#C0DEPLOY>" in shown
    assert "C0OPS" not in shown  # one queued card is no backlog
    assert "<!here>" not in shown and "&lt;!here&gt;" in shown  # names are escaped
