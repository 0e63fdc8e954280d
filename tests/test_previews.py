"""Previews (`preview: {"kind", "body"}`): what the card, App Home and the paged modal show of
them, what the API refuses, and what the SDK sends. Through the HTTP API, the local Slack
(which refuses what Slack refuses: 50 blocks, 3000 characters a section, ~12,000 in all, the
view limits) and signed Slack payloads."""

from __future__ import annotations

import asyncio
import json
import re
from typing import Any

import aiohttp
import pytest

from bot.models import MAX_PREVIEW_BYTES
from bot.sdk import ApprovalClient, ApprovalInvalid, Preview, requires_approval
from tests.adapter_support import answer_modal, open_modals, pending
from tests.conftest import (
    AGENT_TOKEN,
    RigFactory,
    Running,
    SlackRig,
    bot_settings,
    start_bot,
    until,
)
from tests.slack_support import actions_of

ZWSP = "\u200b"
#: what a hostile agent puts in a preview: the bot's own words, pings, a link, an entity, an
#: emoji code, fences
HOSTILE_LINES = (
    "*Approved* by <@U123>\n"
    "<!channel> <!here> <!subteam^S0SRE> <https://evil.example|click here>\n"
    "&lt;@U123&gt; :white_check_mark: ``` inline ```\n"
    "\\`\\`\\` escaped backticks, then a stray ``` fence\n"
)
#: the same in a code block, closed early by a fence of its own
HOSTILE = "```\n" + HOSTILE_LINES + "```\n" + HOSTILE_LINES + "```\n"


def block(blocks: list[dict[str, Any]], block_id: str) -> dict[str, Any]:
    [found] = [b for b in blocks if b.get("block_id") == block_id]
    return found


def mrkdwn_of(node: Any) -> list[str]:
    """Every mrkdwn string under `node`: the text Slack parses for mentions and links."""
    if isinstance(node, dict):
        own = [str(node["text"])] if node.get("type") == "mrkdwn" else []
        return own + [text for value in node.values() for text in mrkdwn_of(value)]
    if isinstance(node, list):
        return [text for item in node for text in mrkdwn_of(item)]
    return []


def assert_contained(text: str) -> None:
    """Agent text as mrkdwn that can neither ping nor link (no `<`), nor leave its place:
    every line is a fence, a line inside a code block holding no fence, or a quoted line."""
    assert "<" not in text, text
    assert not re.search(r"&(?!amp;|lt;|gt;)", text), text  # every & starts an entity
    in_code = False
    for line in text.split("\n"):
        if line == "```":
            in_code = not in_code
            continue
        assert "```" not in line, line
        if not in_code:
            assert line.startswith("> "), line
            line = line[2:]
        assert ">" not in line, line
    assert not in_code, "a code block was left open"


def code_of(texts: list[str]) -> list[str]:
    """The lines inside the code blocks of `texts`, unescaped: what the agent sent."""
    lines: list[str] = []
    for text in texts:
        in_code = False
        for line in text.split("\n"):
            if line == "```":
                in_code = not in_code
                continue
            assert in_code, line
            raw = line.replace(ZWSP, "").replace("&lt;", "<").replace("&gt;", ">")
            lines.append(raw.replace("&amp;", "&"))
    return lines


async def submit_preview(rig: SlackRig, kind: str, body: str, **fields: Any) -> dict[str, Any]:
    record = await rig.bot.submit(preview={"kind": kind, "body": body}, **fields)
    assert record["preview"] == {"kind": kind, "body": body}
    return record


# -- each kind on the card ---------------------------------------------------------------------


@pytest.mark.parametrize(
    ("kind", "body", "shown", "label"),
    [
        pytest.param(
            "diff",
            "--- a/app.py\n+++ b/app.py\n@@ -1,2 +1,2 @@\n keep = 0\n-old = 1\n+new = 2\n",
            "```\n--- a/app.py\n+++ b/app.py\n@@ -1,2 +1,2 @@\n keep = 0\n-old = 1\n+new = 2\n```",
            "*Preview from the agent* · diff · +1 −1 · 6 lines",
            id="diff",
        ),
        pytest.param(
            "text",
            "Dear customer,\r\nyour plan <Pro> & more\n",
            "```\nDear customer,\nyour plan &lt;Pro&gt; &amp; more\n```",
            "*Preview from the agent* · text · 2 lines",
            id="text",
        ),
        pytest.param(
            "markdown",
            "# Release 1.4\n\n- **faster** deploys\n1. see [docs](https://x.example/a?b=1&c=2)\n"
            "\n```sh\nrm -rf <dir>\n```\n",
            "> *Release 1.4*\n> \n> • *faster* deploys\n"
            "> 1. see docs (https://x.example/a?b=1&amp;c=2)\n> \n```\nrm -rf &lt;dir&gt;\n```",
            "*Preview from the agent* · markdown · 8 lines",
            id="markdown",
        ),
    ],
)
async def test_each_kind_shows_on_the_card(
    rig: SlackRig, kind: str, body: str, shown: str, label: str
) -> None:
    record = await submit_preview(rig, kind, body)
    card = await rig.card(record["id"])

    assert block(card.blocks, f"preview:{record['id']}")["text"]["text"] == shown
    assert mrkdwn_of(block(card.blocks, f"preview_label:{record['id']}")) == [label]
    assert "view_preview" not in actions_of(card)  # all of it is on the card
    _, stored = await rig.bot.call("GET", f"/v1/approvals/{record['id']}")
    assert stored["preview"] == {"kind": kind, "body": body}


@pytest.mark.parametrize(
    ("kind", "body"),
    [
        pytest.param("diff", HOSTILE, id="diff"),
        pytest.param("text", HOSTILE, id="text"),
        pytest.param("markdown", HOSTILE, id="markdown-code"),
        pytest.param("markdown", HOSTILE_LINES + "```\n", id="markdown-text"),
    ],
)
async def test_a_hostile_preview_cannot_ping_link_or_leave_its_place(
    rig: SlackRig, kind: str, body: str
) -> None:
    record = await submit_preview(rig, kind, body)
    card = await rig.card(record["id"])
    text = block(card.blocks, f"preview:{record['id']}")["text"]["text"]

    assert_contained(text)
    for markup in mrkdwn_of(card.blocks):
        assert "<@U123>" not in markup and "<!channel>" not in markup and "<https" not in markup
    assert "&amp;lt;@U123&amp;gt;" in text  # an entity the agent typed shows as typed
    if kind != "markdown":
        assert code_of([text]) == body.rstrip("\n").split("\n")  # all of it, as code
    elif body == HOSTILE:  # Markdown's code blocks stay code, and its text quoted text
        assert code_of([text.partition("\n> ")[0]]) == HOSTILE_LINES.rstrip("\n").split("\n")
        assert "\n> _Approved_ by &lt;@U123&gt;\n" in text
    else:
        assert text.startswith("> _Approved_ by &lt;@U123&gt;\n> &lt;!channel&gt;")
        assert ":white_check_mark:" not in text  # the code shows as typed, not as the emoji
        assert f":{ZWSP}white_check_mark:" in text


# -- what the API refuses -----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("preview", "path"),
    [
        pytest.param({"kind": "html", "body": "<b>"}, "preview.kind", id="unknown-kind"),
        pytest.param({"body": "x"}, "preview.kind", id="no-kind"),
        pytest.param({"kind": "diff"}, "preview.body", id="no-body"),
        pytest.param({"kind": "diff", "body": 7}, "preview.body", id="body-not-text"),
        pytest.param({"kind": "diff", "body": "x", "lang": "py"}, "preview.lang", id="extra"),
        pytest.param("--- a\n+++ b", "preview", id="not-an-object"),
        pytest.param(
            {"kind": "text", "body": "é" * (MAX_PREVIEW_BYTES // 2) + "a"},
            "preview.body",
            id="64KiB-plus-1-byte",
        ),
    ],
)
async def test_a_bad_preview_is_a_422_naming_the_field(
    bot: Running, preview: Any, path: str
) -> None:
    status, answer = await bot.call(
        "POST", "/v1/approvals", json={"toolName": "deploy", "args": {}, "preview": preview}
    )

    assert (status, answer["error"], answer["path"]) == (422, "invalid", path)
    assert answer["message"].startswith(path)
    _, listing = await bot.call("GET", "/v1/approvals")
    assert listing["items"] == []


async def test_64_kib_is_accepted_and_one_byte_more_says_so(bot: Running) -> None:
    exactly = "é" * (MAX_PREVIEW_BYTES // 2)  # 2 bytes each in UTF-8: the limit is in bytes
    record = await bot.submit(preview={"kind": "text", "body": exactly})
    status, over = await bot.call(
        "POST",
        "/v1/approvals",
        json={"toolName": "deploy", "args": {}, "preview": {"kind": "text", "body": exactly + "a"}},
    )

    assert record["preview"]["body"] == exactly
    assert status == 422
    assert "65,536 bytes" in over["message"] and "65,537" in over["message"]


async def test_a_lone_surrogate_is_refused_not_a_500(bot: Running) -> None:
    raw = b'{"toolName": "deploy", "args": {}, "preview": {"kind": "diff", "body": "+a\\ud800"}}'
    status, answer = await bot.call("POST", "/v1/approvals", data=raw)

    assert (status, answer["error"], answer["path"]) == (422, "invalid", "preview.body")
    assert "surrogate" in answer["message"]


# -- a big preview: cut on the card, whole in the paged modal ----------------------------------

#: 900 lines of a diff, each with a fence and what escaping lengthens (50 KiB, 180,000
#: characters once escaped: several pages)
MANY_LINES = "".join(f"{'+-'[i % 2]}{i:04d} ``` {'&<>' * 15}\n" for i in range(900))
#: one line of 64 KiB, each `&` five characters once escaped: it spreads over pages
ONE_LINE = ("&<>" + "y" * 13) * (MAX_PREVIEW_BYTES // 16)


async def modal_sections(rig: SlackRig, view_id: str) -> list[str]:
    view = rig.workspace.view(view_id)
    return [b["text"]["text"] for b in view.blocks if b["type"] == "section"]


async def turn(rig: SlackRig, view_id: str, button: str) -> None:
    """Click Previous or Next in the modal and wait for its next page."""
    before = rig.workspace.view(view_id).hash
    await rig.slack.click_in_view(view_id, "preview_page", block_id=button)
    await until(lambda: _changed(rig, view_id, before))


async def _changed(rig: SlackRig, view_id: str, before: str) -> bool:
    return rig.workspace.view(view_id).hash != before


def buttons_in(view: Any) -> list[str]:
    return [b["block_id"] for b in view.blocks if b["type"] == "actions"]


@pytest.mark.parametrize(
    ("body", "joined"),
    [
        pytest.param(MANY_LINES, MANY_LINES.rstrip("\n"), id="many-lines"),
        pytest.param(ONE_LINE, ONE_LINE, id="one-long-line"),
    ],
)
async def test_a_big_preview_is_cut_on_the_card_and_whole_in_pages(
    rig: SlackRig, body: str, joined: str
) -> None:
    record = await submit_preview(rig, "diff", body)
    card = await rig.card(record["id"])  # the local Slack took it: within every limit
    shown = block(card.blocks, f"preview:{record['id']}")["text"]["text"]
    [note] = mrkdwn_of(block(card.blocks, f"preview_note:{record['id']}"))

    assert_contained(shown)
    total = body.count("\n") or 1
    found = re.search(r"Cut to fit: ([\d,]+) of", note)
    assert found is not None, note
    count = int(found[1].replace(",", ""))
    assert f"of {total:,} lines shown" in note and "*View full preview*" in note
    assert 0 < count < total or "the last in part" in note
    assert joined.startswith("\n".join(code_of([shown]))[:-1])  # the head, then "…"
    assert actions_of(card)[-1] == "view_preview"

    await rig.slack.click(card.channel, card.ts, "view_preview", user="U0ALICE")
    [modal] = await until(lambda: open_modals(rig, "U0ALICE"))
    assert modal.callback_id == "preview_modal" and modal.title == "Full preview"
    pages = [await modal_sections(rig, modal.id)]
    while "preview_next" in buttons_in(rig.workspace.view(modal.id)):
        await turn(rig, modal.id, "preview_next")
        pages.append(await modal_sections(rig, modal.id))
    await turn(rig, modal.id, "preview_previous")

    assert len(pages) > 1
    assert await modal_sections(rig, modal.id) == pages[-2]
    assert len(rig.workspace.calls_to("views.open", ok=True)) == 1
    assert len(rig.workspace.calls_to("views.update", ok=True)) == len(pages)
    assert not rig.workspace.calls_to("views.update", ok=False)
    sections = [text for page in pages for text in page]
    for text in sections:
        assert_contained(text)
    lines = code_of(sections)
    assert ("\n" if "\n" in joined else "").join(lines) == joined  # every character, in order


@pytest.mark.parametrize(
    "body", [pytest.param(HOSTILE, id="whole"), pytest.param(MANY_LINES, id="cut")]
)
async def test_the_decided_card_keeps_the_preview_it_was_decided_on(
    rig: SlackRig, body: str
) -> None:
    """A decision rewrote the card without its preview: the channel's record of what was
    approved lost what the approver saw of the call (the email, the diff). It keeps it, as
    contained as before; cut, its note no longer offers a button (a decided card has none)."""
    record = await submit_preview(rig, "diff", body)
    card = await rig.card(record["id"])
    await rig.slack.click(card.channel, card.ts, "approve", user="U0ALICE")
    await rig.decided(record["id"])

    async def rewritten() -> Any:
        message = rig.workspace.message(card.channel, card.ts)
        ids = [b.get("block_id") for b in message.blocks]
        return message if f"outcome:{record['id']}" in ids else None

    decided = await until(rewritten)
    shown = block(decided.blocks, f"preview:{record['id']}")["text"]["text"]
    assert_contained(shown)
    assert actions_of(decided) == []
    if body == HOSTILE:
        assert code_of([shown]) == body.rstrip("\n").split("\n")
        return
    [note] = mrkdwn_of(block(decided.blocks, f"preview_note:{record['id']}"))
    total = body.count("\n")
    assert f"of {total:,} lines shown" in note and "View full preview" not in note
    assert body.startswith("\n".join(code_of([shown]))[:-1])  # the head, then "…"


async def test_a_preview_on_a_card_already_full_still_fits(rig: SlackRig) -> None:
    big = "<!channel> & " * 800
    record = await submit_preview(
        rig,
        "markdown",
        "# Plan\n" + "- step <x> & `y`\n" * 3000,
        prompt=big[:10_000],
        context=big[:10_000],
        args={f"arg_{i}": big for i in range(30)},
    )
    card = await rig.card(record["id"])  # msg_blocks_too_long and invalid_blocks otherwise

    shown = block(card.blocks, f"preview:{record['id']}")["text"]["text"]
    assert_contained(shown)
    assert shown.startswith("> *Plan*\n> • step &lt;x&gt; &amp; `y`")
    assert {"view_args", "view_preview"} <= set(actions_of(card))


@pytest.mark.parametrize(
    "body",
    [
        pytest.param("[" * 65_000, id="brackets"),
        pytest.param("[a](" * 16_000, id="unclosed-links"),
        pytest.param("![a](" * 13_000, id="unclosed-images"),
        pytest.param("<http:" * 10_000, id="unclosed-autolinks"),
        pytest.param("**a " * 16_000, id="unclosed-strong"),
    ],
)
async def test_a_markdown_body_that_never_closes_renders_at_once(rig: SlackRig, body: str) -> None:
    record = await submit_preview(rig, "markdown", body)
    started = asyncio.get_running_loop().time()
    card = await rig.card(record["id"])
    await rig.slack.click(card.channel, card.ts, "view_preview", user="U0ALICE")
    [modal] = await until(lambda: open_modals(rig, "U0ALICE"))

    # each took 2 to 45 s of the event loop when the Markdown patterns backtracked
    assert asyncio.get_running_loop().time() - started < 2
    assert_contained(block(card.blocks, f"preview:{record['id']}")["text"]["text"])
    assert modal.callback_id == "preview_modal"


# -- the card after an edit --------------------------------------------------------------------

TWO_APPROVERS = """
[[rules]]
tools = ["deploy_*"]
approvers = ["U0ALICE", "U0BOB"]
required_approvals = 2
"""


async def test_after_an_edit_the_preview_says_it_shows_the_call_as_sent(
    make_rig: RigFactory,
) -> None:
    rig = await make_rig(TWO_APPROVERS)
    record = await submit_preview(rig, "diff", "-version = 1.4.1\n+version = 1.4.2\n")
    label = f"preview_label:{record['id']}"
    assert "before the edit" not in json.dumps(block((await rig.card(record["id"])).blocks, label))

    await answer_modal(rig, record["id"], "edit", "U0ALICE", {"arg:version": "1.4.3"})

    async def relabelled() -> bool:
        card = await rig.card(record["id"])
        return "before the edit" in json.dumps(block(card.blocks, label))

    await until(relabelled)


# -- App Home ----------------------------------------------------------------------------------


async def test_app_home_shows_compact_previews_within_100_blocks(rig: SlackRig) -> None:
    records = [
        await submit_preview(
            rig,
            "diff",
            MANY_LINES,
            prompt=f"Change {i}?",
            args={f"k{j}": "v" * 300 for j in range(10)},
        )
        for i in range(10)
    ]
    for i in range(10):  # ten recent decisions with prompts: 31 blocks of the 100
        done = await rig.bot.submit(args={"n": i}, prompt=f"Earlier {i}?")
        await rig.bot.decide(done["id"], decidedBy="U0ALICE")

    await rig.slack.open_home("U0ALICE")
    home = await until(lambda: _home(rig, "U0ALICE"))

    assert rig.workspace.calls_to("views.publish", ok=True)  # the local Slack took it
    assert len(home.blocks) <= 100
    shown = [
        r for r in records if any(b.get("block_id") == f"preview:{r['id']}" for b in home.blocks)
    ]
    # 7 blocks a waiting entry: not all ten fit beside the recent decisions, and the rest is
    # counted instead of cut off
    assert 5 <= len(shown) < 10
    assert f"… and {10 - len(shown)} more" in json.dumps(home.blocks, ensure_ascii=False)
    assert "Earlier 9?" in json.dumps(home.blocks)
    for record in shown:
        text = block(home.blocks, f"preview:{record['id']}")["text"]["text"]
        label, _, rest = text.partition("\n")
        assert label.startswith("*Preview from the agent* · diff · +450 −450 · 900 lines")
        rows, _, note = rest.rpartition("\n")
        assert_contained(rows)
        assert note.startswith("_Cut to fit:") and note.endswith("_")


async def _home(rig: SlackRig, user: str) -> Any:
    home = rig.workspace.home(user)
    return home if home is not None and "preview:" in json.dumps(home.blocks) else None


# -- the SDK -----------------------------------------------------------------------------------


async def test_request_sends_the_preview(rig: SlackRig) -> None:
    preview = Preview(kind="markdown", body="**Drop** table `users`")
    async with ApprovalClient(rig.bot.url, AGENT_TOKEN) as client:
        asking = asyncio.create_task(
            client.request("drop_table", {"name": "users"}, preview=preview)
        )
        [record] = await pending(rig)
        # the card as posted (the message is rewritten in place once decided)
        shown = list((await rig.card(record["id"])).blocks)
        await rig.click(record["id"], "approve", "U0ALICE")
        decision = await asyncio.wait_for(asking, 5)

        with pytest.raises(ApprovalInvalid) as refused:
            await client.submit("drop_table", {}, preview={"kind": "diff", "body": "x" * 65_537})

    assert record["preview"] == {"kind": "markdown", "body": "**Drop** table `users`"}
    assert block(shown, f"preview:{record['id']}")["text"]["text"] == "> *Drop* table `users`"
    assert decision.approved
    assert refused.value.path == "preview.body"


async def test_requires_approval_previews_each_call_from_its_arguments(rig: SlackRig) -> None:
    seen: list[tuple[Any, ...]] = []
    ran: list[str] = []

    def diff_of(path: str, content: str, *, mode: str = "w") -> dict[str, str]:
        seen.append((path, content, mode))
        return {"kind": "diff", "body": f"--- {path}\n+++ {path}\n+{content}"}

    async with ApprovalClient(rig.bot.url, AGENT_TOKEN) as client:

        @requires_approval(client, preview=diff_of)
        async def write_file(path: str, content: str, *, mode: str = "w") -> str:
            ran.append(path)
            return f"wrote {path}"

        task = asyncio.create_task(write_file("app.py", "x = <1>", mode="a"))
        [record] = await pending(rig)
        await rig.click(record["id"], "approve", "U0ALICE")
        result = await asyncio.wait_for(task, 5)

    assert seen == [("app.py", "x = <1>", "a")]  # the call's own arguments
    assert record["preview"] == {"kind": "diff", "body": "--- app.py\n+++ app.py\n+x = <1>"}
    assert record["args"] == {"path": "app.py", "content": "x = <1>", "mode": "a"}
    assert (result, ran) == ("wrote app.py", ["app.py"])


async def test_requires_approval_wants_a_function_for_the_preview(bot: Running) -> None:
    async with ApprovalClient(bot.url, AGENT_TOKEN) as client:
        with pytest.raises(TypeError, match="preview must be a function"):
            requires_approval(client, preview={"kind": "diff", "body": "x"})  # type: ignore[arg-type]


# -- Claude Code: an Edit is previewed as a diff -------------------------------------------------


async def test_a_claude_code_edit_is_previewed_as_a_diff(rig: SlackRig) -> None:
    from tests.test_claude_code_hook import hook_input, post_hook

    sent = hook_input(
        "Edit", file_path="/repo/app.py", old_string="a = 1\nb = 2", new_string="a = 1\nb = 3"
    )
    call = asyncio.create_task(post_hook(rig, sent, "?wait=10"))
    [record] = await pending(rig)
    await rig.click(record["id"], "approve", "U0ALICE")
    status, _ = await asyncio.wait_for(call, 10)

    assert status == 200
    assert record["preview"]["kind"] == "diff"
    assert record["preview"]["body"].splitlines()[-3:] == [" a = 1", "-b = 2", "+b = 3"]


# -- both stores ---------------------------------------------------------------------------------


async def test_the_preview_is_stored_whole_on_each_engine(store_url: str) -> None:
    body = 'NUL\x00 tab\t 🚀 é \u2028 CRLF\r\n "q" \\ <!channel>\n' * 100
    settings = bot_settings(store_url)  # type: ignore[arg-type]
    server = await start_bot(settings)
    async with aiohttp.ClientSession() as http:
        running = Running(server, http, settings)
        record = await running.submit(preview={"kind": "text", "body": body})
        _, listing = await running.call("GET", "/v1/approvals")
    await server.close()
    server = await start_bot(settings)  # read back by a new process's store
    async with aiohttp.ClientSession() as http:
        _, again = await Running(server, http, settings).call(
            "GET", f"/v1/approvals/{record['id']}"
        )
    await server.close()

    assert record["preview"] == {"kind": "text", "body": body}
    assert listing["items"][0]["preview"] == record["preview"]
    assert again["preview"] == record["preview"]
