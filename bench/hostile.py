"""Measure: the bot stays responsive while hostile agents send requests built to stall it.

For `seconds`, hostile submissions arrive open-loop at `rate` a second (a backtracking regular
expression, `uniqueItems` over thousands of objects, deep nesting, remote and unresolvable
`$ref`s), while `/healthz` is polled every 50 ms and people click Approve on cards whose agents
wait, one click every 200 ms. Recorded: `/healthz` latency, click → agent woken, and what the
hostile requests were answered (every one must be a 4xx or a record, never a 5xx).
"""

from __future__ import annotations

import asyncio
import time
from collections import Counter
from dataclasses import dataclass
from itertools import cycle
from typing import Any

from bench.agents import AGENT, card_refs, drained, parked, submit_many, wait_for
from bench.clicks import Clicker
from bench.rig import Rig, channels_for, open_rig
from bench.stats import Latency

__all__ = ["HOSTILE", "Hostile", "measure_hostile"]

HEALTH_EVERY = 0.05
CLICK_EVERY = 0.2


def _nested(depth: int, leaf: Any, wrap: str) -> Any:
    for _ in range(depth):
        leaf = {wrap: leaf} if wrap != "[]" else [leaf]
    return leaf


#: the requests, each a body for `POST /v1/approvals`
HOSTILE: dict[str, dict[str, Any]] = {
    "regex": {
        "args": {"s": "a" * 28 + "!"},
        "argsSchema": {"type": "object", "properties": {"s": {"pattern": "^(a+)+$"}}},
    },
    "uniqueItems": {
        "args": {"rows": [{"i": i, "tag": "x"} for i in range(8000)]},
        "argsSchema": {"type": "object", "properties": {"rows": {"uniqueItems": True}}},
    },
    "deep schema": {"args": {}, "argsSchema": _nested(100, {"type": "object"}, "not")},
    "deep args": {"args": {"a": _nested(300, 1, "[]")}},
    "remote ref": {"args": {}, "argsSchema": {"$ref": "http://127.0.0.1:9/x"}},
    "missing ref": {"args": {}, "argsSchema": {"$ref": "#/$defs/missing"}},
}


@dataclass(frozen=True)
class Hostile:
    rate_per_s: float
    seconds: float
    #: hostile requests sent, and how they were answered (HTTP status → count)
    sent: int
    statuses: dict[str, int]
    #: `/healthz` while they arrive
    health_ms: Latency
    #: click sent → its agent woken, in the same window
    click_ms: Latency


async def _hostile(rig: Rig, body: dict[str, Any], statuses: Counter[str]) -> None:
    request = {"toolName": "hostile", **body}
    try:
        async with rig.http.post(rig.url + "/v1/approvals", json=request, headers=AGENT) as r:
            await r.read()
            statuses[str(r.status)] += 1
    except Exception as exc:  # a dropped request is a finding, not a crash
        statuses[type(exc).__name__] += 1


async def _health(rig: Rig) -> float:
    started = time.perf_counter()
    async with rig.http.get(rig.url + "/healthz") as response:
        await response.read()
        if response.status != 200:
            raise RuntimeError(f"/healthz answered {response.status}")
    return time.perf_counter() - started


async def measure_hostile(rate: float, seconds: float) -> Hostile:
    """Hostile submissions at `rate` a second for `seconds`; health and click latencies."""
    clicks = int(seconds / CLICK_EVERY)
    async with open_rig(channels=channels_for(clicks)) as rig:
        ids, _ = await submit_many(rig, clicks, channels=rig.channels)
        await drained(rig)
        cards = await card_refs(rig, ids)
        waits = {i: asyncio.create_task(wait_for(rig, i)) for i in ids}
        await parked(rig, len(ids))
        clicker = Clicker(rig)
        statuses: Counter[str] = Counter()
        health: list[float] = []
        woken: list[float] = []
        loop = asyncio.get_running_loop()
        start = loop.time()
        end = start + seconds

        async def send_hostile() -> int:
            sent, tasks = 0, []
            for name in cycle(HOSTILE):
                due = start + sent / rate
                if due >= end:
                    break
                await asyncio.sleep(max(0.0, due - loop.time()))
                tasks.append(asyncio.create_task(_hostile(rig, HOSTILE[name], statuses)))
                sent += 1
            await asyncio.gather(*tasks)
            return sent

        async def poll_health() -> None:
            while loop.time() < end:
                health.append(await _health(rig))
                await asyncio.sleep(HEALTH_EVERY)

        async def click_each() -> None:
            for n, approval_id in enumerate(ids):
                await asyncio.sleep(max(0.0, start + n * CLICK_EVERY - loop.time()))
                exchange = await clicker.approve(cards[approval_id])
                if exchange.status == 200:
                    woken.append(await waits[approval_id] - exchange.sent)

        sent, _, _ = await asyncio.gather(send_hostile(), poll_health(), click_each())
        for task in waits.values():
            task.cancel()
        await asyncio.gather(*waits.values(), return_exceptions=True)
    return Hostile(
        rate_per_s=rate,
        seconds=seconds,
        sent=sent,
        statuses=dict(sorted(statuses.items())),
        health_ms=Latency.of_seconds(health),
        click_ms=Latency.of_seconds(woken),
    )
