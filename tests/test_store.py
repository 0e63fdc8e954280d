from __future__ import annotations

import asyncio
import json
import sqlite3
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from bot.errors import AlreadyDecided, BadRequest, Conflict, NotFound, Unavailable
from bot.models import (
    Action,
    Approval,
    Decision,
    Requester,
    Status,
    args_fingerprint,
    utcnow,
)
from bot.store import SQLiteStore, open_store


def make_approval(tool_call_id: str = "call_1", args: dict[str, object] | None = None) -> Approval:
    return Approval(
        id=f"apr_{tool_call_id}",
        status=Status.PENDING,
        tool_name="deploy_service",
        tool_call_id=tool_call_id,
        args=args if args is not None else {"version": "1.4.2"},
        channel="C0OPS",
        created_at=utcnow(),
    )


def approve(by: str) -> Decision:
    return Decision(
        approved=True,
        action=Action.APPROVE,
        approved_args={"version": "1.4.2"},
        decided_by=by,
        approvers=[by],
        decided_at=utcnow(),
    )


async def insert(store: SQLiteStore, approval: Approval) -> Approval:
    stored, _ = await store.insert(approval, args_fingerprint(approval.args))
    return stored


async def test_insert_then_get_round_trips_every_field(store: SQLiteStore) -> None:
    approval = make_approval().model_copy(
        update={"prompt": "Ship it?", "metadata": {"ticket": "OPS-1"}, "context": "see <runbook>"}
    )
    stored = await insert(store, approval)

    loaded = await store.get(approval.id)

    assert loaded.to_wire() == approval.to_wire()
    assert stored == loaded  # what the 201 answers is what any later read gives


async def test_a_submitted_record_is_the_one_read_back_whatever_its_fields(
    store: SQLiteStore,
) -> None:
    """The inserted record is answered as built, not read back: it must equal the stored one
    to the microsecond and the JSON value, for every optional field an agent may fill."""
    created = datetime(2026, 12, 6, 20, 32, 19, 999_999, tzinfo=UTC)
    approval = make_approval(
        "call_full",
        args={"n": 1.5, "big": 10**30, "neg": -0.0, "list": [1, {"a": None}], "s": "é\u2028"},
    ).model_copy(
        update={
            "prompt": "Ship it?",
            "created_at": created,
            "expires_at": created + timedelta(seconds=3_601, microseconds=1),
            "timeout_seconds": 3_601,
            "requester": Requester(agent="deployer", slack_user="U0ALICE", run_id="run-1"),
            "metadata": {"ticket": "OPS-1", "nested": {"k": [True, False]}},
            "thread_ts": "1700000000.000100",
        }
    )
    stored = await insert(store, approval)

    assert stored == await store.get(approval.id)


async def test_get_unknown_raises_not_found(store: SQLiteStore) -> None:
    with pytest.raises(NotFound):
        await store.get("apr_missing")


async def test_same_tool_call_id_and_args_returns_the_first(store: SQLiteStore) -> None:
    first, created = await store.insert(make_approval(), args_fingerprint({"version": "1.4.2"}))
    again = make_approval().model_copy(update={"id": "apr_other"})
    second, created_again = await store.insert(again, args_fingerprint(again.args))

    assert (created, created_again) == (True, False)
    assert second.id == first.id


async def test_same_tool_call_id_with_other_args_conflicts(store: SQLiteStore) -> None:
    await insert(store, make_approval())
    other = make_approval(args={"version": "9.9.9"}).model_copy(update={"id": "apr_other"})

    with pytest.raises(Conflict):
        await store.insert(other, args_fingerprint(other.args))


async def test_one_decision_wins_among_100_concurrent_deciders(store: SQLiteStore) -> None:
    approval = await insert(store, make_approval())

    results = await asyncio.gather(
        *(store.decide(approval.id, Status.APPROVED, approve(f"U{i}")) for i in range(100)),
        return_exceptions=True,
    )

    winners = [r for r in results if not isinstance(r, BaseException)]
    losers = [r for r in results if isinstance(r, AlreadyDecided)]
    assert len(winners) == 1 and len(losers) == 99
    winner = winners[0][0].decision
    assert winner is not None
    assert all(loser.approval.decision == winner for loser in losers)
    decided_events = [e for e in await store.events_since(0) if e.kind == "approved"]
    assert len(decided_events) == 1


async def test_decisions_and_pending_approvals_survive_a_reopen(store_url: str) -> None:
    store = open_store(store_url)
    await store.open()
    decided = await insert(store, make_approval("call_a"))
    pending = await insert(store, make_approval("call_b"))
    await store.decide(decided.id, Status.APPROVED, approve("U0ALICE"))
    await store.close()

    reopened = open_store(store_url)
    await reopened.open()
    try:
        assert (await reopened.get(decided.id)).status is Status.APPROVED
        assert (await reopened.get(decided.id)).decision.decided_by == "U0ALICE"  # type: ignore[union-attr]
        assert (await reopened.get(pending.id)).status is Status.PENDING
    finally:
        await reopened.close()


async def test_events_are_append_only(db_path: Path) -> None:  # PostgreSQL: test_store_postgres
    store = SQLiteStore(db_path)
    await store.open()
    await insert(store, make_approval())
    await store.close()
    conn = sqlite3.connect(db_path)
    try:
        with pytest.raises(sqlite3.IntegrityError, match="append-only"):
            conn.execute("UPDATE events SET actor = 'mallory'")
        with pytest.raises(sqlite3.IntegrityError, match="append-only"):
            conn.execute("DELETE FROM events")
    finally:
        conn.close()


async def test_writes_coming_in_together_share_a_commit_and_one_alone_waits_for_none(
    db_path: Path,
) -> None:
    # a longer linger than the real few ms, so a slow machine's loop turns cannot outlast it
    store = SQLiteStore(db_path, group_linger=0.2)
    await store.open()
    statements: list[str] = []
    # the writer thread's own connection reports each statement it runs
    await store._run(store._writer, lambda conn: conn.set_trace_callback(statements.append))

    async def commits(*tool_call_ids: str) -> int:
        """Insert one approval per id, each asked for a few loop turns after the last (as
        clicks on a busy bot arrive): how many commits they took."""
        before = statements.count("COMMIT")
        writes = []
        for tool_call_id in tool_call_ids:
            writes.append(asyncio.ensure_future(insert(store, make_approval(tool_call_id))))
            for _ in range(3):
                await asyncio.sleep(0)
        await asyncio.gather(*writes)
        return statements.count("COMMIT") - before

    try:
        # Alone, each write commits at once, whatever follows it.
        assert await commits("a1", "a2") == 2
        # Three at once: the first commits, the two asked meanwhile share the next commit...
        await asyncio.gather(*(insert(store, make_approval(f"b{i}")) for i in range(3)))
        # ...so writes are coming in together: the next group gathers before it commits.
        assert await commits("c1", "c2") == 1
        # That group of two keeps the next one gathering; once one commits alone
        # (the linger passed with nothing else asked), writes commit at once again.
        assert await commits("d1") == 1
        assert await commits("e1", "e2") == 2
        # After a quiet spell, a group of several no longer makes the next one wait.
        await asyncio.gather(*(insert(store, make_approval(f"f{i}")) for i in range(3)))
        await asyncio.sleep(0.3)
        assert await commits("g1", "g2") == 2
    finally:
        await store.close()
    conn = sqlite3.connect(db_path)
    try:
        assert conn.execute("SELECT count(*) FROM approvals").fetchone() == (15,)  # all kept
    finally:
        conn.close()


async def test_a_gathering_group_commits_once_it_is_as_large_as_the_last_one(
    db_path: Path,
) -> None:
    """Clients that send their next write as soon as the last is answered (clicks back to back)
    come back as many as the last group held: the group then commits at once, not after the
    linger, which would only add its wait to every write."""
    store = SQLiteStore(db_path, group_linger=30)
    await store.open()
    statements: list[str] = []
    await store._run(store._writer, lambda conn: conn.set_trace_callback(statements.append))
    try:
        # the first commits at once, the three asked meanwhile share the next commit
        await asyncio.gather(*(insert(store, make_approval(f"a{i}")) for i in range(4)))
        statements.clear()
        async with asyncio.timeout(5):  # not the 30 s linger
            writes = []
            for i in range(3):
                writes.append(asyncio.ensure_future(insert(store, make_approval(f"b{i}"))))
                for _ in range(3):
                    await asyncio.sleep(0)
            await asyncio.gather(*writes)
        assert statements.count("COMMIT") == 1
    finally:
        await store.close()


async def test_a_write_failing_in_a_group_undoes_only_itself(db_path: Path) -> None:
    """A group runs its writes with nothing between them; when one fails, the group runs
    again with each write in a savepoint, so the others are kept and the failed one leaves
    nothing behind."""
    store = SQLiteStore(db_path, group_linger=0.2)
    await store.open()
    statements: list[str] = []
    await store._run(store._writer, lambda conn: conn.set_trace_callback(statements.append))

    try:
        decided = await insert(store, make_approval("decided"))
        await store.decide(decided.id, Status.APPROVED, approve("U0ALICE"))
        statements.clear()
        kept = await asyncio.gather(*(insert(store, make_approval(f"a{i}")) for i in range(4)))
        assert all(isinstance(r, Approval) for r in kept)
        assert statements.count("COMMIT") < 4  # a group of several...
        assert "SAVEPOINT write" not in statements and "ROLLBACK" not in statements  # ...bare

        statements.clear()
        # the first commits at once, alone or with the others; the failing one is never alone
        first, failed, last = await asyncio.gather(
            insert(store, make_approval("b1")),
            store.decide(decided.id, Status.REJECTED, approve("U0BOB")),
            insert(store, make_approval("b2")),
            return_exceptions=True,
        )
        assert isinstance(failed, AlreadyDecided)
        assert isinstance(first, Approval) and isinstance(last, Approval)
        assert statements.count("ROLLBACK TO write") == 1  # the group ran again, in savepoints
        assert (await store.get(first.id)).tool_call_id == "b1"
        assert (await store.get(last.id)).tool_call_id == "b2"
        record = await store.get(decided.id)
        assert record.status is Status.APPROVED and record.decision.decided_by == "U0ALICE"  # type: ignore[union-attr]
        kinds = [e.kind for e in await store.events_since(0) if e.approval_id == decided.id]
        assert kinds.count("approved") == 1 and "rejected" not in kinds
    finally:
        await store.close()


async def test_json_columns_keep_every_value_as_submitted(store: SQLiteStore) -> None:
    """The audit keeps the arguments as they came: numbers of every size and spelling,
    non-ASCII text and the line separators JSON allows raw."""
    args = {
        "big": 2**70,
        "tiny": 1.5e-7,
        "huge": 1e16,
        "minus_zero": -0.0,
        "text": 'café ✓ \u2028 "quoted" \\',
        "nested": [None, True, {"k": [1, 2.5]}],
    }
    approval = await insert(store, make_approval(args=args))
    edited = approve("U0ALICE").model_copy(
        update={"action": Action.EDIT, "approved_args": {**args, "tiny": 2.5e-8}}
    )
    await store.decide(approval.id, Status.APPROVED, edited)

    submitted, approved = await store.events_since(0)
    assert submitted.args_after == args
    assert approved.args_after == {**args, "tiny": 2.5e-8}
    assert (await store.get(approval.id)).decision.approved_args == {**args, "tiny": 2.5e-8}


async def test_a_column_spelled_by_json_reads_as_json_reads_it(db_path: Path) -> None:
    """Columns are read by pydantic's parser, which refuses some text `json` spelled in rows
    written before pydantic's encoder did: an escaped lone surrogate. Such a row still reads,
    as `json` reads it, and `json`'s escapes of other characters read the same either way."""
    store = SQLiteStore(db_path)
    await store.open()
    try:
        approval = await insert(store, make_approval())
        request = approval.to_wire() | {"context": "before \ud800 after", "prompt": "café ✓"}
        with sqlite3.connect(db_path) as conn:
            conn.execute(
                "UPDATE approvals SET request = ? WHERE id = ?",
                (json.dumps(request), approval.id),
            )
        conn.close()
        loaded = await store.get(approval.id)
    finally:
        await store.close()
    assert loaded.context == "before \ud800 after"
    assert loaded.prompt == "café ✓"


async def test_every_state_change_is_audited_with_args(store: SQLiteStore) -> None:
    approval = await insert(store, make_approval())
    edited = approve("U0ALICE").model_copy(
        update={"action": Action.EDIT, "approved_args": {"version": "1.4.3"}}
    )
    await store.decide(approval.id, Status.APPROVED, edited)

    events = await store.events_since(0)

    assert [(e.kind, e.status) for e in events] == [
        ("submitted", Status.PENDING),
        ("approved", Status.APPROVED),
    ]
    assert events[1].args_before == {"version": "1.4.2"}
    assert events[1].args_after == {"version": "1.4.3"}
    assert events[1].actor == "U0ALICE"
    assert events[1].record is not None and events[1].record["status"] == "approved"


async def test_migrations_run_once(db_path: Path) -> None:
    for _ in range(2):
        store = SQLiteStore(db_path)
        await store.open()
        await store.close()
    conn = sqlite3.connect(db_path)
    try:
        assert conn.execute("SELECT version FROM migrations").fetchall() == [
            (1,),
            (2,),
            (3,),
            (4,),
            (5,),
            (6,),
            (7,),
            (8,),
            (9,),
        ]
    finally:
        conn.close()


async def test_pages_are_newest_first_and_cursor_continues(store: SQLiteStore) -> None:
    for i in range(5):
        await insert(store, make_approval(f"call_{i}"))

    first = await store.find(status=None, tool_name=None, limit=2, cursor=None)
    second = await store.find(status=None, tool_name=None, limit=2, cursor=first.next)
    last = await store.find(status=None, tool_name=None, limit=2, cursor=second.next)

    ids = [a.tool_call_id for page in (first, second, last) for a in page.items]
    assert ids == [f"call_{i}" for i in (4, 3, 2, 1, 0)]
    assert last.next is None
    for junk in ("nonsense", "²", "9" * 19, "9" * 5000, "-1", " 1"):
        with pytest.raises(BadRequest):
            await store.find(status=None, tool_name=None, limit=2, cursor=junk)


async def test_outbox_rows_are_written_with_their_event(store_url: str) -> None:
    store = open_store(store_url, outbox_topics=["webhook"])
    await store.open()
    try:
        approval = await insert(store, make_approval())
        await store.decide(approval.id, Status.APPROVED, approve("U0ALICE"))
        assert await store.outbox_pending("webhook") == 2
        kinds = []
        while items := await store.outbox_claim("webhook", utcnow(), 10):
            # in order: PostgreSQL hands out an approval's next item once the one before is done
            kinds.append((await store.event(items[0].event_id)).kind)
            await store.outbox_done(items[0].id)
        assert kinds == ["submitted", "approved"]
        assert await store.outbox_pending("webhook") == 0
    finally:
        await store.close()


async def test_a_claim_after_an_item_reads_only_newer_items_in_queue_order(
    store_url: str,
) -> None:
    store = open_store(store_url, outbox_topics=["webhook"])
    await store.open()
    try:
        for n in range(3):
            await insert(store, make_approval(f"call_{n}"))
        first, *later = await store.outbox_claim("webhook", utcnow(), 10)
        retry_at = utcnow() + timedelta(seconds=60)
        await store.outbox_retry(later[0].id, retry_at, "the receiver was down")
        newer = await store.outbox_claim("webhook", utcnow(), 10, after=first.id)
        assert [item.id for item in newer] == [later[1].id]  # the retried item is not due
        assert await store.outbox_claim("webhook", utcnow(), 10, after=later[1].id) == []
        sweep = await store.outbox_claim("webhook", retry_at, 10)
        assert later[0].id in {item.id for item in sweep}
        held = [first.id, later[1].id]  # in the caller's lanes: a sweep leaves them out
        assert await store.outbox_claim("webhook", retry_at, 10, held=held) == [
            item for item in sweep if item.id not in held
        ]
        # with `upto`, a sweep leaves out what was queued after that item (a claim's)
        assert later[1].id in {item.id for item in sweep}
        upto = await store.outbox_claim("webhook", retry_at, 10, upto=later[0].id)
        assert upto == [item for item in sweep if item.id <= later[0].id]
    finally:
        await store.close()


async def test_a_stale_lock_is_a_clear_error_not_a_hang(db_path: Path) -> None:
    store = SQLiteStore(db_path, busy_timeout=0.2)
    await store.open()
    holder = sqlite3.connect(db_path, isolation_level=None)
    holder.execute("BEGIN EXCLUSIVE")
    try:
        started = time.monotonic()
        with pytest.raises(Unavailable, match="locked"):
            await insert(store, make_approval())
        assert time.monotonic() - started < 5
    finally:
        holder.execute("ROLLBACK")
        holder.close()
        await store.close()
