"""The HTTP edge holds against hostile and broken clients: no request stalls or crashes the bot.

Everything goes through real sockets to a real server on 127.0.0.1. The bot is served as
`approval-bot serve` serves it (`bot.edge.BotRunner`: handler cancellation off, the connection
cap, eviction, hangup notice), except the `--insecure-no-auth` checks, which live in the API
itself and are tried on the ordinary test server.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import resource
import signal
import sqlite3
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Mapping
from pathlib import Path
from typing import Any

import aiohttp
import pytest

import bot
from bot.app import create_app
from bot.config import Settings
from bot.devslack.interactions import Deliverer, Delivery, HttpTransport
from bot.devslack.signing import signed_headers
from bot.edge import EDGE, WHOLE_BODY
from tests.conftest import (
    AGENT_TOKEN,
    SIGNING_SECRET,
    BotServer,
    Running,
    SlackRig,
    bot_settings,
    slack_settings,
    start_bot,
    until,
)

#: the deadline the tests lower the edge's 10 s to
DEADLINE = 4.0


def edge_of(running: Running) -> Any:
    from bot.edge import EDGE

    return running.server.app[EDGE]


@pytest.fixture
async def served(db_path: Path) -> AsyncIterator[Running]:
    """The bot with a token, served as `serve` serves it."""
    settings = bot_settings(db_path)
    server = BotServer(create_app(settings), host="127.0.0.1")
    await server.start_server()
    async with aiohttp.ClientSession() as http:
        yield Running(server, http, settings)
    await server.close()


@pytest.fixture
async def served_rig(db_path: Path, workspace: Any) -> AsyncIterator[SlackRig]:
    """The bot on the local Slack, served as `serve` serves it."""
    from bot.devslack import Deliverer
    from bot.slack.surface import SlackSurface

    settings = slack_settings(db_path, workspace.base_url)
    app = create_app(settings, extensions=[SlackSurface(settings)])
    server = BotServer(app, host="127.0.0.1")
    await server.start_server()
    async with aiohttp.ClientSession() as http:
        running = Running(server, http, settings)
        async with Deliverer(workspace, running.url + "/slack/events", SIGNING_SECRET) as hands:
            yield SlackRig(running, workspace, hands)
    await server.close()


def port_of(running: Running) -> int:
    port = running.server.port
    assert port is not None
    return port


def no_tracebacks(caplog: pytest.LogCaptureFixture) -> list[str]:
    """Log lines at ERROR or above, or carrying a traceback."""
    return [
        f"{r.levelname} {r.name}: {r.getMessage()}"
        for r in caplog.records
        if r.levelno >= logging.ERROR or r.exc_info or r.exc_text
    ]


def plausible_slack_headers() -> dict[str, str]:
    """What passes the header check before the body is read: fresh, of the right form."""
    return {
        "Content-Type": "application/x-www-form-urlencoded",
        "X-Slack-Request-Timestamp": str(int(time.time())),
        "X-Slack-Signature": "v0=" + "ab" * 32,
    }


async def exchange(port: int, raw: bytes, timeout: float = 5) -> bytes:
    """Send raw bytes, read until the server closes (or `timeout`)."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    writer.write(raw)
    data = b""
    try:
        async with asyncio.timeout(timeout):
            while chunk := await reader.read(65536):
                data += chunk
    except (ConnectionError, TimeoutError):
        pass
    finally:
        writer.close()
    return data


def status_of(answer: bytes) -> int | None:
    line = answer.split(b"\r\n", 1)[0].split()
    return int(line[1]) if len(line) >= 2 and line[0].startswith(b"HTTP/") else None


def body_of(answer: bytes) -> Any:
    return json.loads(answer.partition(b"\r\n\r\n")[2])


class Trickler:
    """A client that sends its headers, then its body one byte every `every` seconds."""

    def __init__(
        self, port: int, path: str, headers: dict[str, str], *, length: int = 5000
    ) -> None:
        lines = [f"POST {path} HTTP/1.1", f"Host: 127.0.0.1:{port}", f"Content-Length: {length}"]
        lines += [f"{name}: {value}" for name, value in headers.items()]
        self.head = ("\r\n".join(lines) + "\r\n\r\n").encode()
        self.port = port
        self.answer = b""
        self.opened = self.closed_at = 0.0
        self.done = asyncio.Event()

    async def open(self, every: float = 0.2) -> Trickler:
        loop = asyncio.get_running_loop()
        self.reader, self.writer = await asyncio.open_connection("127.0.0.1", self.port)
        self.writer.write(self.head)
        self.opened = loop.time()
        self.feeding = asyncio.create_task(self._feed(every))
        self.reading = asyncio.create_task(self._read())
        return self

    async def _feed(self, every: float) -> None:
        with contextlib.suppress(ConnectionError):
            while not self.writer.is_closing():
                await asyncio.sleep(every)
                self.writer.write(b"x")
                await self.writer.drain()

    async def _read(self) -> None:
        try:
            while chunk := await self.reader.read(65536):
                self.answer += chunk
        except ConnectionError:
            pass
        self.closed_at = asyncio.get_running_loop().time()
        self.feeding.cancel()
        self.done.set()

    @property
    def closed(self) -> bool:
        return self.done.is_set()

    async def close(self) -> None:
        self.feeding.cancel()
        self.reading.cancel()
        self.writer.close()
        with contextlib.suppress(ConnectionError, asyncio.CancelledError):
            await self.reading


@contextlib.asynccontextmanager
async def tricklers(
    count: int, port: int, path: str, headers: dict[str, str], *, at_once: bool = False
) -> AsyncIterator[list[Trickler]]:
    """`count` clients trickling their bodies, connecting one after another or all at once."""
    opened: list[Trickler] = []
    try:
        if at_once:
            opened += await asyncio.gather(
                *(Trickler(port, path, headers).open() for _ in range(count))
            )
        else:
            for _ in range(count):
                opened.append(await Trickler(port, path, headers).open())
        yield opened
    finally:
        for trickler in opened:
            await trickler.close()


# -- 1. junk in the Slack headers: refused at once, quietly ----------------------------------


@pytest.mark.parametrize(
    "headers",
    [
        pytest.param({"X-Slack-Request-Timestamp": "1" * 5000}, id="5000-digit-timestamp"),
        pytest.param({"X-Slack-Request-Timestamp": "9" * 13}, id="13-digit-timestamp"),
        pytest.param({"X-Slack-Request-Timestamp": "١٧٠٠٠٠٠٠٠٠"}, id="arabic-digits"),
        pytest.param({"X-Slack-Request-Timestamp": ""}, id="empty-timestamp"),
        pytest.param({"X-Slack-Signature": "v0=" + "z" * 64}, id="signature-not-hex"),
        pytest.param({"X-Slack-Signature": "v0=" + "a" * 5000}, id="signature-5000-long"),
        pytest.param({"X-Slack-Signature": None}, id="no-signature"),
    ],
)
async def test_junk_slack_headers_are_refused_401_without_a_traceback(
    rig: SlackRig, headers: dict[str, str | None], caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO)
    body = b"payload=%7B%7D"
    sent = signed_headers(SIGNING_SECRET, body)
    for name, value in headers.items():
        if value is None:
            sent.pop(name)
        else:
            sent[name] = value

    for _ in range(3):
        async with rig.bot.http.post(
            rig.bot.url + "/slack/events", data=body, headers=sent
        ) as response:
            assert response.status == 401
            assert await response.json() == {"error": "invalid_signature"}

    assert no_tracebacks(caplog) == []


# -- 2. slow bodies: refused unread when unsigned, cut off at the deadline, never starving ----


async def test_unsigned_slack_requests_are_refused_before_their_body_arrives(
    served_rig: SlackRig,
) -> None:
    port = port_of(served_rig.bot)
    stale = {**plausible_slack_headers(), "X-Slack-Request-Timestamp": str(int(time.time()) - 900)}
    kinds = [{}, {"X-Slack-Signature": "nonsense"}, stale]
    loop = asyncio.get_running_loop()
    opened = [
        await Trickler(port, "/slack/events", headers, length=100_000).open()
        for headers in kinds * 5
    ]
    try:
        await until(lambda: asyncio.sleep(0, all(t.answer.endswith(b"}") for t in opened)), 2)
        for trickler in opened:
            assert status_of(trickler.answer) == 401, trickler.answer[:200]
            assert b"Connection: close" in trickler.answer
            assert loop.time() - trickler.opened < 2  # answered with the body still coming
        # the rest of the body is not read on: closed after a short linger, not the deadline
        await until(lambda: asyncio.sleep(0, all(t.closed for t in opened)), 5)
        assert max(t.closed_at - t.opened for t in opened) < 4
    finally:
        for trickler in opened:
            await trickler.close()


async def test_trickling_bodies_neither_starve_signed_clicks_nor_outlive_the_deadline(
    served_rig: SlackRig,
) -> None:
    rig = served_rig
    edge_of(rig.bot).body_deadline = DEADLINE
    port = port_of(rig.bot)
    record = await rig.bot.submit()
    await rig.card(record["id"])
    loop = asyncio.get_running_loop()

    async with (
        tricklers(100, port, "/slack/events", plausible_slack_headers()) as slack,
        tricklers(20, port, "/v1/approvals", {"Authorization": f"Bearer {AGENT_TOKEN}"}) as api,
    ):
        opened = slack + api
        started = loop.time()
        async with rig.bot.http.get(rig.bot.url + "/healthz") as response:
            assert response.status == 200
        health_took = loop.time() - started
        delivery = await rig.click(record["id"], "approve", "U0ALICE")
        decided = await rig.decided(record["id"])
        click_took = loop.time() - started
        assert delivery.status == 200 and decided["status"] == "approved"
        assert not any(t.closed for t in opened), "the click came after the deadline"

        await until(lambda: asyncio.sleep(0, all(t.closed for t in opened)), DEADLINE + 5)
        lived = [t.closed_at - t.opened for t in opened]
        assert min(lived) >= DEADLINE - 0.1 and max(lived) <= DEADLINE + 2, lived
        answered = [t.answer for t in opened if t.answer]
        assert answered, "no trickler saw its 408"
        for answer in answered:
            assert status_of(answer) == 408
            assert body_of(answer)["error"] == "bad_request"
    print(f"healthz {health_took * 1000:.0f} ms, click decided {click_took * 1000:.0f} ms")


async def test_at_the_connection_cap_the_longest_idle_connection_makes_room(
    served_rig: SlackRig, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO)
    rig = served_rig
    edge = edge_of(rig.bot)
    edge.max_connections = 30
    port = port_of(rig.bot)
    record = await rig.bot.submit()
    await rig.card(record["id"])

    silent = [await asyncio.open_connection("127.0.0.1", port) for _ in range(20)]
    try:
        async with tricklers(100, port, "/slack/events", plausible_slack_headers()) as opened:
            await asyncio.sleep(0.2)
            assert len(edge.server.open) <= 30
            # the oldest went first: every silent one, then the first tricklers
            assert all(t.closed for t in opened[:60]) and not any(t.closed for t in opened[-25:])
            async with rig.bot.http.get(rig.bot.url + "/healthz") as response:
                assert response.status == 200
            delivery = await rig.click(record["id"], "approve", "U0ALICE")
            assert delivery.status == 200
            assert (await rig.decided(record["id"]))["status"] == "approved"
            assert len(edge.server.open) <= 30 and edge.server.refused == 0
    finally:
        for _, writer in silent:
            writer.close()
    assert no_tracebacks(caplog) == []


async def test_a_connection_gets_aiohttps_handling_only_once_it_has_sent_something(
    served: Running,
) -> None:
    """A connection that has sent nothing is a transport and a few fields: aiohttp's handler
    (parser, tasks, timers) is made once bytes arrive, so a burst of agents connecting at
    once is not a burst of handlers all held half-read together."""
    edge = edge_of(served)
    await served.call("GET", "/healthz")  # the test's own client keeps its connection
    handled = len(edge.server.connections)
    port = port_of(served)
    silent = [await asyncio.open_connection("127.0.0.1", port) for _ in range(20)]
    try:
        await until(lambda: asyncio.sleep(0, len(edge.server.open) == handled + 20))
        assert len(edge.server.connections) == handled
        for _, writer in silent[:5]:
            writer.write(b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
        answers = [await reader.readuntil(b"}") for reader, _ in silent[:5]]
        assert all(status_of(answer) == 200 for answer in answers)
        assert len(edge.server.connections) == handled + 5  # kept alive, by aiohttp now
        assert len(edge.server.open) == handled + 20
    finally:
        for _, writer in silent:
            writer.close()
    await until(lambda: asyncio.sleep(0, len(edge.server.open) == handled))


async def test_a_connection_silent_for_the_keep_alive_time_is_closed(
    served: Running, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A new connection that sends nothing is closed once silent for the keep-alive time, as
    aiohttp closes one idle that long; each on its own time (one timer serves them all), and
    one that sends a request in time is answered and kept."""
    monkeypatch.setattr(bot.edge, "KEEPALIVE", 0.5)
    loop = asyncio.get_running_loop()
    port = port_of(served)
    healthz = b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n"

    async def closed_after(reader: asyncio.StreamReader, opened: float) -> float:
        assert await asyncio.wait_for(reader.read(), 5) == b""  # closed by the bot
        return loop.time() - opened

    first, opened_first = await asyncio.open_connection("127.0.0.1", port), loop.time()
    await asyncio.sleep(0.25)
    second, opened_second = await asyncio.open_connection("127.0.0.1", port), loop.time()
    speaker = await asyncio.open_connection("127.0.0.1", port)
    try:
        speaker[1].write(healthz)
        assert (await read_answer(speaker[0]))[0].split()[1] == "200"
        lived = [
            await closed_after(first[0], opened_first),
            await closed_after(second[0], opened_second),
        ]
        assert all(0.45 <= took <= 1.0 for took in lived), lived
        speaker[1].write(healthz)  # still open, now aiohttp's
        assert (await read_answer(speaker[0]))[0].split()[1] == "200"
    finally:
        for _, writer in (first, second, speaker):
            writer.close()


async def test_when_every_connection_is_busy_a_new_one_is_answered_503(
    served: Running,
) -> None:
    edge = edge_of(served)
    edge.max_connections = 3
    port = port_of(served)
    record = await served.submit()
    wait = (
        f"GET /v1/approvals/{record['id']}/wait?timeout=30 HTTP/1.1\r\n"
        f"Host: 127.0.0.1\r\nAuthorization: Bearer {AGENT_TOKEN}\r\n\r\n"
    ).encode()
    waits = [await asyncio.open_connection("127.0.0.1", port) for _ in range(3)]
    for _, writer in waits:
        writer.write(wait)
    await until(lambda: asyncio.sleep(0, served.service.waiting == 3))

    answer = await exchange(port, b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
    assert status_of(answer) == 503
    assert body_of(answer)["error"] == "unavailable"

    for _, writer in waits:  # the parked agents hang up: their places are free again
        writer.close()
    await until(lambda: asyncio.sleep(0, served.service.waiting == 0), 2)
    answer = await exchange(port, b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n", 2)
    assert status_of(answer) == 200


async def test_broken_and_abandoned_bodies_are_answered_400_or_dropped_quietly(
    served_rig: SlackRig, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO)
    port = port_of(served_rig.bot)
    slack = "".join(f"{k}: {v}\r\n" for k, v in plausible_slack_headers().items())
    api = f"Authorization: Bearer {AGENT_TOKEN}\r\nContent-Type: application/json\r\n"
    for path, headers in (("/slack/events", slack), ("/v1/approvals", api)):
        head = f"POST {path} HTTP/1.1\r\nHost: 127.0.0.1\r\n{headers}"
        gzip = await exchange(
            port, f"{head}Content-Encoding: gzip\r\nContent-Length: 5\r\n\r\nhello".encode()
        )
        assert status_of(gzip) == 400 and body_of(gzip)["error"] == "bad_request", gzip
        chunked = await exchange(
            port, f"{head}Transfer-Encoding: chunked\r\n\r\nzz\r\nabc\r\n".encode()
        )
        assert status_of(chunked) == 400, chunked
        # the client goes away halfway through its body
        _, writer = await asyncio.open_connection("127.0.0.1", port)
        writer.write(f"{head}Content-Length: 100\r\n\r\nabc".encode())
        await asyncio.sleep(0.2)
        writer.close()
    await asyncio.sleep(0.3)
    assert no_tracebacks(caplog) == []


# -- 3. an agent that hangs up stops waiting at once ------------------------------------------


async def test_hung_up_waits_are_released_at_once(served: Running) -> None:
    port = port_of(served)
    record = await served.submit()
    request = (
        f"GET /v1/approvals/{record['id']}/wait?timeout=60 HTTP/1.1\r\n"
        f"Host: 127.0.0.1:{port}\r\nAuthorization: Bearer {AGENT_TOKEN}\r\n\r\n"
    ).encode()
    waits = [await asyncio.open_connection("127.0.0.1", port) for _ in range(50)]
    for _, writer in waits:
        writer.write(request)
    stays = asyncio.create_task(served.call("GET", f"/v1/approvals/{record['id']}/wait?timeout=60"))
    await until(lambda: asyncio.sleep(0, served.service.waiting == 51))

    loop = asyncio.get_running_loop()
    hung_up = loop.time()
    for _, writer in waits:
        writer.close()
    await until(lambda: asyncio.sleep(0, served.service.waiting == 1), timeout=1, interval=0.01)
    released = loop.time() - hung_up
    _, health = await served.call("GET", "/healthz")
    assert health["waiting"] == 1

    await served.decide(record["id"])  # the agent still there gets its decision
    status, decided = await stays
    assert (status, decided["status"]) == (200, "approved")
    print(f"50 hung-up waits released in {released * 1000:.0f} ms")


def wait_request(approval_id: str, timeout: float = 30, extra: str = "") -> bytes:
    return (
        f"GET /v1/approvals/{approval_id}/wait?timeout={timeout:g} HTTP/1.1\r\n"
        f"Host: 127.0.0.1\r\nAuthorization: Bearer {AGENT_TOKEN}\r\n{extra}\r\n"
    ).encode()


async def read_answer(reader: asyncio.StreamReader) -> tuple[str, dict[str, str], bytes]:
    """One HTTP answer: its status line, headers and body (by its Content-Length)."""
    async with asyncio.timeout(5):
        head = (await reader.readuntil(b"\r\n\r\n")).decode()
        status, *lines = head.strip().split("\r\n")
        headers = dict(line.split(": ", 1) for line in lines)
        return status, headers, await reader.readexactly(int(headers["Content-Length"]))


async def read_to_end(reader: asyncio.StreamReader) -> bytes:
    async with asyncio.timeout(5):
        return await reader.read()


async def test_a_parked_wait_leaves_aiohttp_and_is_answered_once_decided(
    served: Running, caplog: pytest.LogCaptureFixture
) -> None:
    """While it waits, an agent's connection is a transport and a few fields: aiohttp's
    handler of it (its parser, request and tasks, about 10 kB) is gone. The decision is sent
    on it as aiohttp would send it, and the connection closes."""
    caplog.set_level(logging.INFO, logger="bot.http")
    edge = edge_of(served)
    record = await served.submit()
    others = len(edge.server.connections)  # the test's own client keeps its connection
    reader, writer = await asyncio.open_connection("127.0.0.1", port_of(served))
    writer.write(wait_request(record["id"]))
    await until(lambda: asyncio.sleep(0, served.service.waiting == 1))
    # aiohttp forgets a connection once its handler's task has ended, a turn or two later
    await until(lambda: asyncio.sleep(0, len(edge.server.connections) == others))
    assert edge.server.parked == 1

    await served.decide(record["id"])
    status, headers, body = await read_answer(reader)
    assert status == "HTTP/1.1 200 OK"
    assert headers["Content-Type"] == "application/json; charset=utf-8"
    assert "Connection" not in headers  # kept alive, as HTTP/1.1 keeps it
    decided, sent = json.loads(body), len(body)
    assert (decided["id"], decided["status"]) == (record["id"], "approved")
    assert decided == (await served.call("GET", f"/v1/approvals/{record['id']}"))[1]
    assert edge.server.parked == 0

    # the same connection carries the agent's next request, and its next wait
    writer.write(b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
    status, _, body = await read_answer(reader)
    assert status == "HTTP/1.1 200 OK" and json.loads(body)["ok"] is True
    again = await served.submit(args={"version": "1.4.3"})
    writer.write(wait_request(again["id"], extra="Connection: close\r\n"))
    await until(lambda: asyncio.sleep(0, edge.server.parked == 1))
    await served.decide(again["id"])
    status, headers, body = await read_answer(reader)
    assert (json.loads(body)["id"], headers["Connection"]) == (again["id"], "close")
    assert await read_to_end(reader) == b""  # closed, as the agent asked
    writer.close()
    logged = [r.getMessage() for r in caplog.records if f"{record['id']}/wait" in r.getMessage()]
    assert len(logged) == 1
    assert logged[0].startswith(f'127.0.0.1 "GET /v1/approvals/{record["id"]}/wait?timeout=30')
    assert f'HTTP/1.1" 200 {sent} ' in logged[0]


async def test_a_parked_wait_past_its_timeout_is_answered_with_the_pending_record(
    served: Running,
) -> None:
    record = await served.submit()
    reader, writer = await asyncio.open_connection("127.0.0.1", port_of(served))
    writer.write(wait_request(record["id"], timeout=0.3))
    status, _, body = await read_answer(reader)
    writer.close()
    assert status == "HTTP/1.1 200 OK"
    assert json.loads(body) == (await served.call("GET", f"/v1/approvals/{record['id']}"))[1]
    assert json.loads(body)["status"] == "pending" and served.service.waiting == 0


async def test_parked_waits_are_answered_503_when_the_bot_shuts_down(db_path: Path) -> None:
    """Shutting down, the bot answers every agent still waiting, so each waits again (on
    another replica, or once it is back) instead of hanging on a connection nobody answers."""
    server = BotServer(create_app(bot_settings(db_path)), host="127.0.0.1")
    await server.start_server()
    async with aiohttp.ClientSession() as http:
        running = Running(server, http, bot_settings(db_path))
        record = await running.submit()
        agents = [await asyncio.open_connection("127.0.0.1", port_of(running)) for _ in range(3)]
        for _, writer in agents:
            writer.write(wait_request(record["id"]))
        await until(lambda: asyncio.sleep(0, running.service.waiting == 3))
        await server.close()
    for reader, writer in agents:
        answer = await read_to_end(reader)
        writer.close()
        assert status_of(answer) == 503, answer
        assert body_of(answer) == {
            "error": "unavailable",
            "message": "the bot is restarting; wait again",
        }


def spawn_serve(serve: Any, *, max_fds: int | None = None) -> None:
    """`python -m bot serve` on the code under test, with `ulimit -n max_fds` if given."""
    serve.env["PYTHONPATH"] = str(Path(bot.__file__).parent.parent)

    def limit() -> None:
        if max_fds is not None:
            _, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
            resource.setrlimit(resource.RLIMIT_NOFILE, (max_fds, hard))

    with serve.log.open("ab") as log:
        serve.process = subprocess.Popen(
            [sys.executable, "-m", "bot", "serve", "--port", str(serve.port)],
            env=serve.env,
            cwd=serve.workdir,
            stdout=log,
            stderr=subprocess.STDOUT,
            preexec_fn=limit,
        )


@pytest.mark.parametrize("at_once", [False, True], ids=["one-after-another", "all-at-once"])
async def test_serve_under_ulimit_256_answers_through_300_trickling_clients(
    serve: Any, workspace: Any, at_once: bool
) -> None:
    """The finding as it was seen: 300 trickling bodies used to exhaust `serve`'s descriptors
    (EMFILE) until `/healthz` and a signed click both timed out. All at once, they fill the
    listen queue and are accepted in bursts, which hold descriptors before the cap sees them."""
    from bot.devslack import Deliverer

    spawn_serve(serve, max_fds=256)
    headers = {"Authorization": f"Bearer {AGENT_TOKEN}"}
    async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=5)) as http:
        await serve.healthy(http)
        body = {"toolName": "deploy_service", "args": {"version": "1"}}
        async with http.post(serve.url + "/v1/approvals", json=body, headers=headers) as response:
            record = await response.json()

        async def card() -> Any:
            async with http.get(f"{serve.url}/v1/approvals/{record['id']}", headers=headers) as r:
                slack = (await r.json())["slack"]
            return slack if slack["ts"] else None

        slack = await until(card)
        async with tricklers(
            300, serve.port, "/slack/events", plausible_slack_headers(), at_once=at_once
        ):
            await asyncio.sleep(0.5)
            async with http.get(serve.url + "/healthz") as response:
                assert response.status == 200
            async with Deliverer(workspace, serve.url + "/slack/events", SIGNING_SECRET) as hands:
                delivery = await hands.click(
                    slack["channel"], slack["ts"], "approve", user="U0ALICE"
                )
            assert delivery.status == 200

            async def approved() -> bool:
                async with http.get(
                    f"{serve.url}/v1/approvals/{record['id']}", headers=headers
                ) as response:
                    return (await response.json())["status"] == "approved"

            await until(approved)
    log = serve.log.read_text()
    assert "Too many open files" not in log and "Traceback" not in log


async def test_serve_queues_a_burst_of_agents_connecting_while_it_is_busy(serve: Any) -> None:
    """10,000 agents submitting at once overflowed the listen queue: asyncio listens with the
    backlog it accepts a turn (625 at `ulimit -n` 20,000, 512 here), and once that many
    handshakes wait, Linux drops the next SYNs, so each agent beyond them waits a second or
    more for its retry (`TcpExtListenOverflows` counted 44,569 in one benchmark). The kernel
    now queues `LISTEN_QUEUE` (4,096, or `net.core.somaxconn` if lower), while the bot still
    accepts a few hundred a turn. Stopped (SIGSTOP), the bot accepts nothing: every handshake
    the kernel completes meanwhile is one the queue held."""
    from bot.edge import LISTEN_QUEUE

    somaxconn = int(Path("/proc/sys/net/core/somaxconn").read_text())
    burst = min(1200, LISTEN_QUEUE, somaxconn)
    limits = resource.getrlimit(resource.RLIMIT_NOFILE)
    soft, hard = limits
    if soft < burst + 256:
        resource.setrlimit(resource.RLIMIT_NOFILE, (min(hard, burst + 256), hard))
    try:
        connected = await _connect_while_stopped(serve, burst)
    finally:
        resource.setrlimit(resource.RLIMIT_NOFILE, limits)
    assert connected == burst, f"{burst - connected} handshakes dropped"


async def _connect_while_stopped(serve: Any, count: int) -> int:
    """Start `serve` (accepting 512 a turn, as `listen_backlog` says), stop it, connect `count`
    agents at once, resume it: how many handshakes completed within 2 s. It answers after."""
    spawn_serve(serve, max_fds=16384)
    async with aiohttp.ClientSession() as http:
        await serve.healthy(http)

        async def connect() -> asyncio.StreamWriter | None:
            try:
                async with asyncio.timeout(2):  # a dropped SYN is sent again after 1 s, then 3 s
                    _, writer = await asyncio.open_connection("127.0.0.1", serve.port)
            except TimeoutError:
                return None
            return writer

        serve.process.send_signal(signal.SIGSTOP)
        try:
            writers = await asyncio.gather(*(connect() for _ in range(count)))
        finally:
            serve.process.send_signal(signal.SIGCONT)
        connected = [writer for writer in writers if writer is not None]
        for writer in connected:
            writer.close()
        assert (await serve.healthz(http)) is not None
    return len(connected)


async def test_serve_releases_hung_up_waits(serve: Any) -> None:
    """The same through `python -m bot serve`: the runner it serves with notices hangups."""
    async with aiohttp.ClientSession() as http:
        spawn_serve(serve)
        await serve.healthy(http)
        headers = {"Authorization": f"Bearer {AGENT_TOKEN}"}
        body = {"toolName": "deploy_service", "args": {"version": "1"}}
        async with http.post(serve.url + "/v1/approvals", json=body, headers=headers) as response:
            record = await response.json()
        request = (
            f"GET /v1/approvals/{record['id']}/wait?timeout=60 HTTP/1.1\r\n"
            f"Host: 127.0.0.1:{serve.port}\r\nAuthorization: Bearer {AGENT_TOKEN}\r\n\r\n"
        ).encode()
        waits = [await asyncio.open_connection("127.0.0.1", serve.port) for _ in range(20)]
        for _, writer in waits:
            writer.write(request)

        async def waiting(count: int) -> bool:
            health = await serve.healthz(http)
            return health is not None and health["waiting"] == count

        await until(lambda: waiting(20), timeout=5)
        for _, writer in waits:
            writer.close()
        await until(lambda: waiting(0), timeout=1.5, interval=0.05)


# -- 4. --insecure-no-auth answers this machine's programs, not web pages ---------------------


@pytest.fixture
async def open_bot(db_path: Path) -> AsyncIterator[Running]:
    settings: Settings = bot_settings(db_path, api_token=None)
    server = await start_bot(settings)
    async with aiohttp.ClientSession() as http:
        yield Running(server, http, settings)
    await server.close()


SUBMIT = json.dumps({"toolName": "deploy_service", "args": {"version": "1"}})


async def test_insecure_no_auth_refuses_a_cross_site_text_plain_post(open_bot: Running) -> None:
    url = open_bot.url + "/v1/approvals"
    # what a form or a no-cors fetch on another site can send without asking
    for content_type in ("text/plain", "application/x-www-form-urlencoded", None):
        headers = {"Content-Type": content_type} if content_type else {}
        async with open_bot.http.post(url, data=SUBMIT.encode(), headers=headers) as response:
            assert response.status == 415
            assert (await response.json())["error"] == "unsupported_media_type"
    for origin in ("https://evil.example", "null", f"http://localhost:{open_bot.server.port}"):
        async with open_bot.http.post(
            url, data=SUBMIT, headers={"Content-Type": "application/json", "Origin": origin}
        ) as response:
            assert response.status == 403, origin
            assert (await response.json())["error"] == "forbidden"
    async with open_bot.http.post(
        url,
        data=SUBMIT,
        headers={"Content-Type": "application/json", "Sec-Fetch-Site": "cross-site"},
    ) as response:
        assert response.status == 403
    status, page = await open_bot.call("GET", "/v1/approvals", token=None)
    assert (status, page["items"]) == (200, [])

    # this machine's agents, and a page of the bot's own origin, still get through
    async with open_bot.http.post(url, json={"toolName": "a", "args": {}}) as response:
        assert response.status == 201
    same = f"http://127.0.0.1:{open_bot.server.port}"
    async with open_bot.http.post(
        url, json={"toolName": "b", "args": {}}, headers={"Origin": same}
    ) as response:
        assert response.status == 201


async def test_insecure_no_auth_refuses_a_foreign_host(open_bot: Running) -> None:
    port = open_bot.server.port
    url = open_bot.url + "/v1/approvals"
    for host in (f"evil.example:{port}", "evil.example", f"127.0.0.1.nip.io:{port}", "[::1"):
        async with open_bot.http.get(url, headers={"Host": host}) as response:
            assert response.status == 403, host
            assert (await response.json())["error"] == "forbidden"
    for host in (f"127.0.0.1:{port}", f"localhost:{port}", "localhost", "127.0.0.1:8080"):
        async with open_bot.http.get(url, headers={"Host": host}) as response:
            assert response.status == 200, host


async def test_with_a_token_the_api_still_takes_any_content_type(bot: Running) -> None:
    async with bot.http.post(
        bot.url + "/v1/approvals",
        data=SUBMIT,
        headers={"Authorization": f"Bearer {AGENT_TOKEN}", "Content-Type": "text/plain"},
    ) as response:
        assert response.status == 201


# -- 6. a small submission that arrives whole is answered by the edge itself -----------------


def submission(body: bytes, *, token: str | None = AGENT_TOKEN, extra: str = "") -> bytes:
    """`POST /v1/approvals` written whole: its head and its body in one piece."""
    auth = f"Authorization: Bearer {token}\r\n" if token else ""
    head = (
        f"POST /v1/approvals HTTP/1.1\r\nHost: 127.0.0.1\r\n{auth}"
        f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\n{extra}\r\n"
    )
    return head.encode() + body


async def answer_whole(port: int, raw: bytes) -> tuple[str, dict[str, str], bytes]:
    """The answer to `raw` sent in one write on a new connection."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    try:
        writer.write(raw)
        return await read_answer(reader)
    finally:
        writer.close()


async def answer_split(running: Running, raw: bytes) -> tuple[str, dict[str, str], bytes]:
    """The answer to `raw` sent head first and, once aiohttp reads it, the body."""
    server = edge_of(running).server
    handled = set(server.connections)
    head, _, body = raw.partition(b"\r\n\r\n")
    reader, writer = await asyncio.open_connection("127.0.0.1", port_of(running))
    try:
        writer.write(head + b"\r\n\r\n")
        await until(lambda: asyncio.sleep(0, set(server.connections) - handled))
        writer.write(body)
        return await read_answer(reader)
    finally:
        writer.close()


def answer_json(answer: tuple[str, dict[str, str], bytes]) -> tuple[str, str, Any]:
    status, headers, body = answer
    return status, headers["Content-Type"], json.loads(body)


async def test_a_submission_that_arrives_whole_skips_aiohttps_handling(
    served: Running, caplog: pytest.LogCaptureFixture
) -> None:
    """A new connection whose first bytes are a whole small `POST /v1/approvals` is answered
    by the edge: no aiohttp handler, request or task is made for it (three quarters of what
    serving a small request cost), and logged in the same access line. Kept alive, the
    connection is a new one again: the next request is read the same way, and one of another
    route goes to aiohttp."""
    caplog.set_level(logging.INFO, logger="bot.http")
    server = edge_of(served).server
    handled = len(server.connections)
    reader, writer = await asyncio.open_connection("127.0.0.1", port_of(served))
    try:
        for n in range(2):
            writer.write(submission(json.dumps({"toolName": f"deploy_{n}", "args": {}}).encode()))
            status, headers, body = await read_answer(reader)
            assert status == "HTTP/1.1 201 Created"
            assert json.loads(body)["toolName"] == f"deploy_{n}"
            assert {"Date", "Server", "Content-Type"} <= headers.keys()
            assert len(server.connections) == handled  # aiohttp never saw it
        writer.write(b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
        status, _, _ = await read_answer(reader)
        assert status == "HTTP/1.1 200 OK"
        assert len(server.connections) == handled + 1  # this one is aiohttp's
    finally:
        writer.close()
    records = (await served.call("GET", "/v1/approvals"))[1]["items"]
    assert sorted(r["toolName"] for r in records) == ["deploy_0", "deploy_1"]
    lines = [r.getMessage() for r in caplog.records if r.name == "bot.http"]
    assert [line.rsplit(" ", 2)[0] for line in lines if "/v1/approvals" in line] == [
        '127.0.0.1 "POST /v1/approvals HTTP/1.1" 201'
    ] * 2


@pytest.mark.parametrize(
    ("body", "token", "status"),
    [
        pytest.param(b'{"toolName": "deploy", "args": {"v": 1}}', AGENT_TOKEN, 201, id="created"),
        pytest.param(b'{"toolName": "deploy"}', None, 401, id="no-token"),
        pytest.param(b'{"toolName": "deploy"}', "wrong", 401, id="wrong-token"),
        pytest.param(b"  ", AGENT_TOKEN, 400, id="empty"),
        pytest.param(b'{"toolName": ', AGENT_TOKEN, 400, id="not-json"),
        pytest.param(b"[1]", AGENT_TOKEN, 400, id="not-an-object"),
        pytest.param(b'{"toolName": ""}', AGENT_TOKEN, 422, id="invalid-field"),
        pytest.param(b'{"toolName": "x", "args": {"v": NaN}}', AGENT_TOKEN, 422, id="nan"),
        pytest.param(b'{"toolName": "x", "priority": "urgent"}', AGENT_TOKEN, 422, id="enum"),
    ],
)
async def test_a_whole_submission_is_answered_as_aiohttp_answers_it(
    served: Running, body: bytes, token: str | None, status: int
) -> None:
    """The same checks and the same answers, errors included, whichever way it arrives."""
    whole = answer_json(await answer_whole(port_of(served), submission(body, token=token)))
    split = answer_json(await answer_split(served, submission(body, token=token)))
    assert whole[0].split()[1] == split[0].split()[1] == str(status)
    assert whole[1] == split[1] == "application/json; charset=utf-8"
    if status == 201:  # two approvals of the same call: the same record but its ids and times
        different = ("id", "toolCallId", "createdAt", "expiresAt")
        assert {k: v for k, v in whole[2].items() if k not in different} == {
            k: v for k, v in split[2].items() if k not in different
        }
    else:
        assert whole[2] == split[2]
        assert set(whole[2]) >= {"error", "message"}


def slack_post(body: bytes, fields: Mapping[str, str]) -> bytes:
    """`POST /slack/events` with `body` and the header `fields`, as bytes on the wire."""
    head = "".join(f"{name}: {value}\r\n" for name, value in fields.items())
    return (
        f"POST /slack/events HTTP/1.1\r\nHost: 127.0.0.1\r\n{head}"
        f"Content-Length: {len(body)}\r\n\r\n"
    ).encode() + body


class RawSlack(HttpTransport):
    """Slack's POSTs written by hand: `whole`, each in one write on one connection kept open
    (the edge reads them); else each on a connection of its own, its head first and its body
    once aiohttp has taken the connection (aiohttp reads them)."""

    def __init__(self, running: Running, *, whole: bool) -> None:
        super().__init__(running.url + "/slack/events", SIGNING_SECRET)
        self.running, self.whole = running, whole
        self.kept: tuple[asyncio.StreamReader, asyncio.StreamWriter] | None = None
        #: aiohttp handlers made for the requests written whole
        self.to_aiohttp = 0

    async def _post(
        self, body: bytes, content_type: str, payload: Any, extra: Mapping[str, str]
    ) -> Delivery:
        fields = {**signed_headers(SIGNING_SECRET, body, content_type=content_type), **extra}
        raw = slack_post(body, fields)
        if self.whole:
            if self.kept is None:
                self.kept = await asyncio.open_connection("127.0.0.1", port_of(self.running))
            reader, writer = self.kept
            handlers = len(edge_of(self.running).server.connections)
            writer.write(raw)
            status, headers, text = await read_answer(reader)
            self.to_aiohttp += len(edge_of(self.running).server.connections) - handlers
        else:
            status, headers, text = await answer_split(self.running, raw)
        return Delivery(int(status.split()[1]), text.decode(), payload, headers)

    async def close(self) -> None:
        if self.kept is not None:
            self.kept[1].close()


async def _click_through(rig: SlackRig, *, whole: bool) -> list[tuple[int, str, Any]]:
    """Approve a card, then give feedback on another, first empty: each answer's status,
    content type and body (JSON when it is)."""
    first, second = await rig.bot.submit(), await rig.bot.submit()
    cards = [await rig.card(first["id"]), await rig.card(second["id"])]
    answers = []
    raw = RawSlack(rig.bot, whole=whole)
    async with Deliverer(rig.workspace, transport=raw) as slack:
        answers.append(await slack.click(cards[0].channel, cards[0].ts, "approve", user="U0ALICE"))
        assert (await rig.decided(first["id"]))["decision"]["decidedBy"] == "U0ALICE"
        answers.append(await slack.click(cards[1].channel, cards[1].ts, "feedback", user="U0BOB"))
        [modal] = await until(lambda: asyncio.sleep(0, rig.workspace.open_modals("U0BOB")))
        answers.append(await slack.submit_view(modal.id, {"feedback": ""}))
        answers.append(await slack.submit_view(modal.id, {"feedback": "Staging first."}))
    decided = await rig.decided(second["id"])
    assert (decided["decision"]["action"], decided["decision"]["comment"]) == (
        "feedback",
        "Staging first.",
    )
    assert raw.to_aiohttp == 0  # none of them made an aiohttp handler
    return [
        (a.status, a.headers.get("Content-Type", ""), a.json() if a.body else a.body)
        for a in answers
    ]


async def test_slack_requests_that_arrive_whole_skip_aiohttps_handling(
    served_rig: SlackRig, caplog: pytest.LogCaptureFixture
) -> None:
    """Slack sends each interaction on whichever connection it likes, a new one as often as
    not: a click, another and a modal's two submissions that arrive whole with a
    connection's first bytes are answered by the edge, as aiohttp answers them, and logged in
    the same access lines. (Before, each went through aiohttp's handler, request, task and
    middlewares: about a tenth of a click's work.)"""
    caplog.set_level(logging.INFO, logger="bot.http")
    whole = await _click_through(served_rig, whole=True)
    lines = [r.getMessage() for r in caplog.records if r.name == "bot.http"]
    assert [line.rsplit(" ", 2)[0] for line in lines if "/slack/events" in line] == [
        '127.0.0.1 "POST /slack/events HTTP/1.1" 200'
    ] * 4
    split = await _click_through(served_rig, whole=False)
    assert whole == split
    assert whole[2][2]["response_action"] == "errors"  # the empty feedback, answered inline


@pytest.mark.parametrize(
    ("body", "signed", "status"),
    [
        pytest.param(b"payload=%7B%7D", False, 401, id="wrongly-signed"),
        pytest.param(b"payload=%7Bnot-json", True, 400, id="unreadable"),
        pytest.param(b'{"type": "url_verification", "challenge": "c-1"}', True, 200, id="json"),
    ],
)
async def test_a_whole_slack_request_is_refused_as_aiohttp_refuses_it(
    served_rig: SlackRig, body: bytes, signed: bool, status: int
) -> None:
    raw = slack_post(body, signed_headers(SIGNING_SECRET if signed else "another secret", body))
    whole = await answer_whole(port_of(served_rig.bot), raw)
    split = await answer_split(served_rig.bot, raw)
    assert whole[0].split()[1] == split[0].split()[1] == str(status)
    assert whole[2] == split[2]
    assert whole[1]["Content-Type"] == split[1]["Content-Type"]


async def test_a_whole_submission_of_a_call_stored_already_gets_its_record_or_a_conflict(
    served: Running,
) -> None:
    call = {"toolName": "deploy", "toolCallId": "call-1", "args": {"v": 1}}
    status, _, first = answer_json(
        await answer_whole(port_of(served), submission(json.dumps(call).encode()))
    )
    assert status.split()[1] == "201"
    again = submission(json.dumps(call).encode())
    other = submission(json.dumps({**call, "args": {"v": 2}}).encode())
    for answer in (await answer_whole(port_of(served), again), await answer_split(served, again)):
        assert answer_json(answer)[0].split()[1] == "200"
        assert answer_json(answer)[2] == first
    for answer in (await answer_whole(port_of(served), other), await answer_split(served, other)):
        assert answer_json(answer)[0].split()[1] == "409"
        assert answer_json(answer)[2]["error"] == "conflict"


async def test_pipelined_and_closing_whole_submissions(served: Running) -> None:
    """Two submissions in one write are answered in turn; `Connection: close` is honoured."""
    one = submission(b'{"toolName": "one", "args": {}}')
    two = submission(b'{"toolName": "two", "args": {}}', extra="Connection: close\r\n")
    reader, writer = await asyncio.open_connection("127.0.0.1", port_of(served))
    try:
        writer.write(one + two)
        answers = [await read_answer(reader), await read_answer(reader)]
        assert [json.loads(body)["toolName"] for _, _, body in answers] == ["one", "two"]
        assert answers[1][1]["Connection"] == "close"
        assert await read_to_end(reader) == b""  # closed after the answer
    finally:
        writer.close()


PLAIN = b'{"toolName": "deploy", "args": {}}'
AUTH = b"Authorization: Bearer " + AGENT_TOKEN.encode() + b"\r\n"


@pytest.mark.parametrize(
    "raw",
    [
        pytest.param(
            b"POST /v1/approvals HTTP/1.1\r\nHost: x\r\n" + AUTH + b"Transfer-Encoding: chunked"
            b"\r\n\r\n" + f"{len(PLAIN):x}".encode() + b"\r\n" + PLAIN + b"\r\n0\r\n\r\n",
            id="chunked",
        ),
        pytest.param(
            b"POST /v1/approvals?x=1 HTTP/1.1\r\nHost: x\r\n"
            + AUTH
            + f"Content-Length: {len(PLAIN)}\r\n\r\n".encode()
            + PLAIN,
            id="query-string",
        ),
        pytest.param(
            b"POST /v1/approvals HTTP/1.0\r\nHost: x\r\n"
            + AUTH
            + f"Content-Length: {len(PLAIN)}\r\n\r\n".encode()
            + PLAIN,
            id="http-1.0",
        ),
        pytest.param(
            b"POST /v1/approvals HTTP/1.1\r\nHost: x\r\n"
            + AUTH
            + b"X-Note: caf\xc3\xa9\r\n"
            + f"Content-Length: {len(PLAIN)}\r\n\r\n".encode()
            + PLAIN,
            id="non-ascii-field",
        ),
    ],
)
async def test_a_submission_not_of_the_plainest_form_goes_to_aiohttp(
    served: Running, raw: bytes
) -> None:
    """Whatever is not plain HTTP/1.1 with a `Content-Length` is aiohttp's to read, as before."""
    server = edge_of(served).server
    handled = len(server.connections)
    reader, writer = await asyncio.open_connection("127.0.0.1", port_of(served))
    try:
        writer.write(raw)
        status, _, body = await read_answer(reader)
        assert status.split()[1] == "201", body
        assert len(server.connections) == handled + 1
    finally:
        writer.close()


async def test_two_content_lengths_are_refused_by_aiohttp_not_read_whole(served: Running) -> None:
    """A head with two `Content-Length`s frames its body two ways (request smuggling): the edge
    never picks one, aiohttp's parser answers 400 and nothing is stored (RFC 9112 §6.3)."""
    server = edge_of(served).server
    handled = len(server.connections)
    raw = submission(PLAIN, extra=f"Content-Length: {len(PLAIN)}\r\n")
    reader, writer = await asyncio.open_connection("127.0.0.1", port_of(served))
    try:
        writer.write(raw)
        status, _, _ = await read_answer(reader)
    finally:
        writer.close()
    assert status.split()[1] == "400"
    assert len(server.connections) == handled + 1
    assert (await served.call("GET", "/v1/approvals"))[1]["items"] == []


async def test_a_body_over_the_whole_limit_goes_to_aiohttp(served: Running) -> None:
    """A body larger than `WHOLE_BODY` is read by aiohttp (its limits, its streaming)."""
    server = edge_of(served).server
    handled = len(server.connections)
    body = json.dumps({"toolName": "big", "args": {"pad": "x" * WHOLE_BODY}}).encode()
    status, _, answer = await answer_whole(port_of(served), submission(body))
    assert status.split()[1] == "201", answer
    assert len(server.connections) == handled + 1


async def test_a_whole_submission_being_written_at_shutdown_is_kept_and_answered(
    db_path: Path,
) -> None:
    """A submission the edge is answering when the bot shuts down is committed and answered
    before the store closes, as one in aiohttp's handlers is. (Another process holds the
    database's write lock meanwhile, as a backup or a `sqlite3` shell would.)"""
    server = await start_bot(bot_settings(db_path))
    edge = server.app[EDGE]
    other = sqlite3.connect(db_path, isolation_level=None)
    try:
        other.execute("BEGIN IMMEDIATE")
        reader, writer = await asyncio.open_connection("127.0.0.1", server.port)
        writer.write(submission(b'{"toolName": "late", "args": {}}'))
        await until(lambda: asyncio.sleep(0, bool(edge.server.answering)))
        closing = asyncio.create_task(server.close())
        await asyncio.sleep(0.3)
        assert not closing.done()
    finally:
        other.execute("ROLLBACK")  # the lock is released: the submission commits
        other.close()
    status, _, body = await read_answer(reader)
    writer.close()
    await closing
    assert status.split()[1] == "201"
    stored = sqlite3.connect(db_path).execute(
        "SELECT tool_name FROM approvals WHERE id = ?", (json.loads(body)["id"],)
    )
    assert stored.fetchall() == [("late",)]
