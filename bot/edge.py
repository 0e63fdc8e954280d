"""The HTTP edge: what holds for every connection before and around the handlers, and the
runner the bot is served with (`serve` and `dev`).

- A request body is read against a deadline (`Edge.body_deadline`, 10 s): a client that
  trickles its body is answered 408 and disconnected, whatever route it posts to.
- A request refused before its body arrived is not read on: the answer says `Connection:
  close`, and the rest of the body is discarded for at most `LINGER` seconds.
- A new connection gets aiohttp's handling (its parser, tasks and timers, about 5 kB) once its
  first bytes arrive, `HANDOVERS` connections a turn of the loop (`Greeting`): thousands of
  agents connecting at once are handled a few hundred at a time instead of all being held
  half-read together.
- Connections are capped (`Edge.max_connections`, below the file-descriptor limit). At the
  cap, a new connection takes the place of the one idle longest: one that has sent nothing
  yet, is between requests, or is still sending its headers or its body. Connections inside
  a handler (a decision being written) or parked (an agent's long poll) are never evicted;
  when every connection is busy, the new one is answered 503 and closed. Slow clients
  therefore cannot exhaust the process's descriptors, nor keep a signed Slack click out.
- A client that hangs up is known at once (`Edge.hangup`), so a long poll ends with it.
- A new connection whose first bytes are a whole small request to a route the app answers
  whole (`Edge.whole`: agents' submissions) is answered without aiohttp's handling of it (its
  protocol, request, task, middlewares and response: three quarters of serving a small
  request); the connection is parked meanwhile. Anything else goes to aiohttp (`read_whole`).
- A long poll leaves aiohttp while it waits (`Edge.park`): its connection is then a transport
  and a few fields until it is answered (and kept alive, a new connection again), so ten
  thousand waiting agents cost 30 MB instead of the 140 MB they cost inside aiohttp.
- Malformed HTTP and clients that vanish mid-request are logged in one line, not as
  tracebacks: they are the client's doing, often unauthenticated junk.

Handler cancellation stays off: a request whose client hung up still finishes, so a decision
is never cut off halfway through its commit.
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import itertools
import logging
import os
import re
import resource
import signal
import socket
import sys
import time
from collections import deque
from collections.abc import Awaitable, Callable, Container, Coroutine, Iterator
from dataclasses import dataclass, field
from email.utils import formatdate
from typing import Any, TypeVar, cast

from aiohttp import hdrs, web
from aiohttp.abc import AbstractAccessLogger
from aiohttp.http import SERVER_SOFTWARE, HttpVersion, HttpVersion11
from aiohttp.http_exceptions import HttpProcessingError
from multidict import CIMultiDict, CIMultiDictProxy

from bot.errors import BadRequest

__all__ = [
    "BODY_DEADLINE",
    "EDGE",
    "LINGER",
    "LISTEN_QUEUE",
    "WHOLE_BODY",
    "AccessLog",
    "BotRunner",
    "BotSite",
    "BrokenBody",
    "ClientGone",
    "Edge",
    "EdgeServer",
    "Parked",
    "ParkedConnection",
    "SlowBody",
    "WholeHandler",
    "WholeRequest",
    "answer_and_close",
    "connection_limit",
    "hung_up",
    "listen_backlog",
    "read_body",
    "read_whole",
    "refuse",
    "run",
    "run_on_serve_loop",
]

log = logging.getLogger(__name__)

R = TypeVar("R", bound=web.StreamResponse)
T = TypeVar("T")

#: seconds a request body may take to arrive, counted from when the handler asks for it
BODY_DEADLINE = 10.0
#: seconds the unread rest of a refused request's body is discarded before the connection closes
LINGER = 2.0
#: seconds an idle keep-alive connection is kept (as `web.run_app`)
KEEPALIVE = 75.0
#: at most this many connections whatever the descriptor limit
MAX_CONNECTIONS = 16384
#: the listen backlog at most (see `listen_backlog`)
BACKLOG = 1024
#: connections the kernel holds for the bot until it accepts them (Linux caps this at
#: `net.core.somaxconn`, 4096 by default): a burst of agents connecting at once beyond the
#: queue has its handshakes dropped, and each such agent waits a second or more to retry
LISTEN_QUEUE = 4096
#: bytes a parked connection keeps of what its client sends before its answer (see
#: `ParkedConnection.data_received`)
EARLY_BYTES = 64 * 1024
#: connections handed to aiohttp's handling a turn of the loop at most (see `Greeting`)
HANDOVERS = 128
#: descriptors kept for the rest: the store, Slack's and the webhooks' connection pools, logs
RESERVE = 96

_BUSY = (
    b"HTTP/1.1 503 Service Unavailable\r\n"
    b"Content-Type: application/json\r\n"
    b"Content-Length: 78\r\n"
    b"Retry-After: 1\r\n"
    b"Connection: close\r\n"
    b"\r\n"
    b'{"error": "unavailable", "message": "too many connections; retry in a moment"}'
)
assert len(_BUSY.partition(b"\r\n\r\n")[2]) == 78


def _descriptors() -> int | None:
    soft, _ = resource.getrlimit(resource.RLIMIT_NOFILE)
    return None if soft == resource.RLIM_INFINITY or soft <= 0 else soft


def listen_backlog() -> int:
    """How many connections asyncio accepts in one turn of the loop: 1/32 of the descriptor
    limit, 8 to `BACKLOG`. Each holds a descriptor before the server sees it; the server's
    refusals and evictions free theirs two turns later. So about four bursts are in flight at
    once, and a small burst keeps a small limit safe. (The kernel's queue of connections not
    yet accepted holds no descriptor of the bot's: it is `LISTEN_QUEUE`, see `BotSite`.)
    uvloop's loop (`loop_factory`) accepts all the queue holds in one turn instead; libuv
    keeps a spare descriptor and with it closes at once those beyond the limit."""
    soft = _descriptors()
    return BACKLOG if soft is None else max(8, min(BACKLOG, soft // 32))


def connection_limit() -> int:
    """Connections to accept at most: the descriptor limit (`ulimit -n`) less four accept
    bursts and the descriptors everything else needs: 768 of 1024, 128 of 256."""
    soft = _descriptors()
    if soft is None:
        return MAX_CONNECTIONS
    spare = 4 * listen_backlog() + max(RESERVE, soft // 8)
    return max(8, min(MAX_CONNECTIONS, soft - spare))


class SlowBody(BadRequest):
    """The body did not arrive within the deadline; the connection is closed after the answer."""

    status = 408


class BrokenBody(BadRequest):
    """The body cannot be decoded (bad chunking, bad gzip); the connection cannot go on."""


class ClientGone(Exception):
    """The client hung up (or its connection was evicted) before its body arrived."""


def hung_up(request: web.BaseRequest) -> bool:
    """The connection of `request` is closed or closing."""
    return request.transport is None or request.transport.is_closing()


@dataclass
class Edge:
    """The edge's settings and state, shared by the app (`app[EDGE]`) and its runner."""

    body_deadline: float = BODY_DEADLINE
    max_connections: int = field(default_factory=connection_limit)
    #: the routes (method, path) the edge answers itself when a request to one arrives whole
    #: (`read_whole`), and their handlers; every other request goes to aiohttp
    whole: dict[tuple[str, str], WholeHandler] = field(default_factory=dict)
    #: the server, when the app is served by `BotRunner`
    server: EdgeServer | None = None

    def hangup(self, request: web.BaseRequest) -> asyncio.Future[None] | None:
        """A future done once the client of `request` has hung up; None when the server
        cannot tell (another runner than `BotRunner`)."""
        if self.server is None:
            return None
        return self.server.hangup(request.protocol)

    def park(
        self, request: web.BaseRequest, on_hangup: Callable[[], object]
    ) -> ParkedConnection | None:
        """Take the connection of `request` from aiohttp until its answer is ready: the
        handler then returns `Parked()`, and the answer goes out with `ParkedConnection.answer`.
        `on_hangup` is called if the client hangs up first. None when it cannot be (another
        runner than `BotRunner`, or the client has hung up already)."""
        if self.server is None or hung_up(request):
            return None
        return self.server.park(request, on_hangup)

    @contextlib.contextmanager
    def reading(self, request: web.BaseRequest) -> Iterator[None]:
        """While the body of `request` is read, its connection may be evicted at the cap."""
        if self.server is None:
            yield
            return
        self.server.set_idle(request.protocol, True)
        try:
            yield
        finally:
            self.server.set_idle(request.protocol, False)


EDGE: web.AppKey[Edge] = web.AppKey("edge", Edge)


async def read_body(request: web.BaseRequest) -> bytes:
    """The whole body, within the deadline: `SlowBody` after it, `BrokenBody` when it cannot be
    decoded, `ClientGone` when the connection closed first, `HTTPRequestEntityTooLarge` over
    the app's `client_max_size`."""
    edge = request.app.get(EDGE) if isinstance(request, web.Request) else None
    deadline = edge.body_deadline if edge is not None else BODY_DEADLINE
    arrived = request.content.is_eof()  # the whole body came with the head: no wait to bound
    with edge.reading(request) if edge is not None and not arrived else contextlib.nullcontext():
        try:
            async with asyncio.timeout(None if arrived else deadline):
                return await request.read()
        except TimeoutError:
            raise SlowBody(f"the body did not arrive within {deadline:g} seconds") from None
        except web.RequestPayloadError as exc:
            raise BrokenBody(f"the body cannot be read: {exc}") from None
        except (ConnectionError, RuntimeError):  # aiohttp: "Connection closed."
            if hung_up(request):
                raise ClientGone from None
            raise


async def answer_and_close(request: web.BaseRequest, response: web.Response) -> web.Response:
    """Send `response` and close the connection at once, without reading what is left of the
    request (the client may see a reset instead of the answer: it was too slow or broken)."""
    response.force_close()
    with contextlib.suppress(ConnectionError):
        await response.prepare(request)
        await response.write_eof()
    request.protocol.force_close()
    return response


def refuse(request: web.BaseRequest, response: R) -> R:
    """`response` to a request refused unread: when its body has not all arrived, the
    connection closes after the answer instead of reading the body (see `LINGER`)."""
    if not request.content.is_eof():
        response.force_close()
    return response


# -- requests that arrive whole ---------------------------------------------------------------

#: the largest body of a request the edge answers itself (`read_whole`)
WHOLE_BODY = 64 * 1024
#: the longest head of such a request (aiohttp's own limit for a line or a field is 8190)
WHOLE_HEAD = 8192
#: an HTTP/1.1 request line and its fields, of the plainest form: a field's name is a token,
#: its value visible ASCII, spaces and tabs. Anything else is aiohttp's to read (or refuse).
_PLAIN_HEAD = re.compile(
    rb"([A-Z]{1,16}) (/[!-~]{0,2048}) HTTP/1\.1\r\n"
    rb"((?:[!#$%&'*+.^_`|~0-9A-Za-z-]+:[\t -~]*\r\n){0,100})\r\n"
)
#: fields that change how a body is framed or read: such a request is aiohttp's
_FRAMING = ("Transfer-Encoding", "Content-Encoding", "Expect", "Upgrade")


@dataclass(frozen=True, slots=True)
class WholeRequest:
    """A request the edge read whole from its connection (`read_whole`), for its handler."""

    app: web.Application
    method: str
    path: str
    headers: CIMultiDictProxy[str]
    body: bytes
    #: the connection stays open after the answer (`Connection: close` says otherwise)
    keep_alive: bool = True
    #: the client's next request, sent before this one is answered (pipelined)
    rest: bytes = b""


#: answers a `WholeRequest`; it never raises (an error is an answer too)
WholeHandler = Callable[[WholeRequest], Awaitable[web.Response]]


def read_whole(
    data: bytes, app: web.Application, routes: Container[tuple[str, str]]
) -> WholeRequest | None:
    """The request to `app` at the start of `data` when it is one of `routes` and all of it
    is there: HTTP/1.1 of the plainest form (`_PLAIN_HEAD`), one `Content-Length` of at most
    `WHOLE_BODY`, nothing that changes how the body is read (`_FRAMING`) and the whole body.
    None for anything else, which aiohttp reads as before."""
    end = data.find(b"\r\n\r\n", 0, WHOLE_HEAD)
    head = _PLAIN_HEAD.fullmatch(data, 0, end + 4) if end > 0 else None
    if head is None:
        return None
    method, path = head[1].decode(), head[2].decode()
    if (method, path) not in routes:
        return None
    headers: CIMultiDict[str] = CIMultiDict()
    for line in head[3].decode().split("\r\n")[:-1]:  # each `name:value`, as matched
        name, _, value = line.partition(":")
        headers.add(name, value.strip(" \t"))
    lengths = headers.getall(hdrs.CONTENT_LENGTH, ())
    if len(lengths) != 1 or not lengths[0].isdigit() or any(f in headers for f in _FRAMING):
        return None
    connection = headers.get(hdrs.CONNECTION, "keep-alive").lower()
    start, length = end + 4, int(lengths[0])
    if length > WHOLE_BODY or len(data) < start + length or connection not in _KEEP_OR_CLOSE:
        return None
    body, rest = data[start : start + length], data[start + length :]
    return WholeRequest(
        app, method, path, CIMultiDictProxy(headers), body, connection != "close", rest
    )


_KEEP_OR_CLOSE = ("keep-alive", "close")


# -- parked connections -----------------------------------------------------------------------


class Parked(web.StreamResponse):
    """What a handler returns once it has parked its connection (`Edge.park`): aiohttp has
    nothing to send and nothing to log, and its connection handling ends."""

    async def prepare(self, request: web.BaseRequest) -> None:
        return None

    async def write_eof(self, data: bytes = b"") -> None:
        return None


class ParkedConnection(asyncio.Protocol):
    """A connection taken from aiohttp while its request waits: the transport, what the
    access log says of the request, and who to tell if the client hangs up. It is answered
    once (`answer`); then, kept alive, it is a new connection again (`EdgeServer.resume`)."""

    __slots__ = (
        "_early",
        "_keep_alive",
        "_line",
        "_on_hangup",
        "_server",
        "_started",
        "_transport",
        "_version",
    )

    def __init__(
        self,
        server: EdgeServer,
        transport: asyncio.Transport,
        line: str,
        *,
        version: HttpVersion = HttpVersion11,
        keep_alive: bool = True,
        on_hangup: Callable[[], object] = lambda: None,
        early: bytes = b"",
    ) -> None:
        self._server = server
        self._transport: asyncio.Transport | None = transport
        self._version = version
        self._keep_alive = keep_alive and len(early) <= EARLY_BYTES
        self._early = early if self._keep_alive else b""
        self._line = line
        self._started = time.perf_counter()
        self._on_hangup = on_hangup

    def data_received(self, data: bytes) -> None:
        """A client's next request, sent before this one is answered (pipelined): kept for
        once the connection is resumed, up to `EARLY_BYTES` (beyond, it is closed after the
        answer instead)."""
        if self._keep_alive and len(self._early) + len(data) <= EARLY_BYTES:
            self._early += data
        else:
            self._keep_alive, self._early = False, b""

    def eof_received(self) -> None:
        return None  # the transport closes: the client has hung up

    def connection_lost(self, exc: BaseException | None) -> None:
        if self._transport is not None:  # not answered: the client hung up first
            self._transport = None
            self._server.parked -= 1
            self._on_hangup()

    def answer(self, response: web.Response) -> None:
        """Send `response` (its status, headers and body); then the connection is kept alive
        as HTTP/1.1 keeps it unless the request said otherwise or the server is shutting
        down. Nothing when the client has hung up."""
        transport = self._transport
        if transport is None or transport.is_closing():
            return  # the client has hung up: `connection_lost` tells the wait
        self._transport = None
        self._server.parked -= 1
        keep_alive = self._keep_alive and not self._server.closing
        body = b"" if response.body is None else response.body
        assert isinstance(body, bytes), "a parked request is answered with a body in bytes"
        version = self._version
        head = [f"HTTP/{version.major}.{version.minor} {response.status} {response.reason}"]
        head += [
            f"{name}: {value}"
            for name, value in response.headers.items()
            if name not in (hdrs.CONTENT_LENGTH, hdrs.CONNECTION)
        ]
        head += [
            f"Content-Length: {len(body)}",
            f"Date: {_http_date()}",
            f"Server: {SERVER_SOFTWARE}",
        ]
        if not keep_alive:
            head.append("Connection: close")
        elif version < HttpVersion11:
            head.append("Connection: keep-alive")
        transport.write("\r\n".join(head).encode() + b"\r\n\r\n" + body)
        if keep_alive:
            self._server.resume(transport, self._early)
        else:
            transport.close()  # once what is written has gone out
        if server_log.isEnabledFor(logging.INFO):
            server_log.info(
                "%s %d %d %.6fs",
                self._line,
                response.status,
                len(body),
                time.perf_counter() - self._started,
            )


_date: tuple[int, str] = (0, "")


def _http_date() -> str:
    """The `Date` of an answer, formatted once a second (as aiohttp does)."""
    global _date
    second = int(time.time())
    if _date[0] != second:
        _date = (second, formatdate(second, usegmt=True))
    return _date[1]


class Greeting(asyncio.Protocol):
    """A new connection until it has sent something: its transport, the first bytes, and its
    server. On those bytes the server queues it, and hands it to aiohttp's handling a few
    hundred a turn (`EdgeServer.arrived`)."""

    __slots__ = ("_data", "_server", "transport")

    def __init__(self, server: EdgeServer) -> None:
        self._server = server
        self._data = b""
        self.transport: asyncio.Transport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.Transport, transport)
        self._server.greeted(self)

    def data_received(self, data: bytes) -> None:
        first = not self._data
        self._data += data
        if first and self.transport is not None:
            self._server.arrived(self)

    def eof_received(self) -> None:
        return None  # the transport closes

    def connection_lost(self, exc: BaseException | None) -> None:
        self.transport = None
        self._server.lost_greeting(self)

    def force_close(self) -> None:
        """Evicted at the cap, or the server is shutting down."""
        if self.transport is not None:
            self.transport.close()

    @property
    def data(self) -> bytes:
        """What the client has sent so far."""
        return self._data

    def take(self) -> asyncio.Transport | None:
        """The transport, once, unless it is closing: the connection is no longer a greeting."""
        transport = self.transport
        if transport is None or transport.is_closing():
            return None
        self.transport, self._data = None, b""
        return transport

    def hand_over(self, handler: web.RequestHandler) -> None:
        """The connection is `handler`'s from now on, with what it has sent so far."""
        data = self._data
        transport = self.take()
        if transport is None:
            return
        transport.set_protocol(handler)
        handler.connection_made(transport)
        handler.data_received(data)
        if not transport.is_reading():
            transport.resume_reading()


# -- the server -------------------------------------------------------------------------------


class EdgeServer(web.Server):
    """aiohttp's server with the connection cap, eviction of idle connections, hangup notice,
    parked long polls and new connections handed to aiohttp a few hundred a turn. A
    connection is *idle* when it has sent nothing yet, no handler is running for it, or its
    handler is waiting for the body (`Edge.reading`)."""

    def __init__(self, plain: web.Server, edge: Edge, app: web.Application) -> None:
        super().__init__(
            plain.request_handler,
            request_factory=plain.request_factory,
            handler_cancellation=False,
            **plain._kwargs,
        )
        self.edge = edge
        self.app = app
        #: requests being answered whole (`_answer_whole`)
        self.answering: set[asyncio.Task[None]] = set()
        self.handle_app = plain.request_handler
        self.request_handler = self._handle
        #: connections accepted and not yet lost (parked ones aside)
        self.open: set[web.RequestHandler | Greeting] = set()
        #: idle connections, the one idle longest first
        self.idle: dict[web.RequestHandler | Greeting, None] = {}
        #: new connections whose first bytes have arrived, to hand to aiohttp in turn
        self._arrived: deque[Greeting] = deque()
        #: new connections that have sent nothing yet, the oldest first, and when each came;
        #: one timer drops those silent for `KEEPALIVE` (`_drop_silent`), not one each
        self._silent: dict[Greeting, float] = {}
        self._dropping: asyncio.TimerHandle | None = None
        #: connections still handed over at once this turn of the loop, and the next turn
        self._budget = HANDOVERS
        self._next_turn: asyncio.Handle | None = None
        #: connections parked outside aiohttp (`park`): never evicted, counted in the cap
        self.parked = 0
        #: shutting down: a parked connection is closed once answered
        self.closing = False
        self.evicted = 0
        self.refused = 0
        self._hangups: dict[web.RequestHandler, asyncio.Future[None]] = {}
        self._last_warning = 0.0

    def __call__(self) -> Greeting:  # type: ignore[override]
        """The protocol of a new connection: `Greeting`, until it has sent something."""
        return Greeting(self)

    def greeted(self, greeting: Greeting) -> None:
        """A new connection: at the cap it takes the place of the one idle longest, or is
        answered 503 and closed when every connection is busy."""
        if len(self.open) + self.parked >= self.edge.max_connections and not self._evict():
            self.refused += 1
            self._warn_at_cap()
            assert greeting.transport is not None
            greeting.transport.write(_BUSY)
            greeting.force_close()
            return
        self.open.add(greeting)
        self.idle[greeting] = None
        self._silent[greeting] = now = self._loop.time()
        if self._dropping is None:
            self._dropping = self._loop.call_at(now + KEEPALIVE, self._drop_silent)

    def _drop_silent(self) -> None:
        """Close the new connections silent for `KEEPALIVE` seconds, as aiohttp closes one
        idle that long; then wait for the next oldest."""
        self._dropping = None
        cutoff = self._loop.time() - KEEPALIVE
        expired = itertools.takewhile(lambda item: item[1] <= cutoff, self._silent.items())
        for greeting in [greeting for greeting, _ in expired]:
            del self._silent[greeting]
            greeting.force_close()
        if self._silent and not self.closing:
            oldest = next(iter(self._silent.values()))
            self._dropping = self._loop.call_at(oldest + KEEPALIVE, self._drop_silent)

    def arrived(self, greeting: Greeting) -> None:
        """The first bytes of a new connection are here: it goes to aiohttp at once, or in a
        later turn of the loop when `HANDOVERS` have gone in this one."""
        self._silent.pop(greeting, None)
        if self._next_turn is None:
            self._budget = HANDOVERS
            self._next_turn = self._loop.call_soon(self._turned)
        if self._budget > 0 and not self._arrived:
            self._budget -= 1
            self._hand_over(greeting)
        else:
            self._arrived.append(greeting)
            if greeting.transport is not None:
                greeting.transport.pause_reading()  # the rest is read by aiohttp's handler

    def _turned(self) -> None:
        self._next_turn = None
        if self._arrived:
            self._budget = HANDOVERS
            while self._arrived and self._budget > 0:
                self._budget -= 1
                self._hand_over(self._arrived.popleft())
            self._next_turn = self._loop.call_soon(self._turned)

    def _hand_over(self, greeting: Greeting) -> None:
        if greeting not in self.open:  # lost or evicted meanwhile
            return
        self.open.discard(greeting)
        self.idle.pop(greeting, None)
        routes = self.edge.whole
        whole = read_whole(greeting.data, self.app, routes) if routes else None
        if whole is None:
            greeting.hand_over(super().__call__())
        elif (transport := greeting.take()) is not None:
            self._answer_whole(transport, whole)

    def _answer_whole(self, transport: asyncio.Transport, whole: WholeRequest) -> None:
        """Answer a request that arrived whole without aiohttp's handling of a connection (its
        protocol, request, task, middlewares and response: three quarters of what serving a
        small request costs). Meanwhile the connection is parked: counted in the cap, never
        evicted; answered, it is a new connection again."""
        peer = transport.get_extra_info("peername")
        remote = peer[0] if isinstance(peer, tuple) and peer else None
        parked = ParkedConnection(
            self,
            transport,
            _request_line(remote, whole.method, whole.path, HttpVersion11),
            keep_alive=whole.keep_alive,
            early=whole.rest,
        )
        transport.set_protocol(parked)
        if not transport.is_reading():
            transport.resume_reading()  # a hang-up must still be seen
        self.parked += 1
        handler = self.edge.whole[whole.method, whole.path]
        task = self._loop.create_task(_answer(parked, handler, whole))
        self.answering.add(task)
        task.add_done_callback(self.answering.discard)

    async def shutdown(self, timeout: float | None = None) -> None:
        """Requests being answered whole finish first, as aiohttp's handlers do: their writes
        commit before the app's cleanup closes the store."""
        if self.answering:
            await asyncio.wait(set(self.answering), timeout=timeout)
        await super().shutdown(timeout)

    def lost_greeting(self, greeting: Greeting) -> None:
        self.open.discard(greeting)
        self.idle.pop(greeting, None)
        self._silent.pop(greeting, None)

    def connection_made(self, handler: web.RequestHandler, transport: asyncio.Transport) -> None:
        self.open.add(handler)
        self.idle[handler] = None
        super().connection_made(handler, transport)

    def resume(self, transport: asyncio.Transport, data: bytes) -> None:
        """A parked connection, answered and kept alive: a new connection again, with the
        next request if it came early."""
        greeting = Greeting(self)
        transport.set_protocol(greeting)
        greeting.connection_made(transport)
        if data:
            greeting.data_received(data)

    def pre_shutdown(self) -> None:
        self.closing = True
        if self._dropping is not None:
            self._dropping.cancel()
            self._dropping = None
        for greeting in [g for g in self.open if isinstance(g, Greeting)]:
            greeting.force_close()
        super().pre_shutdown()

    def connection_lost(
        self, handler: web.RequestHandler, exc: BaseException | None = None
    ) -> None:
        self.open.discard(handler)
        self.idle.pop(handler, None)
        hangup = self._hangups.pop(handler, None)
        if hangup is not None and not hangup.done():
            hangup.set_result(None)
        super().connection_lost(handler, exc)

    def _evict(self) -> bool:
        """Close the connection idle longest to make room; False when none is idle."""
        if not self.idle:
            return False
        victim = next(iter(self.idle))
        self.idle.pop(victim)
        self.open.discard(victim)
        self.evicted += 1
        self._warn_at_cap()
        victim.force_close()
        return True

    def _warn_at_cap(self) -> None:
        now = time.monotonic()
        if now - self._last_warning >= 10:
            self._last_warning = now
            log.warning(
                "at the connection limit (%d): %d idle connections closed, %d refused so far",
                self.edge.max_connections,
                self.evicted,
                self.refused,
            )

    def set_idle(self, handler: web.RequestHandler, idle: bool) -> None:
        """Mark a connection idle (last in line for eviction) or busy."""
        self.idle.pop(handler, None)
        if idle and handler in self.open:
            self.idle[handler] = None

    def hangup(self, handler: web.RequestHandler) -> asyncio.Future[None]:
        """A future done once this connection is lost (at once if it is already)."""
        future = self._hangups.get(handler)
        if future is None:
            future = asyncio.get_running_loop().create_future()
            if handler in self.open:
                self._hangups[handler] = future
            else:
                future.set_result(None)
        return future

    def park(self, request: web.BaseRequest, on_hangup: Callable[[], object]) -> ParkedConnection:
        """`Edge.park`: the transport gets a `ParkedConnection` for protocol, and aiohttp's
        handler of the connection is told it has lost it (as when a client hangs up), so its
        parser, request and task end."""
        transport = request.transport
        assert transport is not None  # `Edge.park` checked
        parked = ParkedConnection(
            self,
            transport,
            AccessLog.request_line(request),
            version=request.version,
            keep_alive=request.keep_alive,
            on_hangup=on_hangup,
        )
        transport.set_protocol(parked)
        transport.resume_reading()  # aiohttp may have paused it: a hang-up must still be seen
        self.parked += 1
        handler = request.protocol
        handler.transport = None  # so that it does not close what it no longer holds
        handler.connection_lost(None)
        return parked

    async def _handle(self, request: web.BaseRequest) -> web.StreamResponse:
        handler = request.protocol
        self.set_idle(handler, False)
        try:
            return await self.handle_app(request)
        finally:
            self.set_idle(handler, True)


async def _answer(parked: ParkedConnection, handler: WholeHandler, request: WholeRequest) -> None:
    parked.answer(await handler(request))


class _ClientFaults(logging.Filter):
    """aiohttp logs malformed requests and vanished clients with a traceback; they are the
    client's doing, so one line at INFO says it."""

    def filter(self, record: logging.LogRecord) -> bool:
        exc = record.exc_info[1] if record.exc_info else None
        if isinstance(exc, HttpProcessingError | ConnectionError | web.RequestPayloadError):
            record.msg = f"{record.getMessage()}: {type(exc).__name__}: {exc}".replace("\n", " ")
            record.args = ()
            record.exc_info = record.exc_text = None
            record.levelno, record.levelname = logging.INFO, "INFO"
        return True


def _request_line(remote: str | None, method: str, target: str, version: HttpVersion) -> str:
    return f'{remote or "-"} "{method} {target} HTTP/{version.major}.{version.minor}"'


class AccessLog(AbstractAccessLogger):
    """One line a request, `127.0.0.1 "POST /slack/events HTTP/1.1" 200 0 0.001672s`: what
    aiohttp's logger prints for `%a "%r" %s %b %Tfs`, in one step instead of six (its lines
    were a tenth of a click's work). The log line's own time stands in for aiohttp's `%t`."""

    @staticmethod
    def request_line(request: web.BaseRequest) -> str:
        """`127.0.0.1 "POST /slack/events HTTP/1.1"`: the start of a request's line."""
        return _request_line(request.remote, request.method, request.path_qs, request.version)

    def log(self, request: web.BaseRequest, response: web.StreamResponse, time: float) -> None:
        if isinstance(response, Parked):  # its connection logs the answer (`ParkedConnection`)
            return
        line = self.request_line(request)
        self.logger.info("%s %d %d %.6fs", line, response.status, response.body_length, time)

    @property
    def enabled(self) -> bool:
        return self.logger.isEnabledFor(logging.INFO)


#: the logger the bot's HTTP server reports through (in place of `aiohttp.server`)
server_log = logging.getLogger("bot.http")
server_log.addFilter(_ClientFaults())


class BotSite(web.TCPSite):
    """`web.TCPSite` whose sockets queue `LISTEN_QUEUE` connections in the kernel, while asyncio
    accepts `listen_backlog()` of them a turn. asyncio uses one number for both, so the
    sockets are told the queue's length again once listening (`listen` may be called again
    on a listening socket to change it; asyncio hands out only a wrapper of each socket, so
    through a duplicate of its descriptor)."""

    def __init__(self, runner: web.BaseRunner, host: str, port: int) -> None:
        super().__init__(runner, host, port, backlog=listen_backlog())

    async def start(self) -> None:
        await super().start()
        assert self._server is not None
        # asyncio's server and uvloop's both list their sockets; typeshed's base class does not
        for listening in self._server.sockets:  # type: ignore[attr-defined]
            with socket.socket(fileno=os.dup(listening.fileno())) as same:
                same.listen(LISTEN_QUEUE)  # never below the turn's: `BACKLOG` is less


class BotRunner(web.AppRunner):
    """`web.AppRunner` serving through `EdgeServer`, handler cancellation off, with the edge's
    keep-alive and lingering times. The app needs `app[EDGE]` (`create_app` sets it)."""

    def __init__(self, app: web.Application, **kwargs: Any) -> None:
        kwargs["handler_cancellation"] = False  # never cut a decision off mid-commit
        kwargs.setdefault("keepalive_timeout", KEEPALIVE)
        kwargs.setdefault("lingering_time", LINGER)
        kwargs.setdefault("logger", server_log)
        super().__init__(app, **kwargs)

    async def _make_server(self) -> web.Server:
        plain = await super()._make_server()
        edge = self.app[EDGE]
        edge.server = EdgeServer(plain, edge, self.app)
        return edge.server


#: tracked objects allocated (less those freed) between young collections (Python's default
#: is 700). Ten thousand agents submitting at once hold up to 260,000 (each in flight is its
#: connection, task, coroutines, request and record), all alive until answered: at 20,000 a
#: burst ran twenty young collections and a middle one (150-190 ms of a 3 s burst) that walked
#: them and found nothing, as the requests leave almost no cycles (10,000 submissions left 250
#: unreachable objects). A young collection walks only what is young and still alive.
YOUNG_COLLECTION_EVERY = 300_000
#: seconds a thread holds the interpreter before the event loop may take it back (Python's
#: default is 5 ms): a large body parsed or checked in a worker thread then delays `/healthz`
#: and clicks by about a millisecond a turn, not five
SWITCH_INTERVAL = 0.001


def tune_for_serving() -> None:
    """Once serving: what the process built to start (modules, the app) leaves the collector's
    full passes for good, young objects are collected less often, and worker threads hand the
    interpreter back to the event loop sooner. A full pass walks every tracked object; under
    large submissions (8,000 objects of arguments each) they came every second and held the
    event loop about 80 ms each, now a few, shorter; a burst of submissions in flight is
    collected once answered, not walked while it waits (`YOUNG_COLLECTION_EVERY`)."""
    gc.collect()
    gc.freeze()
    gc.set_threshold(YOUNG_COLLECTION_EVERY, 20, 10)
    sys.setswitchinterval(SWITCH_INTERVAL)


def loop_factory() -> Callable[[], asyncio.AbstractEventLoop] | None:
    """uvloop's event loop where it is installed (libuv's, in C), else asyncio's own."""
    try:
        import uvloop
    except ImportError:
        return None
    return uvloop.new_event_loop


def run_on_serve_loop(main: Coroutine[Any, Any, T]) -> T:
    """`asyncio.run(main)`, on the event loop `serve` runs on (`loop_factory`)."""
    with asyncio.Runner(loop_factory=loop_factory()) as runner:
        return runner.run(main)


def run(
    app: web.Application,
    host: str,
    port: int,
    *,
    ready: Callable[[], None] = lambda: None,
    shutdown_timeout: float = 5,
    **runner_kwargs: Any,
) -> None:
    """Serve `app` with `BotRunner` until SIGINT or SIGTERM, then shut down gracefully. Raises
    what starting raises (OSError when the port is taken, the app's own startup errors)."""

    async def serve() -> None:
        runner = BotRunner(app, shutdown_timeout=shutdown_timeout, **runner_kwargs)
        await runner.setup()
        try:
            await BotSite(runner, host, port).start()
            stop = asyncio.Event()
            loop = asyncio.get_running_loop()
            for signum in (signal.SIGINT, signal.SIGTERM):
                with contextlib.suppress(NotImplementedError, RuntimeError):
                    loop.add_signal_handler(signum, stop.set)
            tune_for_serving()
            ready()
            await stop.wait()
        finally:
            await runner.cleanup()

    with contextlib.suppress(KeyboardInterrupt):
        run_on_serve_loop(serve())
