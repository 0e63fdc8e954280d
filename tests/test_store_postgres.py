"""What only the PostgreSQL store does: several stores (replicas) on one database."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable
from datetime import timedelta
from typing import Any

import psycopg
import pytest

from bot.errors import AlreadyDecided, Unavailable
from bot.models import Status, args_fingerprint, utcnow
from bot.service import ApprovalService
from bot.store.base import OutboxItem
from bot.store.postgres import PostgresStore
from tests.conftest import pg_database, until
from tests.test_service import request
from tests.test_store import approve, insert, make_approval

OpenStore = Callable[..., Awaitable[PostgresStore]]


@pytest.fixture
def pg_url(pg_server: str) -> Any:
    with pg_database(pg_server) as url:
        yield url


@pytest.fixture
async def open_replica(pg_url: str) -> AsyncIterator[OpenStore]:
    """Open another store on the same database, as another replica would; all closed after."""
    opened: list[PostgresStore] = []

    async def open_one(**options: Any) -> PostgresStore:
        store = PostgresStore(pg_url, **options)
        await store.open()
        opened.append(store)
        return store

    yield open_one
    for store in opened:
        await store.close()


def sql(url: str, statement: str, *params: Any) -> list[tuple[Any, ...]]:
    with psycopg.connect(url, autocommit=True) as conn:
        cursor = conn.execute(statement.encode(), params or None)
        return cursor.fetchall() if cursor.description else []


async def test_replicas_starting_together_migrate_once(
    pg_url: str, open_replica: OpenStore
) -> None:
    await asyncio.gather(*(open_replica() for _ in range(3)))
    assert sql(pg_url, "SELECT version FROM migrations ORDER BY version") == [
        (1,),
        (2,),
        (3,),
        (4,),
        (5,),
        (6,),
        (7,),
        (8,),
        (9,),
        (10,),
    ]


async def test_events_are_append_only(pg_url: str, open_replica: OpenStore) -> None:
    await insert(await open_replica(), make_approval())
    for statement in (
        "UPDATE events SET actor = 'mallory'",
        "DELETE FROM events",
        "TRUNCATE events",
    ):
        with pytest.raises(psycopg.errors.RaiseException, match="append-only"):
            sql(pg_url, statement)


async def test_one_decision_wins_across_replicas(open_replica: OpenStore) -> None:
    replicas = [await open_replica() for _ in range(3)]
    approval = await insert(replicas[0], make_approval())

    results = await asyncio.gather(
        *(
            replicas[i % 3].decide(approval.id, Status.APPROVED, approve(f"U{i}"))
            for i in range(60)
        ),
        return_exceptions=True,
    )

    winners = [r for r in results if not isinstance(r, BaseException)]
    assert len(winners) == 1
    assert all(isinstance(r, AlreadyDecided) for r in results if r not in winners)
    assert [e.kind for e in await replicas[1].events_since(0)] == ["submitted", "approved"]


async def test_the_same_tool_call_submitted_through_replicas_is_one_approval(
    open_replica: OpenStore,
) -> None:
    replicas = [await open_replica() for _ in range(3)]
    tries = [make_approval().model_copy(update={"id": f"apr_{i}"}) for i in range(12)]

    results = await asyncio.gather(
        *(replicas[i % 3].insert(a, args_fingerprint(a.args)) for i, a in enumerate(tries))
    )

    assert len({approval.id for approval, _ in results}) == 1
    assert [created for _, created in results].count(True) == 1


async def test_event_ids_commit_in_order_so_a_reader_misses_none(open_replica: OpenStore) -> None:
    writers = [await open_replica() for _ in range(3)]
    reader = await open_replica()
    seen: list[int] = []
    done = asyncio.Event()

    async def follow() -> None:  # what `GET /v1/events` does with Last-Event-ID
        while True:
            finished = done.is_set()
            batch = await reader.events_since(seen[-1] if seen else 0)
            seen.extend(event.id for event in batch)
            if finished and not batch:
                return
            await asyncio.sleep(0)

    async def write(i: int) -> None:
        approval = await insert(writers[i % 3], make_approval(f"call_{i}"))
        await writers[(i + 1) % 3].decide(approval.id, Status.APPROVED, approve("U0ALICE"))

    follower = asyncio.create_task(follow())
    await asyncio.gather(*(write(i) for i in range(60)))
    done.set()
    await asyncio.wait_for(follower, 10)

    every = [event.id for event in await reader.events_since(0, limit=1000)]
    assert seen == every and len(every) == 120


async def claim_at_once(
    first: PostgresStore, second: PostgresStore, topic: str
) -> list[list[OutboxItem]]:
    """Ten items queued through `first`, then both replicas claim six of them at once."""
    for i in range(10):
        await insert(first, make_approval(f"call_{topic}_{i}"))
    now = utcnow()
    return list(
        await asyncio.gather(first.outbox_claim(topic, now, 6), second.outbox_claim(topic, now, 6))
    )


async def test_an_outbox_item_goes_to_one_replica_at_a_time(open_replica: OpenStore) -> None:
    first = await open_replica(outbox_topics=["webhook"], lease=0.5)
    second = await open_replica(outbox_topics=["webhook"], lease=0.5)

    claims = await claim_at_once(first, second, "webhook")

    ids = [item.id for claim in claims for item in claim]
    assert len(ids) == len(set(ids)) == 10
    third = await open_replica(outbox_topics=["webhook"], lease=0.5)
    assert await third.outbox_claim("webhook", utcnow(), 10) == []  # all leased
    # a replica finds again what it holds (a worker that dropped an item), never the others'
    again = await second.outbox_claim("webhook", utcnow(), 10)
    assert {item.id for item in again} == {item.id for item in claims[1]}


async def test_claims_racing_never_hand_an_item_to_two_replicas(
    open_replica: OpenStore,
) -> None:
    """Two replicas just started claim the same items at once, round after round. A claim that
    read an item before the other claim's commit and locks it after sees it held: PostgreSQL
    checks such a row again on its new version (READ COMMITTED), and the check of its holder
    must be one it can redo there (a list of the replicas alive, not a join to them: in about
    one round in fifteen, an item went to both)."""
    for round_ in range(40):
        topic = f"webhook{round_}"
        first = await open_replica(outbox_topics=[topic])
        second = await open_replica(outbox_topics=[topic])

        claims = await claim_at_once(first, second, topic)

        ids = [item.id for claim in claims for item in claim]
        assert len(ids) == len(set(ids)) == 10, f"round {round_}"
        await first.close()
        await second.close()


async def test_a_lease_is_renewed_while_working_and_handed_over_when_the_replica_stops(
    open_replica: OpenStore,
) -> None:
    worker = await open_replica(outbox_topics=["webhook"], lease=0.6)
    other = await open_replica(outbox_topics=["webhook"], lease=0.6)
    await insert(worker, make_approval())
    [item] = await worker.outbox_claim("webhook", utcnow(), 10)

    await asyncio.sleep(1.5)  # well past one lease: renewed meanwhile
    assert await other.outbox_claim("webhook", utcnow(), 10) == []
    assert [i.id for i in await worker.outbox_claim("webhook", utcnow(), 10)] == [item.id]

    await worker.close()  # a replica that stops takes its heartbeat with it: no wait
    [taken_over] = await other.outbox_claim("webhook", utcnow(), 10)
    assert taken_over.id == item.id


async def test_what_a_dead_replica_held_is_taken_over_once_its_heartbeat_lapses(
    pg_url: str, open_replica: OpenStore
) -> None:
    other = await open_replica(outbox_topics=["webhook"])
    await insert(other, make_approval())
    # a replica killed after claiming the item: its heartbeat row stays, renewed no more
    sql(pg_url, "INSERT INTO replicas VALUES ('killed', now() + interval '0.5 seconds')")
    [(item_id,)] = sql(pg_url, "UPDATE outbox SET claimed_by = 'killed' RETURNING id")
    [(lapses,)] = sql(pg_url, "SELECT alive_until FROM replicas WHERE origin = 'killed'")

    assert await other.outbox_claim("webhook", utcnow(), 10) == []
    assert await other.outbox_next_due("webhook") == lapses  # when to look again

    await asyncio.sleep(0.6)
    [taken_over] = await other.outbox_claim("webhook", utcnow(), 10)
    assert taken_over.id == item_id


async def test_what_a_replica_holds_is_rewritten_by_neither_a_sweep_nor_its_heartbeat(
    pg_url: str, open_replica: OpenStore
) -> None:
    """Items this replica holds come back from a sweep as they are, neither locked nor written
    again, and it keeps them by renewing one row of its own (a heartbeat), not a lease on each:
    with thousands of cards queued behind Slack's pace in flight, each sweep (every second)
    and each renewal (every few seconds) rewrote every one of them."""
    worker = await open_replica(outbox_topics=["webhook"], lease=0.6)
    other = await open_replica(outbox_topics=["webhook"], lease=0.6)
    for i in range(20):
        await insert(worker, make_approval(f"call_{i}"))
    held = await worker.outbox_claim("webhook", utcnow(), 50)
    rows = "SELECT id, due_at, claimed_by, xmin::text, xmax::text FROM outbox ORDER BY id"
    before = sql(pg_url, rows)

    again = await worker.outbox_claim("webhook", utcnow(), 50)
    assert [item.id for item in again] == [item.id for item in held]
    assert sql(pg_url, rows) == before

    await asyncio.sleep(1.5)  # well past one lease: renewed meanwhile

    assert len(held) == 20
    assert sql(pg_url, rows) == before
    assert await other.outbox_claim("webhook", utcnow(), 50) == []


async def test_retry_and_done_release_the_lease(open_replica: OpenStore) -> None:
    first = await open_replica(outbox_topics=["webhook"])
    second = await open_replica(outbox_topics=["webhook"])
    await insert(first, make_approval())
    [item] = await first.outbox_claim("webhook", utcnow(), 10)

    await first.outbox_retry(item.id, utcnow() - timedelta(seconds=1), "HTTP 503")
    [again] = await second.outbox_claim("webhook", utcnow(), 10)
    assert (again.id, again.attempts) == (item.id, 1)
    await second.outbox_done(again.id)
    assert await first.outbox_pending("webhook") == 0


async def test_an_approvals_items_are_handed_out_in_order(open_replica: OpenStore) -> None:
    first = await open_replica(outbox_topics=["slack"])
    second = await open_replica(outbox_topics=["slack"])
    approval = await insert(first, make_approval())
    await first.decide(approval.id, Status.APPROVED, approve("U0ALICE"))

    [posting] = await first.outbox_claim("slack", utcnow(), 10)
    # the rewrite waits until the card is posted, even for an idle replica
    assert await second.outbox_claim("slack", utcnow(), 10) == []
    assert (await second.outbox_next_due("slack") or utcnow()) > utcnow()
    await first.outbox_done(posting.id)
    [rewrite] = await second.outbox_claim("slack", utcnow(), 10)
    assert (await second.event(rewrite.event_id)).kind == "approved"


async def test_an_overdue_approval_is_expired_by_one_replica(open_replica: OpenStore) -> None:
    replicas = [await open_replica() for _ in range(3)]
    services = [ApprovalService(store, default_channel="C0OPS") for store in replicas]
    approval, _ = await services[0].submit(request(timeoutSeconds=1))
    later = utcnow() + timedelta(seconds=2)

    claimed = await asyncio.gather(*(store.due(later) for store in replicas))

    assert sorted(len(c) for c in claimed) == [0, 0, 1]
    # the others sleep until the claim would lapse instead of spinning on it
    assert (await replicas[1].next_expiry() or later) > approval.expires_at  # type: ignore[operator]


async def test_escalation_extends_once_across_replicas(open_replica: OpenStore) -> None:
    replicas = [await open_replica() for _ in range(3)]
    approval = await insert(replicas[0], make_approval())
    until_ = utcnow() + timedelta(minutes=5)

    results = await asyncio.gather(
        *(store.extend(approval.id, until_, "system:timeout") for store in replicas),
        return_exceptions=True,
    )

    assert sum(not isinstance(r, BaseException) for r in results) == 1
    assert await replicas[2].escalations(approval.id) == 1


async def test_an_escalated_approval_is_due_again_at_its_new_expiry(
    open_replica: OpenStore,
) -> None:
    store = await open_replica()
    service = ApprovalService(store, default_channel="C0OPS")
    approval, _ = await service.submit(request(timeoutSeconds=1, onTimeout="escalate"))
    first = utcnow() + timedelta(seconds=1.5)
    [claimed] = await store.due(first)
    extended = await store.extend(claimed.id, first + timedelta(seconds=1), "system:timeout")

    # the claim on the first expiry does not hold back the second one
    assert await store.next_expiry() == extended.expires_at
    [again] = await store.due(first + timedelta(seconds=1))
    assert again.id == approval.id


async def test_a_replica_hears_the_others_but_not_itself(open_replica: OpenStore) -> None:
    listener, other = await open_replica(), await open_replica()
    heard: list[str] = []
    await listener.watch(heard.append)

    own = await insert(listener, make_approval("call_own"))
    theirs = await insert(other, make_approval("call_theirs"))
    await other.decide(theirs.id, Status.APPROVED, approve("U0ALICE"))
    await other.record(own.id, "card_posted", None, {})  # no state change: nothing to hear

    await until(lambda: _heard(heard, 2))
    await asyncio.sleep(0.1)
    assert heard == [theirs.id, theirs.id]


async def _heard(heard: list[str], count: int) -> bool:
    return len(heard) >= count


async def test_a_wait_survives_a_dropped_listen_connection(
    pg_server: str, pg_url: str, open_replica: OpenStore
) -> None:
    waiting_side = ApprovalService(await open_replica(), default_channel="C0OPS")
    deciding_side = ApprovalService(await open_replica(), default_channel="C0OPS")
    await waiting_side.start()
    approval, _ = await deciding_side.submit(request())
    waiter = asyncio.create_task(waiting_side.wait(approval.id, 30))
    await until(lambda: _waiting(waiting_side))
    store = waiting_side.store
    assert isinstance(store, PostgresStore) and store.listen_pid is not None

    # The listening connection drops and cannot come back until the decision is made,
    # so its NOTIFY reaches nobody on that side.
    name = pg_url.rsplit("/", 1)[1]
    sql(pg_server, f"ALTER DATABASE {name} ALLOW_CONNECTIONS false")
    sql(pg_server, "SELECT pg_terminate_backend(%s)", store.listen_pid)
    await until(lambda: _not_listening(store))
    await deciding_side.decide(approval.id, approved=True, decided_by="U0ALICE")
    await asyncio.sleep(0.3)
    assert not waiter.done()

    sql(pg_server, f"ALTER DATABASE {name} ALLOW_CONNECTIONS true")
    decided = await asyncio.wait_for(waiter, 10)  # re-read on reconnect
    assert decided.status is Status.APPROVED


async def _waiting(service: ApprovalService) -> bool:
    return service.waiting == 1


async def _not_listening(store: PostgresStore) -> bool:
    return store.listen_pid is None


async def test_an_unreachable_server_is_a_clear_error_without_the_password(
    unused_tcp_port: int,
) -> None:
    store = PostgresStore(
        f"postgresql://approval:s3cret@127.0.0.1:{unused_tcp_port}/approvals", connect_timeout=2
    )
    with pytest.raises(Unavailable, match=f"127.0.0.1:{unused_tcp_port}/approvals") as caught:
        await store.open()
    assert "s3cret" not in caught.value.message
