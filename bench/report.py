"""The printed table: every figure of a results dict, with its target and whether it is met."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

from bench.stats import ms
from bench.targets import TARGETS

__all__ = ["report"]

Row = tuple[str, str, str]
#: CPU taken by other processes during a run (in cores) from which the report warns
OTHERS_NOTED = 0.1
JSON = dict[str, Any]


def _target(path: str, value: float) -> str:
    for target in TARGETS:
        if ".".join(target.path) == path:
            return f"{target.text}  {'✓' if target.met(value) else '✗ missed'}"
    return ""


def _submissions(m: JSON) -> Iterator[Row]:
    what = (
        f"submissions into store + outbox ({m['count']:,} over {m['channels']} channels, "
        f"{m['concurrency']} at a time)"
    )
    yield what, f"{m['per_s']:,.0f}/s", _target("submissions.per_s", m["per_s"])
    if m.get("all_at_once_per_s") is not None:
        rate = m["all_at_once_per_s"]
        what = f"submissions, {m['count']:,} all at once (each agent on its own connection)"
        yield what, f"{rate:,.0f}/s", _target("submissions.all_at_once_per_s", rate)
        if m.get("all_at_once_bot_cpu_ms") is not None:
            bot, client = m["all_at_once_bot_cpu_ms"], m["all_at_once_client_cpu_ms"]
            cpu = f"bot {bot:.2f} ms, the bench's client {client:.2f} ms"
            yield "… CPU a submission, on the same cores", cpu, ""
        if m.get("bare_all_at_once_per_s") is not None:
            bare = f"{m['bare_all_at_once_per_s']:,.0f}/s"
            yield "… the same to a bare aiohttp app (JSON in, 201 out, nothing else)", bare, ""


def _latency(label: str, m: JSON, path: str) -> Iterator[Row]:
    for key in ("p50", "p99", "max"):
        yield f"{label}: {key}", ms(m[key]), _target(f"{path}.{key}", m[key])


def _wake(m: JSON) -> Iterator[Row]:
    waiting = f"{m['waiters']:,} agents waiting"
    yield from _latency(f"click → agent woken, {waiting}", m["click_ms"], "wake.click_ms")
    yield from _latency(f"API decision → agent woken, {waiting}", m["api_ms"], "wake.api_ms")


def _idle(m: JSON) -> Iterator[Row]:
    who = f"{m['waiters']:,} agents waiting idle for {m['seconds']:g} s"
    cpu, rss = m["cpu_percent"], m["rss_mb"]
    yield f"{who}: bot CPU", f"{cpu:.2f} % of a core", _target("idle.cpu_percent", cpu)
    yield f"{who}: bot RSS", f"{rss:.0f} MB", _target("idle.rss_mb", rss)
    held = f"{m['waiting_at_end']:,}/{m['waiters']:,}"
    yield f"{who}: waits still open at the end", held, "all"


def _ack(m: JSON) -> Iterator[Row]:
    what = f"Slack ack at {m['rate_per_s']:g} clicks/s for {m['seconds']:g} s"
    yield from _latency(what, m["ms"], "ack.ms")
    yield f"{what}: answered within 3 s", f"{m['ok']:,}/{m['sent']:,}", "all"
    yield f"{what}: approvals decided", f"{m['decided']:,}/{m['sent']:,}", "all"
    yield f"{what}: sent at", f"{m['achieved_per_s']:g}/s", ""
    cpu = f"bot {m['bot_cpu_percent']:g} %, bench {m['bench_cpu_percent']:g} %"
    yield f"{what}: CPU, % of a core", cpu, ""
    if "cpu_ms_per_click" in m:  # results from before it was measured lack it
        per = m["cpu_ms_per_click"]
        yield f"{what}: bot CPU a click (follow-ups trail at Slack's pace)", ms(per), ""


def _burst(m: JSON) -> Iterator[Row]:
    what = f"Approve on {m['clicks']} cards back to back ({m['in_flight']} in flight)"
    rate = m["decisions_per_s"]
    yield f"{what}: decisions a second", f"{rate:,.0f}/s", _target("burst.decisions_per_s", rate)
    yield from _latency(f"{what}: click → agent woken", m["click_ms"], "burst.click_ms")
    woken = f"{m['answered']}/{m['clicks']} answered, {m['woken']}/{m['clicks']} woken"
    yield f"{what}: answered and woken", woken, "all"
    per = m["cpu_ms_per_click"]
    yield f"{what}: bot CPU a click", ms(per), _target("burst.cpu_ms_per_click", per)
    rewritten = f"{m['rewritten']}/{m['clicks']}, the last after {m['rewrite_seconds']:g} s"
    yield f"{what}: cards rewritten (Tier 3 pace)", rewritten, "all"
    if "replied" in m:  # results from before it was measured lack it
        replied = f"{m['replied']}/{m['clicks']}"
        yield f"{what}: decisions replied in the card's thread", replied, "all"
        whole = m["cpu_ms_per_click_with_follow_ups"]
        yield f"{what}: bot CPU a click, its rewrite and thread reply included", ms(whole), ""


def _kills(m: JSON) -> Iterator[Row]:
    what = f"kill -9 ×{m['rounds']} amid {m['rate_per_s']:g} clicks/s: answered clicks lost"
    lost = f"{m['lost']} of {m['answered']:,} answered ({m['sent']:,} sent)"
    yield what, lost, _target("kills.lost", m["lost"])
    yield "kill -9 → restarted and healthy, slowest", f"{m['restart_seconds']:g} s", ""


def _cards(m: JSON) -> Iterator[Row]:
    what = (
        f"{m['cards']} cards over {m['channels']} channels, "
        f"Slack at {m['rate_per_channel']:g} msg/s/channel"
    )
    once = m["times_posted"].get("1", 0)
    verdict = "✓" if m["posted_once"] else f"✗ {m['times_posted']}"
    yield f"{what}: posted exactly once", f"{once}/{m['cards']}", f"all  {verdict}"
    took = f"{m['seconds']:.1f} s (least {m['minimum_seconds']:.1f} s)"
    yield f"{what}: all posted after", took, ""
    yield f"{what}: 429s drawn", f"{m['ratelimited']} of {m['post_calls']} calls", "no storm"


def _rewrites(m: JSON) -> Iterator[Row]:
    what = f"Approve on {m['clicks']} cards in {m['channels']} channels at once"
    took = f"{m['decided']}/{m['clicks']} in {m['decide_seconds']:g} s"
    yield f"{what}: decided", took, "all, at once"
    busiest = f"{m['busiest_minute']} ({m['ratelimited']} answered 429)"
    yield (
        f"{what}: chat.update calls in the busiest minute",
        busiest,
        _target("rewrites.busiest_minute", m["busiest_minute"]),
    )
    rewritten = f"{m['rewritten']}/{m['clicks']}, the last after {m['rewrite_seconds']:g} s"
    yield f"{what}: cards rewritten", rewritten, "all"


def _policy(m: JSON) -> Iterator[Row]:
    what = f"routing {m['calls']:,} submissions past {m['rules'] - 1} rules with CEL `when`"
    yield from _latency(what, m["with_conditions_ms"], "policy.with_conditions_ms")
    yield (
        f"{what}: added to a submission, p99",
        ms(m["added_p99_ms"]),
        _target("policy.added_p99_ms", m["added_p99_ms"]),
    )


def _replicas(m: JSON, section: str = "replicas") -> Iterator[Row]:
    what = f"{m['replicas']} replicas on PostgreSQL, click on A → agent waiting on C"
    if m.get("rate"):
        what = (
            f"{m['replicas']} replicas on PostgreSQL, {m['rate']:g} clicks/s spread over them "
            f"→ agent waiting on C"
        )
    if m["ms"] is None:
        yield what, "not measured", m["skipped"]
        return
    if m.get("rate"):
        what += f" ({m['approvals']:,} clicks; those on C left out)"
    else:
        what += f" ({m['approvals']} approvals, {m['concurrency']} click at a time)"
    yield from _latency(what, m["ms"], f"{section}.ms")


def _replicas_load(m: JSON) -> Iterator[Row]:
    return _replicas(m, "replicas_load")


def _peers(m: JSON) -> Iterator[Row]:
    what = f"resume after decision, {m['loops']} loops"
    systems = [
        ("ours (/wait)", m["ours_ms"]),
        (f"polling every {m['poll_interval']:g} s", m["polling_ms"]),
    ]
    if m["awaithumans_ms"] is not None:
        systems.append(("awaithumans 0.1.12", m["awaithumans_ms"]))
    for name, latency in systems:
        yield f"{what}: {name}", f"p50 {ms(latency['p50'])}, p99 {ms(latency['p99'])}", ""
    for name, ratio in m["speedup"].items():
        for key in ("p50", "p99"):
            path = f"peers.speedup.{name}.{key}"
            yield (
                f"ours faster than {name}, {key}",
                f"{ratio[key]:,.0f}×",
                _target(path, ratio[key]),
            )
    if m["awaithumans_skipped"]:
        yield "awaithumans 0.1.12", "not measured", m["awaithumans_skipped"]


def _hostile(m: JSON) -> Iterator[Row]:
    what = f"{m['rate_per_s']:g} hostile submissions/s for {m['seconds']:g} s"
    yield from _latency(f"{what}: /healthz", m["health_ms"], "hostile.health_ms")
    yield from _latency(f"{what}: click → agent woken", m["click_ms"], "hostile.click_ms")
    answers = ", ".join(f"{status} ×{count:,}" for status, count in m["statuses"].items())
    fine = all(status.isdigit() and int(status) < 500 for status in m["statuses"])
    yield f"{what}: answered", answers, f"4xx or a record  {'✓' if fine else '✗'}"


SECTIONS: dict[str, Callable[[JSON], Iterator[Row]]] = {
    "submissions": _submissions,
    "wake": _wake,
    "idle": _idle,
    "ack": _ack,
    "burst": _burst,
    "kills": _kills,
    "cards": _cards,
    "rewrites": _rewrites,
    "policy": _policy,
    "replicas": _replicas,
    "replicas_load": _replicas_load,
    "hostile": _hostile,
    "peers": _peers,
}


def _caveats(run: JSON) -> Iterator[str]:
    if run.get("sizes") == "quick":
        yield "quick run: tiny numbers, measures side by side; the figures mean nothing"
    others = run.get("other_cpu_cores", 0.0)
    if others >= OTHERS_NOTED:
        yield (
            f"other processes used {others:g} cores meanwhile: "
            "these figures are worse than the bot's own"
        )


def report(results: JSON, sections: tuple[str, ...] = tuple(SECTIONS)) -> str:
    """The table of `sections` (those present in `results`)."""
    rows = [row for name in sections if results.get(name) for row in SECTIONS[name](results[name])]
    width = max((len(row[0]) for row in rows), default=0)
    value_width = max((len(row[1]) for row in rows), default=0)
    run = results["peers"]["run"] if sections == ("peers",) else results.get("run", {})
    lines = [f"machine: {results.get('machine', 'unknown')}", *_caveats(run), ""]
    lines += [f"{a.ljust(width)}  {b.rjust(value_width)}  {c}".rstrip() for a, b, c in rows]
    return "\n".join(lines)
