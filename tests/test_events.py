from __future__ import annotations

import asyncio
import contextlib
import hashlib
import hmac
import json
from collections.abc import AsyncIterator, Collection
from datetime import datetime
from pathlib import Path

import aiohttp
import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer

from bot.outbox import OutboxWorker
from bot.store import OutboxItem, SQLiteStore
from bot.store.base import LAST_ID
from tests.conftest import Running, bot_settings, start_bot
from tests.test_store import insert, make_approval

SECRET = "whsec-test"


class Receiver:
    """A webhook endpoint that fails its first `failures` deliveries of each event."""

    def __init__(self, failures: int) -> None:
        self.failures = failures
        self.attempts: dict[str, int] = {}
        self.accepted: list[tuple[str, dict[str, object]]] = []
        self.arrived = asyncio.Event()

    async def handle(self, request: web.Request) -> web.Response:
        body = await request.read()
        expected = "sha256=" + hmac.new(SECRET.encode(), body, hashlib.sha256).hexdigest()
        if request.headers.get("X-Approval-Signature") != expected:
            return web.Response(status=401)
        event_id = request.headers["X-Approval-Event-Id"]
        self.attempts[event_id] = self.attempts.get(event_id, 0) + 1
        if self.attempts[event_id] <= self.failures:
            return web.Response(status=503, headers={"Retry-After": "0"})
        self.accepted.append((event_id, json.loads(body)))
        self.arrived.set()
        return web.Response(status=204)


@pytest.fixture
async def receiver() -> AsyncIterator[tuple[Receiver, str]]:
    hook = Receiver(failures=2)
    app = web.Application()
    app.router.add_post("/hook", hook.handle)
    server = TestServer(app, host="127.0.0.1")
    await server.start_server()
    yield hook, str(server.make_url("/hook"))
    await server.close()


async def wait_for(condition: object, timeout: float = 5) -> None:
    async def poll() -> None:
        while not condition():  # type: ignore[operator]
            await asyncio.sleep(0.02)

    await asyncio.wait_for(poll(), timeout)


async def test_a_receiver_that_fails_twice_still_gets_each_event_signed(
    receiver: tuple[Receiver, str], db_path: Path
) -> None:
    hook, url = receiver
    settings = bot_settings(db_path, webhook_url=url, webhook_secret=SECRET)
    server = await start_bot(settings)
    async with aiohttp.ClientSession() as http:
        running = Running(server, http, settings)
        record = await running.submit()
        await running.decide(record["id"], comment="ship it")
        await wait_for(lambda: len(hook.accepted) == 2)
    await server.close()

    assert [body["event"] for _, body in hook.accepted] == ["pending", "approved"]
    assert all(hook.attempts[event_id] == 3 for event_id, _ in hook.accepted)
    approved = hook.accepted[1][1]["approval"]
    assert isinstance(approved, dict) and approved["decision"]["comment"] == "ship it"


async def test_undelivered_webhooks_survive_a_restart(
    receiver: tuple[Receiver, str], db_path: Path, unused_tcp_port: int
) -> None:
    hook, url = receiver
    dead = f"http://127.0.0.1:{unused_tcp_port}/hook"
    settings = bot_settings(db_path, webhook_url=dead, webhook_secret=SECRET)
    first = await start_bot(settings)
    async with aiohttp.ClientSession() as http:
        await Running(first, http, settings).submit()
    await first.close()

    hook.failures = 0
    second = await start_bot(bot_settings(db_path, webhook_url=url, webhook_secret=SECRET))
    try:
        await wait_for(lambda: len(hook.accepted) == 1)
    finally:
        await second.close()
    assert hook.accepted[0][1]["event"] == "pending"


async def test_backoff_grows_and_is_capped(store: SQLiteStore) -> None:
    async def never(item: OutboxItem) -> None:
        raise AssertionError

    worker = OutboxWorker(store, "x", never, base_delay=1, max_delay=60)
    assert [worker.backoff(n) for n in range(8)] == [1, 2, 4, 8, 16, 32, 60, 60]


async def test_a_retry_falls_due_while_commits_keep_waking_the_worker(db_path: Path) -> None:
    """Commits wake the worker for new items only; a retried item still comes back in time,
    though the worker is never idle and never sleeps out its poll."""
    store = SQLiteStore(db_path, outbox_topics=["x"])
    await store.open()
    delivered: list[str] = []
    failed: set[str] = set()

    async def flaky_once_then_slow(item: OutboxItem) -> None:
        if not failed:
            failed.add(item.approval_id)
            raise ConnectionError("the receiver hung up")
        await asyncio.sleep(0.5)  # always something in flight
        delivered.append(item.approval_id)

    async def own_lane(item: OutboxItem) -> str:
        return item.approval_id

    worker = OutboxWorker(store, "x", flaky_once_then_slow, lane=own_lane, base_delay=0.2, poll=0.5)
    running = asyncio.create_task(worker.run())
    try:
        first = await insert(store, make_approval("call_first"))
        for n in range(60):  # a commit every 50 ms for 3 s
            await insert(store, make_approval(f"call_{n}"))
            worker.wake()
            await asyncio.sleep(0.05)
        assert failed == {first.id}
        assert first.id in delivered  # retried while the commits still came
    finally:
        running.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await running
        await store.close()


class ArrivingStore(SQLiteStore):
    """A real store where `arrivals` approvals are submitted while each sweep reads (as a
    stream of agents would), and that counts the rows its claims read and, for each read of a
    sweep, the items in flight it named and the items it read."""

    def __init__(self, path: Path, arrivals: int) -> None:
        super().__init__(path, outbox_topics=["x"])
        self.arrivals = arrivals
        self.arrived = 0
        self.rows_read = 0
        self.sweeps: list[tuple[int, int]] = []

    async def outbox_claim(
        self,
        topic: str,
        now: datetime,
        limit: int,
        after: int = 0,
        held: Collection[int] = (),
        upto: int = LAST_ID,
    ) -> list[OutboxItem]:
        if not after:
            for _ in range(self.arrivals):
                self.arrived += 1
                await insert(self, make_approval(f"call_arrived_{self.arrived}"))
        items = await super().outbox_claim(topic, now, limit, after, held, upto)
        self.rows_read += len(items)
        if not after:
            self.sweeps.append((len(held), len(items)))
        return items


@contextlib.asynccontextmanager
async def thousand_queued(db_path: Path) -> AsyncIterator[tuple[ArrivingStore, OutboxWorker]]:
    """An `ArrivingStore` with 1,000 items queued, and its worker (a batch of 50), whose
    deliveries never end: each item claimed stays in flight, in a lane of its own."""
    store = ArrivingStore(db_path, arrivals=0)
    await store.open()
    stuck = asyncio.Event()

    async def in_flight_for_good(item: OutboxItem) -> None:
        await stuck.wait()

    async def own_lane(item: OutboxItem) -> str:
        return item.approval_id

    worker = OutboxWorker(store, "x", in_flight_for_good, lane=own_lane, batch=50)
    try:
        for n in range(1_000):
            await insert(store, make_approval(f"call_{n}"))
        yield store, worker
    finally:
        stuck.set()
        await store.close()


async def test_a_sweep_ends_while_submissions_keep_arriving_and_reads_no_item_in_flight(
    db_path: Path,
) -> None:
    """A sweep reads every due item but those in flight (it read them all each second: 7 %
    of the interpreter under a burst of submissions). It takes what was due when it began (a sweep
    that also took what arrived meanwhile never ended under a stream of submissions), and
    each further read asks for twice as many new items (one read per `batch` read the
    whole queue 20 times for 1,000 items)."""
    async with thousand_queued(db_path) as (store, worker):
        assert await asyncio.wait_for(worker.claim(), 10) == 1_000
        assert store.rows_read <= 3 * 1_000

        store.rows_read = 0
        worker._sweep = True
        assert await asyncio.wait_for(worker.claim(), 10) == 0
        assert store.rows_read == 0  # the 1,000 in flight are left out of the sweep

        store.arrivals = 60  # more than a batch arrives during every read of each sweep
        worker.wake()
        assert await asyncio.wait_for(worker.claim(), 10) == 0  # not a sweep: none new
        worker._sweep = True
        assert await asyncio.wait_for(worker.claim(), 10) == 0  # the arrivals came after it
        assert await asyncio.wait_for(worker.claim(), 10) == 60  # the next claim takes them


async def test_a_sweep_leaves_new_items_to_the_claim_of_new_ones(db_path: Path) -> None:
    """A sweep that came before a burst's new items were claimed read them page after page,
    each read naming every item in flight again, in the store's writer thread: under 10,000
    submissions at once, sweeps held the burst's commits up by 870 ms. New items are claimed
    first, and the sweep reads only what was queued before them, once."""
    async with thousand_queued(db_path) as (store, worker):
        assert await asyncio.wait_for(worker.claim(), 10) == 1_000
        for n in range(300):  # committed, the worker not woken yet
            await insert(store, make_approval(f"call_new_{n}"))
        store.sweeps.clear()
        worker._sweep = True
        assert await asyncio.wait_for(worker.claim(), 10) == 300
        assert store.sweeps == [(1_300, 0)]
