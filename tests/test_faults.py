"""Faults: the bot killed mid-storm, Slack down for a while, the database locked by someone else.

Real processes where it matters: `approval-bot serve` is killed with SIGKILL, and the stale lock
is held by another process; the devslack emulator plays Slack and can fail on cue.
"""

from __future__ import annotations

import asyncio
import contextlib
import copy
import json
import random
import signal
import socket
import sqlite3
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Coroutine, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from bot.devslack import Deliverer, DeliveryFailed, payloads
from bot.sdk import ApprovalClient
from bot.store import SQLiteStore
from tests.conftest import ADMIN_TOKEN, AGENT_TOKEN, SIGNING_SECRET, Running, SlackRig, until
from tests.processes import ServeProcess, free_port, serve_env
from tests.slack_support import actions_of

AGENT = {"Authorization": f"Bearer {AGENT_TOKEN}"}
ADMIN = {"Authorization": f"Bearer {ADMIN_TOKEN}"}


# -- kill -9 in a storm of decisions ----------------------------------------------------------

STORM = 200
#: 40 channels of five cards: Slack takes about one message a second per channel
STORM_CHANNELS = [f"C0STORM{i:02d}" for i in range(40)]
#: the bot is killed once this many API decisions were acknowledged
KILL_AFTER = 40


@dataclass
class Storm:
    """What the participants of the storm saw."""

    #: approval id → the 200 answer of an admin decision
    acknowledged: dict[str, dict[str, Any]] = field(default_factory=dict)
    #: approval id → HTTP status of each admin decision that was answered at all
    answered: dict[str, list[int]] = field(default_factory=dict)
    #: approval ids with a click the bot acknowledged (HTTP 200)
    clicked: set[str] = field(default_factory=set)
    killed: asyncio.Event = field(default_factory=asyncio.Event)


@dataclass
class StormBot:
    """The bot process as agents, admins and Slack users see it during the storm."""

    serve: ServeProcess
    workspace: Any
    http: aiohttp.ClientSession
    #: each card as people saw it before the storm; clicks are made on these
    seen: dict[str, Any] = field(default_factory=dict)

    async def record(self, approval_id: str) -> dict[str, Any]:
        async with self.http.get(
            f"{self.serve.url}/v1/approvals/{approval_id}", headers=AGENT
        ) as response:
            record: dict[str, Any] = await response.json()
            return record

    async def records(self, ids: list[str]) -> dict[str, dict[str, Any]]:
        return {approval_id: await self.record(approval_id) for approval_id in ids}

    async def submit(self, i: int) -> str:
        body = {
            "toolName": "deploy_service",
            "toolCallId": f"storm-{i}",
            "args": {"n": i},
            "channel": STORM_CHANNELS[i % len(STORM_CHANNELS)],
        }
        async with self.http.post(self.serve.url + "/v1/approvals", json=body, headers=AGENT) as r:
            assert r.status == 201
            approval_id: str = (await r.json())["id"]
            return approval_id

    async def cards_seen(self, ids: list[str]) -> None:
        """Wait for every card, and remember it as people first saw it."""

        async def all_posted() -> bool:
            records = await self.records(ids)
            return all(r["slack"]["ts"] for r in records.values())

        await until(all_posted, timeout=40, interval=0.5)
        for approval_id, record in (await self.records(ids)).items():
            card = self.workspace.message(record["slack"]["channel"], record["slack"]["ts"])
            self.seen[approval_id] = copy.deepcopy(card)

    def agents(self, ids: list[str], sdk: ApprovalClient) -> dict[str, asyncio.Task[Any]]:
        """One agent per approval: every fifth through the SDK (it resubmits the same
        toolCallId, then waits), the others on raw `/wait`."""
        agents: dict[str, asyncio.Task[Any]] = {}
        for i, approval_id in enumerate(ids):
            call: Coroutine[Any, Any, Any]
            if i % 5 == 0:
                call = sdk.request(
                    "deploy_service",
                    {"n": i},
                    tool_call_id=f"storm-{i}",
                    channel=STORM_CHANNELS[i % len(STORM_CHANNELS)],
                    timeout=50,
                )
            else:
                call = raw_waiter(self.http, self.serve.url, approval_id)
            agents[approval_id] = asyncio.create_task(call)
        return agents

    async def waiting(self, count: int) -> None:
        async def all_waiting() -> bool:
            async with self.http.get(self.serve.url + "/healthz") as response:
                return bool((await response.json())["waiting"] >= count)

        await until(all_waiting, timeout=20, interval=0.1)

    async def decide(self, approval_id: str, approved: bool, by: str) -> tuple[int, Any]:
        body = {"approved": approved, "decidedBy": by}
        async with self.http.post(
            f"{self.serve.url}/v1/approvals/{approval_id}/decision", json=body, headers=ADMIN
        ) as response:
            return response.status, await response.json()

    async def click(self, hands: Deliverer, approval_id: str, user: str) -> int:
        payload = payloads.block_actions_payload(
            self.workspace,
            user=user,
            message=self.seen[approval_id],
            action_id="approve",
            trigger_id=self.workspace.new_trigger(user).id,
            response_url="http://127.0.0.1:9/unused",
            action_ts=f"{time.time():.6f}",
        )
        return (await hands.send_interaction(payload)).status

    async def storm(self, ids: list[str]) -> Storm:
        """Clicks on 0..119 (0..39 from two people at once), admin decisions on 80..199, so
        80..119 are raced by both; SIGKILL once `KILL_AFTER` admin decisions were answered."""
        operations: list[tuple[str, str, str]] = []
        for i, approval_id in enumerate(ids):
            if i < 120:
                operations.append(("click", approval_id, "U0ALICE"))
            if i < 40:
                operations.append(("click", approval_id, "U0BOB"))
            if i >= 80:
                operations.append(("api", approval_id, "approve" if i % 2 else "reject"))
        random.Random(7).shuffle(operations)
        storm, gate = Storm(), asyncio.Semaphore(16)

        async def operate(hands: Deliverer, kind: str, approval_id: str, who: str) -> None:
            async with gate:
                if storm.killed.is_set():
                    return
                try:
                    if kind == "click":
                        if await self.click(hands, approval_id, who) == 200:
                            storm.clicked.add(approval_id)
                        return
                    status, answer = await self.decide(approval_id, who == "approve", "storm-admin")
                except (DeliveryFailed, aiohttp.ClientError, TimeoutError):
                    return  # in flight when the bot died: not acknowledged
                storm.answered.setdefault(approval_id, []).append(status)
                if status == 200:
                    storm.acknowledged[approval_id] = answer
                if len(storm.acknowledged) >= KILL_AFTER and not storm.killed.is_set():
                    storm.killed.set()
                    self.serve.kill()

        url = self.serve.url + "/slack/events"
        async with Deliverer(self.workspace, url, SIGNING_SECRET, timeout=10) as hands:
            await asyncio.gather(*(operate(hands, *op) for op in operations))
        unanswered = [op for op in operations if op[0] == "api" and op[1] not in storm.answered]
        assert storm.killed.is_set(), "the storm ended before the kill"
        assert unanswered, "the kill came after the storm; it must land in the middle"
        return storm


async def raw_waiter(http: aiohttp.ClientSession, url: str, approval_id: str) -> dict[str, Any]:
    """An agent on `/wait` that reconnects (bounded) until the approval is decided."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + 50
    while loop.time() < deadline:
        try:
            async with http.get(
                f"{url}/v1/approvals/{approval_id}/wait?timeout=20", headers=AGENT
            ) as response:
                if response.status == 200:
                    record: dict[str, Any] = await response.json()
                    if record["status"] != "pending":
                        return record
                    continue
        except (aiohttp.ClientError, TimeoutError):
            pass  # the bot is down: try again shortly
        await asyncio.sleep(0.1)
    raise AssertionError(f"{approval_id} never reached its waiter")


async def stored_states(db_path: Path) -> dict[str, list[str]]:
    """Approval id → the statuses of its state-change audit events, oldest first."""
    store = SQLiteStore(db_path)
    await store.open()
    try:
        events = await store.events_since(0, limit=100_000, states_only=True)
    finally:
        await store.close()
    states: dict[str, list[str]] = {}
    for event in events:
        assert event.status is not None
        states.setdefault(event.approval_id, []).append(event.status.value)
    return states


async def test_kill_9_in_a_storm_of_decisions_loses_nothing_and_decides_once(
    serve: ServeProcess, workspace: Any, db_path: Path
) -> None:
    """200 pending approvals, clicks and admin decisions racing, SIGKILL part-way, restart.

    "Acknowledged" differs by path. An admin decision is acknowledged by its 200: the
    decision was committed before the answer, so it must be in the store after the restart,
    exactly as answered. A click is acknowledged by Slack's 200, which Bolt sends *before*
    the listener decides; so an acknowledged click may be lost with the process, and what
    must hold is that no decision is half-written or made twice. Every agent, waiting through
    `ApprovalClient.request` or raw `/wait`, reconnects and gets exactly the stored decision.
    """
    for channel in STORM_CHANNELS:
        workspace.add_channel(channel, channel.lower())
    async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=0)) as http:
        bot = StormBot(serve, workspace, http)
        await serve.start(http)
        ids = list(await asyncio.gather(*(bot.submit(i) for i in range(STORM))))
        await bot.cards_seen(ids)
        async with ApprovalClient(serve.url, token=AGENT_TOKEN, session=http) as sdk:
            agents = bot.agents(ids, sdk)
            await bot.waiting(STORM)

            storm = await bot.storm(ids)
            assert serve.process is not None and serve.process.returncode == -signal.SIGKILL
            await serve.start(http)  # the same database
            before = await bot.records(ids)

            for approval_id, answer in storm.acknowledged.items():
                kept = before[approval_id]
                assert (kept["status"], kept["decision"]) == (answer["status"], answer["decision"])
            for record in before.values():  # nothing half-written
                assert (record["status"] == "pending") == (record["decision"] is None), record
                if record["decision"] is not None:
                    assert record["decision"]["decidedBy"] in ("U0ALICE", "U0BOB", "storm-admin")
            for approval_id, statuses in storm.answered.items():
                if 409 in statuses:  # refused because a committed decision was there first
                    assert before[approval_id]["status"] != "pending"
            assert storm.clicked, "no click was acknowledged before the kill"

            for approval_id, record in before.items():  # give every agent its answer
                if record["status"] == "pending":
                    status, answer = await bot.decide(approval_id, True, "closer")
                    assert status == 200, answer
            results = await asyncio.wait_for(asyncio.gather(*agents.values()), 55)
        final = await bot.records(ids)

    for approval_id, got in zip(agents, results, strict=True):
        stored = final[approval_id]
        if isinstance(got, dict):  # raw /wait: the whole record
            assert (got["status"], got["decision"]) == (stored["status"], stored["decision"])
        else:  # the SDK's Decision
            assert got.to_wire() == stored["decision"]
    for approval_id, answer in storm.acknowledged.items():
        assert final[approval_id]["decision"] == answer["decision"]

    states = await stored_states(db_path)  # one state change per decided approval
    assert set(states) == set(ids)
    for approval_id in ids:
        assert states[approval_id] == ["pending", final[approval_id]["status"]], approval_id

    def replies(record: dict[str, Any]) -> int:
        return len(workspace.thread(record["slack"]["channel"], record["slack"]["ts"])) - 1

    def shows_its_outcome(record: dict[str, Any]) -> bool:
        card = workspace.message(record["slack"]["channel"], record["slack"]["ts"])
        return not actions_of(card) and replies(record) >= 1

    # 200 rewrites take about four minutes within chat.update's Tier 3 (50 a minute): here,
    # the outbox outlived the process (each card not rewritten yet still has its work queued)
    # and rewrites go on at the tier's pace, never beyond it.
    async def rewrites_going_on() -> bool:
        return sum(map(shows_its_outcome, final.values())) >= 30

    await until(rewrites_going_on, timeout=40, interval=0.5)
    queued = await queued_card_work(db_path)
    for approval_id, record in final.items():
        assert shows_its_outcome(record) or approval_id in queued, approval_id
    assert not [c for c in workspace.calls_to("chat.update") if c.status == 429]
    for channel in STORM_CHANNELS:  # one card per approval, whatever was redone
        posted = Counter(card_id(m) for m in workspace.history(channel) if card_id(m))
        assert set(posted.values()) == {1}, posted
    assert sum(len(workspace.history(c)) for c in STORM_CHANNELS) == STORM
    for approval_id, record in final.items():
        if before[approval_id]["status"] == "pending":  # decided after the restart
            assert replies(record) <= 1
        else:  # at-least-once: a reply posted just before the kill may be posted again
            assert replies(record) <= 2


async def queued_card_work(db_path: Path) -> set[str]:
    """Approvals with card work (a post, a rewrite) still in the outbox."""
    with sqlite3.connect(db_path) as conn:
        rows = conn.execute("SELECT approval_id FROM outbox WHERE topic = 'slack'").fetchall()
    return {row[0] for row in rows}


# -- Slack answers 5xx for a while ------------------------------------------------------------

#: How long Slack stays down, at least. The outbox retries a failed card after 1 s, 2 s, 4 s, …
#: and slack_sdk retries a 503 twice on its own (about 2 s) inside each try. The outage lasts
#: until every waiting card and rewrite has failed `FAILED_CALLS` times (two tries of the
#: outbox, each with the client's two retries) and `OUTAGE` seconds have passed, so recovery
#: rides the grown backoff rather than a lucky first try. A literal minute would only stretch
#: the test: the backoff doubles, so the time to recover scales with the outage.
OUTAGE = 8.0
FAILED_CALLS = 6
SLACK_WRITES = ("chat.postMessage", "chat.update")


def card_id(message: Any) -> str | None:
    metadata = message.metadata or {}
    payload = metadata.get("event_payload") or {}
    found = payload.get("id")
    return found if isinstance(found, str) else None


async def test_slack_down_for_a_while_loses_nothing_and_posts_each_card_once(
    rig: SlackRig,
) -> None:
    """Every chat.postMessage and chat.update answers 503 for a stretch (see `OUTAGE`).

    Cards submitted meanwhile are posted once Slack is back, each exactly once; decisions made
    meanwhile all show on their cards: live cards are rewritten and get their thread reply,
    cards not yet posted are posted already decided.
    """
    workspace = rig.workspace
    channels = ["C0OPS", "C0DEPLOY", "C0PAYMENTS"]
    posted_before = [await rig.bot.submit(channel=c, args={"before": c}) for c in channels]
    for record in posted_before:
        await rig.card(record["id"])

    for method in SLACK_WRITES:
        workspace.fail_next(method, status=503, times=100_000)
    started = time.monotonic()
    during = [await rig.bot.submit(channel=c, args={"during": c}) for c in channels]
    for record in during:  # the 201 never waits for Slack
        assert record["slack"]["ts"] is None

    # Meanwhile people decide: two live cards by click, one by the API, and two requests
    # whose cards could not be posted yet.
    clicks = [await rig.click(r["id"], "approve", "U0ALICE") for r in posted_before[:2]]
    assert all(c.status == 200 for c in clicks)
    status, _ = await rig.bot.decide(posted_before[2]["id"], approved=False, comment="no")
    assert status == 200
    for record, approved in ((during[0], True), (during[1], False)):
        status, _ = await rig.bot.decide(record["id"], approved=approved)
        assert status == 200
    decided_ids = {r["id"] for r in posted_before} | {during[0]["id"], during[1]["id"]}

    async def every_card_tried_again() -> bool:
        failed_posts = Counter(
            card_id_of_call(call) for call in workspace.calls_to("chat.postMessage", ok=False)
        )
        failed_updates = Counter(
            call.params.get("ts") for call in workspace.calls_to("chat.update", ok=False)
        )
        cards = {r["slack"]["ts"] for r in (await _records(rig, posted_before))}
        return all(failed_posts[r["id"]] >= FAILED_CALLS for r in during) and all(
            failed_updates[ts] >= FAILED_CALLS for ts in cards
        )

    await until(every_card_tried_again, timeout=40, interval=0.2)
    await asyncio.sleep(max(0.0, OUTAGE - (time.monotonic() - started)))
    assert not any(_new_cards(workspace, c, during) for c in channels)
    workspace.faults.clear()
    recovered = time.monotonic()

    everyone = posted_before + during

    async def all_shown() -> bool:
        for record in await _records(rig, everyone):
            if record["slack"]["ts"] is None:
                return False
            card = workspace.message(record["slack"]["channel"], record["slack"]["ts"])
            if (record["id"] in decided_ids) == bool(actions_of(card)):
                return False
        return True

    await until(all_shown, timeout=40, interval=0.2)
    took = time.monotonic() - recovered

    for channel in channels:  # each card exactly once
        posted = Counter(card_id(m) for m in workspace.history(channel) if card_id(m))
        mine = {r["id"] for r in everyone if r["channel"] == channel}
        assert set(posted) == mine and set(posted.values()) == {1}, posted
    final = {r["id"]: r for r in await _records(rig, everyone)}
    for approval_id in decided_ids:
        card = workspace.message(
            final[approval_id]["slack"]["channel"], final[approval_id]["slack"]["ts"]
        )
        outcome = "Approved" if final[approval_id]["status"] == "approved" else "Rejected"
        assert outcome in json.dumps(card.blocks) + card.text
    for record in posted_before:  # decided on a live card: rewritten and told in its thread
        card = workspace.message(record["channel"], final[record["id"]]["slack"]["ts"])
        replies = workspace.thread(card.channel, card.ts)[1:]
        assert len(replies) == 1, replies
    for record in during[2:]:
        assert actions_of(workspace.message(record["channel"], final[record["id"]]["slack"]["ts"]))
    assert took < 30, f"cards caught up {took:.1f}s after Slack came back"


def card_id_of_call(call: Any) -> str | None:
    metadata = call.params.get("metadata")
    if isinstance(metadata, dict):
        found = (metadata.get("event_payload") or {}).get("id")
        return found if isinstance(found, str) else None
    return None


async def _records(rig: SlackRig, records: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [(await rig.bot.call("GET", f"/v1/approvals/{r['id']}"))[1] for r in records]


def _new_cards(workspace: Any, channel: str, records: list[dict[str, Any]]) -> list[Any]:
    ids = {r["id"] for r in records}
    return [m for m in workspace.history(channel) if card_id(m) in ids]


# -- a stale SQLite lock ----------------------------------------------------------------------

LOCKER = """
import sqlite3, sys, time
conn = sqlite3.connect(sys.argv[1], isolation_level=None)
if sys.argv[2] == "exclusive":
    conn.execute("PRAGMA locking_mode = EXCLUSIVE")
conn.execute("BEGIN EXCLUSIVE")
print("locked", flush=True)
time.sleep(600)
"""


@contextlib.contextmanager
def locked(db_path: Path, kind: str) -> Iterator[None]:
    """Another process holding an exclusive lock on the database until the block ends."""
    holder = subprocess.Popen(
        [sys.executable, "-c", LOCKER, str(db_path), kind],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert holder.stdout is not None and holder.stderr is not None
        if holder.stdout.readline().strip() != "locked":
            raise AssertionError(f"the lock was not taken: {holder.stderr.read()}")
        yield
    finally:
        holder.kill()
        holder.communicate(timeout=10)


def make_database(db_path: Path) -> None:
    """A database the bot has used: migrated, in WAL mode."""

    async def create() -> None:
        store = SQLiteStore(db_path)
        await store.open()
        await store.close()

    asyncio.run(create())
    conn = sqlite3.connect(db_path)
    try:
        assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    finally:
        conn.close()


#: the store's wait for a lock, and what a refusal may take beyond it
BUSY_TIMEOUT = 5.0
MARGIN = 4.0


@pytest.mark.parametrize("kind", ["writer", "exclusive"])
@pytest.mark.parametrize("command", ["serve", "list"])
def test_a_stale_lock_stops_the_cli_with_a_clear_error(
    tmp_path: Path, command: str, kind: str
) -> None:
    db_path = tmp_path / "approvals.db"
    make_database(db_path)
    port = free_port()
    argv = {"serve": ["serve", "--port", str(port)], "list": ["list"]}[command]
    with locked(db_path, kind):
        started = time.monotonic()
        done = subprocess.run(
            [sys.executable, "-m", "bot", *argv],
            env=serve_env(db_path),
            cwd=tmp_path,
            capture_output=True,
            text=True,
            timeout=30,
            check=False,
        )
        took = time.monotonic() - started

    assert took < BUSY_TIMEOUT + MARGIN + 3  # start-up of a Python process included
    assert done.returncode == 1, done
    assert "locked" in done.stderr and str(db_path) in done.stderr
    assert "Traceback" not in done.stderr
    with socket.socket() as sock:  # serve did not stay up half-started
        assert sock.connect_ex(("127.0.0.1", port)) != 0


async def test_a_lock_appearing_while_running_turns_writes_into_quick_503s(
    bot: Running, db_path: Path
) -> None:
    record = await bot.submit()
    loop = asyncio.get_running_loop()

    async def timed(method: str, path: str, **kwargs: Any) -> tuple[float, int, Any]:
        started = loop.time()
        status, body = await bot.call(method, path, **kwargs)
        return loop.time() - started, status, body

    with locked(db_path, "writer"):
        writes = await asyncio.gather(
            *(
                timed("POST", "/v1/approvals", json={"toolName": "t", "args": {"i": i}})
                for i in range(4)
            ),
            timed(
                "POST",
                f"/v1/approvals/{record['id']}/decision",
                token=ADMIN_TOKEN,
                json={"approved": True, "decidedBy": "alice"},
            ),
            timed("POST", f"/v1/approvals/{record['id']}/cancel", json={}),
        )
        read = await timed("GET", f"/v1/approvals/{record['id']}")

    for took, status, body in writes:
        assert status == 503, body
        assert body["error"] == "unavailable" and "locked" in body["message"]
        assert took < BUSY_TIMEOUT + MARGIN, f"a write waited {took:.1f}s"  # not in turn
    assert read[1] == 200 and read[2]["status"] == "pending"  # reads go on meanwhile
    assert read[0] < 1

    # The lock gone, the same calls go through.
    again = await bot.submit(args={"after": "unlock"})
    status, decided = await bot.decide(record["id"])
    assert again["status"] == "pending"
    assert (status, decided["status"]) == (200, "approved")
