"""No `argsSchema` or `args` can stall the bot, crash it or make it fetch anything: at submission,
on an API decision (`approvedArgs`) and in the Slack edit modal."""

from __future__ import annotations

import asyncio
import gc
import json
import threading
import time
from collections.abc import Awaitable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from itertools import combinations
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from jsonschema import Draft202012Validator
from jsonschema._utils import equal  # the spec's equality, pair by pair: the oracle

from bot.schemas import (
    MAX_DEPTH,
    SchemaRefused,
    Uncheckable,
    compile_schema,
    unique,
)
from tests.conftest import ADMIN_TOKEN, AGENT_TOKEN, Running, SlackRig, until

#: how long `/healthz` may take while a hostile request is in flight (the old code: 10 s and more)
HEALTHY = 1.0

BACKTRACKING = "^(a+)+$"
HOSTILE_STRING = "a" * 28 + "!"  # 12.9 s in Python's `re`


def nested(depth: int, leaf: Any, wrap: Any = lambda inner: [inner]) -> Any:
    for _ in range(depth):
        leaf = wrap(leaf)
    return leaf


def exponential(levels: int = 24) -> dict[str, Any]:
    """A valid schema whose check of `x` doubles with every level: 2**24 subschema visits."""
    defs: dict[str, Any] = {
        f"a{i}": {"allOf": [{"$ref": f"#/$defs/a{i + 1}"}, {"$ref": f"#/$defs/a{i + 1}"}]}
        for i in range(levels)
    }
    defs[f"a{levels}"] = {"type": "integer"}
    return {"type": "object", "$defs": defs, "properties": {"x": {"$ref": "#/$defs/a0"}}}


def rows(count: int) -> list[dict[str, Any]]:
    return [{"id": i, "name": f"row {i}"} for i in range(count)]


async def while_healthz(bot: Running, hostile: Awaitable[Any]) -> tuple[Any, float]:
    """`hostile`'s result, and the slowest of the `/healthz` calls made one after another for
    as long as it was in flight (one at least). The test shares the bot's event loop: a check
    that held it would hold whichever call is under way."""
    task = asyncio.ensure_future(hostile)
    slowest, probes = 0.0, 0
    while not task.done() or not probes:
        started = time.monotonic()
        status, body = await bot.call("GET", "/healthz", token=None)
        slowest = max(slowest, time.monotonic() - started)
        probes += 1
        assert status == 200, body
    return await task, slowest


async def post_raw(bot: Running, path: str, raw: bytes, token: str = AGENT_TOKEN) -> Any:
    """POST a body as written (JSON escapes like a lone `\\ud800` survive as sent)."""
    headers = {"Content-Type": "application/json", "Authorization": f"Bearer {token}"}
    async with bot.http.post(bot.url + path, data=raw, headers=headers) as response:
        return response.status, await response.json(content_type=None)


def submission(args: dict[str, Any], schema: dict[str, Any] | None = None) -> dict[str, Any]:
    body: dict[str, Any] = {"toolName": "deploy_service", "args": args}
    if schema is not None:
        body["argsSchema"] = schema
    return body


# -- at submission ----------------------------------------------------------------------------


async def test_a_backtracking_pattern_is_answered_at_once_while_the_bot_keeps_serving(
    bot: Running,
) -> None:
    schema = {"type": "object", "properties": {"s": {"type": "string", "pattern": BACKTRACKING}}}
    hostile = bot.call("POST", "/v1/approvals", json=submission({"s": HOSTILE_STRING}, schema))

    (status, body), waited = await while_healthz(bot, hostile)

    assert (status, body["path"]) == (422, "args.s"), body
    assert waited < HEALTHY
    accepted = await bot.submit(args={"s": "aaaa"}, argsSchema=schema)  # and it still checks
    assert accepted["status"] == "pending"


@pytest.mark.parametrize("count", [3000, 8000])
async def test_unique_items_over_thousands_of_objects_is_answered_without_stalling(
    bot: Running, count: int
) -> None:
    schema = {"type": "object", "properties": {"rows": {"type": "array", "uniqueItems": True}}}
    distinct = bot.call("POST", "/v1/approvals", json=submission({"rows": rows(count)}, schema))
    (status, body), waited = await while_healthz(bot, distinct)
    assert status == 201, body
    assert waited < HEALTHY

    repeated = [*rows(count), {"name": "row 7", "id": 7.0}]  # 7.0 == 7, keys in another order
    twice = bot.call("POST", "/v1/approvals", json=submission({"rows": repeated}, schema))
    (status, body), waited = await while_healthz(bot, twice)
    assert (status, body["path"]) == (422, "args.rows"), body
    assert waited < HEALTHY


async def test_a_garbage_collection_during_a_check_is_not_counted_as_its_cost() -> None:
    """A full collection of a large heap takes the process 100 ms and more; landing inside a
    cheap check in the worker, it must not refuse that check as "too costly"."""
    schema = {"type": "object", "properties": {"rows": {"type": "array", "uniqueItems": True}}}
    checked = compile_schema(schema)
    collected: list[str] = []

    def slow_collection(phase: str, info: dict[str, int]) -> None:
        """Every collection in the worker spends 2 ms of CPU, 200 ms in all."""
        worker = threading.current_thread().name.startswith("args-schema")
        if phase == "start" and worker and len(collected) < 100:
            collected.append(phase)
            spin_until = time.thread_time() + 0.002
            while time.thread_time() < spin_until:
                pass

    thresholds = gc.get_threshold()
    gc.callbacks.append(slow_collection)
    gc.set_threshold(1)
    try:
        errors = await checked.errors({"rows": rows(2000)})
    finally:
        gc.set_threshold(*thresholds)
        gc.callbacks.remove(slow_collection)

    assert len(collected) == 100, "the collections did not run inside the check"
    assert errors == []


async def test_a_check_over_its_budget_is_refused_while_the_bot_keeps_serving(
    bot: Running,
) -> None:
    costly = bot.call("POST", "/v1/approvals", json=submission({"x": 1}, exponential()))

    (status, body), waited = await while_healthz(bot, costly)

    assert (status, body["path"]) == (422, "argsSchema"), body
    assert "too costly" in body["message"]
    assert waited < HEALTHY
    cheap = await bot.submit(args={}, argsSchema=exponential())  # nothing to check: accepted
    assert cheap["status"] == "pending"


class Recorder(BaseHTTPRequestHandler):
    seen: list[str]

    def do_GET(self) -> None:
        self.seen.append(self.path)
        body = b'{"type": "object"}'
        self.send_response(200)
        self.send_header("Content-Type", "application/schema+json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: Any) -> None:
        pass


@pytest.fixture
def web() -> Iterator[tuple[str, list[str]]]:
    """A web server on 127.0.0.1 that serves a schema to anyone who asks, and remembers them.

    In a thread of its own: a bot that fetched on its event loop would get its answer (and the
    test its proof) instead of waiting on a server that shares the loop it blocks."""
    seen: list[str] = []
    handler = type("Handler", (Recorder,), {"seen": seen})
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}", seen
    server.shutdown()
    server.server_close()
    thread.join(5)


async def test_a_remote_ref_is_refused_and_never_fetched(
    bot: Running, web: tuple[str, list[str]]
) -> None:
    url, seen = web
    schemas = [
        {"type": "object", "$ref": f"{url}/schema.json"},
        {"type": "object", "properties": {"x": {"$ref": f"{url}/x.json"}}},
        {"type": "object", "$dynamicRef": f"{url}/dynamic.json#meta"},
        {"$id": f"{url}/root.json", "type": "object", "$ref": "other.json"},
        {"type": "object", "properties": {"x": {"$id": f"{url}/e/", "$ref": "#/$defs/nope"}}},
        # over 4 KiB: compiled in the worker thread at the first check, refused the same
        {"type": "object", "description": "x" * 5000, "$ref": f"{url}/big.json"},
    ]
    for schema in schemas:
        status, body = await bot.call("POST", "/v1/approvals", json=submission({"x": 1}, schema))
        assert (status, body["path"]) == (422, "argsSchema"), (schema, body)
    await asyncio.sleep(0.1)
    assert seen == []


async def test_a_file_ref_is_refused_alike_whether_the_file_exists_or_not(
    bot: Running, tmp_path: Path
) -> None:
    there = tmp_path / "schema.json"
    there.write_text('{"type": "object"}')
    answers = []
    for uri in (there.as_uri(), (tmp_path / "missing.json").as_uri()):
        schema = {"type": "object", "properties": {"x": {"$ref": uri}}}
        answers.append(await bot.call("POST", "/v1/approvals", json=submission({"x": 1}, schema)))

    assert answers[0] == answers[1]
    status, body = answers[0]
    assert (status, body["path"]) == (422, "argsSchema")
    assert "never fetched" in body["message"]


@pytest.mark.parametrize(
    "schema",
    [
        pytest.param({"type": "object", "$ref": "#/$defs/missing"}, id="missing-pointer"),
        pytest.param({"type": "object", "$ref": "urn:nope"}, id="urn"),
        pytest.param({"type": "object", "$dynamicRef": "#x"}, id="dynamic-ref"),
        pytest.param({"type": "object", "properties": {"a": {"$ref": "#nope"}}}, id="anchor"),
        pytest.param(
            {"type": "object", "$ref": "#/enum/0", "enum": [{"pattern": BACKTRACKING}]},
            id="ref-into-data",
        ),
    ],
)
async def test_refs_that_do_not_resolve_to_a_schema_inside_it_are_422(
    bot: Running, schema: dict[str, Any]
) -> None:
    status, body = await bot.call("POST", "/v1/approvals", json=submission({"a": "x"}, schema))
    assert (status, body["path"]) == (422, "argsSchema"), body


async def test_refs_inside_the_document_still_work(bot: Running) -> None:
    schema = {
        "$id": "https://example.com/deploy.json",
        "type": "object",
        "properties": {"version": {"$ref": "#/$defs/version"}, "env": {"$ref": "#env"}},
        "$defs": {
            "version": {"type": "string", "pattern": "^\\d+\\.\\d+\\.\\d+$"},
            "env": {"$anchor": "env", "enum": ["staging", "prod"]},
        },
    }
    status, body = await bot.call(
        "POST", "/v1/approvals", json=submission({"version": "1.4", "env": "prod"}, schema)
    )
    assert (status, body["path"]) == (422, "args.version"), body
    accepted = await bot.submit(args={"version": "1.4.2", "env": "prod"}, argsSchema=schema)
    assert accepted["status"] == "pending"


@pytest.mark.parametrize(
    ("raw", "path"),
    [
        pytest.param(b'{"toolName": "t", "args": {"s": "\\ud800"}}', "args", id="value"),
        pytest.param(b'{"toolName": "t", "args": {"\\udc00": 1}}', "args", id="key"),
        pytest.param(
            b'{"toolName": "t", "args": {"l": ["ok", {"deep": "x\\ud800y"}]}}', "args", id="deep"
        ),
        pytest.param(
            b'{"toolName": "t", "args": {}, "metadata": {"m": "\\udfff"}}', "metadata", id="meta"
        ),
        pytest.param(
            b'{"toolName": "t", "args": {}, "argsSchema": {"title": "\\ud800"}}',
            "argsSchema",
            id="schema",
        ),
        pytest.param(
            b'{"toolName": "t", "args": {}, "requester": {"team": "\\ud800"}}',
            "requester",
            id="requester-extra-key",
        ),
    ],
)
async def test_a_lone_surrogate_is_422(bot: Running, raw: bytes, path: str) -> None:
    status, body = await post_raw(bot, "/v1/approvals", raw)
    assert (status, body["path"]) == (422, path), body
    assert "surrogate" in body["message"]


@pytest.mark.parametrize(
    "args",
    [
        pytest.param(b'{"v": NaN}', id="nan"),
        pytest.param(b'{"l": [1, {"v": Infinity}]}', id="infinity-deep"),
        pytest.param(b'{"v": -Infinity}', id="minus-infinity"),
    ],
)
async def test_nan_and_infinity_in_args_are_422(bot: Running, args: bytes) -> None:
    """Python's JSON reads them; no store keeps them and JSON has no such numbers."""
    status, body = await post_raw(bot, "/v1/approvals", b'{"toolName": "t", "args": %s}' % args)
    assert (status, body["path"]) == (422, "args"), body
    assert "NaN or Infinity" in body["message"]


async def test_the_words_nan_and_infinity_in_text_are_kept(bot: Running) -> None:
    """A first check that finds the words anywhere in a call's JSON asks a second one whether
    they are numbers: in keys and strings they are text like any other."""
    args = {"NaN": "Infinity", "note": ["-Infinity", {"Infinity": "NaN NaN"}]}
    record = await bot.submit(args=args)
    assert (record["status"], record["args"]) == ("pending", args)
    assert (await bot.call("GET", f"/v1/approvals/{record['id']}"))[1]["args"] == args


async def test_args_nested_300_deep_are_422_not_500(bot: Running) -> None:
    status, body = await bot.call(
        "POST", "/v1/approvals", json=submission({"deep": nested(300, 1)})
    )
    assert (status, body["path"]) == (422, "args"), body

    # the object itself is level 1: 31 lists inside it make 32 levels, one more is refused
    assert (await bot.submit(args={"deep": nested(MAX_DEPTH - 1, 1)}))["status"] == "pending"
    status, body = await bot.call(
        "POST", "/v1/approvals", json=submission({"deep": nested(MAX_DEPTH, 1)})
    )
    assert (status, body["path"]) == (422, "args"), body


async def test_requester_keys_nested_300_deep_are_422_not_500(bot: Running) -> None:
    """`requester` takes keys of the agent's own; they are held to what `args` is."""
    body = {"toolName": "t", "args": {}, "requester": {"trace": nested(300, 1)}}
    status, answer = await bot.call("POST", "/v1/approvals", json=body)
    assert (status, answer["path"]) == (422, "requester"), answer
    kept = await bot.submit(requester={"agent": "a", "trace": nested(4, 1)})
    assert kept["requester"]["trace"] == nested(4, 1)


async def test_a_schema_nested_100_deep_is_422(bot: Running) -> None:
    schema = nested(
        100, {"type": "string"}, lambda inner: {"type": "object", "properties": {"a": inner}}
    )
    status, body = await bot.call("POST", "/v1/approvals", json=submission({}, schema))
    assert (status, body["path"]) == (422, "argsSchema"), body
    assert "deeper" in body["message"]


async def test_a_schema_over_64_kib_is_422_and_one_under_is_accepted(bot: Running) -> None:
    def schema(count: int) -> dict[str, Any]:
        prop = {"type": "string", "maxLength": 64, "description": "x" * 40}
        return {"type": "object", "properties": {f"p{i:04}": prop for i in range(count)}}

    status, body = await bot.call("POST", "/v1/approvals", json=submission({}, schema(1000)))
    assert (status, body["path"]) == (422, "argsSchema"), body
    assert "64 KiB" in body["message"]

    assert len(json.dumps(schema(600), separators=(",", ":"))) < 64 * 1024
    accepted = await bot.submit(args={"p0001": "ok"}, argsSchema=schema(600))
    assert accepted["status"] == "pending"


@pytest.mark.parametrize(
    ("schema", "why"),
    [
        pytest.param(
            {"type": "object", "properties": {"s": {"pattern": "(a)\\1"}}},
            "linear",
            id="backreference",
        ),
        pytest.param(
            {"type": "object", "patternProperties": {"^(?=x)": {}}}, "linear", id="lookahead"
        ),
        pytest.param(
            {"$schema": "http://json-schema.org/draft-04/schema#", "type": "object"},
            "2020-12",
            id="other-draft",
        ),
        pytest.param(
            {"type": "object", "properties": {"a": {"$schema": "x", "type": "string"}}},
            "root",
            id="schema-below-root",
        ),
        pytest.param({"type": "object", "minLength": -1}, "non-negative", id="meta-schema"),
        pytest.param({"type": "string"}, "object", id="not-an-object"),
    ],
)
async def test_what_cannot_run_safely_is_refused_with_the_reason(
    bot: Running, schema: dict[str, Any], why: str
) -> None:
    status, body = await bot.call("POST", "/v1/approvals", json=submission({}, schema))
    assert (status, body["path"]) == (422, "argsSchema"), body
    assert why in body["message"]


# -- on an API decision -------------------------------------------------------------------------

GUARDED = {
    "type": "object",
    "properties": {
        "s": {"type": "string", "pattern": BACKTRACKING},
        "rows": {"type": "array", "uniqueItems": True},
        "x": {"$ref": "#/$defs/a0"},
    },
    "$defs": exponential()["$defs"],
}


async def test_approved_args_meet_the_same_guards(bot: Running) -> None:
    record = await bot.submit(args={"s": "aaa", "rows": []}, argsSchema=GUARDED)
    decision = f"/v1/approvals/{record['id']}/decision"

    async def decide(approved_args: dict[str, Any]) -> tuple[int, Any]:
        body = {"approved": True, "decidedBy": "alice", "approvedArgs": approved_args}
        return await bot.call("POST", decision, token=ADMIN_TOKEN, json=body)

    for approved_args, path in [
        ({"s": HOSTILE_STRING}, "approvedArgs.s"),
        ({"rows": [*rows(8000), {"name": "row 1", "id": 1}]}, "approvedArgs.rows"),
        ({"x": 1}, "approvedArgs"),
    ]:
        (status, body), waited = await while_healthz(bot, decide(approved_args))
        assert (status, body["path"]) == (422, path), body
        assert waited < HEALTHY
    assert "too costly" in body["message"]

    status, body = await decide({"deep": nested(300, 1)})
    assert (status, body["path"]) == (422, "approvedArgs"), body
    raw = b'{"approved": true, "decidedBy": "alice", "approvedArgs": {"s": "\\ud800"}}'
    status, body = await post_raw(bot, decision, raw, token=ADMIN_TOKEN)
    assert (status, body["path"]) == (422, "approvedArgs"), body

    _, still = await bot.call("GET", f"/v1/approvals/{record['id']}")
    assert still["status"] == "pending"


# -- in the Slack edit modal --------------------------------------------------------------------


async def _edit_modal(rig: SlackRig, approval_id: str) -> Any:
    await rig.click(approval_id, "edit", "U0ALICE")
    [modal] = await until(lambda: _open_modals(rig, "U0ALICE"))
    return modal


async def _open_modals(rig: SlackRig, user: str) -> list[Any]:
    return [v for v in rig.workspace.open_modals(user) if not v.closed]


def _inputs(modal: Any) -> set[str]:
    return {block["block_id"] for block in modal.blocks if block["type"] == "input"}


@pytest.mark.parametrize(
    ("typed", "block", "says"),
    [
        pytest.param({"arg:s": HOSTILE_STRING}, "arg:s", "match the pattern", id="backtracking"),
        pytest.param({"arg:rows": json.dumps(nested(300, 1))}, "arg:rows", "deeper", id="deep"),
        pytest.param({"arg:rows": '["\\ud800"]'}, "arg:rows", "surrogate", id="surrogate"),
        pytest.param({"arg:x": "1"}, None, "too costly", id="too-costly"),
    ],
)
async def test_the_edit_modal_meets_the_same_guards(
    rig: SlackRig, typed: dict[str, str], block: str | None, says: str
) -> None:
    record = await rig.bot.submit(args={"s": "aaa", "rows": ["a"]}, argsSchema=GUARDED)
    modal = await _edit_modal(rig, record["id"])

    delivery, waited = await while_healthz(rig.bot, rig.slack.submit_view(modal.id, typed))

    assert delivery.json()["response_action"] == "errors"
    [(where, message)] = modal.errors.items()
    assert where == block if block else where in _inputs(modal)
    assert says in message
    assert waited < HEALTHY
    assert (await rig.record_if(record["id"], lambda r: r))["status"] == "pending"


# -- the pieces -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("items", "expected"),
    [
        pytest.param([1, 1.0], False, id="1-is-1.0"),
        pytest.param([1, True], True, id="true-is-not-1"),
        pytest.param([0, False], True, id="false-is-not-0"),
        pytest.param([[1], [True]], True, id="nested-true-is-not-1"),
        pytest.param([[0], [False], [0]], False, id="apart"),
        pytest.param([{"a": 1, "b": 2}, {"b": 2, "a": 1.0}], False, id="key-order"),
        pytest.param([{"a": [1, {"b": None}]}, {"a": [1, {"b": None}]}], False, id="deep"),
        pytest.param([{"a": 1}, {"a": True}], True, id="deep-bool"),
        pytest.param(["1", 1], True, id="string-is-not-number"),
        pytest.param([None, False, 0, "", [], {}], True, id="falsy-all-differ"),
        pytest.param([[], {}], True, id="array-is-not-object"),
    ],
)
def test_unique_items_follows_json_equality(items: list[Any], expected: bool) -> None:
    assert unique(items) is expected


json_values = st.recursive(
    st.none()
    | st.booleans()
    | st.sampled_from([0, 1, 0.0, 1.0, -0.0, 2, 2**53, float(2**53), 2**53 + 1])
    | st.sampled_from(["", "a", "1"]),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.sampled_from("ab"), inner),
    max_leaves=6,
)


@settings(max_examples=500, deadline=None, database=None)
@given(st.lists(json_values, max_size=6))
def test_unique_items_agrees_with_comparing_every_pair(items: list[Any]) -> None:
    assert unique(items) == all(not equal(a, b) for a, b in combinations(items, 2))


#: the keywords of 2020-12 (no refs: they have their own tests), with a value of any shape
KEYWORDS = [
    *("$id", "$anchor", "$dynamicAnchor", "$vocabulary", "$comment", "$defs", "definitions"),
    *("dependencies", "prefixItems", "items", "contains", "additionalProperties", "properties"),
    *("patternProperties", "dependentSchemas", "propertyNames", "if", "then", "else", "allOf"),
    *("anyOf", "oneOf", "not", "unevaluatedItems", "unevaluatedProperties", "type", "const"),
    *("enum", "multipleOf", "maximum", "exclusiveMaximum", "minimum", "exclusiveMinimum"),
    *("maxLength", "minLength", "maxItems", "minItems", "uniqueItems", "maxContains"),
    *("minContains", "maxProperties", "minProperties", "required", "dependentRequired", "title"),
    *("description", "default", "deprecated", "readOnly", "writeOnly", "examples", "format"),
    *("contentEncoding", "contentMediaType", "contentSchema", "$recursiveAnchor", "x-custom"),
]
any_values = st.recursive(
    st.none()
    | st.booleans()
    | st.sampled_from([-1, 0, 1, 2, 0.5, 2.0, 1e300])
    | st.sampled_from(["", "a", "b", "string", "object", "integer", "x#", "#", "_a-b.c", "1a"]),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.sampled_from("ab"), inner),
    max_leaves=6,
)
names = st.lists(st.sampled_from(["a", "b", "a"]), max_size=3)
COUNTS = {"maxLength", "minLength", "maxItems", "minItems", "maxContains", "minContains"}
COUNTS |= {"maxProperties", "minProperties"}
TEXTS = {"$id", "$anchor", "$dynamicAnchor", "$comment", "$recursiveAnchor", "title"}
TEXTS |= {"description", "format", "contentEncoding", "contentMediaType"}


def _any_value_for(keyword: str, inner: st.SearchStrategy[Any]) -> st.SearchStrategy[Any]:
    """A value for `keyword`, mostly of the shape the meta-schema wants, sometimes any."""
    texts = st.sampled_from(["", "a", "x#", "#", "_a-b.c", "1a", "string"])
    likely: st.SearchStrategy[Any]
    if keyword in COUNTS:
        likely = st.sampled_from([0, 1, 2.0, -1, 1.5])
    elif keyword in ("multipleOf", "maximum", "minimum", "exclusiveMaximum", "exclusiveMinimum"):
        likely = st.sampled_from([0, 1, 0.5, -2, 1e300])
    elif keyword == "type":
        likely = st.sampled_from(["object", ["string", "null"], ["string", "string"], [], "x"])
    elif keyword == "required":
        likely = names
    elif keyword in ("dependentRequired", "dependencies", "$vocabulary"):
        likely = st.dictionaries(st.sampled_from("ab"), names | inner | st.booleans(), max_size=2)
    elif keyword in ("prefixItems", "allOf", "anyOf", "oneOf"):
        likely = st.lists(inner, max_size=2)
    elif keyword in ("$defs", "definitions", "properties", "patternProperties", "dependentSchemas"):
        likely = st.dictionaries(st.sampled_from("ab"), inner, max_size=2)
    elif keyword in ("uniqueItems", "deprecated", "readOnly", "writeOnly"):
        likely = st.booleans()
    elif keyword in ("enum", "examples"):
        likely = st.lists(any_values, max_size=2)
    elif keyword in ("const", "default", "x-custom"):
        likely = any_values
    elif keyword in TEXTS:
        likely = texts
    else:
        likely = inner
    anything = any_values | inner | st.lists(inner, max_size=2) | names
    return st.one_of(likely, likely, likely, anything)


schemas = st.recursive(
    st.booleans() | st.just({}),
    lambda inner: st.lists(st.sampled_from(KEYWORDS), max_size=4, unique=True).flatmap(
        lambda keys: st.fixed_dictionaries({key: _any_value_for(key, inner) for key in keys})
    ),
    max_leaves=8,
)
META = Draft202012Validator(Draft202012Validator.META_SCHEMA)


@settings(max_examples=1500, deadline=None, database=None)
@given(schemas)
def test_the_shape_check_agrees_with_the_2020_12_meta_schema(schema: Any) -> None:
    """`compile_schema` checks each keyword by hand (jsonschema's meta-schema check spends
    ~0.1 ms a subschema: 2.5 s on 64 KiB); it must refuse exactly what the meta-schema does."""
    document = {"type": "object", "allOf": [schema]}
    try:
        compile_schema(document)
        accepted = True
    except SchemaRefused:
        accepted = False
    assert accepted == META.is_valid(document)


#: the keywords whose checks `bot.schemas` replaces, and others around them
CHECKED = [
    *("items", "prefixItems", "contains", "minContains", "maxContains", "additionalProperties"),
    *("properties", "patternProperties", "propertyNames", "unevaluatedItems"),
    *("unevaluatedProperties", "multipleOf", "pattern", "allOf", "anyOf", "if", "then", "else"),
    *("type", "minimum", "required", "dependentSchemas", "not", "const"),
]


def _value_for(keyword: str, inner: st.SearchStrategy[Any]) -> st.SearchStrategy[Any]:
    if keyword in ("prefixItems", "allOf", "anyOf"):
        return st.lists(inner, min_size=1, max_size=2)
    if keyword in ("properties", "patternProperties", "dependentSchemas"):
        keys = st.sampled_from(["a", "b", "^a", "b$"])
        return st.dictionaries(keys, inner, max_size=2)
    if keyword in ("minContains", "maxContains"):
        return st.integers(0, 2)
    if keyword == "multipleOf":
        return st.sampled_from([0.5, 2, 3, 1e-300])
    if keyword == "pattern":
        return st.sampled_from(["^a", "b$", "[0-9]+", "^$", "a|b"])
    if keyword == "type":
        return st.sampled_from(["array", "object", "string", "number", "integer", "null"])
    if keyword == "minimum":
        return st.sampled_from([0, 1.5, 10**20])
    if keyword == "required":
        return st.lists(st.sampled_from(["a", "b"]), max_size=2, unique=True)
    if keyword == "const":
        return json_values
    return inner


checked_schemas = st.recursive(
    st.booleans() | st.just({}),
    lambda inner: (
        st.sampled_from(CHECKED)
        .flatmap(lambda key: st.tuples(st.just(key), _value_for(key, inner)))
        .map(lambda pair: {pair[0]: pair[1]})
    ),
    max_leaves=6,
)
instances = st.recursive(
    st.none()
    | st.booleans()
    | st.sampled_from([0, 1, 1.5, 3, 10**20, 10**400, 6.0])
    | st.sampled_from(["", "a", "ab", "b", "7"]),
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.sampled_from(["a", "b", "c"]), inner)
    ),
    max_leaves=8,
)


@settings(
    max_examples=600,
    deadline=None,
    database=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much],
)
@given(st.lists(checked_schemas, min_size=1, max_size=3), instances)
def test_the_checks_agree_with_jsonschema_and_never_crash(parts: list[Any], instance: Any) -> None:
    """RE2, the linear keywords and the timed loops change how fast, never what is valid; and
    no schema and arguments make a check raise anything but `Uncheckable`."""
    schema = {"type": "object", "properties": {"v": {"allOf": parts}}}
    args = {"v": instance}
    try:
        found = asyncio.run(compile_schema(schema).errors(args))
    except Uncheckable:
        return
    try:
        expected = Draft202012Validator(schema).is_valid(args)
    except OverflowError:  # jsonschema's multipleOf on a huge integer: ours has no such crash
        return
    assert (not found) == expected, (schema, args, found)
