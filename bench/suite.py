"""`make bench`: every measure on its own fresh bot, then the results, table and PNG."""

from __future__ import annotations

import asyncio
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from bench.ack import Ack, measure_ack
from bench.burst import measure_burst
from bench.cards import measure_cards
from bench.hostile import measure_hostile
from bench.idle import measure_idle
from bench.kills import measure_kills
from bench.output import jsonable, read_results, write_results
from bench.peers import Peers, measure_peers
from bench.plot import Panel, plot
from bench.policy import measure_policy
from bench.proc import OtherWork, machine
from bench.replicas import Replicas, measure_replicas
from bench.rewrites import measure_rewrites
from bench.sizes import Sizes
from bench.submissions import measure_submissions
from bench.targets import check_targets
from bench.wake import Wake, measure_wake

__all__ = ["MEASURES", "Run", "run_peers", "run_suite"]

MEASURES = (
    "submissions",
    "wake",
    "idle",
    "ack",
    "burst",
    "kills",
    "cards",
    "rewrites",
    "policy",
    "replicas",
    "replicas_load",
    "hostile",
)
LATENCY_PNG = "latency.png"
PEERS_PNG = "peers.png"


def say(text: str) -> None:
    """Progress on stderr, so stdout holds only the table."""
    print(f"· {text}", file=sys.stderr, flush=True)


@dataclass
class Run:
    """What a run measured, as JSON, and where it wrote it."""

    results: dict[str, Any]
    written: list[Path] = field(default_factory=list)


async def _measure(name: str, sizes: Sizes) -> Any:
    if name == "submissions":
        say(
            f"submissions: {sizes.submissions:,}, {sizes.submit_concurrency} at a time, "
            "then as many all at once"
        )
        return await measure_submissions(
            sizes.submissions, sizes.submit_concurrency, all_at_once=True
        )
    if name == "wake":
        say(f"wake: {sizes.waiters:,} agents waiting, woken by clicks then by API decisions")
        return await measure_wake(sizes.waiters)
    if name == "idle":
        say(f"idle: {sizes.idle_waiters:,} agents waiting, watched for {sizes.idle_seconds:g} s")
        return await measure_idle(sizes.idle_waiters, sizes.idle_seconds)
    if name == "ack":
        say(f"ack: {sizes.ack_rate:g} clicks/s for {sizes.ack_seconds:g} s")
        return await measure_ack(sizes.ack_rate, sizes.ack_seconds)
    if name == "burst":
        say(
            f"burst: Approve on {sizes.burst_clicks} cards back to back, "
            f"{sizes.burst_in_flight} in flight, an agent waiting on each"
        )
        return await measure_burst(sizes.burst_clicks, sizes.burst_in_flight)
    if name == "kills":
        say(
            f"kills: {sizes.kill_rounds} × kill -9 amid {sizes.kill_rate:g} clicks/s "
            f"for {sizes.kill_seconds:g} s"
        )
        return await measure_kills(sizes.kill_rounds, sizes.kill_rate, sizes.kill_seconds)
    if name == "cards":
        say(
            f"cards: {sizes.cards} over {sizes.card_channels} channels, "
            f"Slack at {sizes.card_rate_per_channel:g} msg/s/channel"
        )
        return await measure_cards(
            sizes.cards, sizes.card_channels, sizes.card_rate_per_channel, sizes.card_burst
        )
    if name == "rewrites":
        say(f"rewrites: Approve on {sizes.rewrite_clicks} cards at once, Slack at Tier 3")
        return await measure_rewrites(sizes.rewrite_clicks)
    if name == "policy":
        say(f"policy: {sizes.policy_calls:,} submissions routed through CEL conditions")
        return await measure_policy(sizes.policy_calls)
    if name == "replicas":
        say(
            f"replicas: {sizes.replicas} on PostgreSQL, {sizes.replica_approvals} clicks, "
            f"{sizes.replica_concurrency} at a time"
        )
        return await measure_replicas(
            sizes.replicas,
            sizes.replica_approvals,
            sizes.replica_concurrency,
            sizes.replica_channels,
        )
    if name == "replicas_load":
        say(
            f"replicas_load: {sizes.replicas} on PostgreSQL, {sizes.replica_rate_clicks} clicks "
            f"at {sizes.replica_rate:g}/s spread over them"
        )
        return await measure_replicas(
            sizes.replicas,
            sizes.replica_rate_clicks,
            channels=sizes.replica_rate_channels,
            rate=sizes.replica_rate,
        )
    if name == "hostile":
        say(
            f"hostile: {sizes.hostile_rate:g} hostile submissions/s for {sizes.hostile_seconds:g} s"
        )
        return await measure_hostile(sizes.hostile_rate, sizes.hostile_seconds)
    raise ValueError(f"no measure {name!r}; pick from {', '.join(MEASURES)}")


def _previous(out: Path) -> dict[str, Any]:
    """The sections of the last results.json that a run keeps when it measures others."""
    kept = (*MEASURES, "peers", "machine", "run")
    return {key: value for key, value in read_results(out).items() if key in kept}


def _run_info(started: float, others: OtherWork, **extra: Any) -> dict[str, Any]:
    return {
        "at": datetime.now(UTC).isoformat(timespec="seconds"),
        "seconds": round(time.perf_counter() - started, 1),
        # CPU other processes took meanwhile: well above 0, and the figures are worse than
        # the bot's own
        "other_cpu_cores": round(others.cores(), 2),
        **extra,
    }


async def run_suite(sizes: Sizes, out: Path, only: Sequence[str] = MEASURES) -> Run:
    """Run the measures in `only`; merge them into results.json (which keeps the latest figure
    of every measure, and says which run made it) and draw the latency PNG."""
    started, others = time.perf_counter(), OtherWork()
    others.start()
    names = [name for name in MEASURES if name in only]
    if sizes.side_by_side:
        done = await asyncio.gather(*(_measure(name, sizes) for name in names))
        measured = dict(zip(names, done, strict=True))
    else:
        measured = {name: await _measure(name, sizes) for name in names}
    results = _previous(out)
    results.update({name: jsonable(value) for name, value in measured.items()})
    results["machine"] = machine()
    results["run"] = _run_info(started, others, sizes=sizes.name, measures=names)
    results["targets"] = check_targets(results)
    written = [write_results(out, results)]
    panels = _latency_panels(measured.get("wake"), measured.get("ack"), measured.get("replicas"))
    if panels:
        written.append(plot(out / LATENCY_PNG, panels, f"approval-bot latency — {machine()}"))
    return Run(results, written)


def _latency_panels(wake: Wake | None, ack: Ack | None, replicas: Replicas | None) -> list[Panel]:
    panels: list[Panel] = []
    if wake is not None:
        series = [("click", wake.click_ms), ("API decision", wake.api_ms)]
        panels.append((f"decision → agent woken, {wake.waiters:,} waiting", series, 20.0))
    if ack is not None:
        title = f"Slack ack at {ack.rate_per_s:g} clicks/s for {ack.seconds:g} s"
        panels.append((title, [("/slack/events", ack.ms)], 50.0))
    if replicas is not None and replicas.ms is not None:
        title = f"click on replica A → agent on C, {replicas.replicas} replicas on PostgreSQL"
        panels.append((title, [("cross-replica", replicas.ms)], 50.0))
    return panels


async def run_peers(sizes: Sizes, out: Path, awaithumans: str | None) -> Run:
    """Measure resume latency against the peers; merge it into results.json, draw its PNG."""
    started, others = time.perf_counter(), OtherWork()
    others.start()
    say(
        f"peers: {sizes.peer_loops} submit → decide → resume loops each, "
        f"{sizes.peer_concurrency} at a time"
    )
    peers = await measure_peers(
        sizes.peer_loops, sizes.peer_concurrency, sizes.poll_interval, awaithumans
    )
    results = _previous(out)
    results["peers"] = jsonable(peers)
    results["peers"]["machine"] = machine()
    results["peers"]["run"] = _run_info(started, others, sizes=sizes.name)
    results.setdefault("machine", machine())
    results["targets"] = check_targets(results)
    written = [write_results(out, results)]
    written.append(plot(out / PEERS_PNG, [_peers_panel(peers)], f"resume latency — {machine()}"))
    return Run(results, written)


def _peers_panel(peers: Peers) -> Panel:
    series = [
        ("ours, /wait", peers.ours_ms),
        (f"polling {peers.poll_interval:g} s", peers.polling_ms),
    ]
    if peers.awaithumans_ms is not None:
        series.append(("awaithumans 0.1.12", peers.awaithumans_ms))
    return (f"decision → agent resumed, {peers.loops} loops each", series, None)
