"""The workspace page in a real headless Chromium: an agent waits while a person edits its call,
`/approvals` is typed and answered, a refused click is answered under its card, a reload
leaves no modal open, the page follows `approval-bot dev` through a restart with an agent
waiting, and a decision made with `approval-bot decide` shows on the card.

Needs Debian's `chromium` (`apt-get install chromium`) at /usr/bin/chromium, or another
Chromium named by `CHROMIUM_PATH`; Playwright drives it and downloads nothing.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import re
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from aiohttp import web
from playwright.async_api import Browser, Locator, Page, async_playwright, expect

from bot.config import Settings
from bot.dev import create_dev_app, dev_settings
from bot.dev.workspace import ASSETS
from bot.models import Status
from bot.policy import load_routing
from bot.sdk import ApprovalClient, Decision
from tests.dev_process import DevProcess, wait_for_exit
from tests.processes import free_port
from tests.test_dev import Dev, running_dev

CHROMIUM = Path(os.environ.get("CHROMIUM_PATH", "/usr/bin/chromium"))
CHROMIUM_ARGS = [
    "--headless=new",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
SCREENSHOT = Path(__file__).parent.parent / "docs" / "workspace.png"

SCHEMA = {
    "type": "object",
    "properties": {
        "service": {"type": "string", "enum": ["checkout-api", "search", "web"]},
        "version": {"type": "string"},
        "replicas": {"type": "integer", "minimum": 1, "maximum": 10},
    },
    "required": ["service", "version", "replicas"],
}


@pytest.fixture
async def browser() -> AsyncIterator[Browser]:
    if not CHROMIUM.is_file():
        pytest.fail(
            f"the browser tests need Chromium at {CHROMIUM}: `apt-get install chromium` "
            "(or set CHROMIUM_PATH)"
        )
    async with async_playwright() as playwright:
        launched = await playwright.chromium.launch(
            executable_path=str(CHROMIUM), args=CHROMIUM_ARGS
        )
        yield launched
        await launched.close()


async def open_page(browser: Browser, url: str) -> tuple[Page, list[str]]:
    """A page at `url` that records script errors and failed requests."""
    page = await browser.new_page(viewport={"width": 1440, "height": 900})
    problems: list[str] = []
    page.on("pageerror", lambda error: problems.append(f"script error: {error}"))
    page.on(
        "console",
        lambda message: problems.append(message.text) if message.type == "error" else None,
    )
    await page.goto(url)
    return page, problems


async def test_an_agent_waits_while_a_person_edits_its_call(
    browser: Browser, tmp_path: Path
) -> None:
    async with running_dev(tmp_path) as dev:
        page, problems = await open_page(browser, dev.url + "/?user=U0ALICE")
        await expect(page.locator("#conn")).to_have_class("conn conn-live")
        await approve_an_email_first(page)

        async with ApprovalClient(dev.url, token=dev.settings.api_token) as client:
            agent = asyncio.create_task(
                client.request(
                    "deploy_service",
                    {"service": "checkout-api", "version": "1.4.2", "replicas": 3},
                    args_schema=SCHEMA,
                    channel="#ops",
                    priority="high",
                    prompt="Roll checkout-api 1.4.2 out to production?",
                    requester={"agent": "release-bot", "slackUser": "U0DAVE"},
                    context="CI green on main · canary healthy for 30 min",
                    timeout=30,
                )
            )
            try:
                await see_the_agent_wait(page)
                await type_approvals(page)
                decision = await edit_in_the_page(page, agent)
            finally:
                agent.cancel()

        assert decision.approved and decision.action.value == "edit"
        assert decision.approved_args == {
            "service": "checkout-api",
            "version": "1.4.2",
            "replicas": 5,
        }
        assert (decision.decided_by, decision.decided_by_name) == ("U0ALICE", "alice")
        assert decision.comment == "5 replicas for the sale"
        card = card_of(page, "deploy_service")
        await expect(card).to_contain_text("Approved with edits")
        await expect(card).to_contain_text("replicas: 3 → 5")
        await expect(card.locator(".bk-actions")).to_have_count(0)
        await expect(card.locator(".thread-count")).to_have_text("1 reply")
        assert problems == []


async def see_the_agent_wait(page: Page) -> None:
    """An agent that came in over the API is in the agent panel while it waits (issue 15: only
    the panel's own runs were), with a link to its card."""
    agent = page.locator(".run-api").filter(
        has=page.locator(".run-tool", has_text="deploy_service")
    )
    await expect(agent).to_contain_text("via the API")
    await expect(agent.locator(".run-agent")).to_have_text("release-bot")
    await expect(agent.locator(".run-channel")).to_have_text("#ops")
    await expect(agent.locator(".run-elapsed")).to_have_text(re.compile(r"^0:\d\d$"))
    await expect(agent.get_by_role("button", name="card in #ops")).to_be_visible()


async def type_approvals(page: Page) -> None:
    """`/approvals` typed in the composer is the slash command, answered only to its user; a
    `/word` the app does not have is Slack's note, and neither is posted (issue 15)."""
    composer = page.locator("#composer-text")
    messages = page.locator("#timeline article.msg:not(.msg-ephemeral)")
    posted = await messages.count()
    await composer.fill("/approvals")
    await composer.press("Enter")
    listing = page.locator("#timeline .msg-ephemeral", has_text="Pending approvals")
    await expect(listing).to_contain_text("deploy_service")
    await expect(listing).to_contain_text("Only visible to you")

    await composer.fill("/aprovals")
    await composer.press("Enter")
    note = page.locator("#timeline .msg-ephemeral", has_text="not a valid command")
    await expect(note).to_contain_text("/aprovals")
    await expect(note.locator(".msg-author")).to_have_text("Slackbot")
    await expect(messages).to_have_count(posted)
    await note.get_by_role("button", name="Dismiss").click()
    await listing.get_by_role("button", name="Dismiss").click()
    await expect(page.locator("#timeline .msg-ephemeral")).to_have_count(0)


def card_of(page: Page, tool_name: str) -> Locator:
    return page.locator("#timeline article.msg").filter(
        has=page.locator(".bk-header", has_text=tool_name)
    )


async def approve_an_email_first(page: Page) -> None:
    """One decided request on the page: a pretend agent asks, a click approves it."""
    await page.click('[data-example="email"]')
    card = card_of(page, "send_email")
    await card.get_by_role("button", name="Approve", exact=True).click()
    await expect(card).to_contain_text("Approved by")
    run = page.locator(".run").filter(has=page.locator(".run-tool", has_text="send_email"))
    await expect(run.locator(".outcome")).to_have_text("Approved")
    await expect(run.locator(".received")).to_contain_text("alice (U0ALICE)")


async def edit_in_the_page(page: Page, agent: asyncio.Task[Decision]) -> Decision:
    """See the card, screenshot it, then edit `replicas` in the modal: wrong once, then right."""
    card = card_of(page, "deploy_service")
    await expect(card).to_be_visible()
    # The agent's word for who it acts for is text, never a ping (issue 12).
    await expect(card).to_contain_text("release-bot for U0DAVE")
    await expect(card.locator(".bk-mention", has_text="@dave")).to_have_count(0)
    await expect(card.locator(".bk-broadcast", has_text="@here")).to_be_visible()

    # A pretend agent from the panel waits too; the screenshot shows both.
    await page.click('[data-example="transfer"]')
    await expect(page.locator(".run-waiting .run-tool")).to_have_text(
        ["deploy_service", "transfer_funds"]  # the API's agent, then the panel's run
    )
    await expect(card.get_by_role("button", name="Edit…")).to_be_in_viewport()
    SCREENSHOT.parent.mkdir(exist_ok=True)
    await page.set_viewport_size({"width": 1440, "height": 1200})
    await expect(card.get_by_role("button", name="Edit…")).to_be_in_viewport()
    await page.screenshot(path=str(SCREENSHOT))

    await card.get_by_role("button", name="Edit…").click()
    modal = page.locator(".modal")
    await expect(modal.locator(".modal-title")).to_have_text("Edit arguments")
    replicas = modal.get_by_label("replicas")
    await expect(replicas).to_have_value("3")
    await replicas.fill("50")
    await modal.get_by_role("button", name="Approve edits").click()
    await expect(modal.locator(".bk-invalid .bk-error")).to_have_text("Must be at most 10.")
    assert not agent.done()

    await replicas.fill("5")
    await modal.get_by_label("Comment").fill("5 replicas for the sale")
    await modal.get_by_role("button", name="Approve edits").click()
    await expect(modal).to_be_hidden()
    return await asyncio.wait_for(agent, 10)


async def test_a_critical_approve_asks_first_and_the_agent_panel_shows_the_answer(
    browser: Browser, tmp_path: Path
) -> None:
    async with running_dev(tmp_path) as dev:
        page, problems = await open_page(browser, dev.url + "/?user=U0BOB")
        await page.click('[data-example="transfer"]')
        await page.get_by_role("button", name="card in #payments").click()
        card = card_of(page, "transfer_funds")
        approve = card.get_by_role("button", name="Approve", exact=True)

        await approve.click()
        dialog = page.locator("dialog#confirm")
        await expect(dialog).to_contain_text("Approve a critical action?")
        await dialog.get_by_role("button", name="Cancel").click()
        await expect(dialog).to_be_hidden()
        await page.wait_for_timeout(300)
        assert (await dev.state())["agents"][0]["state"] == "waiting"

        await approve.click()
        await dialog.get_by_role("button", name="Approve").click()
        run = page.locator(".run").first
        await expect(run.locator(".outcome")).to_have_text("Approved")
        await expect(run.locator(".received")).to_contain_text("bob (U0BOB)")
        await expect(run.locator(".received-args")).to_contain_text('"amount": 2500')
        await expect(card.locator(".bk-actions")).to_have_count(0)
        assert problems == []


#: only carol may approve payments: bob sees the card, may not approve it, and is told who may
CAROL_PAYS = '[[rules]]\ntools = ["transfer_*"]\napprovers = ["U0CAROL"]\n'


@contextlib.asynccontextmanager
async def running_dev_routed(tmp_path: Path, routing: str) -> AsyncIterator[Dev]:
    """`running_dev` with a routing file of the test's own."""
    path = tmp_path / "approvals.toml"
    path.write_text(routing)
    port = free_port()
    base = Settings(db=str(tmp_path / "approvals.db"), config=str(path))
    settings = dev_settings(base, port=port)
    app = create_dev_app(settings, router=load_routing(path))
    runner = web.AppRunner(app, access_log=None, shutdown_timeout=2)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", port).start()
    try:
        async with aiohttp.ClientSession() as http:
            yield Dev(f"http://127.0.0.1:{port}", app, settings, http)
    finally:
        await runner.cleanup()


async def test_a_refused_click_is_answered_under_the_card(browser: Browser, tmp_path: Path) -> None:
    """Issue 15: the refusal named the rule's globs and landed at the bottom of the channel,
    far from the card clicked. The card says who may approve; the note says it again, right
    under the card, as Slack shows a click's note only you see."""
    async with running_dev_routed(tmp_path, CAROL_PAYS) as dev:
        page, problems = await open_page(browser, dev.url + "/?user=U0BOB")
        await page.click('[data-example="transfer"]')
        await page.get_by_role("button", name="card in #payments").click()
        card = card_of(page, "transfer_funds")
        await expect(card).to_contain_text("Only @carol can approve this")
        await expect(card.locator(".bk-mention", has_text="@carol")).to_be_visible()
        await page.locator("#composer-text").fill("looking at the invoice now")
        await page.locator("#composer-text").press("Enter")
        last = page.locator("#timeline article.msg").last
        await expect(last).to_contain_text("looking at the invoice now")

        await card.get_by_role("button", name="Approve", exact=True).click()
        await page.locator("dialog#confirm").get_by_role("button", name="Approve").click()

        note = card.locator("xpath=following-sibling::article[1]")
        await expect(note).to_have_class(re.compile(r"\bmsg-ephemeral-under\b"))
        # by name once the Slack edge renders the refusal's mentions (`refusal_note`)
        who_may = re.compile(r"only (@carol|U0CAROL) can approve transfer_funds", re.I)
        await expect(note).to_contain_text(who_may)
        await expect(note).to_contain_text("Only visible to you")
        await expect(page.locator("#timeline article.msg").last).to_contain_text("looking at")
        assert (await dev.state("U0BOB"))["agents"][0]["state"] == "waiting"
        assert problems == []


async def test_a_reload_leaves_no_modal_open(browser: Browser, tmp_path: Path) -> None:
    """Issue 15: open modals came back after a page reload; Slack closes them."""
    async with running_dev(tmp_path) as dev:
        page, problems = await open_page(browser, dev.url + "/?user=U0ALICE")
        await page.click('[data-example="deploy"]')
        card = card_of(page, "deploy_service")
        await card.get_by_role("button", name="Reject…").click()
        modal = page.locator(".modal")
        await expect(modal.locator(".modal-title")).to_be_visible()

        await page.reload()
        await expect(page.locator("#conn")).to_have_class("conn conn-live")
        await expect(card).to_be_visible()
        await page.wait_for_timeout(300)
        await expect(modal).to_have_count(0)
        assert (await dev.state("U0ALICE"))["modals"] == []
        approval_id = (await dev.state())["agents"][0]["approvalId"]
        async with ApprovalClient(dev.url, token=dev.settings.api_token) as client:
            assert (await client.get(approval_id)).status is Status.PENDING  # nothing decided
        assert problems == []


async def test_each_person_sees_only_the_channels_they_are_in(
    browser: Browser, tmp_path: Path
) -> None:
    """As in Slack's sidebar, a private channel is listed, with a lock for a #, to its members
    only (https://docs.slack.dev/reference/objects/conversation-object, ``is_private``)."""
    async with running_dev(tmp_path) as dev:
        page, problems = await open_page(browser, dev.url + "/?user=U0ALICE")
        security = page.locator('#channel-list [data-place="C0PRIVATE"]')
        await expect(security).to_contain_text("security")
        await expect(security.locator("svg.lock")).to_have_attribute("aria-label", "private")

        await security.click()
        await expect(page.locator("#title svg.lock")).to_be_visible()
        composer = page.locator("#composer-text")
        await expect(composer).to_have_attribute("placeholder", "Message 🔒 security")

        await page.select_option("#who", "U0BOB")
        await expect(security).to_have_count(0)
        ops = page.locator('#channel-list [data-place="C0OPS"]')
        await expect(ops).to_have_attribute("aria-current", "page")  # moved somewhere Bob is
        assert problems == []


async def test_agent_text_is_shown_never_run(browser: Browser, tmp_path: Path) -> None:
    hostile = '<img src=x onerror="window.pwned=1"> <b>not bold</b> <!channel> <@U0BOB>'
    async with running_dev(tmp_path) as dev:
        page, problems = await open_page(browser, dev.url + "/?user=U0CAROL")
        async with ApprovalClient(dev.url, token=dev.settings.api_token) as client:
            await client.submit(
                "send_email",
                {"body": "<script>window.pwned=2</script>", "to": "<!here>"},
                prompt=hostile,
                context="<https://evil.test|click me>",
            )
        card = card_of(page, "send_email")

        await expect(card).to_contain_text(hostile)
        await expect(card).to_contain_text("<script>window.pwned=2</script>")
        assert await card.locator("img, script, a, b:has-text('not bold')").count() == 0
        assert await card.locator(".bk-mention").count() == 0  # no ping, no @bob
        assert await page.evaluate("window.pwned") is None
        assert problems == []


# -- `approval-bot dev` as a real process: stopped and started again, decided from the CLI -------


@pytest.fixture
async def dev_process(tmp_path: Path) -> AsyncIterator[DevProcess]:
    """`approval-bot dev` started in `tmp_path`; stopped afterwards."""
    async with aiohttp.ClientSession() as http:
        process = DevProcess(tmp_path, http)
        await process.start()
        try:
            yield process
        finally:
            await wait_for_exit(process)


async def test_a_waiting_agent_outlives_a_restart_and_is_approved_on_the_page(
    browser: Browser, dev_process: DevProcess
) -> None:
    """Issue 15: a restart must not break a waiting agent or its card. The bot is stopped with
    an agent waiting; the page says it is reconnecting, then, once the bot is back, shows the
    same card with its buttons, and a click there answers the agent."""
    dev = dev_process
    page, problems = await open_page(browser, dev.url + "/?user=U0ALICE")
    await expect(page.locator("#conn")).to_have_class("conn conn-live")
    async with ApprovalClient(dev.url, token=dev.token) as client:
        agent = asyncio.create_task(
            client.request(
                "deploy_service",
                {"service": "search", "version": "2.0.1", "replicas": 2},
                channel="#ops",
                prompt="Roll search 2.0.1 out?",
                requester={"agent": "release-bot"},
                timeout=60,
            )
        )
        try:
            card = card_of(page, "deploy_service")
            approve = card.get_by_role("button", name="Approve", exact=True)
            await expect(approve).to_be_visible()
            waiting = page.locator(".run-api").filter(has_text="release-bot")
            await expect(waiting).to_contain_text("via the API")
            key = await card.get_attribute("data-key")  # "m" and the card's ts
            assert key is not None and key.startswith("m")

            assert await wait_for_exit(dev) == 0
            await expect(page.locator("#conn")).to_have_text(re.compile("reconnecting"))
            assert not agent.done()  # the agent tries again while the bot is away
            await dev.start()

            # No reload: the page follows the bot again by itself, as Slack's client does.
            await expect(page.locator("#conn")).to_have_class("conn conn-live", timeout=15_000)
            await expect(waiting).to_contain_text("via the API", timeout=15_000)  # waits again
            await expect(card).to_have_attribute("data-key", key)  # the same card, not a new one
            await expect(card).to_contain_text("Roll search 2.0.1 out?")
            await expect(card.get_by_role("button", name="Reject…")).to_be_visible()
            await approve.click()
            decision = await asyncio.wait_for(agent, 20)
        finally:
            agent.cancel()

    assert decision.approved and decision.action.value == "approve"
    assert (decision.decided_by, decision.decided_by_name) == ("U0ALICE", "alice")
    await expect(card).to_contain_text("Approved by")
    await expect(card.locator(".bk-actions")).to_have_count(0)
    await expect(card.locator(".thread-count")).to_have_text("1 reply")
    await expect(waiting).to_have_count(0)
    assert [p for p in problems if not _while_the_bot_was_away(p)] == []


def _while_the_bot_was_away(problem: str) -> bool:
    """Chromium's console line for a request the stopped bot could not answer."""
    return "net::ERR_CONNECTION_REFUSED" in problem or "net::ERR_EMPTY_RESPONSE" in problem


async def test_a_decision_from_the_cli_updates_the_card_on_the_page(
    browser: Browser, dev_process: DevProcess
) -> None:
    """Issue 15: `approval-bot decide` woke the agent but left the card with its buttons and no
    thread reply. Decided from a terminal in the bot's directory (no Slack token there), the
    card on the open page loses its buttons, says who decided and why, and gets its reply."""
    dev = dev_process
    page, problems = await open_page(browser, dev.url + "/?user=U0BOB")
    await expect(page.locator("#conn")).to_have_class("conn conn-live")
    submitted = await dev.submit(
        toolName="send_email",
        args={"to": "ceo@example.com", "subject": "Q3 numbers"},
        channel="#ops",
        prompt="Send the Q3 numbers to the CEO?",
    )
    card = card_of(page, "send_email")
    await expect(card.get_by_role("button", name="Approve", exact=True)).to_be_visible()

    decided = await dev.cli(
        "decide", submitted["id"], "--approve", "--comment", "numbers checked", "--as", "carol"
    )
    assert decided.returncode == 0, decided.stderr

    await expect(card.locator(".bk-actions")).to_have_count(0)
    await expect(card).to_contain_text("Approved by carol")
    await expect(card).to_contain_text("numbers checked")
    await expect(card.locator(".thread-count")).to_have_text("1 reply")
    await card.locator(".thread-link").click()
    await expect(page.locator("#thread")).to_be_visible()
    reply = page.locator("#thread-list article.msg").last
    await expect(reply).to_contain_text("Approved")
    await expect(reply).to_contain_text("numbers checked")
    assert (await dev.record(submitted["id"]))["status"] == "approved"
    assert problems == []


def _options(*values: str) -> list[dict[str, Any]]:
    return [{"text": {"type": "plain_text", "text": v.upper()}, "value": v} for v in values]


def _input(block_id: str, label: str, element: dict[str, Any]) -> dict[str, Any]:
    return {
        "type": "input",
        "block_id": block_id,
        "label": {"type": "plain_text", "text": label},
        "element": {"action_id": "v", **element},
    }


KITCHEN_SINK = {
    "type": "modal",
    "callback_id": "every_input",
    "title": {"type": "plain_text", "text": "Every input"},
    "submit": {"type": "plain_text", "text": "Send"},
    "blocks": [
        _input("name", "Name", {"type": "plain_text_input", "initial_value": "x"}),
        _input("notes", "Notes", {"type": "plain_text_input", "multiline": True}),
        _input("count", "Count", {"type": "number_input", "is_decimal_allowed": False}),
        _input("color", "Color", {"type": "static_select", "options": _options("red", "green")}),
        _input(
            "flags",
            "Flags",
            {
                "type": "checkboxes",
                "options": _options("a", "b", "c"),
                "initial_options": _options("b"),
            },
        ),
        _input("size", "Size", {"type": "radio_buttons", "options": _options("s", "m", "l")}),
    ],
}


async def test_every_input_kind_is_submitted_as_slack_sends_it(
    browser: Browser, tmp_path: Path
) -> None:
    async with running_dev(tmp_path) as dev:
        page, _ = await open_page(browser, dev.url + "/?user=U0ALICE")
        await expect(page.locator("#conn")).to_have_class("conn conn-live")  # after its reload
        view = dev.ws.open_view(KITCHEN_SINK, user="U0ALICE")
        modal = page.locator(".modal")
        await expect(modal.locator(".modal-title")).to_have_text("Every input")
        await expect(modal.get_by_label("Name")).to_have_value("x")

        await modal.get_by_label("Name").fill("Ada")
        await modal.get_by_label("Notes").fill("line one\nline two")
        await modal.get_by_label("Count").fill("7")
        await modal.get_by_label("Color").select_option("green")
        await modal.get_by_label("A", exact=True).check()
        await modal.get_by_label("L", exact=True).check()
        await modal.get_by_role("button", name="Send").click()

        # Nothing in the bot listens for this modal: Slack would show an error, so does the page.
        await expect(page.locator(".toast-error")).to_contain_text("HTTP 404")
        await expect(modal).to_be_visible()
        state = {block: answer["v"] for block, answer in view.state.items()}
        assert state["name"] == {"type": "plain_text_input", "value": "Ada"}
        assert state["notes"]["value"] == "line one\nline two"
        assert state["count"] == {"type": "number_input", "value": "7"}
        assert state["color"]["selected_option"]["value"] == "green"
        assert [o["value"] for o in state["flags"]["selected_options"]] == ["a", "b"]
        assert state["size"]["selected_option"]["value"] == "l"


MRKDWN_CASES: list[tuple[str, str]] = [
    ("*bold* _it_ ~gone~ `x < y`", "<b>bold</b> <i>it</i> <s>gone</s> <code"),
    ("snake_case_name and 2*3*4", "snake_case_name and 2*3*4"),
    ("&lt;img src=x onerror=alert(1)&gt;", "&lt;img src=x onerror=alert(1)&gt;"),
    ("<img src=x onerror=alert(1)>", "&lt;img src=x onerror=alert(1)&gt;"),
    ("<@U0BOB> and <@U0NOBODY|someone>", "@bob</span> and <span"),
    ("<!here> <!subteam^S0SRE>", "@here</span> <span"),
    ("<https://example.com/a?b=1&amp;c=2|the docs>", 'href="https://example.com/a?b=1&amp;c=2"'),
    ("<javascript:alert(1)|click me>", "&lt;javascript:alert(1)|click me&gt;"),
    ('<https://x.test/"onclick="alert(1)|x>', "&quot;onclick=&quot;"),
    ("<!date^1700000000^{date_short}|2023-11-14 22:13 UTC>", ">2023-11-14 22:13 UTC</time>"),
    (
        '```\n{"a": "*not bold*"}\n```',
        '<pre class="bk-pre">{&quot;a&quot;: &quot;*not bold*&quot;}</pre>',
    ),
    ("a\ufffd\ue0000\ue001b", "a\ufffd0b"),
]


async def test_mrkdwn_becomes_safe_html(browser: Browser) -> None:
    page = await browser.new_page()
    await page.add_script_tag(path=str(ASSETS / "blockkit.js"))
    rendered: list[dict[str, Any]] = await page.evaluate(
        """(texts) => texts.map((text) => {
            const ctx = {
              me: "U0ALICE",
              userName: (id) => ({U0BOB: "bob"})[id] || null,
              channelName: () => null,
              groupHandle: (id) => (id === "S0SRE" ? "sre" : null),
            };
            const html = BlockKit.mrkdwn(text, ctx);
            const box = document.createElement("div");
            box.innerHTML = html;
            const elements = Array.from(box.querySelectorAll("*"));
            return {
              html,
              tags: [...new Set(elements.map((e) => e.tagName.toLowerCase()))],
              handlers: elements
                .flatMap((e) => e.getAttributeNames())
                .filter((a) => a.startsWith("on")),
              hrefs: elements.filter((e) => e.href).map((e) => e.getAttribute("href")),
            };
        })""",
        [text for text, _ in MRKDWN_CASES],
    )

    for (text, expected), out in zip(MRKDWN_CASES, rendered, strict=True):
        assert expected in out["html"], (text, out["html"])
        assert set(out["tags"]) <= {"b", "i", "s", "code", "pre", "span", "a", "time", "br"}, text
        assert out["handlers"] == [], text
        assert all(href.startswith("https://") for href in out["hrefs"]), text
