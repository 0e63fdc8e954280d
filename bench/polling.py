"""The agents of `peers` on our API: one waiting as our SDK does (`/wait`, woken on commit),
and one in the HumanLayer style, reading `GET /v1/approvals/{id}` every few seconds."""

from __future__ import annotations

import asyncio
import time
from typing import Any

from bench.agents import AGENT, decide, wait_for
from bench.loops import Loop
from bench.rig import Rig

__all__ = ["polling_loop", "waiting_loop"]


async def _submit(rig: Rig, index: int, system: str) -> str:
    body = {"toolName": "deploy_service", "args": {"version": f"{system}-{index}"}}
    async with rig.http.post(rig.url + "/v1/approvals", json=body, headers=AGENT) as response:
        record: dict[str, Any] = await response.json()
        return str(record["id"])


async def _poll(rig: Rig, approval_id: str, interval: float, timeout: float) -> float:
    """Read the record now and every `interval` s until it is decided; when it arrived."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        url = f"{rig.url}/v1/approvals/{approval_id}"
        async with rig.http.get(url, headers=AGENT) as response:
            record = await response.json()
        if record["status"] != "pending":
            return time.perf_counter()
        await asyncio.sleep(interval)
    raise RuntimeError(f"{approval_id} was not decided within {timeout:g}s")


def waiting_loop(rig: Rig) -> Loop:
    """Our agent: submit, then `GET …/wait`, which returns when the decision commits."""

    async def loop(index: int, think: float) -> float:
        approval_id = await _submit(rig, index, "wait")
        woken = asyncio.create_task(wait_for(rig, approval_id, timeout=60))
        await asyncio.sleep(think)
        sent = time.perf_counter()
        await decide(rig, approval_id)
        return await woken - sent

    return loop


def polling_loop(rig: Rig, interval: float) -> Loop:
    """A HumanLayer-style agent: submit, then read the approval every `interval` seconds."""

    async def loop(index: int, think: float) -> float:
        approval_id = await _submit(rig, index, "poll")
        resumed = asyncio.create_task(_poll(rig, approval_id, interval, timeout=60 + think))
        await asyncio.sleep(think)
        sent = time.perf_counter()
        await decide(rig, approval_id)
        return await resumed - sent

    return loop
