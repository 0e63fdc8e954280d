"""How big each measure is: the full run (about five minutes on 2 cores) and `--quick`."""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["FULL", "QUICK", "Sizes"]


@dataclass(frozen=True)
class Sizes:
    """Counts and durations of every measure."""

    name: str = "full"
    #: submissions measured, and how many are in flight at once
    submissions: int = 10_000
    submit_concurrency: int = 50
    #: agents waiting while each is woken: by a click, then by an API decision
    waiters: int = 1_000
    #: agents waiting idle, and for how long the bot's CPU is watched
    idle_waiters: int = 10_000
    idle_seconds: float = 30.0
    #: clicks sent back to back, each on a card an agent waits on
    burst_clicks: int = 200
    burst_in_flight: int = 8
    #: Slack interactions a second, and for how long
    ack_rate: float = 200.0
    ack_seconds: float = 20.0
    #: `kill -9` rounds, each with clicks streaming in at this rate for these seconds
    kill_rounds: int = 10
    kill_rate: float = 200.0
    kill_seconds: float = 1.0
    #: cards posted through an emulator that rate-limits each channel
    cards: int = 60
    card_channels: int = 3
    card_rate_per_channel: float = 1.0
    card_burst: int = 3
    #: Approve clicked on this many cards at once, rewritten within chat.update's tier
    rewrite_clicks: int = 100
    #: submissions routed through a routing file's conditions
    policy_calls: int = 10_000
    #: replicas on one PostgreSQL: approvals clicked on one and awaited on another, how many
    #: clicks at once, and the channels their cards are spread over
    replicas: int = 3
    replica_approvals: int = 200
    replica_concurrency: int = 1
    replica_channels: int = 50
    #: then clicks a second spread over the replicas, and how many
    replica_rate: float = 50.0
    replica_rate_clicks: int = 1_000
    replica_rate_channels: int = 250
    #: hostile submissions a second, and for how long
    hostile_rate: float = 20.0
    hostile_seconds: float = 20.0
    #: submit → decide → resume loops per system in `peers`, and how many run at once
    peer_loops: int = 50
    peer_concurrency: int = 10
    #: the HumanLayer-style client's polling interval
    poll_interval: float = 3.0
    #: run the measures at the same time (each still on its own bot): quick, and its figures
    #: then prove only that every code path works
    side_by_side: bool = False


FULL = Sizes()

#: the whole suite in seconds, for the smoke test: every code path, tiny numbers
QUICK = Sizes(
    name="quick",
    submissions=100,
    submit_concurrency=20,
    waiters=10,
    idle_waiters=100,
    idle_seconds=1.0,
    burst_clicks=8,
    burst_in_flight=2,
    ack_rate=50.0,
    ack_seconds=1.0,
    kill_rounds=2,
    kill_rate=50.0,
    kill_seconds=0.5,
    cards=9,
    card_channels=3,
    card_rate_per_channel=4.0,
    card_burst=1,
    rewrite_clicks=8,
    policy_calls=200,
    replica_approvals=10,
    replica_concurrency=2,
    replica_channels=5,
    replica_rate=20.0,
    replica_rate_clicks=10,
    replica_rate_channels=5,
    hostile_rate=10.0,
    hostile_seconds=1.0,
    peer_loops=4,
    peer_concurrency=4,
    poll_interval=0.2,
    side_by_side=True,
)
