"""Three `approval-bot serve` replicas on one PostgreSQL database and one (emulated) Slack.

Any replica takes a click, any replica wakes the agent, each card is posted once, and a replica
killed with -9 in the middle of a storm loses nothing anyone was told.
"""

from __future__ import annotations

import asyncio
import random
import time
from collections import Counter
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from bot.devslack import Deliverer, DeliveryFailed, InteractionError, Workspace
from bot.devslack.payloads import message_event
from bot.models import Status
from bot.slack.poster import UPDATE_BURST, UPDATE_RATE
from bot.store.postgres import PostgresStore
from tests.conftest import ADMIN_TOKEN, AGENT_TOKEN, SIGNING_SECRET, pg_database, until
from tests.processes import ServeProcess as Replica

AGENT = {"Authorization": f"Bearer {AGENT_TOKEN}"}
ADMIN = {"Authorization": f"Bearer {ADMIN_TOKEN}"}
#: cards are spread over channels: Slack takes about one post a second in each
CHANNELS = [f"C0REPL{i}" for i in range(10)]


@dataclass
class Cluster:
    """Three replicas, their shared Slack, a click deliverer per replica, and the database."""

    replicas: list[Replica]
    workspace: Workspace
    http: aiohttp.ClientSession
    hands: list[Deliverer]
    db_url: str
    failovers: list[str] = field(default_factory=list)

    async def call(
        self, replica: Replica, method: str, path: str, *, headers: Any = None, **kwargs: Any
    ) -> tuple[int, Any]:
        async with self.http.request(
            method, replica.url + path, headers=headers or AGENT, **kwargs
        ) as response:
            return response.status, await response.json(content_type=None)

    async def submit(self, replica: Replica, **fields: Any) -> dict[str, Any]:
        body = {"toolName": "deploy_service", "args": {"version": "1.4.2"}, **fields}
        status, record = await self.call(replica, "POST", "/v1/approvals", json=body)
        assert status == 201, record
        return record  # type: ignore[no-any-return]

    async def submit_spread(
        self,
        count: int,
        call: str,
        each: Callable[[int], dict[str, Any]] = lambda i: {},
        **fields: Any,
    ) -> list[dict[str, Any]]:
        """`count` approvals submitted at once, the i-th to replica i % 3 for a channel of
        `CHANNELS` in turn, with toolCallId `call_<call>_<i>`, args {"n": i}, `fields` and
        `each(i)`."""
        return list(
            await asyncio.gather(
                *(
                    self.submit(
                        self.replicas[i % len(self.replicas)],
                        toolCallId=f"call_{call}_{i}",
                        args={"n": i},
                        channel=CHANNELS[i % len(CHANNELS)],
                        **fields,
                        **each(i),
                    )
                    for i in range(count)
                )
            )
        )

    async def card(self, approval_id: str, timeout: float = 15) -> dict[str, Any]:
        """The record once its card is posted (read through the first replica alive)."""

        async def posted() -> Any:
            for replica in self.alive:
                try:
                    _, record = await self.call(replica, "GET", f"/v1/approvals/{approval_id}")
                except aiohttp.ClientError:
                    continue
                return record if record["slack"]["ts"] else None
            return None

        return await until(posted, timeout)  # type: ignore[no-any-return]

    @property
    def alive(self) -> list[Replica]:
        return [r for r in self.replicas if r.running]

    async def agent(self, approval_id: str, first: int) -> dict[str, Any]:
        """An agent waiting for its decision: on replica `first`, then on any other that answers
        when the one it waits on goes away (what the SDK does behind a load balancer)."""
        attempt = 0
        while True:
            replica = self.replicas[(first + attempt) % len(self.replicas)]
            try:
                status, record = await self.call(
                    replica, "GET", f"/v1/approvals/{approval_id}/wait?timeout=30"
                )
                if status == 200 and record["status"] != "pending":
                    return record  # type: ignore[no-any-return]
            except aiohttp.ClientError:
                self.failovers.append(replica.name)
                attempt += 1
                await asyncio.sleep(0.05)

    async def click(
        self, replica: int, record: dict[str, Any], user: str, action: str = "approve"
    ) -> int:
        """A click on the card, delivered to `replica`; the HTTP status of Slack's request."""
        delivery = await self.hands[replica].click(
            record["slack"]["channel"], record["slack"]["ts"], action, user=user
        )
        return delivery.status

    async def waiting(self, replica: Replica) -> int:
        health = await replica.healthz(self.http)
        return int(health["waiting"]) if health else -1

    async def audit(self) -> list[Any]:
        store = PostgresStore(self.db_url)
        await store.open()
        try:
            return await store.events_since(0, limit=10_000)
        finally:
            await store.close()

    def cards_posted(self) -> Counter[str]:
        """How often each approval's card was posted (thread replies are not cards)."""
        return Counter(
            call.params["metadata"]["event_payload"]["id"]
            for call in self.workspace.calls_to("chat.postMessage", ok=True)
            if isinstance(call.params.get("metadata"), dict)
        )


@pytest.fixture
async def cluster(pg_server: str, workspace: Workspace, tmp_path: Path) -> AsyncIterator[Cluster]:
    for channel in CHANNELS:
        workspace.add_channel(channel, channel.lower())
    with pg_database(pg_server) as db_url:
        replicas = [Replica(db_url, workspace.base_url, tmp_path, name=n) for n in "abc"]
        for replica in replicas:
            replica.spawn()
        async with aiohttp.ClientSession() as http:
            try:
                for replica in replicas:
                    await replica.healthy(http, timeout=30)
                hands = [
                    Deliverer(workspace, r.url + "/slack/events", SIGNING_SECRET) for r in replicas
                ]
                yield Cluster(replicas, workspace, http, hands, db_url)
                for deliverer in hands:
                    await deliverer.close()
            finally:
                for replica in replicas:
                    replica.stop()


async def test_a_click_on_one_replica_wakes_an_agent_waiting_on_another(cluster: Cluster) -> None:
    _, b, c = cluster.replicas
    submitted = await cluster.submit(b, toolCallId="call_cross")
    record = await cluster.card(submitted["id"])
    waiter = asyncio.create_task(cluster.agent(submitted["id"], first=2))
    await until(lambda: _equals(cluster.waiting(c), 1))

    started = time.perf_counter()
    assert await cluster.click(0, record, "U0ALICE") == 200  # Slack sends the click to A
    decided = await asyncio.wait_for(waiter, 10)
    elapsed = time.perf_counter() - started

    assert decided["status"] == "approved"
    assert decided["decision"]["decidedBy"] == "U0ALICE"
    assert cluster.failovers == []
    assert elapsed < 2, f"the agent on C heard of A's decision after {elapsed:.3f}s"


async def test_thirty_clicks_spread_over_replicas_make_one_decision(cluster: Cluster) -> None:
    users = [f"U0CLICK{i:02d}" for i in range(30)]
    for user in users:
        cluster.workspace.add_user(user, user.lower(), f"Clicker {user[-2:]}")
    submitted = await cluster.submit(cluster.replicas[0], toolCallId="call_storm")
    record = await cluster.card(submitted["id"])
    agents = [asyncio.create_task(cluster.agent(submitted["id"], first=i)) for i in range(3)]

    statuses = await asyncio.gather(
        *(cluster.click(i % 3, record, user) for i, user in enumerate(users))
    )
    results = await asyncio.wait_for(asyncio.gather(*agents), 10)

    assert statuses == [200] * 30
    decisions = {(r["status"], r["decision"]["decidedBy"]) for r in results}
    assert len(decisions) == 1
    [(status, winner)] = decisions
    assert status == "approved" and winner in users
    decided = [e for e in await cluster.audit() if e.status is Status.APPROVED]
    assert len(decided) == 1 and decided[0].actor == winner


async def test_each_card_is_posted_exactly_once_by_three_replicas(cluster: Cluster) -> None:
    submitted = await cluster.submit_spread(30, "card")
    await asyncio.gather(*(cluster.card(record["id"]) for record in submitted))
    await asyncio.sleep(0.5)  # any second post would have happened by now

    posted = cluster.cards_posted()
    assert posted == Counter({record["id"]: 1 for record in submitted})


async def test_each_expiry_and_escalation_is_applied_once_by_three_replicas(
    cluster: Cluster,
) -> None:
    submitted = await cluster.submit_spread(
        8,
        "timeout",
        timeoutSeconds=1,
        each=lambda i: {"onTimeout": "escalate" if i % 2 else "reject"},
    )
    agents = [
        asyncio.create_task(cluster.agent(record["id"], first=i % 3))
        for i, record in enumerate(submitted)
    ]

    results = await asyncio.wait_for(asyncio.gather(*agents), 15)

    assert {r["status"] for r in results} == {"expired"}
    events = await cluster.audit()
    for record in submitted:
        kinds = Counter(e.kind for e in events if e.approval_id == record["id"])
        escalates = record["onTimeout"] == "escalate"
        assert kinds["expired"] == 1
        assert kinds["escalated"] == (1 if escalates else 0)


async def test_kill_9_of_a_replica_mid_storm_loses_no_decision(cluster: Cluster) -> None:
    a, b, _ = cluster.replicas
    victim = 2
    approvals = await cluster.submit_spread(18, "kill")
    records = await asyncio.gather(*(cluster.card(r["id"]) for r in approvals))
    agents = [
        asyncio.create_task(cluster.agent(r["id"], first=i % 3)) for i, r in enumerate(records)
    ]
    await until(lambda: _all_waiting(cluster, len(agents)), timeout=10)

    told: dict[str, tuple[str, str]] = {}  # approval id → decision someone was told of
    victim_acks: list[str] = []  # what the victim answered 200 to before it died

    async def decide_over_api(record: dict[str, Any], replica: int) -> None:
        body = {"approved": False, "decidedBy": "ops-api", "comment": "not now"}
        for attempt in range(3):
            target = cluster.replicas[(replica + attempt) % 3]
            try:
                status, answer = await cluster.call(
                    target,
                    "POST",
                    f"/v1/approvals/{record['id']}/decision",
                    headers=ADMIN,
                    json=body,
                )
            except aiohttp.ClientError:
                continue  # the replica died under the call: nothing was acknowledged, retry
            if status == 200:
                told[record["id"]] = (answer["status"], answer["decision"]["decidedBy"])
                if target is cluster.replicas[victim]:
                    victim_acks.append(record["id"])
            return

    async def click(record: dict[str, Any], replica: int, user: str) -> None:
        for attempt in range(3):
            target = (replica + attempt) % 3
            try:
                if await cluster.click(target, record, user) == 200 and target == victim:
                    victim_acks.append(record["id"])
                return
            except DeliveryFailed:
                continue  # the load balancer sends Slack's retry to a replica that is up
            except InteractionError:
                return  # the card no longer has buttons: decided

    # The storm: per approval an API decision or clicks from three people, on every replica;
    # the victim dies while it runs. Approvals of the second half are decided only afterwards,
    # so the agents waiting on the victim for them must find another replica.
    work = [
        decide_over_api(r, i % 3) if i % 4 == 0 else click(r, (i + k) % 3, user)
        for i, r in enumerate(records[:9])
        for k, user in enumerate(("U0ALICE", "U0BOB", "U0CAROL"))
        if i % 4 != 0 or k == 0
    ]
    random.Random(7).shuffle(work)
    first_half = [asyncio.create_task(job) for job in work]
    await until(lambda: _at_least(victim_acks, 3), interval=0.001)
    cluster.replicas[victim].kill()
    await asyncio.gather(*first_half)
    await asyncio.gather(
        *(
            decide_over_api(r, i % 2) if i % 4 == 0 else click(r, i % 2, "U0DAVE")
            for i, r in enumerate(records[9:])
        )
    )
    # A click the victim acknowledged but never got to apply leaves its card pending and
    # clickable: the person clicks again, on a replica that is up.
    for record in records:
        _, current = await cluster.call(a, "GET", f"/v1/approvals/{record['id']}")
        if current["status"] == "pending":
            await click(record, 0, "U0ALICE")

    results = await asyncio.wait_for(asyncio.gather(*agents), 20)

    stored = {}
    for record in records:
        _, current = await cluster.call(b, "GET", f"/v1/approvals/{record['id']}")
        stored[record["id"]] = (current["status"], current["decision"]["decidedBy"])
    assert {r["id"]: (r["status"], r["decision"]["decidedBy"]) for r in results} == stored
    assert all(stored[approval_id] == decision for approval_id, decision in told.items())
    assert len(told) >= 3
    assert cluster.failovers.count("c") >= 3  # agents on the victim found another replica
    decisions = Counter(
        e.approval_id for e in await cluster.audit() if e.status not in (None, Status.PENDING)
    )
    assert decisions == Counter({record["id"]: 1 for record in records})
    assert cluster.cards_posted() == Counter({record["id"]: 1 for record in records})


async def test_three_replicas_keep_chat_update_within_its_tier_together(
    cluster: Cluster,
) -> None:
    """`chat.update` is Tier 3 for the workspace (https://api.slack.com/apis/rate-limits:
    limits apply per app per workspace), not per replica: 30 decisions spread over three
    replicas are rewritten at one shared pace, a burst of `UPDATE_BURST` then `UPDATE_RATE`
    a second, where each replica pacing alone would send three times as many."""
    submitted = await cluster.submit_spread(30, "tier")
    await asyncio.gather(*(cluster.card(record["id"]) for record in submitted))
    started = time.monotonic()

    decided = await asyncio.gather(
        *(
            cluster.call(
                cluster.replicas[i % 3],
                "POST",
                f"/v1/approvals/{record['id']}/decision",
                headers=ADMIN,
                json={"approved": True, "decidedBy": "storm-admin"},
            )
            for i, record in enumerate(submitted)
        )
    )
    assert [status for status, _ in decided] == [200] * 30
    await asyncio.sleep(max(0.0, started + 4 - time.monotonic()))

    seconds = time.monotonic() - started
    updates = cluster.workspace.calls_to("chat.update", ok=True)
    assert UPDATE_BURST <= len(updates) <= UPDATE_BURST + UPDATE_RATE * seconds + 1


async def test_an_event_sent_to_two_replicas_is_acted_on_once(cluster: Cluster) -> None:
    """Slack sends an event again when it thinks the first try was missed
    (https://api.slack.com/apis/events-api#retries: `X-Slack-Retry-Num`, the same
    `event_id`), and behind a load balancer the retry may reach another replica: a `reject`
    typed in a card's thread decides once, and nobody is told "already decided"."""
    submitted = await cluster.submit(cluster.replicas[0], toolCallId="call_event")
    record = await cluster.card(submitted["id"])
    channel, ts = record["slack"]["channel"], record["slack"]["ts"]
    workspace = cluster.workspace
    message = workspace.post_message(channel, text="reject not now", user="U0ALICE", thread_ts=ts)
    event = message_event(workspace, message)

    first = await cluster.hands[0].send_event(event, event_id="EvTWICE01")
    again = await cluster.hands[1].send_event(event, event_id="EvTWICE01", retry_num=1)
    decided = await cluster.agent(submitted["id"], first=2)

    assert (first.status, again.status) == (200, 200)
    assert decided["status"] == "rejected" and decided["decision"]["decidedBy"] == "U0ALICE"
    await asyncio.sleep(0.5)  # a second handling would have told Alice by now
    assert not workspace.calls_to("chat.postEphemeral")
    rejected = [e for e in await cluster.audit() if e.status is Status.REJECTED]
    assert len(rejected) == 1


async def _at_least(items: list[Any], count: int) -> bool:
    return len(items) >= count


async def _equals(probe: Any, expected: int) -> bool:
    return bool(await probe == expected)


async def _all_waiting(cluster: Cluster, count: int) -> bool:
    return sum([await cluster.waiting(r) for r in cluster.replicas]) == count
