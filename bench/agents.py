"""The agents' side of the API: submit, wait, decide, and what the bot reports about itself.

Every loop here is bounded: by a count, and by a deadline in seconds.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Sequence
from typing import Any, cast
from urllib.parse import urlsplit

from bench.rig import ADMIN_TOKEN, AGENT_TOKEN, Rig

__all__ = [
    "CardRef",
    "card_refs",
    "decide",
    "decided",
    "drained",
    "health",
    "parked",
    "records",
    "submit_all_at_once",
    "submit_many",
    "wait_for",
]

AGENT = {"Authorization": f"Bearer {AGENT_TOKEN}"}
ADMIN = {"Authorization": f"Bearer {ADMIN_TOKEN}"}

#: (channel, ts) of an approval's card as the bot stored it
CardRef = tuple[str, str]


async def submit_many(
    rig: Rig, count: int, *, concurrency: int = 50, channels: Sequence[str] = ()
) -> tuple[list[str], float]:
    """Submit `count` approvals, `concurrency` at a time; the ids in order and submissions/s.

    With `channels`, the approvals go to them in turn; otherwise to the default channel.
    """
    ids: list[str | None] = [None] * count
    gate = asyncio.Semaphore(concurrency)

    async def one(i: int) -> None:
        body: dict[str, Any] = {
            "toolName": "deploy_service",
            "args": {"version": f"1.{i}"},
            "priority": "normal",
        }
        if channels:
            body["channel"] = channels[i % len(channels)]
        async with gate, rig.http.post(rig.url + "/v1/approvals", json=body, headers=AGENT) as r:
            if r.status != 201:
                raise RuntimeError(f"submit answered {r.status}: {await r.text()}")
            ids[i] = (await r.json())["id"]

    started = time.perf_counter()
    await asyncio.gather(*(one(i) for i in range(count)))
    elapsed = time.perf_counter() - started
    return [i for i in ids if i is not None], count / elapsed


class _OneAnswer(asyncio.Protocol):
    """An agent's own connection: writes one request, reads one answer (its head and
    `Content-Length` of body), hangs up."""

    def __init__(self, request: bytes, answer: asyncio.Future[tuple[int, bytes]]) -> None:
        self.request, self.answer, self.received = request, answer, bytearray()
        self.transport: asyncio.Transport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.Transport, transport)  # uvloop's is not a subclass
        self.transport.write(self.request)

    def data_received(self, data: bytes) -> None:
        self.received += data
        head, blank, body = self.received.partition(b"\r\n\r\n")
        if not blank:
            return
        lines = bytes(head).split(b"\r\n")
        fields = dict(line.split(b":", 1) for line in lines[1:])
        length = int(next(v for k, v in fields.items() if k.lower() == b"content-length"))
        if len(body) >= length and not self.answer.done():
            self.answer.set_result((int(lines[0].split()[1]), bytes(body[:length])))
            assert self.transport is not None
            self.transport.close()

    def connection_lost(self, exc: Exception | None) -> None:
        if not self.answer.done():
            self.answer.set_exception(exc or ConnectionError("closed before the answer"))


async def submit_all_at_once(
    url: str, count: int, *, channels: Sequence[str]
) -> tuple[list[str], float]:
    """Submit `count` approvals at once to the bot at `url`, each agent on a connection of
    its own opened meanwhile; the ids in order and submissions/s.

    Each request is HTTP/1.1 written whole, each answer's status and body read, with a few
    lines of asyncio rather than aiohttp's client: opening a connection costs that client
    more CPU than the bot spends on the submission, on the same two cores (measured: 0.42 ms
    a submission against 0.10 here), so it measured the client."""
    loop = asyncio.get_running_loop()
    where = urlsplit(url)
    host, port = where.hostname or "127.0.0.1", where.port or 80

    def request(i: int) -> bytes:
        body = json.dumps(
            {
                "toolName": "deploy_service",
                "args": {"version": f"2.{i}"},
                "priority": "normal",
                "channel": channels[i % len(channels)],
            }
        ).encode()
        head = (
            f"POST /v1/approvals HTTP/1.1\r\nHost: {where.netloc}\r\n"
            f"Authorization: {AGENT['Authorization']}\r\nContent-Type: application/json\r\n"
            f"Content-Length: {len(body)}\r\n\r\n"
        )
        return head.encode() + body

    async def one(request: bytes) -> str:
        answer: asyncio.Future[tuple[int, bytes]] = loop.create_future()
        await loop.create_connection(lambda: _OneAnswer(request, answer), host, port)
        status, body = await answer
        if status != 201:
            raise RuntimeError(f"submit answered {status}: {body.decode(errors='replace')}")
        return str(json.loads(body)["id"])

    requests = [request(i) for i in range(count)]
    started = time.perf_counter()
    ids = await asyncio.gather(*(one(r) for r in requests))
    return ids, count / (time.perf_counter() - started)


async def wait_for(rig: Rig, approval_id: str, timeout: float = 60) -> float:
    """Wait like an agent; the `perf_counter()` at which the decided record arrived."""
    url = f"{rig.url}/v1/approvals/{approval_id}/wait?timeout={timeout:g}"
    async with rig.http.get(url, headers=AGENT) as response:
        body = await response.json()
    if response.status != 200 or body.get("status") == "pending":
        raise RuntimeError(f"wait for {approval_id} ended undecided: {response.status} {body}")
    return time.perf_counter()


async def decide(rig: Rig, approval_id: str) -> None:
    """Approve over the admin API."""
    url = f"{rig.url}/v1/approvals/{approval_id}/decision"
    body = {"approved": True, "decidedBy": "bench"}
    async with rig.http.post(url, json=body, headers=ADMIN) as response:
        if response.status != 200:
            raise RuntimeError(f"decision answered {response.status}: {await response.text()}")


async def health(rig: Rig) -> dict[str, Any]:
    """The body of `/healthz` (`waiting`, `backlog` per outbox topic)."""
    async with rig.http.get(rig.url + "/healthz") as response:
        body: dict[str, Any] = await response.json()
        return body


async def parked(rig: Rig, count: int, timeout: float = 120) -> None:
    """Until the bot holds at least `count` open waits."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if (await health(rig))["waiting"] >= count:
            return
        await asyncio.sleep(0.1)
    raise RuntimeError(f"the bot never held {count} waits within {timeout:g}s")


async def drained(rig: Rig, timeout: float = 600) -> float:
    """Until the bot has no card or webhook left to deliver; the seconds it took."""
    started = time.monotonic()
    while time.monotonic() - started < timeout:
        if not any((await health(rig))["backlog"].values()):
            return time.monotonic() - started
        await asyncio.sleep(0.1)
    raise RuntimeError(f"the bot's outbox did not drain within {timeout:g}s")


async def records(rig: Rig, limit: int = 100_000) -> dict[str, dict[str, Any]]:
    """Every approval record by id, read page by page through the list API."""
    found: dict[str, dict[str, Any]] = {}
    cursor: str | None = None
    while len(found) < limit:
        url = f"{rig.url}/v1/approvals?limit=500" + (f"&cursor={cursor}" if cursor else "")
        async with rig.http.get(url, headers=AGENT) as response:
            page = await response.json()
        found.update({item["id"]: item for item in page["items"]})
        cursor = page["next"]
        if not cursor:
            break
    return found


async def card_refs(rig: Rig, ids: Sequence[str]) -> dict[str, CardRef]:
    """Where each approval's card is, as the bot stored it (`slack.channel`, `slack.ts`)."""
    stored = await records(rig)
    refs: dict[str, CardRef] = {}
    for approval_id in ids:
        slack = stored[approval_id]["slack"]
        if not slack.get("ts"):
            raise RuntimeError(f"{approval_id} has no card yet")
        refs[approval_id] = (slack["channel"], slack["ts"])
    return refs


async def decided(rig: Rig, ids: Sequence[str], timeout: float) -> int:
    """How many of `ids` are decided, once all are or `timeout` seconds have passed."""
    deadline = time.monotonic() + timeout
    wanted = set(ids)
    while True:
        done = sum(
            1
            for approval_id, record in (await records(rig)).items()
            if approval_id in wanted and record["status"] != "pending"
        )
        if done == len(wanted) or time.monotonic() > deadline:
            return done
        await asyncio.sleep(0.2)
