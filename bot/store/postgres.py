"""The PostgreSQL engine: every statement the bot runs there, for any number of replicas sharing
one database (the schema is in `pg_migrations.py`). Same calls and same answers as `sqlite.py`.

Connections come from a psycopg pool in autocommit; a write is one explicit transaction. What
several replicas need on top of the embedded engine:

- **Wake-ups everywhere.** Every change that matters to another replica (a submission, a
  decision, a vote, an escalation) sends `NOTIFY approval_bot, '<origin> <approval id>'` in its
  own transaction, so it is heard only once it has committed. Each replica `LISTEN`s on one
  more connection and hands ids changed by the others to the `watch` callback. When that
  connection drops, it reconnects and calls `on_reconnect`: a NOTIFY sent meanwhile is lost,
  so the watcher re-reads the rows it cares about instead.
- **Background work done once.** Outbox items and overdue approvals are claimed with
  `FOR UPDATE SKIP LOCKED`, so the other replicas skip them: an overdue approval with a lease
  (`approvals.expiry_claimed_until` moved forward), an outbox item with the claiming replica's
  name (`outbox.claimed_by`), kept while that replica's heartbeat (its row in `replicas`,
  renewed every third of a lease) is alive. The items of a replica that died are taken over
  once its heartbeat lapses. An approval's outbox items are delivered one after the other,
  oldest first.
- **Events in commit order.** Event ids are handed out under a transaction-scoped advisory lock,
  so they become visible in id order and `events_since(last)` never skips a late commit.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import logging
import secrets
from collections.abc import AsyncIterator, Callable, Collection, Iterable
from datetime import UTC, datetime, timedelta
from typing import Any

import psycopg
from psycopg.conninfo import conninfo_to_dict
from psycopg.rows import TupleRow
from psycopg.types.json import Json
from psycopg_pool import AsyncConnectionPool

from bot.batches import BatchView
from bot.errors import AlreadyDecided, NotFound, Unavailable
from bot.grants import (
    Grant,
    GrantGone,
    Proposal,
    grant_decision,
    may_have_proposals,
    new_grant_id,
    settle,
)
from bot.models import Approval, Decision, SlackRef, Status
from bot.store import pg_batches, pg_grants
from bot.store.base import DELIVERIES_KEPT, LAST_ID, Event, OutboxItem, Page
from bot.store.pg_migrations import MIGRATIONS
from bot.store.rows import (
    NewEvent,
    PolicyOutcome,
    Rows,
    listing,
    request_of,
    resubmitted,
    tally,
)

__all__ = ["CHANNEL", "PostgresStore"]

log = logging.getLogger(__name__)

Connection = psycopg.AsyncConnection[TupleRow]

#: the LISTEN/NOTIFY channel; payload `<origin> <approval id>`
CHANNEL = "approval_bot"

# psycopg hands JSON and timestamps back decoded.
_ROWS = Rows()


def _lock_key(name: str) -> int:
    """A stable advisory-lock key of our own (signed 64 bits, as PostgreSQL wants it)."""
    return int.from_bytes(hashlib.sha256(name.encode()).digest()[:8], "big", signed=True)


_MIGRATION_LOCK = _lock_key("approval-bot:migrations")
_EVENT_LOCK = _lock_key("approval-bot:events")


def _json(value: Any) -> Json | None:
    return None if value is None else Json(value)


#: a key's next turn: due at the later of its due time and now, then `interval` on
_TAKE_TURN = """
WITH clock AS (SELECT extract(epoch FROM clock_timestamp())::float8 AS now)
INSERT INTO slack_turns AS t (key, due)
SELECT %(key)s, now + %(interval)s FROM clock
ON CONFLICT (key) DO UPDATE SET due = greatest(t.due, (SELECT now FROM clock)) + %(interval)s
RETURNING due, (SELECT now FROM clock)
"""

_PUSH_TURN = """
INSERT INTO slack_turns AS t (key, due)
VALUES (%(key)s, extract(epoch FROM clock_timestamp())::float8 + %(seconds)s)
ON CONFLICT (key) DO UPDATE SET due = greatest(t.due, excluded.due)
"""


def _now() -> datetime:
    return datetime.now(UTC)


def _describe(url: str) -> str:
    """`host:port/dbname` of a connection URL: for messages, never with the password."""
    try:
        parts = conninfo_to_dict(url)
    except psycopg.ProgrammingError:
        return "the PostgreSQL URL in APPROVAL_DB (unreadable)"
    host = parts.get("host") or "localhost"
    return f"{host}:{parts.get('port') or 5432}/{parts.get('dbname') or ''}"


class PostgresStore:
    """The shared store: one PostgreSQL database, a pool per replica, LISTEN for the others."""

    def __init__(
        self,
        url: str,
        *,
        outbox_topics: Iterable[str] = (),
        update_topics: Iterable[str] = (),
        pool_size: int = 10,
        lease: float = 15.0,
        connect_timeout: float = 10.0,
    ) -> None:
        self.url = url
        #: topics that get every state change; `update_topics` also get changes of a pending
        #: approval (a vote, an edit, an escalation) so its card can show them
        self.outbox_topics = tuple(outbox_topics)
        self.update_topics = tuple(update_topics)
        #: seconds another replica keeps away from work this one claimed, from its last
        #: heartbeat (one every third of that)
        self.lease = lease
        self.connect_timeout = connect_timeout
        self.pool_size = pool_size
        #: tags this store's NOTIFYs, so its own changes are not reported back to it
        self.origin = secrets.token_hex(8)
        self._pool: AsyncConnectionPool[Connection] | None = None
        self._tasks: list[asyncio.Task[None]] = []
        #: backend pid of the LISTEN connection (None while reconnecting)
        self.listen_pid: int | None = None

    # -- plumbing ---------------------------------------------------------------------------

    def _unavailable(self, exc: Exception) -> Unavailable:
        """What agents and Slack users are told: the kind of failure, never where the database
        is (PostgreSQL's own messages name its host); the log says where and what."""
        log.warning("the database %s cannot be used: %s", _describe(self.url), exc)
        return Unavailable(f"the database cannot be used ({type(exc).__name__})")

    def _unreachable(self, exc: Exception) -> Unavailable:
        """Connecting failed (at start, or the LISTEN connection): for whoever runs the bot,
        where the database is, never the password."""
        return Unavailable(f"the database {_describe(self.url)} cannot be used: {exc}")

    @contextlib.asynccontextmanager
    async def _connection(self) -> AsyncIterator[Connection]:
        if self._pool is None:
            raise Unavailable("the store is not open")
        try:
            async with self._pool.connection() as conn:
                yield conn
        except (psycopg.OperationalError, psycopg.InterfaceError) as exc:
            raise self._unavailable(exc) from exc

    @contextlib.asynccontextmanager
    async def _transaction(self) -> AsyncIterator[Connection]:
        # Pipelined: statements whose results are not read yet travel together (BEGIN with
        # the first query, an INSERT with the SELECT after it), so a decision costs three
        # round trips, not six.
        async with self._connection() as conn, conn.pipeline(), conn.transaction():
            yield conn

    async def _connect(self) -> Connection:
        try:
            return await psycopg.AsyncConnection.connect(
                self.url, autocommit=True, connect_timeout=max(1, round(self.connect_timeout))
            )
        except psycopg.Error as exc:
            raise self._unreachable(exc) from exc

    @staticmethod
    async def _utc(conn: Connection) -> None:
        await conn.execute("SET TIME ZONE 'UTC'")

    async def open(self) -> None:
        """Connect, run pending migrations (one replica at a time), start the pool."""
        async with await self._connect() as conn:
            await self._migrate(conn)
        pool: AsyncConnectionPool[Connection] = AsyncConnectionPool(
            self.url,
            kwargs={"autocommit": True},
            min_size=1,
            max_size=self.pool_size,
            configure=self._utc,
            timeout=self.connect_timeout,
            open=False,
            name="approval-bot",
        )
        try:
            await pool.open(wait=True, timeout=self.connect_timeout)
        except psycopg.Error as exc:
            await pool.close()
            raise self._unreachable(exc) from exc
        self._pool = pool
        await self._beat(prune=True)
        self._tasks.append(asyncio.get_running_loop().create_task(self._keep_beating()))

    async def _migrate(self, conn: Connection) -> None:
        async with conn.transaction():
            await conn.execute("SELECT pg_advisory_xact_lock(%s)", (_MIGRATION_LOCK,))
            await conn.execute(
                "CREATE TABLE IF NOT EXISTS migrations"
                " (version integer PRIMARY KEY, applied_at timestamptz NOT NULL DEFAULT now())"
            )
            cursor = await conn.execute("SELECT version FROM migrations")
            done = {row[0] for row in await cursor.fetchall()}
            for version, ddl in enumerate(MIGRATIONS, start=1):
                if version not in done:
                    await conn.execute(ddl)
                    await conn.execute("INSERT INTO migrations (version) VALUES (%s)", (version,))

    async def close(self) -> None:
        """Stop listening and renewing, hand the outbox items this replica holds to the
        others (its heartbeat goes: they need not wait for it to lapse), then close every
        connection."""
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        self._tasks.clear()
        if self._pool is not None:
            with contextlib.suppress(Unavailable, TimeoutError):  # then it lapses instead
                async with asyncio.timeout(1), self._connection() as conn:
                    await conn.execute("DELETE FROM replicas WHERE origin = %s", (self.origin,))
            await self._pool.close()
            self._pool = None

    # -- changes made by other replicas -----------------------------------------------------

    async def watch(
        self, callback: Callable[[str], None], on_reconnect: Callable[[], None] | None = None
    ) -> None:
        """Call `callback(approval_id)` when another replica or process changes an approval.

        Returns once listening. After the listening connection is lost it reconnects (with
        backoff) and calls `on_reconnect()`: changes made in between were not reported.
        """
        ready: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        task = asyncio.get_running_loop().create_task(self._listen(callback, on_reconnect, ready))
        self._tasks.append(task)
        await asyncio.wait(
            {ready, task}, timeout=self.connect_timeout, return_when=asyncio.FIRST_COMPLETED
        )
        if not ready.done():
            task.cancel()
            raise Unavailable(f"could not LISTEN on {_describe(self.url)}")

    async def _listen(
        self,
        callback: Callable[[str], None],
        on_reconnect: Callable[[], None] | None,
        ready: asyncio.Future[None],
        heartbeat: float = 10.0,
    ) -> None:
        delay = 0.05
        while True:
            try:
                async with await self._connect() as conn:
                    await conn.execute(f"LISTEN {CHANNEL}")
                    self.listen_pid = conn.info.backend_pid
                    delay = 0.05
                    if not ready.done():
                        ready.set_result(None)
                    elif on_reconnect is not None:
                        log.info("listening for other replicas again")
                        on_reconnect()
                    while True:
                        async for note in conn.notifies(timeout=heartbeat):
                            origin, _, approval_id = note.payload.partition(" ")
                            if origin != self.origin and approval_id:
                                callback(approval_id)
                        # Quiet for a while: make sure the connection is still alive.
                        async with asyncio.timeout(heartbeat):
                            await conn.execute("SELECT 1")
            except (Unavailable, psycopg.Error, OSError, TimeoutError) as exc:
                self.listen_pid = None
                log.warning("lost the connection listening for other replicas (%s)", exc)
            await asyncio.sleep(delay)
            delay = min(delay * 2, 2.0)

    # -- rows -------------------------------------------------------------------------------

    _SELECT = """
        SELECT a.id, a.status, a.expires_at, a.slack_channel, a.slack_ts, a.slack_permalink,
               a.request, d.approved, d.action, d.approved_args, d.decided_by,
               d.decided_by_name, d.approvers, d.comment, d.decided_at, a.seq, a.created_at,
               a.current_args, a.edited_by, a.escalations,
               (SELECT coalesce(json_agg(v."user" ORDER BY v.at, v.seq), '[]'::json)
                  FROM votes v WHERE v.approval_id = a.id),
               a.edited_at, a.slack_error, a.slack_posting, a.fingerprint
        FROM approvals a LEFT JOIN decisions d ON d.approval_id = a.id
    """

    async def _fetch(self, conn: Connection, approval_id: str, *, lock: bool = False) -> Approval:
        # `lock`: hold the approval's row until commit (one vote at a time, across replicas)
        sql = self._SELECT + " WHERE a.id = %s" + (" FOR UPDATE OF a" if lock else "")
        row = await (await conn.execute(sql, (approval_id,))).fetchone()
        if row is None:
            raise NotFound(f"no approval with id {approval_id!r}")
        return _ROWS.approval(row)

    async def _append_event(self, conn: Connection, event: NewEvent) -> int:
        # One round trip: the event, its outbox rows and the NOTIFY (sent at commit, to every
        # replica, only for changes they act on). The advisory lock is held to commit, so
        # event ids become visible in the order they are handed out.
        cursor = await conn.execute(
            """
            WITH locked AS (
                SELECT pg_advisory_xact_lock(%(lock)s)
            ), event AS (
                INSERT INTO events (approval_id, kind, status, actor, at, args_before,
                                    args_after, detail, record)
                SELECT %(approval_id)s, %(kind)s, %(status)s::text, %(actor)s::text, %(at)s,
                       %(before)s::json, %(after)s::json, %(detail)s::json, %(record)s::json
                FROM locked
                RETURNING id
            ), queued AS (
                INSERT INTO outbox (topic, approval_id, event_id, due_at)
                SELECT topic, %(approval_id)s, event.id, %(at)s
                FROM event, unnest(%(topics)s::text[]) AS topic
            )
            SELECT event.id, CASE WHEN %(announce)s THEN pg_notify(%(channel)s, %(payload)s) END
            FROM event
            """,
            {
                "lock": _EVENT_LOCK,
                "approval_id": event.approval.id,
                "kind": event.kind,
                "status": event.status.value if event.status else None,
                "actor": event.actor,
                "at": _now(),
                "before": _json(event.args_before),
                "after": _json(event.args_after),
                "detail": Json(event.detail),
                "record": event.record,
                "topics": list(event.topics(self.outbox_topics, self.update_topics)),
                "announce": event.announced,
                "channel": CHANNEL,
                "payload": f"{self.origin} {event.approval.id}",
            },
        )
        row = await cursor.fetchone()
        assert row is not None
        return int(row[0])

    # -- approvals --------------------------------------------------------------------------

    async def insert(
        self, approval: Approval, fingerprint: str, policy: PolicyOutcome | None = None
    ) -> tuple[Approval, bool]:
        """Store a new approval; the same toolCallId with the same args returns the first one.
        With `policy.decision`, it is decided in the same transaction."""
        async with self._transaction() as conn:
            cursor = await conn.execute(
                "INSERT INTO approvals (id, tool_call_id, fingerprint, status, tool_name,"
                " created_at, expires_at, request, batch_key)"
                " VALUES (%s, %s, %s, %s, %s, %s, %s, %s::json, %s)"
                " ON CONFLICT (tool_call_id) DO NOTHING RETURNING id",
                (
                    approval.id,
                    approval.tool_call_id,
                    fingerprint,
                    approval.status.value,
                    approval.tool_name,
                    approval.created_at,
                    approval.expires_at,
                    request_of(approval),
                    approval.batch_key,
                ),
            )
            if await cursor.fetchone() is None:  # submitted before, maybe through another replica
                cursor = await conn.execute(
                    "SELECT id, fingerprint, tool_name FROM approvals WHERE tool_call_id = %s",
                    (approval.tool_call_id,),
                )
                row = await cursor.fetchone()
                assert row is not None
                return await self._fetch(conn, resubmitted(approval, fingerprint, row)), False
            stored = await self._fetch(conn, approval.id)
            grant = None
            if policy is not None and policy.standing and policy.decision is None:
                grant = await pg_grants.matching(conn, stored, _ROWS)
                if grant is not None:
                    policy = policy.granted(grant, grant_decision(grant, stored))
            await self._append_event(conn, NewEvent.submitted(stored, approval, policy))
            if policy is not None and policy.decision is not None:
                stored, _ = await self._decide(
                    conn, approval.id, policy.status, policy.decision, cards=policy.cards
                )
            if grant is not None:
                origin = await self._fetch(conn, grant.approval_id)
                await self._append_event(conn, NewEvent.grant_used(origin, grant, stored))
            return stored, True

    async def get(self, approval_id: str) -> Approval:
        """The approval, or `NotFound`."""
        async with self._connection() as conn:
            return await self._fetch(conn, approval_id)

    async def find(
        self, *, status: Status | None, tool_name: str | None, limit: int, cursor: str | None
    ) -> Page:
        """Approvals newest first, filtered, one page at a time."""
        where, params = listing(status, tool_name, cursor, "%s")
        sql = f"{self._SELECT}{where} ORDER BY a.seq DESC LIMIT %s"
        async with self._connection() as conn:
            rows = await (await conn.execute(sql, (*params, limit + 1))).fetchall()
        return _ROWS.page(rows, limit)

    async def _decide(
        self,
        conn: Connection,
        approval_id: str,
        status: Status,
        decision: Decision,
        *,
        cards: bool = True,
        current: Approval | None = None,
    ) -> tuple[Approval, int]:
        """Decide `approval_id` from pending; `current`: its record as this transaction has it
        (read and changed here), which the decided record is made from instead of read again."""
        cursor = await conn.execute(
            """
            WITH decided AS (
                UPDATE approvals SET status = %(status)s
                WHERE id = %(id)s AND status = 'pending' RETURNING id
            )
            INSERT INTO decisions (approval_id, approved, action, approved_args, decided_by,
                                   decided_by_name, approvers, comment, decided_at)
            SELECT decided.id, %(approved)s, %(action)s, %(args)s::json, %(by)s,
                   %(name)s::text, %(approvers)s::json, %(comment)s::text, %(at)s
            FROM decided
            RETURNING approval_id
            """,
            {
                "status": status.value,
                "id": approval_id,
                "approved": decision.approved,
                "action": decision.action.value,
                "args": _json(decision.approved_args),
                "by": decision.decided_by,
                "name": decision.decided_by_name,
                "approvers": Json(decision.approvers),
                "comment": decision.comment,
                "at": decision.decided_at,
            },
        )
        if current is None:
            approval = await self._fetch(conn, approval_id)  # read together with the update
        else:
            approval = current.model_copy(update={"status": status, "decision": decision})
        if await cursor.fetchone() is None:  # the compare-and-set lost: somebody decided first
            raise AlreadyDecided(await self._fetch(conn, approval_id))
        event = NewEvent.decided(approval, status, decision, cards=cards)
        return approval, await self._append_event(conn, event)

    async def decide(
        self,
        approval_id: str,
        status: Status,
        decision: Decision,
        check: Callable[[Approval], object] | None = None,
    ) -> tuple[Approval, int]:
        """`Store.decide`, the record locked when it is checked."""
        async with self._transaction() as conn:
            current = None
            if check is not None:
                check(current := await self._fetch(conn, approval_id, lock=True))
            return await self._decide(conn, approval_id, status, decision, current=current)

    async def vote(
        self,
        approval_id: str,
        user: str,
        args: dict[str, Any] | None,
        decide: Callable[[Approval], Decision],
        check: Callable[[Approval], Proposal | None],
    ) -> tuple[Approval, bool]:
        """`Store.vote`: the record locked, checked and counted in one transaction."""
        async with self._transaction() as conn:
            # One vote at a time per approval, whichever replica counts it.
            approval = await self._fetch(conn, approval_id, lock=True)
            allow = check(approval)
            counted, edited = tally(approval, user, args)
            if edited:
                await conn.execute(
                    "UPDATE approvals SET current_args = %s, edited_by = %s, edited_at = %s"
                    " WHERE id = %s",
                    (Json(args), user, _now(), approval_id),
                )
                await conn.execute("DELETE FROM votes WHERE approval_id = %s", (approval_id,))
                await self._append_event(
                    conn, NewEvent.edited(approval, user, counted.current_args)
                )
            await conn.execute(
                'INSERT INTO votes (approval_id, "user", at) VALUES (%s, %s, %s)'
                " ON CONFLICT DO NOTHING",
                (approval_id, user, _now()),
            )
            if allow is not None:
                await pg_grants.propose(conn, approval_id, allow)
            if len(counted.progress.approved_by) >= approval.policy.required_approvals:
                status = Status.APPROVED
                # an edit's time is the database's: read the record again after one
                current = None if edited else counted
                decision = decide(counted)
                decided, _ = await self._decide(
                    conn, approval_id, status, decision, current=current
                )
                if may_have_proposals(approval, allow is not None):
                    await self._settle(conn, decided)
                return decided, True
            approval = await self._fetch(conn, approval_id)
            await self._append_event(conn, NewEvent.voted(approval, user))
            return approval, False

    async def _settle(self, conn: Connection, decided: Approval) -> None:
        """The approval was decided by votes: grant what its approvers proposed, if they all
        did (else audit why not)."""
        proposed = await pg_grants.proposals(conn, decided.id, _ROWS)
        if not proposed:
            return
        grant, missing = settle(decided, proposed, new_grant_id())
        if grant is None:
            await self._append_event(conn, NewEvent.grant_lapsed(decided, missing))
            return
        await pg_grants.create(conn, grant)
        assert decided.decision is not None
        event = NewEvent.grant_made(decided, grant, decided.decision.decided_by)
        await self._append_event(conn, event)

    # -- standing approvals -----------------------------------------------------------------

    async def grant(self, grant_id: str) -> Grant:
        """A standing approval, or `NotFound`."""
        async with self._connection() as conn:
            return await pg_grants.one(conn, grant_id, _ROWS)

    async def grants(
        self, now: datetime, *, approval_id: str | None = None, limit: int = 100
    ) -> list[Grant]:
        """Standing approvals neither revoked nor expired at `now` (of one approval)."""
        async with self._connection() as conn:
            return await pg_grants.active(conn, now, approval_id, limit, _ROWS)

    async def revoke_grant(self, grant_id: str, user: str, now: datetime) -> Grant:
        """Revoke a standing approval: no replica matches it from the commit on. `GrantGone`
        when it was revoked or expired already."""
        async with self._transaction() as conn:
            grant = await pg_grants.one(conn, grant_id, _ROWS)
            if not await pg_grants.revoke(conn, grant_id, user, now):
                raise GrantGone(f"standing approval {grant_id} was revoked or has expired")
            origin = await self._fetch(conn, grant.approval_id)
            await self._append_event(conn, NewEvent.grant_revoked(origin, grant, user))
            return await pg_grants.one(conn, grant_id, _ROWS)

    async def extend(self, approval_id: str, expires_at: datetime, actor: str) -> Approval:
        """Escalation: push a pending approval's expiry once and count it.

        Once only, however many replicas try: the one that finds it already escalated (or
        decided) gets `AlreadyDecided` with the current record.
        """
        async with self._transaction() as conn:
            cursor = await conn.execute(
                # A new expiry, free for whichever replica finds it due first.
                "UPDATE approvals SET expires_at = %s, escalations = escalations + 1,"
                " expiry_claimed_until = NULL"
                " WHERE id = %s AND status = 'pending' AND escalations = 0 RETURNING id",
                (expires_at, approval_id),
            )
            approval = await self._fetch(conn, approval_id)
            if await cursor.fetchone() is None:
                raise AlreadyDecided(approval)
            await self._append_event(conn, NewEvent.escalated(approval, actor))
            return approval

    async def escalations(self, approval_id: str) -> int:
        """How often an approval's expiry was extended."""
        async with self._connection() as conn:
            cursor = await conn.execute(
                "SELECT escalations FROM approvals WHERE id = %s", (approval_id,)
            )
            row = await cursor.fetchone()
        if row is None:
            raise NotFound(f"no approval with id {approval_id!r}")
        return int(row[0])

    async def record(
        self, approval_id: str, kind: str, actor: str | None, detail: dict[str, Any]
    ) -> int:
        """Append an audit event that changes no state (a refused click, a posted card…)."""
        async with self._transaction() as conn:
            approval = await self._fetch(conn, approval_id)
            event = NewEvent(approval, kind, None, actor, detail=detail)
            return await self._append_event(conn, event)

    async def set_slack_ref(self, approval_id: str, ref: SlackRef) -> Approval:
        """Remember where the card was posted."""
        async with self._transaction() as conn:
            await conn.execute(
                "UPDATE approvals SET slack_channel = %s, slack_ts = %s, slack_permalink = %s"
                " WHERE id = %s",
                (ref.channel, ref.ts, ref.permalink, approval_id),
            )
            return await self._fetch(conn, approval_id)

    async def set_slack_error(self, approval_id: str, error: str | None, actor: str) -> Approval:
        """Slack refused the card for good (None: took it after all): keep the error, and tell
        SSE and webhooks."""
        async with self._transaction() as conn:
            await conn.execute(
                "UPDATE approvals SET slack_error = %s WHERE id = %s", (error, approval_id)
            )
            approval = await self._fetch(conn, approval_id)
            await self._append_event(conn, NewEvent.slack_refused(approval, error, actor))
            return approval

    async def set_slack_posting(self, approval_id: str, channel: str | None) -> None:
        """A card is about to be posted in `channel`: until its ts is saved, Slack may hold it
        (None: Slack answered that it did not post it)."""
        async with self._transaction() as conn:
            await conn.execute(
                "UPDATE approvals SET slack_posting = %s WHERE id = %s", (channel, approval_id)
            )

    async def find_by_card(self, channel: str, ts: str) -> Approval:
        """The approval whose card is the message `ts` in `channel`, or `NotFound`."""
        sql = f"{self._SELECT} WHERE a.slack_channel = %s AND a.slack_ts = %s"
        async with self._connection() as conn:
            row = await (await conn.execute(sql, (channel, ts))).fetchone()
        if row is None:
            raise NotFound(f"no approval card at {channel}/{ts}")
        return _ROWS.approval(row)

    async def card_copies(self, approval_id: str) -> list[tuple[str, str]]:
        """(channel, ts) of every copy of the card posted besides the original."""
        sql = "SELECT channel, ts FROM card_copies WHERE approval_id = %s ORDER BY seq"
        async with self._connection() as conn:
            rows = await (await conn.execute(sql, (approval_id,))).fetchall()
        return [(str(c), str(t)) for c, t in rows]

    async def add_card_copy(self, approval_id: str, channel: str, ts: str) -> None:
        """Remember a copy of the card (e.g. re-posted to an escalation channel)."""
        async with self._connection() as conn:
            await conn.execute(
                "INSERT INTO card_copies (approval_id, channel, ts) VALUES (%s, %s, %s)"
                " ON CONFLICT (approval_id, channel) DO UPDATE SET ts = excluded.ts",
                (approval_id, channel, ts),
            )

    async def run_thread(self, channel: str, run_id: str) -> str | None:
        """The ts of the thread that gathers an agent run's cards in `channel`, if posted."""
        sql = "SELECT ts FROM run_threads WHERE channel = %s AND run_id = %s"
        async with self._connection() as conn:
            row = await (await conn.execute(sql, (channel, run_id))).fetchone()
        return str(row[0]) if row else None

    async def set_run_thread(self, channel: str, run_id: str, ts: str) -> None:
        """Remember the thread of an agent run (the first one remembered stays)."""
        async with self._connection() as conn:
            await conn.execute(
                "INSERT INTO run_threads (channel, run_id, ts) VALUES (%s, %s, %s)"
                " ON CONFLICT DO NOTHING",
                (channel, run_id, ts),
            )

    # -- batches ----------------------------------------------------------------------------

    async def batch(self, channel: str, key: str, limit: int) -> list[Approval]:
        """The approvals of a batch (`bot.batches`) routed to `channel`, the oldest first."""
        async with self._connection() as conn:
            return await pg_batches.members(conn, self._SELECT, channel, key, limit, _ROWS)

    async def batch_summary(self, channel: str, key: str) -> tuple[str, str] | None:
        """Where a batch's summary message is, once posted: (channel, ts)."""
        async with self._connection() as conn:
            return await pg_batches.summary(conn, channel, key)

    async def set_batch_summary(
        self, channel: str, key: str, summary_channel: str, ts: str
    ) -> tuple[str, str]:
        """Remember a batch's summary message; the first one remembered, by any replica,
        stays (returned)."""
        async with self._transaction() as conn:
            return await pg_batches.set_summary(conn, channel, key, summary_channel, ts)

    async def save_batch_view(self, view: BatchView, now: datetime, kept: float) -> None:
        """Keep a batch's drawing for the buttons that name it; forget those past `kept` s."""
        async with self._transaction() as conn:
            await pg_batches.save_view(conn, view, now, kept)

    async def batch_view(self, view_id: str) -> BatchView:
        """A batch's drawing, or `NotFound`."""
        async with self._connection() as conn:
            return await pg_batches.view(conn, view_id)

    async def decided_by(self, user: str, limit: int) -> list[Approval]:
        """The approvals `user` decided, newest first."""
        where = (
            " WHERE a.status != 'pending' AND (d.decided_by = %s OR EXISTS"
            ' (SELECT 1 FROM votes v WHERE v.approval_id = a.id AND v."user" = %s))'
            " ORDER BY d.decided_at DESC LIMIT %s"
        )
        sql = self._SELECT + where
        async with self._connection() as conn:
            rows = await (await conn.execute(sql, (user, user, limit))).fetchall()
        return [_ROWS.approval(r) for r in rows]

    async def due(self, now: datetime, limit: int = 100) -> list[Approval]:
        """Pending approvals whose expiry has passed, claimed for a while by this replica.

        The others skip them until the claim lapses, so each expiry is worked on once (and
        applied once: deciding is a compare-and-set anyway).
        """
        async with self._transaction() as conn:
            cursor = await conn.execute(
                """
                WITH due AS (
                    SELECT id FROM approvals
                    WHERE status = 'pending' AND expires_at <= %(now)s
                      AND (expiry_claimed_until IS NULL OR expiry_claimed_until <= %(now)s)
                    ORDER BY expires_at LIMIT %(limit)s
                    FOR UPDATE SKIP LOCKED
                )
                UPDATE approvals a SET expiry_claimed_until = %(until)s
                FROM due WHERE a.id = due.id RETURNING a.id
                """,
                {"now": now, "limit": limit, "until": now + timedelta(seconds=self.lease)},
            )
            ids = [row[0] for row in await cursor.fetchall()]
            if not ids:
                return []
            sql = f"{self._SELECT} WHERE a.id = ANY(%s) ORDER BY a.expires_at"
            rows = await (await conn.execute(sql, (ids,))).fetchall()
        return [_ROWS.approval(r) for r in rows]

    async def next_expiry(self) -> datetime | None:
        """When the next pending approval expires (or its claim by a replica lapses)."""
        async with self._connection() as conn:
            cursor = await conn.execute(
                "SELECT min(greatest(expires_at, expiry_claimed_until)) FROM approvals"
                " WHERE status = 'pending' AND expires_at IS NOT NULL"
            )
            row = await cursor.fetchone()
        return row[0] if row and row[0] is not None else None

    async def check_writable(self, timeout: float) -> None:
        """Write the health row: `Unavailable` when the server refuses writes (a read-only
        standby, a full disk) or does not answer within `timeout` seconds."""
        millis = max(1, round(timeout * 1000))
        try:
            async with self._transaction() as conn:
                await conn.execute(f"SET LOCAL statement_timeout = {millis}")
                await conn.execute("UPDATE health SET checked_at = now() WHERE id = 1")
        except psycopg.Error as exc:
            raise self._unavailable(exc) from exc

    # -- events -----------------------------------------------------------------------------

    _EVENT_COLUMNS = (
        "SELECT id, approval_id, kind, status, actor, at, args_before, args_after, detail, record"
        " FROM events"
    )

    async def events_since(
        self, after: int, limit: int = 500, *, states_only: bool = False
    ) -> list[Event]:
        """Audit events with id > `after`, oldest first."""
        filter_ = " AND status IS NOT NULL" if states_only else ""
        sql = f"{self._EVENT_COLUMNS} WHERE id > %s{filter_} ORDER BY id LIMIT %s"
        async with self._connection() as conn:
            rows = await (await conn.execute(sql, (after, limit))).fetchall()
        return [_ROWS.event(r) for r in rows]

    async def events_between(self, since: datetime, until: datetime | None = None) -> list[Event]:
        """Audit events in a time window, oldest first."""
        sql = f"{self._EVENT_COLUMNS} WHERE at >= %s AND at <= %s ORDER BY id"
        bounds = (since, until or datetime.max.replace(tzinfo=UTC))
        async with self._connection() as conn:
            rows = await (await conn.execute(sql, bounds)).fetchall()
        return [_ROWS.event(r) for r in rows]

    async def last_event_id(self) -> int:
        """The newest audit event's id (0 when there is none)."""
        async with self._connection() as conn:
            row = await (await conn.execute("SELECT max(id) FROM events")).fetchone()
        return int(row[0] or 0) if row else 0

    async def event(self, event_id: int) -> Event:
        """One audit event by id."""
        async with self._connection() as conn:
            cursor = await conn.execute(f"{self._EVENT_COLUMNS} WHERE id = %s", (event_id,))
            row = await cursor.fetchone()
        if row is None:
            raise NotFound(f"no event {event_id}")
        return _ROWS.event(row)

    # -- outbox -----------------------------------------------------------------------------

    async def outbox_claim(
        self,
        topic: str,
        now: datetime,
        limit: int,
        after: int = 0,
        held: Collection[int] = (),
        upto: int = LAST_ID,
    ) -> list[OutboxItem]:
        """Work due for `topic`, oldest first, held by this replica until done or retried;
        with `after`, only items queued after that one, in the order they were queued; with
        `upto`, only items queued up to that one.

        Other replicas skip an item held by a replica whose heartbeat is alive (`_beat`);
        when it lapses (the replica died), another one takes the item over. Items this replica
        holds already come back too (last), but those `held` (the caller's, in flight): a
        worker that dropped one finds it again. They come back as they are, neither locked
        nor written again: with thousands of cards queued behind Slack's pace, a sweep
        rewrote every one of them each second.
        """
        async with self._transaction() as conn:
            # An item waits while an older item of its approval and topic is queued, so a
            # card is posted before it is rewritten even when replicas work side by side.
            cursor = await conn.execute(
                """
                WITH claimed AS (
                    SELECT o.id, o.due_at FROM outbox o
                    WHERE o.topic = %(topic)s AND o.id > %(after)s AND o.due_at <= %(now)s
                      AND o.id <= %(upto)s AND o.claimed_by IS DISTINCT FROM %(me)s
                      -- held by no replica alive: a list read once, not a join, so a row
                      -- another claim took meanwhile is checked again on its new holder
                      AND (o.claimed_by IS NULL OR o.claimed_by <> ALL (ARRAY(
                        SELECT r.origin FROM replicas r WHERE r.alive_until > %(now)s)))
                      AND NOT EXISTS (
                        SELECT 1 FROM outbox older WHERE older.topic = o.topic
                        AND older.approval_id = o.approval_id AND older.id < o.id)
                    ORDER BY CASE WHEN %(after)s = 0 THEN o.due_at END, o.id
                    LIMIT %(limit)s
                    FOR UPDATE SKIP LOCKED
                ), taken AS (
                    UPDATE outbox SET claimed_by = %(me)s
                    FROM claimed WHERE outbox.id = claimed.id
                    RETURNING outbox.id, outbox.topic, outbox.approval_id, outbox.event_id,
                              outbox.attempts, claimed.due_at
                )
                SELECT t.id, t.topic, t.approval_id, t.event_id, t.attempts, e.kind, e.status,
                       t.due_at
                FROM taken t JOIN events e ON e.id = t.event_id
                UNION ALL
                SELECT o.id, o.topic, o.approval_id, o.event_id, o.attempts, e.kind, e.status,
                       o.due_at
                FROM outbox o JOIN events e ON e.id = o.event_id
                WHERE o.topic = %(topic)s AND o.id > %(after)s AND o.id <= %(upto)s
                  AND o.claimed_by = %(me)s AND o.id NOT IN (SELECT unnest(%(held)s::bigint[]))
                """,
                {
                    "topic": topic,
                    "now": now,
                    "me": self.origin,
                    "limit": limit,
                    "after": after,
                    "upto": upto,
                    "held": list(held),
                },
            )
            queued = (lambda row: row[0]) if after else (lambda row: (row[7], row[0]))
            rows = sorted(await cursor.fetchall(), key=queued)
        return [_ROWS.outbox_item(row[:7]) for row in rows]

    async def outbox_done(self, item_id: int) -> None:
        """Delivered: forget the item."""
        async with self._connection() as conn:
            await conn.execute("DELETE FROM outbox WHERE id = %s", (item_id,))

    async def outbox_retry(self, item_id: int, due: datetime, error: str) -> None:
        """Failed: try again at `due`, on whichever replica claims it first."""
        async with self._connection() as conn:
            await conn.execute(
                "UPDATE outbox SET attempts = attempts + 1, due_at = %s, last_error = %s,"
                " claimed_by = NULL WHERE id = %s",
                (due, error[:1000], item_id),
            )

    async def outbox_next_due(self, topic: str) -> datetime | None:
        """When the next item of `topic` falls due (or the heartbeat of the replica holding
        one lapses)."""
        async with self._connection() as conn:
            cursor = await conn.execute(
                "SELECT min(greatest(o.due_at, r.alive_until)) FROM outbox o"
                " LEFT JOIN replicas r ON r.origin = o.claimed_by"
                " WHERE o.topic = %s AND NOT EXISTS ("
                " SELECT 1 FROM outbox older WHERE older.topic = o.topic"
                " AND older.approval_id = o.approval_id AND older.id < o.id)",
                (topic,),
            )
            row = await cursor.fetchone()
        return row[0] if row and row[0] is not None else None

    async def first_delivery(self, key: str) -> bool:
        """Note a Slack event by its id: True the first time, on whichever replica, False
        for a redelivery."""
        async with self._transaction() as conn:
            await conn.execute(
                "DELETE FROM slack_deliveries WHERE seen_at < now() - %s * interval '1 second'",
                (DELIVERIES_KEPT,),
            )
            cursor = await conn.execute(
                "INSERT INTO slack_deliveries (id, seen_at) VALUES (%s, now())"
                " ON CONFLICT DO NOTHING RETURNING id",
                (key,),
            )
            return await cursor.fetchone() is not None

    # -- Slack's rate limits, shared by the replicas (bot.slack.pacing.Turns) ----------------

    async def take_turn(self, key: str, interval: float, window: float) -> float:
        """Reserve `key`'s next call on the database's clock, which every replica shares."""
        async with self._connection() as conn:
            cursor = await conn.execute(_TAKE_TURN, {"key": key, "interval": interval})
            row = await cursor.fetchone()
        assert row is not None
        due, now = float(row[0]) - interval, float(row[1])
        return max(0.0, due - window - now)

    async def push_turn(self, key: str, seconds: float) -> None:
        """Nothing more for `key` before `seconds` from now."""
        async with self._connection() as conn:
            await conn.execute(_PUSH_TURN, {"key": key, "seconds": seconds})

    async def outbox_pending(self, topic: str) -> int:
        """How many items of `topic` wait for delivery."""
        async with self._connection() as conn:
            cursor = await conn.execute("SELECT count(*) FROM outbox WHERE topic = %s", (topic,))
            row = await cursor.fetchone()
        return int(row[0]) if row else 0

    async def _keep_beating(self) -> None:
        """Keep this replica's claimed items away from the others while it works on them."""
        while True:
            await asyncio.sleep(self.lease / 3)
            try:
                await self._beat()
            except Unavailable as exc:
                log.warning("heartbeat not renewed: %s", exc.message)

    async def _beat(self, *, prune: bool = False) -> None:
        """This replica is alive for another `lease`: the others keep away from the outbox
        items it holds. With `prune`, forget the heartbeats that lapsed (of replicas gone: an
        item held by a replica without a live heartbeat is free either way)."""
        now = _now()
        async with self._connection() as conn:
            if prune:
                await conn.execute("DELETE FROM replicas WHERE alive_until < %s", (now,))
            await conn.execute(
                "INSERT INTO replicas (origin, alive_until) VALUES (%s, %s)"
                " ON CONFLICT (origin) DO UPDATE SET alive_until = excluded.alive_until",
                (self.origin, now + timedelta(seconds=self.lease)),
            )
