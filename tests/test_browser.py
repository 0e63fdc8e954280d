"""The workspace page in a real headless Chromium: an agent waits while a person edits its call.

Needs Debian's `chromium` (`apt-get install chromium`) at /usr/bin/chromium, or another
Chromium named by `CHROMIUM_PATH`; Playwright drives it and downloads nothing.
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from playwright.async_api import Browser, Locator, Page, async_playwright, expect

from bot.dev.workspace import ASSETS
from bot.sdk import ApprovalClient, Decision
from tests.test_dev import running_dev

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
    await expect(page.locator(".run-waiting .run-tool")).to_have_text("transfer_funds")
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
