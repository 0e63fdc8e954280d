"""`make bench` end to end with tiny numbers: every measure's code path against a real bot
process and the local Slack, checked for the shape of its results and their invariants."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from bench.__main__ import main
from bench.cards import minimum_seconds
from bench.report import report
from bench.sizes import QUICK
from bench.stats import Latency, percentile
from bench.suite import run_peers, run_suite
from bench.targets import TARGETS

PNG = b"\x89PNG\r\n\x1a\n"


def assert_latency(summary: dict[str, float], n: int) -> None:
    assert summary["n"] == n
    assert 0 < summary["p50"] <= summary["p99"] <= summary["max"]
    assert "samples" not in summary


@pytest.mark.timeout(120)
async def test_the_suite_measures_everything_and_keeps_its_invariants(
    tmp_path: Path, pg_server: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("APPROVAL_TEST_PG_URL", pg_server)  # the replicas measure's server
    run = await run_suite(QUICK, tmp_path)
    results = json.loads((tmp_path / "results.json").read_text())
    assert results == run.results
    assert results["run"]["sizes"] == "quick"
    measures = [
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
    ]
    assert results["run"]["measures"] == measures

    assert results["submissions"]["count"] == QUICK.submissions
    assert results["submissions"]["per_s"] > 0
    assert results["submissions"]["all_at_once_per_s"] > 0
    assert results["submissions"]["all_at_once_bot_cpu_ms"] > 0
    assert results["submissions"]["all_at_once_client_cpu_ms"] > 0
    assert results["submissions"]["bare_all_at_once_per_s"] > 0

    wake = results["wake"]
    assert_latency(wake["click_ms"], QUICK.waiters)
    assert_latency(wake["api_ms"], QUICK.waiters)

    idle = results["idle"]
    assert idle["waiting_at_end"] == idle["waiters"] == QUICK.idle_waiters
    assert idle["cpu_percent"] >= 0
    assert 0 < idle["rss_mb"] < 2_000

    ack = results["ack"]
    assert ack["sent"] == round(QUICK.ack_rate * QUICK.ack_seconds)
    assert ack["ok"] == ack["decided"] == ack["sent"]
    assert_latency(ack["ms"], ack["sent"])

    burst = results["burst"]
    clicks = QUICK.burst_clicks
    assert burst["answered"] == burst["woken"] == burst["rewritten"] == clicks
    assert_latency(burst["click_ms"], clicks)
    assert burst["decisions_per_s"] > 0 and burst["cpu_ms_per_click"] > 0
    assert burst["replied"] == clicks  # every decision said in its card's thread
    assert burst["cpu_ms_per_click_with_follow_ups"] >= burst["cpu_ms_per_click"]

    kills = results["kills"]
    assert kills["sent"] == QUICK.kill_rounds * round(QUICK.kill_rate * QUICK.kill_seconds)
    assert 0 < kills["answered"] < kills["sent"]  # clicks sent while it was down get nothing
    assert kills["lost"] == 0

    cards = results["cards"]
    assert cards["posted_once"] is True
    assert cards["times_posted"] == {"1": QUICK.cards}
    assert cards["ts_mismatches"] == 0
    assert cards["seconds"] >= cards["minimum_seconds"]
    assert cards["post_calls"] >= QUICK.cards

    rewrites = results["rewrites"]
    assert rewrites["answered"] == rewrites["decided"] == QUICK.rewrite_clicks
    assert rewrites["rewritten"] == QUICK.rewrite_clicks
    assert 0 < rewrites["busiest_minute"] <= rewrites["tier_per_minute"]
    assert rewrites["ratelimited"] == 0

    policy = results["policy"]
    assert_latency(policy["with_conditions_ms"], QUICK.policy_calls)
    assert policy["added_p99_ms"] >= 0

    replicas = results["replicas"]
    assert (replicas["replicas"], replicas["skipped"]) == (QUICK.replicas, None)
    assert_latency(replicas["ms"], QUICK.replica_approvals)

    load = results["replicas_load"]
    assert (load["rate"], load["skipped"]) == (QUICK.replica_rate, None)
    clicks_elsewhere = QUICK.replica_rate_clicks - QUICK.replica_rate_clicks // QUICK.replicas
    assert_latency(load["ms"], clicks_elsewhere)

    hostile = results["hostile"]
    assert hostile["sent"] == round(QUICK.hostile_rate * QUICK.hostile_seconds)
    assert sum(hostile["statuses"].values()) == hostile["sent"]
    assert all(status.isdigit() and int(status) < 500 for status in hostile["statuses"])
    assert hostile["health_ms"]["n"] > 0 and hostile["click_ms"]["n"] > 0

    names = {t["name"] for t in results["targets"]}
    assert names == {t.name for t in TARGETS if t.path[0] != "peers"}
    assert all(isinstance(t["met"], bool) for t in results["targets"])

    assert (tmp_path / "latency.png").read_bytes().startswith(PNG)
    table = report(results)
    assert "click → agent woken" in table
    assert "posted exactly once" in table
    assert "click on A → agent waiting on C" in table
    assert "hostile submissions/s" in table
    assert "answered clicks lost" in table
    assert "decisions a second" in table


@pytest.mark.timeout(120)
async def test_peers_compare_resume_latency(tmp_path: Path) -> None:
    run = await run_peers(QUICK, tmp_path, awaithumans=None)
    peers = run.results["peers"]
    assert_latency(peers["ours_ms"], QUICK.peer_loops)
    assert_latency(peers["polling_ms"], QUICK.peer_loops)
    if peers["awaithumans_ms"] is None:
        assert peers["awaithumans_skipped"]  # says exactly why
        assert set(peers["speedup"]) == {"polling"}
    else:
        assert_latency(peers["awaithumans_ms"], QUICK.peer_loops)
        assert set(peers["speedup"]) == {"polling", "awaithumans"}
    assert (tmp_path / "peers.png").read_bytes().startswith(PNG)
    assert "ours (/wait)" in report(run.results, ("peers",))


def test_the_command_line_refuses_unknown_measures(tmp_path: Path) -> None:
    with pytest.raises(SystemExit, match="unknown measures: nope"):
        main(["--quick", "--only", "nope", "--out", str(tmp_path)])


@pytest.mark.parametrize(
    ("cards", "channels", "rate", "burst", "least"),
    [
        pytest.param(60, 3, 1.0, 3, 17.0, id="20-per-channel"),
        pytest.param(61, 3, 1.0, 3, 18.0, id="uneven-fullest-channel-counts"),
        pytest.param(3, 3, 1.0, 3, 0.0, id="within-the-burst"),
        pytest.param(9, 3, 4.0, 1, 0.5, id="faster-limit"),
    ],
)
def test_minimum_seconds(cards: int, channels: int, rate: float, burst: int, least: float) -> None:
    assert minimum_seconds(cards, channels, rate, burst) == least


def test_percentiles_are_nearest_rank() -> None:
    values = [float(v) for v in range(1, 101)]
    assert percentile(values, 50) == 50
    assert percentile(values, 99) == 99
    assert Latency.of_seconds([0.001, 0.002]).max == 2.0


def test_the_busiest_minute_counts_calls_in_any_60_s_window() -> None:
    from bench.rewrites import busiest_minute
    from bot.devslack import ApiCall

    def calls(*at: float) -> list[ApiCall]:
        return [ApiCall("chat.update", {}, {"ok": True}, 200, t) for t in at]

    assert busiest_minute(calls()) == 0
    assert busiest_minute(calls(0, 30, 59.9, 60, 61)) == 4  # 0…59.9, then 30…61
    assert busiest_minute(calls(0, 60, 120)) == 1
