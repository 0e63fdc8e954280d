"""Claude Code's PreToolUse hooks against the real bot and the local Slack: the command hook run
as Claude Code runs it (a process, the hook input on stdin), and the `http` hook's endpoint."""

from __future__ import annotations

import asyncio
import json
import os
import re
import shlex
import sys
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from bot.cli import _parser
from tests.adapter_support import answer_modal, pending
from tests.conftest import AGENT_TOKEN, SlackRig, until
from tests.processes import ServeProcess, free_port
from tests.slack_support import actions_of

ROOT = Path(__file__).parent.parent
README = (ROOT / "README.md").read_text()
HOOK = "/v1/hooks/claude-code"


def hook_input(tool: str = "Bash", **tool_input: Any) -> dict[str, Any]:
    """What Claude Code sends before a tool call: a fresh tool use id each time."""
    return {
        "session_id": "sess-4f2a",
        "transcript_path": "/home/dev/.claude/projects/repo/sess-4f2a.jsonl",
        "cwd": "/home/dev/repo",
        "permission_mode": "default",
        "hook_event_name": "PreToolUse",
        "tool_name": tool,
        "tool_input": tool_input or {"command": "rm -rf build", "description": "Clean up"},
        "tool_use_id": f"toolu_{os.urandom(6).hex()}",
    }


# -- the command hook, as a process ---------------------------------------------------------


class Hook:
    """`approval-bot hook claude-code` started with a hook input, as Claude Code starts it."""

    def __init__(self, process: asyncio.subprocess.Process) -> None:
        self.process = process

    @classmethod
    async def start(
        cls, url: str, stdin: bytes | dict[str, Any], *flags: str, token: str = AGENT_TOKEN
    ) -> Hook:
        env = {
            "PATH": os.environ.get("PATH", ""),
            "APPROVAL_URL": url,
            "APPROVAL_API_TOKEN": token,
        }
        process = await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "bot",
            "hook",
            "claude-code",
            *flags,
            env=env,
            cwd=Path(__file__).parent,  # no .env or approvals.toml there
            stdin=asyncio.subprocess.PIPE,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
        )
        raw = stdin if isinstance(stdin, bytes) else json.dumps(stdin).encode()
        assert process.stdin is not None
        process.stdin.write(raw)
        await process.stdin.drain()
        process.stdin.close()
        return cls(process)

    async def finished(self, timeout: float = 15) -> tuple[int, str, str]:
        """Exit code, stdout and stderr once the hook has answered."""
        stdout, stderr = await asyncio.wait_for(self.process.communicate(), timeout)
        assert self.process.returncode is not None
        return self.process.returncode, stdout.decode(), stderr.decode()

    async def answer(self, timeout: float = 15) -> dict[str, Any]:
        """The `hookSpecificOutput` the hook printed, exiting 0 with nothing else on stdout."""
        code, stdout, stderr = await self.finished(timeout)
        assert code == 0, stderr
        assert "Traceback" not in stderr
        output = json.loads(stdout)
        assert list(output) == ["hookSpecificOutput"]
        answer = output["hookSpecificOutput"]
        assert answer["hookEventName"] == "PreToolUse"
        return dict(answer)


async def record_of(rig: SlackRig, approval_id: str) -> dict[str, Any]:
    _, record = await rig.bot.call("GET", f"/v1/approvals/{approval_id}")
    return dict(record)


async def test_an_approved_call_is_allowed_with_the_input_it_asked_for(rig: SlackRig) -> None:
    sent = hook_input(command="rm -rf build", description="Clean up")
    hook = await Hook.start(rig.bot.url, sent, "--priority", "high")

    [record] = await pending(rig)
    buttons = actions_of(await rig.card(record["id"]))
    assert hook.process.returncode is None  # still waiting for the click
    await rig.click(record["id"], "approve", "U0ALICE")
    answer = await hook.answer()

    assert answer == {
        "hookEventName": "PreToolUse",
        "permissionDecision": "allow",
        "permissionDecisionReason": "Approved in Slack by alice",
        "updatedInput": sent["tool_input"],
    }
    assert record["toolName"] == "Bash" and record["args"] == sent["tool_input"]
    assert record["toolCallId"] == sent["tool_use_id"]
    assert record["requester"] == {"agent": "claude-code", "slackUser": None, "runId": "sess-4f2a"}
    assert record["prompt"] == "rm -rf build"
    assert record["context"] == "Claude Code in /home/dev/repo"
    assert record["priority"] == "high"
    assert record["metadata"]["claudeCode"]["sessionId"] == "sess-4f2a"
    assert buttons == ["approve", "edit", "reject", "feedback"]


async def test_an_edit_is_the_input_claude_code_runs(rig: SlackRig) -> None:
    sent = hook_input(command="rm -rf build", description="Clean up")
    hook = await Hook.start(rig.bot.url, sent)

    [record] = await pending(rig)
    values = {"arg:command": "rm -rf build/tmp", "comment": "only the scratch files"}
    await answer_modal(rig, record["id"], "edit", "U0ALICE", values)
    answer = await hook.answer()

    assert answer["permissionDecision"] == "allow"
    assert answer["updatedInput"] == {"command": "rm -rf build/tmp", "description": "Clean up"}
    assert answer["permissionDecisionReason"] == (
        "Approved in Slack by alice, with edited input: only the scratch files"
    )


@pytest.mark.parametrize(
    ("how", "text", "reason"),
    [
        pytest.param(
            "reject",
            "not on main",
            "The user rejected this tool call (Write): not on main",
            id="reject",
        ),
        pytest.param(
            "feedback",
            "write it under docs/ instead",
            "The user did not run this tool call (Write) and gave feedback instead: "
            "write it under docs/ instead",
            id="feedback",
        ),
    ],
)
async def test_a_refusal_is_a_deny_with_the_reviewers_words(
    rig: SlackRig, how: str, text: str, reason: str
) -> None:
    sent = hook_input("Write", file_path="/home/dev/repo/README.md", content="# hi\n")
    hook = await Hook.start(rig.bot.url, sent)

    [record] = await pending(rig)
    await answer_modal(
        rig, record["id"], how, "U0ALICE", {"reason" if how == "reject" else how: text}
    )
    answer = await hook.answer()

    assert record["prompt"] == "/home/dev/repo/README.md"  # the file path is the headline
    assert answer == {
        "hookEventName": "PreToolUse",
        "permissionDecision": "deny",
        "permissionDecisionReason": reason,
    }


def mrkdwn_of(value: Any) -> list[str]:
    """Every mrkdwn string of a card's blocks: the text Slack would parse for mentions."""
    if isinstance(value, dict):
        if value.get("type") == "mrkdwn":
            return [str(value.get("text", ""))]
        return [text for item in value.values() for text in mrkdwn_of(item)]
    if isinstance(value, list):
        return [text for item in value for text in mrkdwn_of(item)]
    return []


async def test_agent_text_on_the_card_stays_text(rig: SlackRig) -> None:
    sent = hook_input(command="echo '<!channel> *Approved* by <@U0ALICE>' > notes.txt")
    hook = await Hook.start(rig.bot.url, sent)

    [record] = await pending(rig)
    card = await rig.card(record["id"])
    parsed = "\n".join([*mrkdwn_of(card.blocks), card.text])  # the pending card, as posted
    await answer_modal(rig, record["id"], "reject", "U0ALICE", {"reason": "no"})
    await hook.answer()

    assert record["prompt"] == sent["tool_input"]["command"]  # stored as the agent sent it
    assert "<!channel>" not in parsed and "<@U0ALICE>" not in parsed
    assert "&lt;!channel&gt;" in parsed


async def test_an_unreachable_bot_is_a_deny_that_says_so() -> None:
    url = f"http://127.0.0.1:{free_port()}"
    started = asyncio.get_running_loop().time()

    answer = await (await Hook.start(url, hook_input())).answer()

    assert asyncio.get_running_loop().time() - started < 10  # not after the whole --wait
    assert answer["permissionDecision"] == "deny"
    assert answer["permissionDecisionReason"].startswith(
        "The approval bot could not be reached, so this call was not approved: "
        f"cannot reach the approval bot at {url}: "
    )
    assert "updatedInput" not in answer


async def test_fail_open_allows_when_the_bot_is_unreachable() -> None:
    url = f"http://127.0.0.1:{free_port()}"

    answer = await (await Hook.start(url, hook_input(), "--fail-open")).answer()

    assert answer["permissionDecision"] == "allow"
    assert answer["permissionDecisionReason"].startswith(
        "The approval bot could not be reached, so this call runs without a decision "
        f"(--fail-open): cannot reach the approval bot at {url}: "
    )
    assert "updatedInput" not in answer  # the call runs as Claude Code asked


@pytest.mark.parametrize("fail_open", [False, True], ids=["closed", "open"])
async def test_no_decision_in_time_withdraws_the_card(rig: SlackRig, fail_open: bool) -> None:
    flags = ["--wait", "1", *(["--fail-open"] if fail_open else [])]
    hook = await Hook.start(rig.bot.url, hook_input(), *flags)

    [record] = await pending(rig)
    answer = await hook.answer()
    withdrawn = await rig.decided(record["id"])

    assert answer["permissionDecision"] == ("allow" if fail_open else "deny")
    assert answer["permissionDecisionReason"].startswith(
        "Nobody decided on this Bash call in Slack within 1s"
    )
    assert "updatedInput" not in answer
    assert withdrawn["status"] == "cancelled"
    assert withdrawn["decision"]["decidedBy"] == "claude-code"
    assert withdrawn["decision"]["comment"] == "Claude Code stopped waiting after 1s"


async def test_a_request_the_bot_refuses_is_a_deny_even_with_fail_open(rig: SlackRig) -> None:
    refused = await (
        await Hook.start(rig.bot.url, hook_input(), "--channel", "U0ALICE", "--fail-open")
    ).answer()
    unauthorized = await (
        await Hook.start(rig.bot.url, hook_input(), "--fail-open", token="wrong")
    ).answer()

    assert refused["permissionDecision"] == "deny"
    assert "channel" in refused["permissionDecisionReason"]
    assert "not a person" in refused["permissionDecisionReason"]
    assert unauthorized["permissionDecision"] == "deny"
    assert "APPROVAL_API_TOKEN" in unauthorized["permissionDecisionReason"]
    _, body = await rig.bot.call("GET", "/v1/approvals")
    assert body["items"] == []


async def test_a_tool_use_id_is_one_call(rig: SlackRig) -> None:
    first = hook_input(command="ls")
    hook = await Hook.start(rig.bot.url, first)
    [record] = await pending(rig)
    await rig.click(record["id"], "approve", "U0ALICE")
    await hook.answer()

    other = {**first, "tool_input": {"command": "rm -rf /"}}
    again = await (await Hook.start(rig.bot.url, other)).answer()

    assert again["permissionDecision"] == "deny"
    assert "already used for another call" in again["permissionDecisionReason"]


@pytest.mark.parametrize(
    ("stdin", "says"),
    [
        pytest.param(b"", "not JSON", id="empty"),
        pytest.param(b"{'tool_name': 'Bash'", "not JSON", id="not-json"),
        pytest.param(b"[1, 2]", "must be a JSON object, not list", id="list"),
        pytest.param(b'{"tool_input": {}}', "tool_name is required", id="no-tool-name"),
        pytest.param(
            b'{"tool_name": "Bash", "tool_input": "rm -rf /"}', "tool_input", id="input-not-object"
        ),
        pytest.param(
            b'{"hook_event_name": "PostToolUse", "tool_name": "Bash", "tool_input": {}}',
            "answers PreToolUse only",
            id="other-event",
        ),
    ],
)
async def test_input_that_is_no_hook_input_exits_2_with_the_reason(
    rig: SlackRig, stdin: bytes, says: str
) -> None:
    code, stdout, stderr = await (await Hook.start(rig.bot.url, stdin)).finished()

    assert code == 2  # Claude Code blocks the call and shows stderr
    assert stdout == ""
    assert stderr.startswith("approval-bot hook claude-code: ")
    assert says in stderr and stderr.rstrip().endswith("the call is denied")
    assert "Traceback" not in stderr and stderr.count("\n") == 1
    _, body = await rig.bot.call("GET", "/v1/approvals")
    assert body["items"] == []


# -- the `http` hook: POST /v1/hooks/claude-code --------------------------------------------


async def post_hook(
    rig: SlackRig, body: Any, query: str = "", *, token: str | None = AGENT_TOKEN
) -> tuple[int, Any]:
    data = body if isinstance(body, bytes) else json.dumps(body).encode()
    headers = {"Content-Type": "application/json"}  # as Claude Code sends it
    if token:
        headers["Authorization"] = f"Bearer {token}"
    async with rig.bot.http.post(rig.bot.url + HOOK + query, data=data, headers=headers) as answer:
        return answer.status, await answer.json(content_type=None)


def denied(answer: Any) -> str:
    """The reason of a deny; fails on anything else."""
    output = answer["hookSpecificOutput"]
    assert output["permissionDecision"] == "deny", answer
    return str(output["permissionDecisionReason"])


async def test_the_http_hook_needs_the_agent_token_and_denies_without_it(rig: SlackRig) -> None:
    """Claude Code runs the call when an `http` hook answers anything but 2xx: a missing or
    wrong token is a deny (200), never a 401 it would read as "carry on"."""
    status, body = await post_hook(rig, hook_input(), token=None)
    wrong, body_wrong = await post_hook(rig, hook_input(), token="wrong")

    assert (status, wrong) == (200, 200)
    assert "token" in denied(body).lower() and "token" in denied(body_wrong).lower()
    _, listed = await rig.bot.call("GET", "/v1/approvals")
    assert listed["items"] == []


@pytest.mark.parametrize(
    ("body", "query", "says"),
    [
        pytest.param(b"{not json", "", "not JSON", id="not-json"),
        pytest.param(b"[]", "", "must be a JSON object", id="list"),
        pytest.param({"tool_input": {}}, "", "tool_name is required", id="no-tool-name"),
        pytest.param(
            {**hook_input(), "hook_event_name": "Stop"}, "", "PreToolUse only", id="event"
        ),
        pytest.param(hook_input(), "?priority=urgent", "priority must be one of", id="priority"),
        pytest.param(hook_input(), "?wait=soon", "wait must be a number", id="wait"),
    ],
)
async def test_the_http_hook_denies_bad_input_saying_why(
    rig: SlackRig, body: Any, query: str, says: str
) -> None:
    status, answer = await post_hook(rig, body, query)

    assert status == 200
    assert says in denied(answer)


async def test_the_http_hook_allows_what_slack_approves(rig: SlackRig) -> None:
    sent = hook_input("Edit", file_path="/home/dev/repo/app.py", old_string="a", new_string="b")
    call = asyncio.create_task(post_hook(rig, sent, "?wait=10&priority=critical"))

    [record] = await pending(rig)
    values = {"arg:new_string": "c", "comment": ""}
    await answer_modal(rig, record["id"], "edit", "U0ALICE", values)
    status, answer = await asyncio.wait_for(call, 10)

    assert status == 200
    assert answer["hookSpecificOutput"] == {
        "hookEventName": "PreToolUse",
        "permissionDecision": "allow",
        "permissionDecisionReason": "Approved in Slack by alice, with edited input",
        "updatedInput": {**sent["tool_input"], "new_string": "c"},
    }
    assert record["prompt"] == "/home/dev/repo/app.py" and record["priority"] == "critical"
    assert record["toolCallId"] == sent["tool_use_id"]
    assert record["requester"]["runId"] == "sess-4f2a"


async def test_approved_args_are_the_whole_input_claude_code_runs(rig: SlackRig) -> None:
    """`updatedInput` replaces the tool input, as `approvedArgs` replace the arguments: an
    API decision without `description` is not filled from the call Claude Code asked about."""
    sent = hook_input(command="rm -rf build", description="Clean up")
    call = asyncio.create_task(post_hook(rig, sent, "?wait=10"))

    [record] = await pending(rig)
    status, _ = await rig.bot.decide(record["id"], approvedArgs={"command": "rm -rf build/tmp"})
    _, answer = await asyncio.wait_for(call, 10)

    assert status == 200
    assert answer["hookSpecificOutput"]["permissionDecision"] == "allow"
    assert answer["hookSpecificOutput"]["updatedInput"] == {"command": "rm -rf build/tmp"}


async def test_the_http_hook_denies_what_slack_rejects(rig: SlackRig) -> None:
    call = asyncio.create_task(post_hook(rig, hook_input("mcp__github__merge_pr", number=7)))

    [record] = await pending(rig)
    await answer_modal(rig, record["id"], "reject", "U0ALICE", {"reason": "CI is red"})
    status, answer = await asyncio.wait_for(call, 10)

    assert status == 200
    assert answer["hookSpecificOutput"] == {
        "hookEventName": "PreToolUse",
        "permissionDecision": "deny",
        "permissionDecisionReason": "The user rejected this tool call "
        "(mcp__github__merge_pr): CI is red",
    }
    assert record["prompt"] is None  # no command or path: the card shows the arguments


@pytest.mark.parametrize("fail_open", [False, True], ids=["closed", "open"])
async def test_the_http_hook_withdraws_a_card_nobody_decided_in_time(
    rig: SlackRig, fail_open: bool
) -> None:
    query = "?wait=0.5" + ("&failOpen=true" if fail_open else "")
    status, answer = await post_hook(rig, hook_input(), query)

    [record] = (await rig.bot.call("GET", "/v1/approvals"))[1]["items"]
    assert status == 200
    output = answer["hookSpecificOutput"]
    assert output["permissionDecision"] == ("allow" if fail_open else "deny")
    assert output["permissionDecisionReason"].startswith(
        "Nobody decided on this Bash call in Slack within 0.5s"
    )
    assert record["status"] == "cancelled"
    assert record["decision"]["comment"] == "no decision within 0.5s"


async def test_the_http_hook_denies_a_call_the_bot_refuses(rig: SlackRig) -> None:
    status, answer = await post_hook(rig, hook_input("run shell"), "?failOpen=true")
    status_channel, answer_channel = await post_hook(rig, hook_input(), "?channel=D0DM")

    assert (status, status_channel) == (200, 200)
    for output in (answer, answer_channel):
        assert output["hookSpecificOutput"]["permissionDecision"] == "deny"
    assert "toolName" in answer["hookSpecificOutput"]["permissionDecisionReason"]
    assert "channel" in answer_channel["hookSpecificOutput"]["permissionDecisionReason"]


async def test_the_http_hook_answers_a_decided_call_at_once(rig: SlackRig) -> None:
    sent = hook_input(command="make release")
    call = asyncio.create_task(post_hook(rig, sent, "?wait=10"))
    [record] = await pending(rig)
    await rig.click(record["id"], "approve", "U0ALICE")
    await asyncio.wait_for(call, 10)

    status, again = await post_hook(rig, sent, "?wait=10")

    assert status == 200
    assert again["hookSpecificOutput"]["permissionDecision"] == "allow"


async def test_a_hook_claude_code_gave_up_on_withdraws_its_card(serve: ServeProcess) -> None:
    """Claude Code hangs up when the hook's `timeout` passes: the card must not stay live."""
    async with aiohttp.ClientSession() as http:
        await serve.start(http)
        sent = hook_input(command="terraform destroy")
        headers = {"Authorization": f"Bearer {AGENT_TOKEN}"}
        with pytest.raises(TimeoutError):
            async with http.post(
                serve.url + HOOK + "?wait=600",
                json=sent,
                headers=headers,
                timeout=aiohttp.ClientTimeout(total=1.5),
            ) as response:
                await response.read()

        async def withdrawn() -> dict[str, Any] | None:
            async with http.get(serve.url + "/v1/approvals", headers=headers) as listed:
                items = (await listed.json())["items"]
            return items[0] if items and items[0]["status"] != "pending" else None

        record = await until(withdrawn)

    assert record["toolCallId"] == sent["tool_use_id"]
    assert record["status"] == "cancelled"
    assert record["decision"]["comment"] == "Claude Code stopped waiting"


# -- the README's settings.json --------------------------------------------------------------


def readme_settings() -> list[dict[str, Any]]:
    """Every settings.json example in the README's Claude Code section."""
    section = README[README.index("**Claude Code.**") :]
    blocks = re.findall(r"```json\n(.*?)\n```", section, re.DOTALL)
    return [json.loads(block) for block in blocks if '"PreToolUse"' in block]


def test_the_readme_settings_gate_bash_writes_and_mcp_tools_within_the_hook_timeout() -> None:
    from bot.adapters.claude_code import DEFAULT_WAIT

    command_settings, http_settings = readme_settings()

    groups = command_settings["hooks"]["PreToolUse"]
    assert [group["matcher"] for group in groups] == ["Bash", "Write|Edit", "mcp__.*"]
    for group in groups:
        [handler] = group["hooks"]
        assert handler["type"] == "command"
        program, *argv = shlex.split(handler["command"])
        assert program == "approval-bot" and argv[:2] == ["hook", "claude-code"]
        args = _parser().parse_args(argv)
        assert args.wait + 30 <= handler["timeout"]  # answered before Claude Code gives up
    assert DEFAULT_WAIT + 30 <= 600

    [http_group] = http_settings["hooks"]["PreToolUse"]
    [handler] = http_group["hooks"]
    assert handler["type"] == "http"
    assert handler["url"].startswith("http://127.0.0.1:3000" + HOOK + "?")
    wait = float(re.search(r"wait=([\d.]+)", handler["url"])[1])  # type: ignore[index]
    assert wait + 30 <= handler["timeout"]
    assert handler["headers"] == {"Authorization": "Bearer $APPROVAL_API_TOKEN"}
    assert handler["allowedEnvVars"] == ["APPROVAL_API_TOKEN"]


async def test_the_readme_http_hook_url_is_served(rig: SlackRig) -> None:
    [http_group] = readme_settings()[1]["hooks"]["PreToolUse"]
    url = http_group["hooks"][0]["url"].replace("http://127.0.0.1:3000", rig.bot.url)
    url = re.sub(r"wait=[\d.]+", "wait=0", url)
    headers = {"Authorization": f"Bearer {AGENT_TOKEN}"}

    async with (
        aiohttp.ClientSession() as http,
        http.post(url, json=hook_input(), headers=headers) as response,
    ):
        answer = await response.json()

    assert response.status == 200
    assert answer["hookSpecificOutput"]["permissionDecision"] == "deny"
