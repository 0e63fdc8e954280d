"""The SQLite engine: every statement the bot runs (the schema is in `migrations.py`).

SQLite runs in WAL mode behind one writer thread, so a burst of submissions or clicks never
blocks the event loop, and a second thread serves reads concurrently. A decision is a
compare-and-set on `status = 'pending'`, so it happens once however many deciders race.

Tables: `approvals` (the request and its state), `decisions` (one row per decided approval),
`events` (append-only audit: every state change and refusal, with a snapshot of the record),
`outbox` (durable work for webhooks and Slack, written in the same transaction as its event).
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import os
import socket
import sqlite3
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Collection, Iterable
from concurrent.futures import ThreadPoolExecutor
from contextlib import suppress
from dataclasses import dataclass
from datetime import UTC, datetime
from functools import partial
from itertools import groupby
from pathlib import Path
from typing import Any, TypeVar

from pydantic_core import from_json, to_json

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
from bot.store import sqlite_batches, sqlite_grants
from bot.store.base import DELIVERIES_KEPT, LAST_ID, Event, OutboxItem, Page
from bot.store.migrations import MIGRATIONS, database
from bot.store.rows import (
    NewEvent,
    PolicyOutcome,
    Rows,
    listing,
    request_of,
    resubmitted,
    tally,
)

__all__ = ["SQLiteStore"]

T = TypeVar("T")


def _epoch(value: datetime) -> float:
    return value.timestamp()


def _time(value: float) -> datetime:
    return datetime.fromtimestamp(value, UTC)


def _json(value: Any) -> str | None:
    """A column's compact JSON text, by pydantic's encoder: a fifth of the time of `json`'s,
    which for a call of 8,000 objects held the interpreter 6 ms (C code: no switch interval
    hands it back meanwhile). Read back by `_load`, so the same value either way."""
    return None if value is None else to_json(value).decode()


def _load(value: str | None) -> Any:
    """A JSON column's value, by pydantic's parser: a third of the time of `json`'s, and a
    record holds several (a click reads one or two records). `json` reads what it refuses: a
    text spelled by `json` with an escaped lone surrogate, which pydantic's never writes."""
    if value is None:
        return None
    try:
        return from_json(value)
    except ValueError:
        return json.loads(value)


class _Rows(dict[int, str]):
    """`_Rows(insert, columns, then)[n]`: the statement that inserts `n` rows at once."""

    def __init__(self, insert: str, columns: int, then: str = "") -> None:
        super().__init__()
        self.insert, self.then = insert, then
        self.row = "(" + ", ".join(["?"] * columns) + ")"

    def __missing__(self, n: int) -> str:
        rows = ", ".join([self.row] * n)
        self[n] = sql = f"{self.insert} VALUES {rows} {self.then}"  # placeholders only
        return sql


#: new approvals, but for a toolCallId stored already (the statement's rowcount tells)
_INSERT_APPROVALS = _Rows(
    "INSERT INTO approvals (id, tool_call_id, fingerprint, status, tool_name, created_at,"
    " expires_at, request, batch_key)",
    9,
    "ON CONFLICT (tool_call_id) DO NOTHING",
)
_INSERT_OUTBOX = _Rows("INSERT INTO outbox (topic, approval_id, event_id, due_at)", 4)
_INSERT_EVENTS = _Rows(
    "INSERT INTO events (approval_id, kind, status, actor, at, args_before, args_after, detail,"
    " record)",
    9,
)
#: rows of a statement at most (SQLite takes 32,766 values a statement at least)
_ROWS_A_STATEMENT = 500
#: the outbox rows of the events after an id: each event's, for each topic (a JSON array)
_OUTBOX_OF_EVENTS = """
    INSERT INTO outbox (topic, approval_id, event_id, due_at)
    SELECT t.value, e.approval_id, e.id, ?1 FROM events e, json_each(?2) t
    WHERE e.id > ?3 ORDER BY e.id, t.key
"""


def _insert_rows(conn: sqlite3.Connection, insert: _Rows, rows: list[tuple[Any, ...]]) -> int:
    """Insert `rows`, `_ROWS_A_STATEMENT` a statement; how many were inserted."""
    inserted = 0
    for start in range(0, len(rows), _ROWS_A_STATEMENT):
        chunk = rows[start : start + _ROWS_A_STATEMENT]
        inserted += conn.execute(insert[len(chunk)], [v for row in chunk for v in row]).rowcount
    return inserted


def _event_row(event: NewEvent, at: float) -> tuple[Any, ...]:
    """An audit event as its row of `events` (`_INSERT_EVENTS`)."""
    return (
        event.approval.id,
        event.kind,
        event.status.value if event.status else None,
        event.actor,
        at,
        _json(event.args_before),
        _json(event.args_after),
        _json(event.detail),
        event.record,
    )


def _as_stored(approval: Approval) -> Approval:
    """A new approval as read back: the same record, its times as the columns keep them
    (seconds in a float: the same microsecond, nearly always, and then no copy is made)."""
    created_at, expires_at = approval.created_at, approval.expires_at
    kept = {"created_at": _time(_epoch(created_at))}
    if expires_at is not None:
        kept["expires_at"] = _time(_epoch(expires_at))
    if kept["created_at"] == created_at and kept.get("expires_at", expires_at) == expires_at:
        return approval
    return approval.model_copy(update=kept)


@dataclass(frozen=True, slots=True)
class _NewApproval:
    """A new approval, as a write of a group (`SQLiteStore._grouped`): alone, or with those
    next to it in the group when the routing file leaves it to people (`together`)."""

    store: SQLiteStore
    approval: Approval
    fingerprint: str
    policy: PolicyOutcome | None

    def __call__(self, conn: sqlite3.Connection) -> tuple[Approval, bool]:
        return self.store._insert_one(conn, self)

    @property
    def together(
        self,
    ) -> Callable[[sqlite3.Connection, list[_NewApproval]], list[tuple[Approval, bool]]] | None:
        policy = self.policy
        alone = policy is not None and (policy.decision is not None or policy.standing)
        return None if alone else self.store._insert_all

    def row(self, stored: Approval) -> tuple[Any, ...]:
        """Its row of `approvals` (`_INSERT_APPROVALS`), `stored` as read back (`_as_stored`)."""
        return (
            stored.id,
            stored.tool_call_id,
            self.fingerprint,
            stored.status.value,
            stored.tool_name,
            _epoch(stored.created_at),
            _epoch(stored.expires_at) if stored.expires_at else None,
            request_of(stored),
            stored.batch_key,
        )


#: a write waiting for its group commit, and its caller's answer
_Write = tuple[Callable[[sqlite3.Connection], Any], asyncio.Future[Any]]


def _commit_group(
    group: list[_Write], conn: sqlite3.Connection
) -> list[tuple[Any, Exception | None]]:
    """Run the writes of `group` in one transaction, then commit: what each returned or
    raised (`SQLiteStore._grouped`). They run one after another with nothing between them;
    if one fails, the transaction is undone and run again with each write in a savepoint of
    its own, so that one undoes only itself. A write alone is its transaction: if it fails,
    nothing was written. (Savepoints cost two statements a write, a third of a submission's
    in the writer thread, for a failure a group rarely holds.)"""
    conn.execute("BEGIN IMMEDIATE")
    try:
        try:
            outcomes: list[tuple[Any, Exception | None]] = [(r, None) for r in _run(group, conn)]
        except sqlite3.OperationalError:
            raise  # the database failed (locked, full, I/O), not a write: all fail
        except Exception as exc:
            conn.execute("ROLLBACK")
            if len(group) == 1:
                return [(None, exc)]
            conn.execute("BEGIN IMMEDIATE")
            outcomes = [_in_savepoint(fn, conn) for fn, _ in group]
        conn.execute("COMMIT")
    except BaseException:
        if conn.in_transaction:
            conn.execute("ROLLBACK")
        raise
    return outcomes


def _run(group: list[_Write], conn: sqlite3.Connection) -> list[Any]:
    """What each write of `group` returns, in order. Writes next to each other that can run
    together (the same `together`: new approvals, `_NewApproval`) run in one call, a few
    statements for them all."""
    results: list[Any] = []
    writes = (fn for fn, _ in group)
    for together, run in groupby(writes, key=lambda fn: getattr(fn, "together", None)):
        alike = list(run)
        if together is None or len(alike) == 1:
            results += [fn(conn) for fn in alike]
        else:
            results += together(conn, alike)
    return results


class _OneByOne(Exception):
    """Writes run together met what only one at a time answers (a toolCallId stored already):
    the group runs again, one write at a time (`_commit_group`)."""


def _in_savepoint(
    fn: Callable[[sqlite3.Connection], Any], conn: sqlite3.Connection
) -> tuple[Any, Exception | None]:
    """One write of a group in a savepoint: what it returned, or what it raised and undid."""
    conn.execute("SAVEPOINT write")
    try:
        result = fn(conn)
    except sqlite3.OperationalError:
        raise
    except Exception as exc:
        conn.execute("ROLLBACK TO write")
        conn.execute("RELEASE write")
        return None, exc
    conn.execute("RELEASE write")
    return result, None


_CLAIM = (
    "SELECT o.id, o.topic, o.approval_id, o.event_id, o.attempts, e.kind, e.status"
    " FROM outbox o JOIN events e ON e.id = o.event_id"
)
#: the outbox items due, oldest due first, queued up to an item, but those held (a sweep; the
#: held ids a JSON array)
_DUE = (
    " WHERE o.topic = ? AND o.due_at <= ? AND o.id <= ?"
    " AND o.id NOT IN (SELECT value FROM json_each(?))"
)
_CLAIM_DUE = _CLAIM + _DUE + " ORDER BY o.due_at, o.id LIMIT ?"
#: the outbox items due and queued after one, in the order queued
_CLAIM_NEWER = _CLAIM + " WHERE o.id > ? AND +o.topic = ? AND o.due_at <= ? ORDER BY o.id LIMIT ?"

#: Under load, how long the first write of a group waits for others before they commit. A
#: commit costs about as much as the writes it serves (its transaction, its pages in the WAL,
#: two thread hand-offs, a claim by each outbox worker it wakes): with groups of four to eight
#: instead of one to three, clicks sent back to back cost about a tenth less CPU each, and
#: none waits more than this longer. Alone, a write commits at once (`_grouped`).
GROUP_LINGER = 0.003

# JSON columns hold text, times are epoch seconds.
_ROWS = Rows(load=_load, time=_time)


class SQLiteStore:
    """The embedded store: one SQLite file, one writer thread, one reader thread."""

    def __init__(
        self,
        path: str | Path,
        *,
        outbox_topics: Iterable[str] = (),
        update_topics: Iterable[str] = (),
        busy_timeout: float = 5.0,
        group_linger: float = GROUP_LINGER,
    ) -> None:
        self.path = str(path)
        #: topics that get every state change; `update_topics` also get changes of a pending
        #: approval (a vote, an edit, an escalation) so its card can show them
        self.outbox_topics = tuple(outbox_topics)
        self.update_topics = tuple(update_topics)
        self.busy_timeout = busy_timeout
        #: under load, how long a group's first write waits for others (`GROUP_LINGER`)
        self.group_linger = group_linger
        self._writer = ThreadPoolExecutor(1, thread_name_prefix="store-writer")
        self._reader = ThreadPoolExecutor(1, thread_name_prefix="store-reader")
        self._local = threading.local()
        self._connections: list[sqlite3.Connection] = []
        #: the event loop's own connection, for reads that never wait (`_read`)
        self._here: sqlite3.Connection | None = None
        #: writes waiting for the next group commit, and whether one is committing (`_grouped`)
        self._gathering: list[_Write] = []
        #: when the first write of the gathering group was asked for (its lock wait counts
        #: from then, as `_run`'s does)
        self._gathering_since = 0.0
        self._committing = False
        #: the gathering group's commit, while it lingers (`group_linger`)
        self._lingering: asyncio.TimerHandle | None = None
        #: how many writes the last group committed, and when: more than one, a moment ago,
        #: means writes are coming in together (load), and the next group lingers to gather
        self._last_group = 0
        self._last_commit = 0.0
        self._watch: asyncio.DatagramTransport | None = None

    # -- plumbing ---------------------------------------------------------------------------

    def _connect(self) -> sqlite3.Connection:
        conn: sqlite3.Connection | None = getattr(self._local, "conn", None)
        if conn is None:
            conn = sqlite3.connect(
                self.path,
                timeout=self.busy_timeout,
                isolation_level=None,
                check_same_thread=False,
            )
            conn.execute("PRAGMA journal_mode = WAL")
            conn.execute("PRAGMA synchronous = NORMAL")
            conn.execute("PRAGMA foreign_keys = ON")
            self._local.conn = conn
            self._local.waits = None
            self._connections.append(conn)
        return conn

    async def _run(
        self,
        executor: ThreadPoolExecutor,
        fn: Callable[[sqlite3.Connection], T],
        deadline: float | None = None,
    ) -> T:
        # The wait for a lock counts from the call, not from when the thread gets to it: calls
        # queued behind one that waits out a stale lock fail with it instead of in turn.
        if deadline is None:
            deadline = time.monotonic() + self.busy_timeout

        def call() -> T:
            try:
                conn = self._connect()
                # In tenths of a second: the pragma is set again only when that changes.
                waits = int(max(0.0, deadline - time.monotonic()) * 10) * 100
                if waits != self._local.waits:
                    conn.execute(f"PRAGMA busy_timeout = {waits}")
                    self._local.waits = waits
                return fn(conn)
            except sqlite3.OperationalError as exc:
                # No file path in these: they reach agents (503) and Slack users (notes).
                if "locked" in str(exc) or "busy" in str(exc):
                    raise Unavailable(
                        f"the database is locked by another process (waited "
                        f"{self.busy_timeout:g}s); stop it or remove the stale lock"
                    ) from exc
                raise Unavailable(f"the database cannot be used: {exc}") from exc

        return await asyncio.get_running_loop().run_in_executor(executor, call)

    async def _read(self, fn: Callable[[sqlite3.Connection], T]) -> T:
        """A short read (a row by its key, a few by the primary key): on the calling thread
        (the event loop), else in the reader thread.

        In WAL mode a read takes no lock a writer holds, and a row by its key costs about
        0.1 ms: less than handing it to a thread and back, which was a click's largest cost
        after its own work. The loop's connection waits for nothing (no busy timeout): in the
        rare case where a read must wait (another process recovering the WAL), the reader
        thread does the waiting instead.
        """
        try:
            conn = self._here
            if conn is None:
                conn = self._here = sqlite3.connect(
                    self.path, timeout=0, isolation_level=None, check_same_thread=False
                )
                conn.execute("PRAGMA query_only = ON")
            return fn(conn)
        except sqlite3.OperationalError as exc:
            if "locked" not in str(exc) and "busy" not in str(exc):
                raise Unavailable(f"the database cannot be used: {exc}") from exc
        return await self._run(self._reader, fn)

    async def _grouped(self, fn: Callable[[sqlite3.Connection], T]) -> T:
        """`fn` committed together with the writes asked for meanwhile (group commit): every
        write of the store goes this way, in the one writer thread, in the order asked.

        While one group commits, the next gathers; each write runs in a savepoint of the
        group's transaction, so one that fails (a conflict, a decision taken already) undoes
        only itself, and every caller is answered once the whole group is committed: an
        answer still means the write is kept. A database error fails the whole group. Under
        load one commit then serves many submissions or clicks (commits were their largest
        cost); alone, a write is a group of one and waits for nothing. While writes are coming
        in together (the last group, a moment ago, served several), a group commits once its
        first write has waited `group_linger`, as PostgreSQL's `commit_delay` waits for
        siblings, or once it is as large as the last group: clients that each send their next
        write when the last is answered (clicks back to back) are then all back, and the
        linger would only add its wait to each write.
        """
        future: asyncio.Future[T] = asyncio.get_running_loop().create_future()
        if not self._gathering:
            self._gathering_since = time.monotonic()
        self._gathering.append((fn, future))
        if not self._committing and self._lingering is None:
            self._schedule_commit()
        elif self._lingering is not None and len(self._gathering) >= self._last_group:
            self._commit_next()  # as many as the last group
        return await future

    def _schedule_commit(self) -> None:
        """Commit the gathering group now; under load (the last group served several writes
        and committed less than `group_linger` ago), once its first write has waited that."""
        now = time.monotonic()
        wait = self._gathering_since + self.group_linger - now
        if self._last_group > 1 and now - self._last_commit < self.group_linger and wait > 0:
            self._lingering = asyncio.get_running_loop().call_later(wait, self._commit_next)
        else:
            self._commit_next()

    def _commit_next(self) -> None:
        if self._lingering is not None:
            self._lingering.cancel()
            self._lingering = None
        group, self._gathering = self._gathering, []
        self._last_group = len(group)
        self._committing = True
        deadline = self._gathering_since + self.busy_timeout
        commit = partial(_commit_group, group)
        job = asyncio.ensure_future(self._run(self._writer, commit, deadline))
        job.add_done_callback(partial(self._committed, group))

    def _committed(
        self,
        group: list[_Write],
        job: asyncio.Future[list[tuple[Any, Exception | None]]],
    ) -> None:
        self._committing = False
        self._last_commit = time.monotonic()
        failed = Unavailable("the store is closing") if job.cancelled() else job.exception()
        outcomes = [(None, failed)] * len(group) if failed else job.result()
        for (_, future), (result, error) in zip(group, outcomes, strict=True):
            if future.done():
                continue
            if error is not None:
                future.set_exception(error)
            else:
                future.set_result(result)
        if self._gathering:
            self._schedule_commit()

    async def open(self) -> None:
        """Create the file if needed and run pending migrations."""
        Path(self.path).parent.mkdir(parents=True, exist_ok=True)
        await self._grouped(self._migrate)

    def _migrate(self, conn: sqlite3.Connection) -> None:
        conn.execute(
            "CREATE TABLE IF NOT EXISTS migrations (version INTEGER PRIMARY KEY, applied_at REAL)"
        )
        done = {row[0] for row in conn.execute("SELECT version FROM migrations")}
        for version, migration in enumerate(MIGRATIONS, start=1):
            if version not in done:
                migration(database(conn))
                conn.execute("INSERT INTO migrations VALUES (?, ?)", (version, time.time()))

    async def close(self) -> None:
        """Finish queued work and close every connection."""

        def close_conn(_: sqlite3.Connection) -> None:
            conn = getattr(self._local, "conn", None)
            if conn is not None:
                conn.close()
                self._local.conn = None

        if self._lingering is not None:  # the group gathering now commits before the close
            self._commit_next()
        for executor in (self._writer, self._reader):
            await self._run(executor, close_conn)
            executor.shutdown(wait=True)
        if self._here is not None:
            self._here.close()
            self._here = None
        if self._watch is not None:
            self._watch.close()
            self._watch = None

    # -- changes made by other processes ----------------------------------------------------

    @property
    def _address(self) -> str:
        """A datagram address unique to this database file: the CLI tells a running bot here."""
        digest = hashlib.sha256(os.path.realpath(self.path).encode()).hexdigest()[:24]
        if sys.platform == "linux":
            return f"\0approval-bot-{digest}"
        return os.path.join(tempfile.gettempdir(), f"approval-bot-{digest}.sock")

    async def watch(
        self, callback: Callable[[str], None], on_reconnect: Callable[[], None] | None = None
    ) -> None:
        """Call `callback(approval_id)` when another process changes an approval in this file.

        `on_reconnect` is never called: a local datagram socket has no connection to lose.
        """

        class Receiver(asyncio.DatagramProtocol):
            def datagram_received(self, data: bytes, addr: Any) -> None:
                callback(data.decode(errors="replace"))

        if not self._address.startswith("\0"):
            with suppress(FileNotFoundError):
                os.unlink(self._address)
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        try:
            sock.bind(self._address)
            sock.setblocking(False)
        except BaseException:
            sock.close()
            raise
        transport, _ = await asyncio.get_running_loop().create_datagram_endpoint(
            Receiver, sock=sock
        )
        self._watch = transport

    def _announce(self, approval_id: str) -> None:
        # Runs in the process that did not watch (e.g. `approval-bot decide`): wake the bot.
        if self._watch is not None:
            return
        # No bot running on this file is fine: it reads the store when it starts.
        with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as sock, suppress(OSError):
            sock.sendto(approval_id.encode(), self._address)

    # -- rows -------------------------------------------------------------------------------

    _SELECT = """
        SELECT a.id, a.status, a.expires_at, a.slack_channel, a.slack_ts, a.slack_permalink,
               a.request, d.approved, d.action, d.approved_args, d.decided_by,
               d.decided_by_name, d.approvers, d.comment, d.decided_at, a.seq, a.created_at,
               a.current_args, a.edited_by, a.escalations,
               (SELECT json_group_array(user) FROM
                   (SELECT user FROM votes v WHERE v.approval_id = a.id ORDER BY v.at, v.rowid)),
               a.edited_at, a.slack_error, a.slack_posting, a.fingerprint
        FROM approvals a LEFT JOIN decisions d ON d.approval_id = a.id
    """

    def _fetch(self, conn: sqlite3.Connection, approval_id: str) -> Approval:
        row = conn.execute(self._SELECT + " WHERE a.id = ?", (approval_id,)).fetchone()
        if row is None:
            raise NotFound(f"no approval with id {approval_id!r}")
        return _ROWS.approval(row)

    def _append_event(self, conn: sqlite3.Connection, event: NewEvent) -> int:
        cursor = conn.execute(_INSERT_EVENTS[1], _event_row(event, time.time()))
        event_id = int(cursor.lastrowid or 0)
        topics = event.topics(self.outbox_topics, self.update_topics)
        if topics:  # in one statement, as the approval's (see `insert`)
            now = time.time()
            conn.execute(
                _INSERT_OUTBOX[len(topics)],
                [v for topic in topics for v in (topic, event.approval.id, event_id, now)],
            )
        return event_id

    # -- approvals --------------------------------------------------------------------------

    async def insert(
        self, approval: Approval, fingerprint: str, policy: PolicyOutcome | None = None
    ) -> tuple[Approval, bool]:
        """Store a new approval; the same toolCallId with the same args returns the first one.
        With `policy.decision`, it is decided in the same transaction."""
        new = _NewApproval(self, approval, fingerprint, policy)
        approval, created = await self._grouped(new)
        if created:
            self._announce(approval.id)
        return approval, created

    def _insert_one(self, conn: sqlite3.Connection, new: _NewApproval) -> tuple[Approval, bool]:
        approval, policy = new.approval, new.policy
        # One statement for a new toolCallId, the common case: no read before it. (Each
        # statement hands the interpreter to the event loop and waits to get it back, about a
        # millisecond under load: the writer's pace is its statements, not its rows.)
        stored = _as_stored(approval)
        inserted = conn.execute(_INSERT_APPROVALS[1], new.row(stored))
        if inserted.rowcount == 0:  # this toolCallId is stored already
            row = conn.execute(
                "SELECT id, fingerprint, tool_name FROM approvals WHERE tool_call_id = ?",
                (approval.tool_call_id,),
            ).fetchone()
            return self._fetch(conn, resubmitted(approval, new.fingerprint, row)), False
        outcome, grant = policy, None
        if outcome is not None and outcome.standing and outcome.decision is None:
            grant = sqlite_grants.matching(conn, stored, _ROWS)
            if grant is not None:
                outcome = outcome.granted(grant, grant_decision(grant, stored))
        self._append_event(conn, NewEvent.submitted(stored, approval, outcome))
        if outcome is not None and outcome.decision is not None:
            stored, _ = self._decide(
                conn, approval.id, outcome.status, outcome.decision, cards=outcome.cards
            )
        if grant is not None:
            origin = self._fetch(conn, grant.approval_id)
            self._append_event(conn, NewEvent.grant_used(origin, grant, stored))
        return stored, True

    def _insert_all(
        self, conn: sqlite3.Connection, news: list[_NewApproval]
    ) -> list[tuple[Approval, bool]]:
        """New approvals the routing file leaves to people (`_NewApproval.together`), stored
        as `_insert_one` stores each, in five statements for them all: under a burst, one
        at a time, the writer thread waited for the interpreter after each of its three
        statements a submission, and committed the burst's last thousands alone after the
        event loop had read them all. A toolCallId stored already, or twice among them:
        `_OneByOne`."""
        stored = [_as_stored(new.approval) for new in news]
        rows = [new.row(record) for record, new in zip(stored, news, strict=True)]
        if _insert_rows(conn, _INSERT_APPROVALS, rows) != len(rows):
            raise _OneByOne
        events = [
            NewEvent.submitted(record, new.approval, new.policy)
            for record, new in zip(stored, news, strict=True)
        ]
        topics = {event.topics(self.outbox_topics, self.update_topics) for event in events}
        if len(topics) != 1:
            raise _OneByOne
        (last,) = conn.execute("SELECT coalesce(max(id), 0) FROM events").fetchone()
        at = time.time()
        _insert_rows(conn, _INSERT_EVENTS, [_event_row(event, at) for event in events])
        # each new event's rows, in order: the events after `last` are these (one writer)
        conn.execute(_OUTBOX_OF_EVENTS, (at, json.dumps(topics.pop()), last))
        return [(record, True) for record in stored]

    async def get(self, approval_id: str) -> Approval:
        """The approval, or `NotFound`."""
        return await self._read(lambda conn: self._fetch(conn, approval_id))

    async def find(
        self, *, status: Status | None, tool_name: str | None, limit: int, cursor: str | None
    ) -> Page:
        """Approvals newest first, filtered, one page at a time."""
        where, params = listing(status, tool_name, cursor, "?")
        sql = f"{self._SELECT}{where} ORDER BY a.seq DESC LIMIT ?"

        def select(conn: sqlite3.Connection) -> Page:
            return _ROWS.page(conn.execute(sql, (*params, limit + 1)).fetchall(), limit)

        return await self._run(self._reader, select)

    def _decide(
        self,
        conn: sqlite3.Connection,
        approval_id: str,
        status: Status,
        decision: Decision,
        *,
        cards: bool = True,
        current: Approval | None = None,
    ) -> tuple[Approval, int]:
        """Decide `approval_id` from pending; `current`: its record as this transaction has it
        (read and changed here), which the decided record is made from instead of read again."""
        changed = conn.execute(
            "UPDATE approvals SET status = ? WHERE id = ? AND status = 'pending'",
            (status.value, approval_id),
        ).rowcount
        if changed != 1:
            raise AlreadyDecided(self._fetch(conn, approval_id))
        conn.execute(
            "INSERT INTO decisions (approval_id, approved, action, approved_args, decided_by,"
            " decided_by_name, approvers, comment, decided_at)"
            " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (
                approval_id,
                int(decision.approved),
                decision.action.value,
                _json(decision.approved_args),
                decision.decided_by,
                decision.decided_by_name,
                _json(decision.approvers),
                decision.comment,
                _epoch(decision.decided_at),
            ),
        )
        if current is None:
            approval = self._fetch(conn, approval_id)
        else:
            approval = current.model_copy(update={"status": status, "decision": decision})
        event = NewEvent.decided(approval, status, decision, cards=cards)
        return approval, self._append_event(conn, event)

    async def decide(
        self,
        approval_id: str,
        status: Status,
        decision: Decision,
        check: Callable[[Approval], object] | None = None,
    ) -> tuple[Approval, int]:
        """`Store.decide`, in one group-commit write."""

        def decide(conn: sqlite3.Connection) -> tuple[Approval, int]:
            current = None
            if check is not None:
                check(current := self._fetch(conn, approval_id))
            return self._decide(conn, approval_id, status, decision, current=current)

        decided = await self._grouped(decide)
        self._announce(approval_id)
        return decided

    async def vote(
        self,
        approval_id: str,
        user: str,
        args: dict[str, Any] | None,
        decide: Callable[[Approval], Decision],
        check: Callable[[Approval], Proposal | None],
    ) -> tuple[Approval, bool]:
        """`Store.vote`: the record read, checked and counted in one group-commit write."""

        def vote(conn: sqlite3.Connection) -> tuple[Approval, bool]:
            approval = self._fetch(conn, approval_id)
            allow = check(approval)
            counted, edited = tally(approval, user, args)
            if edited:
                conn.execute(
                    "UPDATE approvals SET current_args = ?, edited_by = ?, edited_at = ?"
                    " WHERE id = ?",
                    (_json(args), user, time.time(), approval_id),
                )
                conn.execute("DELETE FROM votes WHERE approval_id = ?", (approval_id,))
                self._append_event(conn, NewEvent.edited(approval, user, counted.current_args))
            conn.execute(
                "INSERT OR IGNORE INTO votes (approval_id, user, at) VALUES (?, ?, ?)",
                (approval_id, user, time.time()),
            )
            if allow is not None:
                sqlite_grants.propose(conn, approval_id, allow)
            if len(counted.progress.approved_by) >= approval.policy.required_approvals:
                status = Status.APPROVED
                # an edit's time is the database's: read the record again after one
                current = None if edited else counted
                decision = decide(counted)
                decided = self._decide(conn, approval_id, status, decision, current=current)[0]
                if may_have_proposals(approval, allow is not None):
                    self._settle(conn, decided)
                return decided, True
            approval = self._fetch(conn, approval_id)
            self._append_event(conn, NewEvent.voted(approval, user))
            return approval, False

        result = await self._grouped(vote)
        self._announce(approval_id)
        return result

    def _settle(self, conn: sqlite3.Connection, decided: Approval) -> None:
        """The approval was decided by votes: grant what its approvers proposed, if they all
        did (else audit why not)."""
        proposed = sqlite_grants.proposals(conn, decided.id, _ROWS)
        if not proposed:
            return
        grant, missing = settle(decided, proposed, new_grant_id())
        if grant is None:
            self._append_event(conn, NewEvent.grant_lapsed(decided, missing))
            return
        sqlite_grants.create(conn, grant)
        assert decided.decision is not None
        self._append_event(conn, NewEvent.grant_made(decided, grant, decided.decision.decided_by))

    # -- standing approvals -----------------------------------------------------------------

    async def grant(self, grant_id: str) -> Grant:
        """A standing approval, or `NotFound`."""
        return await self._run(self._reader, lambda conn: sqlite_grants.one(conn, grant_id, _ROWS))

    async def grants(
        self, now: datetime, *, approval_id: str | None = None, limit: int = 100
    ) -> list[Grant]:
        """Standing approvals neither revoked nor expired at `now` (of one approval)."""
        return await self._run(
            self._reader,
            lambda conn: sqlite_grants.active(conn, now, approval_id, limit, _ROWS),
        )

    async def revoke_grant(self, grant_id: str, user: str, now: datetime) -> Grant:
        """Revoke a standing approval: no call matches it from now on. `GrantGone` when it
        was revoked or expired already."""

        def revoke(conn: sqlite3.Connection) -> Grant:
            grant = sqlite_grants.one(conn, grant_id, _ROWS)
            if not sqlite_grants.revoke(conn, grant_id, user, now):
                raise GrantGone(f"standing approval {grant_id} was revoked or has expired")
            origin = self._fetch(conn, grant.approval_id)
            self._append_event(conn, NewEvent.grant_revoked(origin, grant, user))
            return sqlite_grants.one(conn, grant_id, _ROWS)

        revoked = await self._grouped(revoke)
        self._announce(revoked.approval_id)
        return revoked

    async def extend(self, approval_id: str, expires_at: datetime, actor: str) -> Approval:
        """Escalation: push a pending approval's expiry once and count it.

        Once only: an approval already escalated (or decided) gets `AlreadyDecided` with the
        current record, as in the PostgreSQL store where several replicas may try.
        """

        def extend(conn: sqlite3.Connection) -> Approval:
            changed = conn.execute(
                "UPDATE approvals SET expires_at = ?, escalations = escalations + 1"
                " WHERE id = ? AND status = 'pending' AND escalations = 0",
                (_epoch(expires_at), approval_id),
            ).rowcount
            if changed != 1:
                raise AlreadyDecided(self._fetch(conn, approval_id))
            approval = self._fetch(conn, approval_id)
            self._append_event(conn, NewEvent.escalated(approval, actor))
            return approval

        extended = await self._grouped(extend)
        self._announce(approval_id)
        return extended

    async def escalations(self, approval_id: str) -> int:
        """How often an approval's expiry was extended."""

        def count(conn: sqlite3.Connection) -> int:
            row = conn.execute(
                "SELECT escalations FROM approvals WHERE id = ?", (approval_id,)
            ).fetchone()
            if row is None:
                raise NotFound(f"no approval with id {approval_id!r}")
            return int(row[0])

        return await self._run(self._reader, count)

    async def record(
        self, approval_id: str, kind: str, actor: str | None, detail: dict[str, Any]
    ) -> int:
        """Append an audit event that changes no state (a refused click, a posted card…)."""

        def record(conn: sqlite3.Connection) -> int:
            approval = self._fetch(conn, approval_id)
            return self._append_event(conn, NewEvent(approval, kind, None, actor, detail=detail))

        return await self._grouped(record)

    async def set_slack_ref(self, approval_id: str, ref: SlackRef) -> Approval:
        """Remember where the card was posted."""

        def update(conn: sqlite3.Connection) -> Approval:
            conn.execute(
                "UPDATE approvals SET slack_channel = ?, slack_ts = ?, slack_permalink = ?"
                " WHERE id = ?",
                (ref.channel, ref.ts, ref.permalink, approval_id),
            )
            return self._fetch(conn, approval_id)

        return await self._grouped(update)

    async def set_slack_error(self, approval_id: str, error: str | None, actor: str) -> Approval:
        """Slack refused the card for good (None: took it after all): keep the error, and tell
        SSE and webhooks."""

        def update(conn: sqlite3.Connection) -> Approval:
            conn.execute("UPDATE approvals SET slack_error = ? WHERE id = ?", (error, approval_id))
            approval = self._fetch(conn, approval_id)
            self._append_event(conn, NewEvent.slack_refused(approval, error, actor))
            return approval

        refused = await self._grouped(update)
        self._announce(approval_id)
        return refused

    async def set_slack_posting(self, approval_id: str, channel: str | None) -> None:
        """A card is about to be posted in `channel`: until its ts is saved, Slack may hold it
        (None: Slack answered that it did not post it)."""
        await self._grouped(
            lambda conn: conn.execute(
                "UPDATE approvals SET slack_posting = ? WHERE id = ?", (channel, approval_id)
            )
        )

    async def find_by_card(self, channel: str, ts: str) -> Approval:
        """The approval whose card is the message `ts` in `channel`, or `NotFound`."""

        def select(conn: sqlite3.Connection) -> Approval:
            sql = f"{self._SELECT} WHERE a.slack_channel = ? AND a.slack_ts = ?"
            row = conn.execute(sql, (channel, ts)).fetchone()
            if row is None:
                raise NotFound(f"no approval card at {channel}/{ts}")
            return _ROWS.approval(row)

        return await self._run(self._reader, select)

    async def card_copies(self, approval_id: str) -> list[tuple[str, str]]:
        """(channel, ts) of every copy of the card posted besides the original."""
        sql = "SELECT channel, ts FROM card_copies WHERE approval_id = ? ORDER BY rowid"
        return await self._run(
            self._reader,
            lambda conn: [(str(c), str(t)) for c, t in conn.execute(sql, (approval_id,))],
        )

    async def add_card_copy(self, approval_id: str, channel: str, ts: str) -> None:
        """Remember a copy of the card (e.g. re-posted to an escalation channel)."""
        sql = "INSERT OR REPLACE INTO card_copies (approval_id, channel, ts) VALUES (?, ?, ?)"
        await self._grouped(lambda conn: conn.execute(sql, (approval_id, channel, ts)))

    async def run_thread(self, channel: str, run_id: str) -> str | None:
        """The ts of the thread that gathers an agent run's cards in `channel`, if posted."""

        def select(conn: sqlite3.Connection) -> str | None:
            sql = "SELECT ts FROM run_threads WHERE channel = ? AND run_id = ?"
            row = conn.execute(sql, (channel, run_id)).fetchone()
            return str(row[0]) if row else None

        return await self._run(self._writer, select)

    async def set_run_thread(self, channel: str, run_id: str, ts: str) -> None:
        """Remember the thread of an agent run."""
        await self._grouped(
            lambda conn: conn.execute(
                "INSERT OR IGNORE INTO run_threads (channel, run_id, ts) VALUES (?, ?, ?)",
                (channel, run_id, ts),
            )
        )

    # -- batches ----------------------------------------------------------------------------

    async def batch(self, channel: str, key: str, limit: int) -> list[Approval]:
        """The approvals of a batch (`bot.batches`) routed to `channel`, the oldest first."""
        return await self._run(
            self._reader,
            lambda conn: sqlite_batches.members(conn, self._SELECT, channel, key, limit, _ROWS),
        )

    async def batch_summary(self, channel: str, key: str) -> tuple[str, str] | None:
        """Where a batch's summary message is, once posted: (channel, ts)."""
        return await self._run(
            self._writer, lambda conn: sqlite_batches.summary(conn, channel, key)
        )

    async def set_batch_summary(
        self, channel: str, key: str, summary_channel: str, ts: str
    ) -> tuple[str, str]:
        """Remember a batch's summary message; the first one remembered stays (returned)."""
        return await self._grouped(
            lambda conn: sqlite_batches.set_summary(conn, channel, key, summary_channel, ts)
        )

    async def save_batch_view(self, view: BatchView, now: datetime, kept: float) -> None:
        """Keep a batch's drawing for the buttons that name it; forget those past `kept` s."""
        await self._grouped(lambda conn: sqlite_batches.save_view(conn, view, _epoch(now), kept))

    async def batch_view(self, view_id: str) -> BatchView:
        """A batch's drawing, or `NotFound`."""
        return await self._run(self._reader, lambda conn: sqlite_batches.view(conn, view_id))

    async def decided_by(self, user: str, limit: int) -> list[Approval]:
        """The approvals `user` decided, newest first."""
        where = (
            " WHERE a.status != 'pending' AND (d.decided_by = ? OR EXISTS"
            " (SELECT 1 FROM votes v WHERE v.approval_id = a.id AND v.user = ?))"
            " ORDER BY d.decided_at DESC LIMIT ?"
        )
        sql = self._SELECT + where
        return await self._run(
            self._reader,
            lambda conn: [_ROWS.approval(r) for r in conn.execute(sql, (user, user, limit))],
        )

    async def due(self, now: datetime) -> list[Approval]:
        """Pending approvals whose expiry has passed."""

        def select(conn: sqlite3.Connection) -> list[Approval]:
            rows = conn.execute(
                f"{self._SELECT} WHERE a.status = 'pending' AND a.expires_at <= ?"
                " ORDER BY a.expires_at",
                (_epoch(now),),
            ).fetchall()
            return [_ROWS.approval(r) for r in rows]

        return await self._run(self._reader, select)

    async def next_expiry(self) -> datetime | None:
        """When the next pending approval expires, if any does."""

        def select(conn: sqlite3.Connection) -> datetime | None:
            row = conn.execute(
                "SELECT MIN(expires_at) FROM approvals WHERE status = 'pending'"
            ).fetchone()
            return _time(row[0]) if row and row[0] is not None else None

        return await self._run(self._reader, select)

    async def check_writable(self, timeout: float) -> None:
        """Write the health row: `Unavailable` when the file is locked, full or read-only."""

        def touch(conn: sqlite3.Connection) -> None:
            conn.execute("UPDATE health SET checked_at = ? WHERE id = 1", (time.time(),))

        try:
            await asyncio.wait_for(self._grouped(touch), timeout)
        except TimeoutError:
            raise Unavailable(
                f"the database cannot be written: busy for over {timeout:g}s"
            ) from None

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
        sql = f"{self._EVENT_COLUMNS} WHERE id > ?{filter_} ORDER BY id LIMIT ?"
        return await self._run(
            self._reader,
            lambda conn: [_ROWS.event(r) for r in conn.execute(sql, (after, limit)).fetchall()],
        )

    async def events_between(self, since: datetime, until: datetime | None = None) -> list[Event]:
        """Audit events in a time window, oldest first."""
        sql = f"{self._EVENT_COLUMNS} WHERE at >= ? AND at <= ? ORDER BY id"
        bounds = (_epoch(since), _epoch(until) if until else float("inf"))
        return await self._run(
            self._reader,
            lambda conn: [_ROWS.event(r) for r in conn.execute(sql, bounds).fetchall()],
        )

    async def last_event_id(self) -> int:
        """The newest audit event's id (0 when there is none)."""

        def select(conn: sqlite3.Connection) -> int:
            row = conn.execute("SELECT MAX(id) FROM events").fetchone()
            return int(row[0] or 0)

        return await self._run(self._reader, select)

    async def event(self, event_id: int) -> Event:
        """One audit event by id."""

        def select(conn: sqlite3.Connection) -> Event:
            row = conn.execute(f"{self._EVENT_COLUMNS} WHERE id = ?", (event_id,)).fetchone()
            if row is None:
                raise NotFound(f"no event {event_id}")
            return _ROWS.event(row)

        return await self._run(self._reader, select)

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
        """Work due for `topic`, oldest first, but the items `held` (the caller's, in flight)
        and, with `upto`, those queued after that one; with `after`, only items queued after
        that one, in the order they were queued. One process owns a topic's worker."""
        # With `after`, by the primary key from it: `+` keeps SQLite off the index on topic and
        # due time, which holds every item queued behind Slack's pace (a claim would read them
        # all, and one comes after every commit). Such a claim reads a few rows, on the loop;
        # a sweep reads every item due, in the writer thread.
        if after:
            newer = (after, topic, _epoch(now), limit)
            return await self._read(
                lambda conn: [_ROWS.outbox_item(row) for row in conn.execute(_CLAIM_NEWER, newer)]
            )
        due = (topic, _epoch(now), upto, json.dumps(list(held)), limit)
        return await self._run(
            self._writer,
            lambda conn: [_ROWS.outbox_item(row) for row in conn.execute(_CLAIM_DUE, due)],
        )

    async def outbox_done(self, item_id: int) -> None:
        """Delivered: forget the item."""
        await self._grouped(
            lambda conn: conn.execute("DELETE FROM outbox WHERE id = ?", (item_id,))
        )

    async def outbox_retry(self, item_id: int, due: datetime, error: str) -> None:
        """Failed: try again at `due`."""
        await self._grouped(
            lambda conn: conn.execute(
                "UPDATE outbox SET attempts = attempts + 1, due_at = ?, last_error = ?"
                " WHERE id = ?",
                (_epoch(due), error[:1000], item_id),
            )
        )

    async def outbox_next_due(self, topic: str) -> datetime | None:
        """When the next item of `topic` falls due."""

        def select(conn: sqlite3.Connection) -> datetime | None:
            sql = "SELECT MIN(due_at) FROM outbox WHERE topic = ?"
            row = conn.execute(sql, (topic,)).fetchone()
            return _time(row[0]) if row and row[0] is not None else None

        return await self._run(self._writer, select)

    async def first_delivery(self, key: str) -> bool:
        """Note a Slack event by its id: True the first time, False for a redelivery."""
        now = time.time()

        def note(conn: sqlite3.Connection) -> bool:
            conn.execute("DELETE FROM slack_deliveries WHERE seen_at < ?", (now - DELIVERIES_KEPT,))
            sql = "INSERT OR IGNORE INTO slack_deliveries (id, seen_at) VALUES (?, ?)"
            return conn.execute(sql, (key, now)).rowcount == 1

        return await self._grouped(note)

    async def outbox_pending(self, topic: str) -> int:
        """How many items of `topic` wait for delivery."""

        def count(conn: sqlite3.Connection) -> int:
            row = conn.execute("SELECT COUNT(*) FROM outbox WHERE topic = ?", (topic,)).fetchone()
            return int(row[0])

        return await self._run(self._reader, count)
