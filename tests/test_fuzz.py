"""Fuzzing the edges: signed Slack payloads and `/v1` requests never make a 500 or a decision.

Each test runs one bot for all its examples. Hypothesis drives the examples from a worker
thread (`@given` functions are synchronous); every example runs as a coroutine on the test's
own event loop, where the bot and its HTTP client live.
"""

from __future__ import annotations

import asyncio
import copy
import io
import json
import re
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any, TypeVar
from urllib.parse import quote, urlencode

import aiohttp
import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from bot.devslack import View, payloads, signed_headers
from bot.models import Approval
from bot.slack.listeners import thread_command
from tests.conftest import ADMIN_TOKEN, AGENT_TOKEN, SIGNING_SECRET, Running, SlackRig, until

T = TypeVar("T")

FUZZ = settings(
    max_examples=150,
    deadline=None,
    database=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)

#: what a Slack user id looks like; anything else is not a person who can decide
SLACK_USER = re.compile(r"[UW][A-Z0-9]{2,}")


def on_loop(loop: asyncio.AbstractEventLoop, make: Callable[[], Awaitable[T]]) -> T:
    """Run a coroutine on the test's loop from Hypothesis' thread and wait for it."""

    async def run() -> T:
        return await make()

    return asyncio.run_coroutine_threadsafe(run(), loop).result(timeout=30)


# -- junk ---------------------------------------------------------------------------------------

scalars = (
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**70), max_value=2**70)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=40)
)


@dataclass(frozen=True)
class Huge:
    """A string of `size` repeats, made only when sent, so failure reports stay readable."""

    size: int

    def __str__(self) -> str:
        return "\u00e9<@U0ALICE>" * self.size


def real(value: Any) -> Any:
    """`value` with every `Huge` placeholder turned into its string."""
    if isinstance(value, Huge):
        return str(value)
    if isinstance(value, list):
        return [real(item) for item in value]
    if isinstance(value, dict):
        return {key: real(item) for key, item in value.items()}
    return value


huge_strings = st.builds(Huge, st.integers(min_value=300, max_value=30_000))
junk: st.SearchStrategy[Any] = st.recursive(
    scalars | huge_strings,
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4)
    ),
    max_leaves=12,
)
#: values that are not a Slack user id: wrong types, empty, mentions, names, whitespace
not_a_user = junk.filter(
    lambda v: not (isinstance(v, str) and SLACK_USER.fullmatch(v))
) | st.sampled_from(
    [
        "",
        " ",
        "alice",
        "<@U0ALICE>",
        "U0ALICE\n",
        "u0alice",
        "U",
        "B0BOT",
        "C0OPS",
        "U0ALICE " * 500,
    ]
)
#: values that are not the pending approval's id
not_an_approval = junk | st.sampled_from(["", "apr_", "apr_0000", "apr_" + "f" * 5000, "null"])

DELETE = object()


def brief(value: Any) -> str:
    """A short repr for failure messages (the junk can be megabytes)."""
    text = repr(value)
    return text if len(text) <= 300 else text[:300] + f"… ({len(text)} chars)"


@dataclass(frozen=True)
class Mutation:
    """Set (or delete) the value at `path`; a path through a missing key changes nothing."""

    path: tuple[str | int, ...]
    value: Any

    def apply(self, payload: dict[str, Any]) -> None:
        node: Any = payload
        for step in self.path[:-1]:
            try:
                node = node[step]
            except (KeyError, IndexError, TypeError):
                return
        last = self.path[-1]
        if self.value is DELETE:
            if isinstance(node, dict):
                node.pop(last, None)
            elif isinstance(node, list) and isinstance(last, int) and last < len(node):
                del node[last]
        elif isinstance(node, dict) or (
            isinstance(node, list) and isinstance(last, int) and last < len(node)
        ):
            container: Any = node
            container[last] = real(self.value)


def mutations(
    breaking: st.SearchStrategy[Mutation], noise: st.SearchStrategy[Mutation]
) -> st.SearchStrategy[list[Mutation]]:
    """At least one change that makes a decision impossible, then harmless junk around it.

    The breaking changes go first and the junk never touches their paths, so the junk cannot
    repair a payload into a valid one.
    """
    return st.tuples(st.lists(breaking, min_size=1, max_size=3), st.lists(noise, max_size=4)).map(
        lambda pair: [*pair[0], *pair[1]]
    )


def deleted_or(
    path: tuple[str | int, ...], values: st.SearchStrategy[Any]
) -> st.SearchStrategy[Mutation]:
    return st.one_of(st.just(Mutation(path, DELETE)), values.map(lambda v: Mutation(path, v)))


def extra_keys(paths: list[tuple[str | int, ...]]) -> st.SearchStrategy[Mutation]:
    """A new key (never one Slack sends) holding junk, somewhere in the payload."""
    return st.builds(
        lambda where, key, value: Mutation((*where, f"zz_{key}"), value),
        st.sampled_from(paths),
        st.text(max_size=6),
        junk,
    )


# -- signed Slack payloads -------------------------------------------------------------------


@dataclass
class Scene:
    """A pending approval with its card and open modals, and one already decided."""

    rig: SlackRig
    pending: dict[str, Any]
    decided: dict[str, Any]
    click: dict[str, Any]
    modals: dict[str, dict[str, Any]]
    message_event: dict[str, Any]
    command: dict[str, str]
    baseline: int
    culprit: str | None = None

    async def post(self, body: bytes, content_type: str) -> int:
        """POST a signed body to `/slack/events`; the HTTP status."""
        headers = signed_headers(SIGNING_SECRET, body, content_type=content_type)
        async with self.rig.bot.http.post(
            self.rig.bot.url + "/slack/events", data=io.BytesIO(body), headers=headers
        ) as response:
            await response.read()
            return response.status

    async def interaction(self, payload: Any) -> int:
        body = urlencode({"payload": json.dumps(payload)}).encode()
        return await self.post(body, "application/x-www-form-urlencoded")

    async def event(self, envelope: Any) -> int:
        return await self.post(json.dumps(envelope).encode(), "application/json")

    async def slash(self, fields: dict[str, str]) -> int:
        return await self.post(urlencode(fields).encode(), "application/x-www-form-urlencoded")

    async def state_changes(self) -> int:
        """How many state changes the audit trail holds beyond the scene's own."""
        store = self.rig.bot.service.store
        return len(await store.events_since(0, limit=100_000, states_only=True)) - self.baseline

    async def unchanged(self, case: Any = None) -> None:
        """Nothing was decided: the pending approval still is, the decided one is as it was.

        Once an example decides, every later one fails too; the message names the first.
        """
        await until(_listeners_done, timeout=10, interval=0.005)
        _, pending = await self.rig.bot.call("GET", f"/v1/approvals/{self.pending['id']}")
        _, decided = await self.rig.bot.call("GET", f"/v1/approvals/{self.decided['id']}")
        changes = await self.state_changes()
        clean = (
            pending["status"] == "pending"
            and pending["decision"] is None
            and pending["progress"]["approvedBy"] == []
            and decided == self.decided
            and changes == 0
        )
        if not clean and self.culprit is None:
            self.culprit = brief(case)
        assert clean, (
            f"{pending['status']} with {changes} state changes, first after {self.culprit}"
        )


#: tasks still handling a request after its answer: a click or event being dispatched
#: (answered before Bolt sees it), and Bolt's listeners (they run on after their ack)
_AFTER_ANSWER = ("AsyncApp.async_dispatch", "run_ack_function_asynchronously")


async def _listeners_done() -> bool:
    """True once every click, event and listener answered already has been handled."""
    running = (task.get_coro() for task in asyncio.all_tasks() if not task.done())
    return not any(getattr(coro, "__qualname__", "").endswith(_AFTER_ANSWER) for coro in running)


async def _open_modal(rig: SlackRig, approval_id: str, action: str) -> View:
    await rig.click(approval_id, action, "U0CAROL")

    async def opened() -> View | None:
        views = [v for v in rig.workspace.open_modals("U0CAROL") if not v.closed]
        return views[-1] if views else None

    view: View = await until(opened)
    return view


@pytest.fixture
async def scene(rig: SlackRig) -> Scene:
    schema = {
        "type": "object",
        "properties": {"version": {"type": "string"}, "replicas": {"type": "integer"}},
    }
    pending = await rig.bot.submit(args={"version": "1.4.2", "replicas": 3}, argsSchema=schema)
    decided = await rig.bot.submit(args={"version": "0.9"})
    await rig.card(pending["id"])
    await rig.card(decided["id"])
    status, decided = await rig.bot.decide(decided["id"], approved=False, comment="no")
    assert status == 200

    modals: dict[str, dict[str, Any]] = {}
    values = {"reject": {"reason": "no"}, "feedback": {"feedback": "try staging"}, "edit": {}}
    for action, given_values in values.items():
        view = await _open_modal(rig, pending["id"], action)
        state = payloads.state_values(view, given_values)
        modals[action] = payloads.view_submission_payload(
            rig.workspace,
            user="U0ALICE",
            view=view,
            values=state,
            trigger_id=rig.workspace.new_trigger("U0ALICE").id,
        )
        rig.workspace.close_view(view.id)

    card = await rig.card(pending["id"])
    click = payloads.block_actions_payload(
        rig.workspace,
        user="U0ALICE",
        message=card,
        action_id="approve",
        trigger_id=rig.workspace.new_trigger("U0ALICE").id,
        response_url=rig.workspace.response_url(
            rig.workspace.new_response_target("U0ALICE", card.channel, card.ts)
        ),
        action_ts="1700000000.000001",
    )
    reply = rig.workspace.post_message(
        card.channel, text="approve", user="U0ALICE", thread_ts=card.ts
    )
    message_event = payloads.message_event(rig.workspace, reply)
    command = payloads.slash_command_fields(
        rig.workspace,
        command="/approvals",
        text="",
        user="U0ALICE",
        channel="C0OPS",
        trigger_id=rig.workspace.new_trigger("U0ALICE").id,
        response_url=rig.workspace.response_url(
            rig.workspace.new_response_target("U0ALICE", "C0OPS", None)
        ),
    )
    _, decided = await rig.bot.call("GET", f"/v1/approvals/{decided['id']}")
    baseline = len(await rig.bot.service.store.events_since(0, limit=100_000, states_only=True))
    return Scene(rig, pending, decided, click, modals, message_event, command, baseline)


async def _still_decides(scene: Scene) -> None:
    """After the junk, the same bot still takes a real click and stays healthy."""
    await scene.unchanged()
    status, health = await scene.rig.bot.call("GET", "/healthz")
    assert status == 200, health
    delivery = await scene.rig.slack.send_interaction(scene.click)
    decided = await scene.rig.decided(scene.pending["id"])
    assert delivery.status == 200
    assert (decided["status"], decided["decision"]["decidedBy"]) == ("approved", "U0ALICE")


CLICK_NOISE_PATHS: list[tuple[str | int, ...]] = [
    (),
    ("user",),
    ("actions", 0),
    ("container",),
    ("message",),
    ("team",),
    ("channel",),
]
click_breaking = st.one_of(
    deleted_or(("type",), junk.filter(lambda v: v != "block_actions")),
    deleted_or(("user",), junk.filter(lambda v: not isinstance(v, dict))),
    deleted_or(("user", "id"), not_a_user),
    deleted_or(("actions",), junk.filter(lambda v: not isinstance(v, list)) | st.just([])),
    deleted_or(("actions", 0), junk.filter(lambda v: not isinstance(v, dict))),
    deleted_or(("actions", 0, "value"), not_an_approval),
    deleted_or(
        ("actions", 0, "action_id"),
        junk.filter(lambda v: v != "approve")
        | st.sampled_from(["edit", "reject", "feedback", "view_args", "args_page", "APPROVE"]),
    ),
)
click_noise = st.one_of(
    extra_keys(CLICK_NOISE_PATHS),
    deleted_or(("container",), junk),
    deleted_or(("container", "channel_id"), junk),
    deleted_or(("message",), junk),
    deleted_or(("trigger_id",), junk),
    deleted_or(("response_url",), junk),
    deleted_or(("team",), junk),
    deleted_or(("channel",), junk),
    deleted_or(("api_app_id",), junk),
    deleted_or(("actions", 0, "block_id"), junk),
    deleted_or(("state",), junk),
)


async def test_signed_clicks_with_junk_never_fail_or_decide(scene: Scene) -> None:
    loop = asyncio.get_running_loop()
    statuses: list[int] = []

    async def check(changes: list[Mutation]) -> None:
        payload = copy.deepcopy(scene.click)
        for change in changes:
            change.apply(payload)
        status = await scene.interaction(payload)
        statuses.append(status)
        assert status < 500, f"HTTP {status} for {brief(changes)}"
        await scene.unchanged(changes)

    @FUZZ
    @given(mutations(click_breaking, click_noise))
    @example([Mutation(("user", "id"), "")])  # was a decision by nobody
    @example([Mutation(("user",), False)])  # was a 500
    @example([Mutation(("actions",), [])])  # was a 500
    @example([Mutation(("user", "id"), DELETE)])  # was a 3-second stall, then a 404
    def run(changes: list[Mutation]) -> None:
        on_loop(loop, lambda: check(changes))

    await asyncio.to_thread(run)
    assert statuses
    await _still_decides(scene)


def _not_ours(known: set[str]) -> st.SearchStrategy[Any]:
    return junk.filter(lambda v: not (isinstance(v, str) and v in known))


submission_breaking = st.one_of(
    deleted_or(("type",), _not_ours({"view_submission"})),
    deleted_or(("user",), junk.filter(lambda v: not isinstance(v, dict))),
    deleted_or(("user", "id"), not_a_user),
    deleted_or(("view",), junk.filter(lambda v: not isinstance(v, dict))),
    deleted_or(
        ("view", "private_metadata"),
        junk
        | not_an_approval.map(lambda v: json.dumps({"id": real(v)}))
        | st.sampled_from(["{", "[]", '{"id": null}', "[" * 3000, "null"]),
    ),
    deleted_or(
        ("view", "callback_id"),
        _not_ours({"edit_modal", "reject_modal", "feedback_modal"})
        | st.sampled_from(["args_modal", "notice_modal", "EDIT_MODAL"]),
    ),
)
SUBMISSION_NOISE_PATHS: list[tuple[str | int, ...]] = [(), ("view",), ("view", "state"), ("user",)]
submission_noise = st.one_of(
    extra_keys(SUBMISSION_NOISE_PATHS),
    deleted_or(("view", "state"), junk),
    deleted_or(("view", "state", "values"), junk),
    deleted_or(("view", "type"), junk),
    deleted_or(("view", "id"), junk),
    deleted_or(("view", "hash"), junk),
    deleted_or(("view", "blocks"), junk),
    deleted_or(("view", "title"), junk),
    deleted_or(("team",), junk),
    deleted_or(("trigger_id",), junk),
    deleted_or(("response_urls",), junk),
)


async def test_signed_modal_submissions_with_junk_never_fail_or_decide(scene: Scene) -> None:
    loop = asyncio.get_running_loop()
    statuses: list[int] = []

    async def check(modal: str, changes: list[Mutation]) -> None:
        payload = copy.deepcopy(scene.modals[modal])
        for change in changes:
            change.apply(payload)
        status = await scene.interaction(payload)
        statuses.append(status)
        assert status < 500, f"HTTP {status} for {modal}: {brief(changes)}"
        await scene.unchanged((modal, changes))

    @FUZZ
    @given(st.sampled_from(sorted(scene.modals)), mutations(submission_breaking, submission_noise))
    @example("reject", [Mutation(("user", "id"), "alice")])  # was a decision by "alice"
    @example("edit", [Mutation(("view", "private_metadata"), 5)])  # was a 500
    @example("feedback", [Mutation(("view", "private_metadata"), "[" * 3000)])  # was a 500
    def run(modal: str, changes: list[Mutation]) -> None:
        on_loop(loop, lambda: check(modal, changes))

    await asyncio.to_thread(run)
    assert statuses
    await _still_decides(scene)


def _no_command(value: Any) -> bool:
    return not (isinstance(value, str) and thread_command(value) is not None)


event_breaking = st.one_of(
    deleted_or(("type",), _not_ours({"event_callback"})),
    deleted_or(("event",), junk.filter(lambda v: not isinstance(v, dict))),
    deleted_or(("event", "type"), _not_ours({"message"})),
    deleted_or(("event", "user"), not_a_user),
    deleted_or(("event", "channel"), _not_ours({"C0OPS"})),
    deleted_or(("event", "thread_ts"), junk),
    deleted_or(("event", "text"), junk.filter(_no_command)),
    st.builds(
        Mutation,
        st.sampled_from([("event", "subtype"), ("event", "bot_id")]),
        st.sampled_from(["bot_message", "message_changed", "B0BOT", True, 1]),
    ),
)
EVENT_NOISE_PATHS: list[tuple[str | int, ...]] = [(), ("event",), ("authorizations", 0)]
event_noise = st.one_of(
    extra_keys(EVENT_NOISE_PATHS),
    deleted_or(("team_id",), junk),
    deleted_or(("api_app_id",), junk),
    deleted_or(("authorizations",), junk),
    deleted_or(("event_time",), junk),
    deleted_or(("event_id",), junk),
    deleted_or(("token",), junk),
    deleted_or(("event", "ts"), junk),
    deleted_or(("event", "team"), junk),
    deleted_or(("event", "blocks"), junk),
    deleted_or(("event", "client_msg_id"), junk),
)


async def test_signed_events_with_junk_never_fail_or_decide(scene: Scene) -> None:
    loop = asyncio.get_running_loop()
    statuses: list[int] = []

    async def check(changes: list[Mutation]) -> None:
        envelope = payloads.event_callback(
            scene.rig.workspace,
            copy.deepcopy(scene.message_event),
            event_id=f"Ev{uuid.uuid4().hex[:10].upper()}",
            event_time=1_700_000_000,
        )
        for change in changes:
            change.apply(envelope)
        status = await scene.event(envelope)
        statuses.append(status)
        assert status < 500, f"HTTP {status} for {brief(changes)}"
        await scene.unchanged(changes)

    @FUZZ
    @given(mutations(event_breaking, event_noise))
    @example([Mutation(("event", "user"), None)])  # was a decision by "None"
    @example([Mutation(("event", "user"), {"id": "U0ALICE"})])
    @example([Mutation(("event",), None)])  # was a 500
    def run(changes: list[Mutation]) -> None:
        on_loop(loop, lambda: check(changes))

    await asyncio.to_thread(run)
    assert statuses
    await _still_decides(scene)


form_text = st.text(max_size=60) | huge_strings.map(str) | st.sampled_from(["", "\x00", "apr_"])


@st.composite
def command_changes(draw: st.DrawFn, base: dict[str, str]) -> dict[str, str]:
    fields = dict(base)
    for key in draw(st.lists(st.sampled_from(sorted(base)), max_size=4, unique=True)):
        if draw(st.booleans()):
            del fields[key]
        else:
            fields[key] = draw(form_text)
    fields["text"] = draw(
        st.sampled_from(["", "mine", "help", f"apr_{uuid.uuid4().hex}"])
        | form_text
        | st.builds(lambda t: f"apr_{t}", form_text)
    )
    extra = draw(st.dictionaries(st.text(min_size=1, max_size=8), form_text, max_size=3))
    return {**fields, **{f"zz_{key}": value for key, value in extra.items()}}


async def test_signed_slash_commands_with_junk_never_fail_or_decide(scene: Scene) -> None:
    loop = asyncio.get_running_loop()
    statuses: list[int] = []

    async def check(fields: dict[str, str]) -> None:
        status = await scene.slash(fields)
        statuses.append(status)
        assert status < 500, f"HTTP {status} for {brief(fields)}"
        await scene.unchanged(fields)

    @FUZZ
    @given(command_changes(scene.command))
    def run(fields: dict[str, str]) -> None:
        on_loop(loop, lambda: check(fields))

    await asyncio.to_thread(run)
    assert 200 in statuses  # plenty of them were readable commands, answered
    await _still_decides(scene)


raw_bodies = st.one_of(
    st.binary(max_size=2000),
    st.text(max_size=200).map(str.encode),
    st.sampled_from(
        [
            b"payload=",
            b"payload=%7B",
            b"payload=" + b"%5B" * 5000,
            b"[" * 5000,
            b"[1, 2]",
            b"null",
            b"5",
            b'"text"',
            b'{"type": "block_actions", "actions": []',
            b"payload=%5B%5D",
            b"payload=null",
            b"\xff\xfe\xfd",
            b"payload=%FF%FE",
        ]
    ),
    junk.map(lambda v: urlencode({"payload": json.dumps(real(v))}).encode()),
    junk.map(lambda v: json.dumps(real(v)).encode()),
)
content_types = st.sampled_from(
    ["application/json", "application/x-www-form-urlencoded", "text/plain", "multipart/form-data"]
)


async def test_unreadable_bodies_are_refused_signed_or_not(scene: Scene) -> None:
    loop = asyncio.get_running_loop()
    unsigned: set[int] = set()

    async def check(body: bytes, content_type: str, signed: bool) -> None:
        if signed:
            status = await scene.post(body, content_type)
        else:
            headers = {"Content-Type": content_type, "X-Slack-Request-Timestamp": "1700000000"}
            headers["X-Slack-Signature"] = "v0=" + "0" * 64
            async with scene.rig.bot.http.post(
                scene.rig.bot.url + "/slack/events", data=io.BytesIO(body), headers=headers
            ) as response:
                await response.read()
                status = response.status
            unsigned.add(status)
        assert status < 500, f"HTTP {status} for {brief(body)} ({content_type}, signed={signed})"
        await scene.unchanged(body)

    @FUZZ
    @given(raw_bodies, content_types, st.booleans())
    def run(body: bytes, content_type: str, signed: bool) -> None:
        on_loop(loop, lambda: check(body, content_type, signed))

    await asyncio.to_thread(run)
    assert unsigned == {401}  # nothing unsigned gets further than the signature check
    await _still_decides(scene)


slack_timestamps = st.one_of(
    st.sampled_from(
        ["", "0", "-1", "1e10", "nan", "inf", "9" * 5000, "1700000000.5", " 1", "\u0661\u0662"]
    ),
    st.integers(min_value=-(2**70), max_value=2**70).map(str),
    st.text(max_size=20).filter(lambda t: t.isprintable() and "\n" not in t),
)
slack_signatures = st.one_of(
    st.sampled_from(["", "v0=", "v0=" + "0" * 64, "v1=" + "f" * 64, "v0=" + "g" * 5000]),
    st.text(max_size=80).filter(lambda t: t.isprintable() and "\n" not in t),
)


async def test_junk_signature_headers_are_refused_quietly(
    scene: Scene, caplog: pytest.LogCaptureFixture
) -> None:
    """Unauthenticated junk in the headers Slack signs with: a 401, never a 500 or a logged
    traceback (a 5,000-digit timestamp was both)."""
    loop = asyncio.get_running_loop()
    statuses: set[int] = set()

    async def check(timestamp: str | None, signature: str | None) -> None:
        headers = {"Content-Type": "application/x-www-form-urlencoded"}
        if timestamp is not None:
            headers["X-Slack-Request-Timestamp"] = timestamp
        if signature is not None:
            headers["X-Slack-Signature"] = signature
        async with scene.rig.bot.http.post(
            scene.rig.bot.url + "/slack/events",
            data=b"payload=%7B%7D",
            headers=headers,
            timeout=aiohttp.ClientTimeout(total=10),
        ) as response:
            await response.read()
            statuses.add(response.status)

    @FUZZ
    @given(st.none() | slack_timestamps, st.none() | slack_signatures)
    def run(timestamp: str | None, signature: str | None) -> None:
        on_loop(loop, lambda: check(timestamp, signature))

    with caplog.at_level("WARNING"):
        await asyncio.to_thread(run)
    assert statuses <= {400, 401}, statuses
    assert not [r for r in caplog.records if r.levelname == "ERROR" or r.exc_info]
    await _still_decides(scene)


# -- the agent API ----------------------------------------------------------------------------

json_scalars = (
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**80), max_value=2**80)
    | st.floats()
    | st.text(max_size=30)
)
json_junk: st.SearchStrategy[Any] = st.recursive(
    json_scalars | huge_strings,
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=10), inner, max_size=4)
    ),
    max_leaves=15,
)


def field_values(good: st.SearchStrategy[Any]) -> st.SearchStrategy[Any]:
    """A right value most of the time, else anything at all."""
    return st.one_of(good, good, json_junk)


schemas = st.sampled_from(
    [
        {"type": "object", "properties": {"version": {"type": "string"}}},
        {"type": "object", "required": ["x"]},
        {"type": "array"},
        {"type": "object", "properties": {"n": {"type": "nonsense"}}},
        {"$ref": "#/nowhere"},
        {"type": "object", "pattern": "("},
        {"type": "object", "properties": {"v": {"pattern": "(unclosed"}}},
        {"type": "object", "additionalProperties": False},
    ]
)
request_fields = {
    "toolName": field_values(st.text(min_size=1, max_size=40)),
    "toolCallId": field_values(st.text(max_size=40)),
    "args": field_values(st.dictionaries(st.text(max_size=8), json_junk, max_size=4)),
    "argsSchema": field_values(schemas),
    "prompt": field_values(st.text(max_size=100) | huge_strings),
    "channel": field_values(st.sampled_from(["C0OPS", "#ops", "", "C" * 300])),
    "threadTs": field_values(st.sampled_from(["1700000000.000100", "1.2", "x", ""])),
    "priority": field_values(st.sampled_from(["low", "normal", "high", "critical", "HIGH"])),
    "requester": field_values(
        st.fixed_dictionaries({}, optional={"agent": json_junk, "slackUser": json_junk})
    ),
    "context": field_values(st.text(max_size=50) | huge_strings),
    "timeoutSeconds": field_values(
        st.integers(min_value=-(2**70), max_value=2**70) | st.sampled_from([1, 604800, 604801])
    ),
    "onTimeout": field_values(st.sampled_from(["reject", "approve", "escalate", "later"])),
    "allowedDecisions": field_values(
        st.lists(st.sampled_from(["approve", "edit", "reject", "feedback", "maybe"]), max_size=5)
    ),
    "metadata": field_values(st.dictionaries(st.text(max_size=8), json_junk, max_size=3)),
}
valid_requests = st.fixed_dictionaries(
    {"toolName": st.sampled_from(["deploy_service", "send_email", "rm -rf /", "é" * 255])},
    optional={
        "toolCallId": st.text(min_size=1, max_size=40),
        "args": st.dictionaries(st.text(max_size=8), json_scalars, max_size=4),
        "prompt": st.text(max_size=100),
        "priority": st.sampled_from(["low", "normal", "high", "critical"]),
        "timeoutSeconds": st.integers(min_value=1, max_value=604800),
        "allowedDecisions": st.sampled_from([["approve"], ["reject", "feedback"]]),
    },
).map(lambda body: {"args": {}, **body})


def _nested(depth: int, leaf: Any, wrap: Callable[[Any], Any]) -> Any:
    for _ in range(depth):
        leaf = wrap(leaf)
    return leaf


#: requests built to stall, crash or make the bot fetch something (issue: no request can)
hostile_requests = st.sampled_from(
    [
        {  # catastrophic backtracking in Python's `re`
            "toolName": "t",
            "args": {"s": "a" * 28 + "!"},
            "argsSchema": {"type": "object", "properties": {"s": {"pattern": "^(a+)+$"}}},
        },
        {  # uniqueItems over thousands of objects
            "toolName": "t",
            "args": {"rows": [{"i": i} for i in range(3000)]},
            "argsSchema": {"type": "object", "properties": {"rows": {"uniqueItems": True}}},
        },
        *(
            {"toolName": "t", "args": {}, "argsSchema": {"type": "object", "$ref": ref}}
            for ref in (
                "http://127.0.0.1:9/schema",
                "file:///etc/passwd",
                "urn:nope",
                "#/$defs/missing",
            )
        ),
        {"toolName": "t", "args": {}, "argsSchema": {"type": "object", "$dynamicRef": "#x"}},
        {
            "toolName": "t",
            "args": {},
            "argsSchema": _nested(100, {"type": "object"}, lambda s: {"not": {"not": s}}),
        },
        {"toolName": "t", "args": {"deep": _nested(300, 1, lambda v: [v])}},
        {"toolName": "t", "args": {"s": "\ud800"}},
    ]
)
approval_requests = st.one_of(
    valid_requests,
    hostile_requests,
    st.fixed_dictionaries({}, optional={**request_fields, "unknown": json_junk}),
)
decision_bodies = st.fixed_dictionaries(
    {},
    optional={
        "approved": field_values(st.booleans()),
        "decidedBy": field_values(st.text(max_size=30)),
        "comment": field_values(st.text(max_size=30) | huge_strings),
        "approvedArgs": field_values(st.dictionaries(st.text(max_size=8), json_junk, max_size=3)),
        "extra": json_junk,
    },
)
cancel_bodies = st.fixed_dictionaries(
    {},
    optional={
        "reason": field_values(st.text(max_size=30) | huge_strings),
        "cancelledBy": field_values(st.text(max_size=30)),
        "why": json_junk,
    },
)


class Raw(bytes):
    """Request bytes that print short in failure reports."""

    def __repr__(self) -> str:
        return f"Raw({brief(bytes(self))})"


def encoded(bodies: st.SearchStrategy[Any]) -> st.SearchStrategy[bytes]:
    """JSON of `bodies` or of anything, and bytes that are not JSON at all."""
    as_json = st.one_of(bodies, bodies, json_junk).map(
        lambda v: json.dumps(real(v), allow_nan=True).encode()
    )
    return st.one_of(
        as_json,
        as_json,
        st.binary(max_size=300),
        st.sampled_from(
            [
                b"",
                b"   ",
                b"[" * 100_000,
                b'{"a":' * 50_000,
                b"1" * 5_000,
                b"NaN",
                b'{"args": {"x": NaN}, "toolName": "t"}',
                b'{"args": {"x": 1e999}, "toolName": "t"}',
                b"\xef\xbb\xbf{}",
                b"\xff\xfe{\x00}\x00",
                b'{"toolName": "t", "args": {}}' + b" " * 1_100_000,
            ]
        ),
    ).map(Raw)


@dataclass
class Api:
    """One bot, a pending and a decided approval to aim at, and what came back."""

    bot: Running
    pending: str
    decided: str
    statuses: set[int]

    async def send(self, method: str, path: str, *, token: str, **kwargs: Any) -> None:
        """Make the call and check the answer is a record, a page, a stream or an error."""
        headers = {"Authorization": f"Bearer {token}", **kwargs.pop("headers", {})}
        data = kwargs.pop("data", None)
        async with self.bot.http.request(
            method,
            self.bot.url + path,
            headers=headers,
            data=None if data is None else io.BytesIO(data),
            timeout=aiohttp.ClientTimeout(total=10),  # every answer arrives
            **kwargs,
        ) as response:
            status = response.status
            kind = response.content_type
            raw = b"" if kind == "text/event-stream" else await response.read()
        self.statuses.add(status)
        where = f"{method} {brief(path)} -> {status}"
        assert status < 500, f"{where}: {brief(raw)}"
        if kind == "text/event-stream":
            assert status == 200, where
            return
        body = json.loads(raw)
        if status >= 400:
            assert isinstance(body, dict), where
            assert isinstance(body.get("error"), str) and body["error"], where
            assert isinstance(body.get("message"), str) and body["message"], where
        elif "items" in body:
            assert isinstance(body["items"], list) and "next" in body, where
            for item in body["items"]:
                Approval.model_validate(item)
        else:
            Approval.model_validate(body)


@pytest.fixture
async def api(bot: Running) -> Api:
    pending = await bot.submit(toolCallId="fuzz-pending")
    decided = await bot.submit(toolCallId="fuzz-decided")
    status, _ = await bot.decide(decided["id"], approved=False)
    assert status == 200
    return Api(bot, pending["id"], decided["id"], set())


targets = st.sampled_from(
    ["pending", "decided", "apr_missing", "", "%00", "..", "apr_" + "x" * 500]
)
content_kinds = st.sampled_from(
    [{"Content-Type": "application/json"}, {"Content-Type": "text/plain"}, {}]
)


def _target(api: Api, name: str) -> str:
    chosen = {"pending": api.pending, "decided": api.decided}.get(name, name)
    return quote(chosen, safe="%")


async def test_v1_bodies_get_a_record_or_a_4xx_never_a_500(api: Api) -> None:
    loop = asyncio.get_running_loop()

    async def check(route: str, target: str, body: bytes, headers: dict[str, str]) -> None:
        if route == "submit":
            path, token = "/v1/approvals", AGENT_TOKEN
        elif route == "decision":
            path, token = f"/v1/approvals/{_target(api, target)}/decision", ADMIN_TOKEN
        else:
            path, token = f"/v1/approvals/{_target(api, target)}/cancel", AGENT_TOKEN
        await api.send("POST", path, token=token, data=body, headers=headers)

    @settings(FUZZ, max_examples=300)
    @given(
        st.sampled_from(["submit", "decision", "cancel"]).flatmap(
            lambda route: st.tuples(
                st.just(route),
                targets,
                encoded(
                    {
                        "submit": approval_requests,
                        "decision": decision_bodies,
                        "cancel": cancel_bodies,
                    }[route]
                ),
                content_kinds,
            )
        )
    )
    @example(("submit", "", Raw(b"[" * 100_000), {}))
    @example(("submit", "", Raw(b'{"toolName": "t", "args": {}, "timeoutSeconds": 1e308}'), {}))
    @example(("decision", "pending", Raw(b'{"approved": true, "decidedBy": "x"' + b"}"), {}))
    @example(("cancel", "decided", Raw(b""), {}))
    def run(case: tuple[str, str, bytes, dict[str, str]]) -> None:
        on_loop(loop, lambda: check(*case))

    await asyncio.to_thread(run)
    assert {201, 400, 404, 422} <= api.statuses  # the junk reached every layer
    status, health = await api.bot.call("GET", "/healthz")
    assert status == 200, health


edge_values = st.sampled_from(
    [
        "",
        "0",
        "-1",
        "1",
        "500",
        "501",
        "9223372036854775807",
        "9223372036854775808",
        "99999999999999999999999999",
        "9" * 5000,
        "1e400",
        "nan",
        "inf",
        "-inf",
        "0.05",
        "\u00b2",
        "\u0661\u0662",
        "0x10",
        " 5",
        "pending",
        "approved",
        "\x00",
    ]
)
query_values = st.one_of(edge_values, edge_values, st.text(max_size=30))
#: the parameters each route reads, and one it does not
route_params = {
    "list": ["status", "toolName", "limit", "cursor", "x"],
    "get": ["x"],
    "wait": ["timeout", "x"],
    "events": ["lastEventId", "Last-Event-ID", "x"],
    "other": ["x"],
}


def queries(route: str) -> st.SearchStrategy[list[tuple[str, str]]]:
    pairs = st.lists(st.tuples(st.sampled_from(route_params[route]), query_values), max_size=4)
    # the HTTP parser, not the bot, refuses a request line over 8 kB
    return pairs.filter(lambda q: sum(len(k) + len(v) for k, v in q) < 6_000)


async def test_v1_queries_paths_and_methods_never_get_a_500(api: Api) -> None:
    loop = asyncio.get_running_loop()

    async def check(method: str, route: str, target: str, query: list[tuple[str, str]]) -> None:
        where = _target(api, target)
        path = {
            "list": "/v1/approvals",
            "get": f"/v1/approvals/{where}",
            "wait": f"/v1/approvals/{where}/wait",
            "events": "/v1/events",
            "other": f"/v1/{where}",
        }[route]
        if route == "wait" and target == "pending":
            query = [("timeout", "0"), *query]  # the first one counts; a pending wait holds
        headers = {k: v for k, v in query if k == "Last-Event-ID" and v.isprintable()}
        params = [(k, v) for k, v in query if k != "Last-Event-ID"]
        await api.send(method, path, token=AGENT_TOKEN, params=params, headers=headers)

    @settings(FUZZ, max_examples=300)
    @given(
        st.sampled_from(["GET", "GET", "GET", "POST", "PUT", "DELETE", "PATCH"]),
        st.sampled_from(sorted(route_params)).flatmap(
            lambda route: st.tuples(st.just(route), targets, queries(route))
        ),
    )
    @example("GET", ("list", "", [("cursor", "\u00b2")]))
    @example("GET", ("list", "", [("cursor", "9223372036854775808")]))
    @example("GET", ("list", "", [("cursor", "9" * 5000)]))
    @example("GET", ("list", "", [("limit", "9" * 5000)]))
    @example("GET", ("events", "", [("lastEventId", "\u00b2")]))
    @example("GET", ("events", "", [("Last-Event-ID", "9223372036854775808")]))
    @example("GET", ("wait", "decided", [("timeout", "nan")]))
    @example("GET", ("wait", "decided", [("timeout", "9" * 5000)]))
    def run(method: str, case: tuple[str, str, list[tuple[str, str]]]) -> None:
        on_loop(loop, lambda: check(method, *case))

    await asyncio.to_thread(run)
    assert {200, 400, 404, 405} <= api.statuses
    status, health = await api.bot.call("GET", "/healthz")
    assert status == 200, health
