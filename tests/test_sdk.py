"""The SDK against a real bot on 127.0.0.1; decisions come through the admin API, as a human's."""

from __future__ import annotations

import asyncio
import inspect
import socket
import threading
import time
from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from aiohttp import web

from bot.app import BOT, create_app
from bot.config import Settings
from bot.models import Action
from bot.schemas import compile_schema
from bot.sdk import (
    ApprovalClient,
    ApprovalError,
    ApprovalRejected,
    ApprovalTimeout,
    ApprovalUnavailable,
    Decision,
    Status,
    SyncApprovalClient,
    requires_approval,
)
from bot.sdk.schema import pinned_schema, tool_schema

TOKEN = "agent-token"
ADMIN = "admin-token"


class Server:
    """One bot process: stoppable and restartable on the same port and database."""

    def __init__(self, db: Path) -> None:
        self.db = db
        self.port = 0
        self.runner: web.AppRunner | None = None
        self.app: web.Application | None = None
        self.human = aiohttp.ClientSession(
            connector=aiohttp.TCPConnector(force_close=True),
            headers={"Authorization": f"Bearer {ADMIN}"},
        )

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    async def start(self, db: Path | None = None) -> None:
        self.db = db or self.db
        settings = Settings(db=str(self.db), api_token=TOKEN, admin_token=ADMIN, channel="C0OPS")
        self.app = create_app(settings)
        self.runner = web.AppRunner(self.app, shutdown_timeout=0.1)
        await self.runner.setup()
        await web.TCPSite(self.runner, "127.0.0.1", self.port).start()
        self.port = self.runner.addresses[0][1]

    async def stop(self) -> None:
        assert self.runner is not None
        await self.runner.cleanup()
        self.runner = None

    @property
    def waiting(self) -> int:
        assert self.app is not None
        return self.app[BOT].service.waiting

    async def pending(self, tool_name: str) -> dict[str, Any]:
        """The pending approval of `tool_name`, once the agent has submitted it."""
        for _ in range(300):
            async with self.human.get(
                f"{self.url}/v1/approvals", params={"status": "pending", "toolName": tool_name}
            ) as response:
                items = (await response.json())["items"]
            if items:
                assert len(items) == 1
                return dict(items[0])
            await asyncio.sleep(0.01)
        raise AssertionError(f"{tool_name} was never submitted")

    async def all(self) -> list[dict[str, Any]]:
        async with self.human.get(f"{self.url}/v1/approvals") as response:
            return list((await response.json())["items"])

    async def decide(
        self,
        approval_id: str,
        *,
        approved: bool = True,
        comment: str | None = None,
        approved_args: dict[str, Any] | None = None,
    ) -> dict[str, Any]:
        """Decide as alice would from the card."""
        body: dict[str, Any] = {"approved": approved, "decidedBy": "alice"}
        if comment is not None:
            body["comment"] = comment
        if approved_args is not None:
            body["approvedArgs"] = approved_args
        async with self.human.post(
            f"{self.url}/v1/approvals/{approval_id}/decision", json=body
        ) as response:
            assert response.status == 200, await response.text()
            return dict(await response.json())

    async def try_decide(self, approval_id: str, approved_args: dict[str, Any]) -> Any:
        """Approve with `approved_args` as alice would over the API: (status, answer)."""
        body = {"approved": True, "decidedBy": "alice", "approvedArgs": approved_args}
        async with self.human.post(
            f"{self.url}/v1/approvals/{approval_id}/decision", json=body
        ) as response:
            return response.status, await response.json()

    async def close(self) -> None:
        if self.runner is not None:
            await self.stop()
        await self.human.close()


@pytest.fixture
async def server(tmp_path: Path) -> AsyncIterator[Server]:
    bot = Server(tmp_path / "a.db")
    await bot.start()
    yield bot
    await bot.close()


@pytest.fixture
async def client(server: Server) -> AsyncIterator[ApprovalClient]:
    async with ApprovalClient(server.url, TOKEN) as agent:
        yield agent


@pytest.fixture
def sync_client(server: Server) -> Iterator[SyncApprovalClient]:
    with SyncApprovalClient(server.url, TOKEN) as agent:
        yield agent


def closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


async def until(condition: Callable[[], bool]) -> None:
    for _ in range(300):
        if condition():
            return
        await asyncio.sleep(0.01)
    raise AssertionError("condition never held")


# -- request ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("decide", "expected"),
    [
        pytest.param(
            {},
            {"approved": True, "action": Action.APPROVE, "approved_args": {"version": "1.4.2"}},
            id="approved",
        ),
        pytest.param(
            {"approved_args": {"version": "1.4.3"}, "comment": "use the hotfix"},
            {"approved": True, "action": Action.EDIT, "approved_args": {"version": "1.4.3"}},
            id="edited",
        ),
        pytest.param(
            {"approved": False, "comment": "hotfix only"},
            {"approved": False, "action": Action.REJECT, "approved_args": None},
            id="rejected",
        ),
    ],
)
async def test_request_returns_the_decision_the_moment_it_is_made(
    server: Server, client: ApprovalClient, decide: dict[str, Any], expected: dict[str, Any]
) -> None:
    task = asyncio.create_task(
        client.request("deploy_service", {"version": "1.4.2"}, priority="high")
    )
    record = await server.pending("deploy_service")
    assert record["priority"] == "high"
    assert record["toolCallId"].startswith("call_")
    await until(lambda: server.waiting == 1)
    assert not task.done()

    await server.decide(record["id"], **decide)
    decision = await asyncio.wait_for(task, 1.0)  # far below the 60 s wait slice: pushed

    assert isinstance(decision, Decision)
    assert decision.approved is expected["approved"]
    assert decision.action is expected["action"]
    assert decision.approved_args == expected["approved_args"]
    assert decision.decided_by == "alice"
    assert decision.comment == decide.get("comment")


async def test_a_tool_call_id_resumes_the_same_approval(
    server: Server, client: ApprovalClient
) -> None:
    first = await client.submit("rollback", {"to": "1.4.1"}, tool_call_id="call_same")
    again = await client.submit("rollback", {"to": "1.4.1"}, tool_call_id="call_same")
    assert again.id == first.id
    assert [item["id"] for item in await server.all()] == [first.id]

    await server.decide(first.id, comment="go")
    decision = await asyncio.wait_for(
        client.request("rollback", {"to": "1.4.1"}, tool_call_id="call_same"), 1.0
    )
    assert decision.comment == "go"

    with pytest.raises(ApprovalError) as caught:
        await client.submit("rollback", {"to": "1.0.0"}, tool_call_id="call_same")
    assert (caught.value.status, caught.value.code) == (409, "conflict")


async def test_cancel_list_and_pages(server: Server, client: ApprovalClient) -> None:
    ids = [(await client.submit("scale", {"replicas": n})).id for n in range(3)]

    cancelled = await client.cancel(ids[0], "not needed any more")
    assert cancelled.status is Status.CANCELLED
    assert cancelled.decision is not None
    assert cancelled.decision.action is Action.CANCEL
    assert cancelled.decision.comment == "not needed any more"

    assert [a.id for a in await client.list(status="pending")] == [ids[2], ids[1]]
    pages = [[a.id for a in page] async for page in client.pages(tool_name="scale", page_size=2)]
    assert pages == [[ids[2], ids[1]], [ids[0]]]
    assert (await client.get(ids[1])).args == {"replicas": 1}


async def test_the_overall_timeout_raises_with_the_pending_record(client: ApprovalClient) -> None:
    started = time.monotonic()
    with pytest.raises(ApprovalTimeout) as caught:
        await client.request("drop_table", {"table": "users"}, timeout=0.3)
    assert 0.3 <= time.monotonic() - started < 2
    assert caught.value.approval.status is Status.PENDING
    assert caught.value.approval.tool_name == "drop_table"

    with pytest.raises(ApprovalTimeout):
        await client.wait(caught.value.approval.id, timeout=0.1)
    assert (await client.get(caught.value.approval.id)).is_pending


# -- surviving the network --------------------------------------------------------------------


async def test_a_wait_survives_a_restart_of_the_bot(server: Server, client: ApprovalClient) -> None:
    task = asyncio.create_task(client.request("migrate", {"step": 7}, timeout=10))
    record = await server.pending("migrate")
    await until(lambda: server.waiting == 1)

    await server.stop()
    await asyncio.sleep(0.3)
    assert not task.done()
    await server.start()  # same port, same database
    await server.decide(record["id"], comment="after the restart")

    decision = await asyncio.wait_for(task, 4)
    assert decision.approved
    assert decision.comment == "after the restart"


async def test_an_approval_the_bot_lost_is_submitted_again(
    server: Server, client: ApprovalClient, tmp_path: Path
) -> None:
    task = asyncio.create_task(client.request("migrate", {"step": 8}, timeout=10))
    lost = await server.pending("migrate")
    await until(lambda: server.waiting == 1)

    await server.stop()
    await server.start(tmp_path / "empty.db")
    again = await server.pending("migrate")
    assert again["id"] != lost["id"]
    assert again["toolCallId"] == lost["toolCallId"]
    await server.decide(again["id"])

    assert (await asyncio.wait_for(task, 4)).approved


async def test_an_unreachable_bot_raises_our_error_after_the_timeout() -> None:
    async with ApprovalClient(f"http://127.0.0.1:{closed_port()}", TOKEN) as agent:
        with pytest.raises(ApprovalUnavailable) as once:
            await agent.get("apr_x")  # a single call does not retry
        assert once.value.code == "unreachable"

        started = time.monotonic()
        with pytest.raises(ApprovalUnavailable) as caught:
            await agent.request("deploy_service", {"version": "1"}, timeout=0.5)
        assert 0.5 <= time.monotonic() - started < 2.5
    assert isinstance(caught.value, ApprovalError)
    causes = []
    cause: BaseException | None = caught.value
    while cause is not None:
        causes.append(cause)
        cause = cause.__cause__
    assert any(isinstance(c, aiohttp.ClientConnectionError) for c in causes)


async def test_a_wrong_token_is_unauthorized_without_retrying(server: Server) -> None:
    async with ApprovalClient(server.url, "wrong-token") as agent:
        with pytest.raises(ApprovalError) as caught:
            await asyncio.wait_for(agent.request("deploy_service", {}, timeout=5), 1)
    assert (caught.value.status, caught.value.code) == (401, "unauthorized")
    assert "APPROVAL_API_TOKEN" in caught.value.message


async def test_no_arguments_read_the_environment(
    server: Server, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("APPROVAL_URL", server.url)
    monkeypatch.setenv("APPROVAL_API_TOKEN", TOKEN)
    async with ApprovalClient() as agent:
        assert agent.url == server.url
        approval = await agent.submit("noop", {})
    assert approval.channel == "C0OPS"


# -- the blocking client ----------------------------------------------------------------------


async def test_the_sync_client_works_from_a_plain_thread(
    server: Server, sync_client: SyncApprovalClient
) -> None:
    outcome: dict[str, Any] = {}

    def agent() -> None:
        try:
            outcome["decision"] = sync_client.request("restart", {"service": "api"}, timeout=4)
        except BaseException as exc:
            outcome["error"] = exc

    thread = threading.Thread(target=agent)
    thread.start()
    record = await server.pending("restart")
    await server.decide(record["id"], approved_args={"service": "web"})
    await asyncio.to_thread(thread.join, 4)

    assert "error" not in outcome
    assert outcome["decision"].approved_args == {"service": "web"}


async def test_the_sync_client_works_from_a_worker_thread_of_a_running_loop(
    server: Server, sync_client: SyncApprovalClient
) -> None:
    call = asyncio.create_task(
        asyncio.to_thread(sync_client.request, "restart", {"service": "db"}, timeout=4)
    )
    record = await server.pending("restart")
    await server.decide(record["id"], approved=False, comment="not during the backup")

    decision = await asyncio.wait_for(call, 4)
    assert not decision.approved
    assert decision.comment == "not during the backup"
    assert (await asyncio.to_thread(sync_client.get, record["id"])).status is Status.REJECTED


# -- the decorator ----------------------------------------------------------------------------


async def test_a_gated_async_function_runs_with_the_edited_arguments(
    server: Server, client: ApprovalClient
) -> None:
    calls: list[tuple[str, str]] = []

    @requires_approval(
        client,
        channel="C0DEPLOY",
        priority="high",
        prompt="Send build {version} to {env}?",
        requester={"agent": "release-bot", "runId": "run-9"},
        metadata={"ticket": "OPS-1"},
    )
    async def deploy_service(version: str, env: str = "prod") -> str:
        """Deploy a build."""
        calls.append((version, env))
        return f"deployed {version} to {env}"

    assert inspect.iscoroutinefunction(deploy_service)
    assert deploy_service.__name__ == "deploy_service"
    assert deploy_service.__doc__ == "Deploy a build."
    assert list(inspect.signature(deploy_service).parameters) == ["version", "env"]

    task = asyncio.create_task(deploy_service("1.4.2"))
    record = await server.pending("deploy_service")
    assert record["prompt"] == "Send build 1.4.2 to prod?"
    assert record["args"] == {"version": "1.4.2", "env": "prod"}
    assert (record["channel"], record["priority"]) == ("C0DEPLOY", "high")
    assert (record["requester"]["agent"], record["requester"]["runId"]) == ("release-bot", "run-9")
    assert record["metadata"] == {"ticket": "OPS-1"}
    assert not calls

    await server.decide(record["id"], approved_args={"version": "1.4.3", "env": "prod"})
    assert await asyncio.wait_for(task, 2) == "deployed 1.4.3 to prod"
    assert calls == [("1.4.3", "prod")]


async def test_a_gated_sync_function_runs_with_the_edited_arguments(
    server: Server, sync_client: SyncApprovalClient
) -> None:
    calls: list[tuple[str, ...]] = []

    @requires_approval(sync_client, prompt="Delete {count} files under {root}?")
    def delete_files(root: str, *patterns: str, count: int = 0) -> int:
        calls.append((root, *patterns))
        return len(patterns)

    task = asyncio.create_task(asyncio.to_thread(delete_files, "/tmp", "*.log", count=3))
    record = await server.pending("delete_files")
    assert record["prompt"] == "Delete 3 files under /tmp?"
    assert record["args"] == {"root": "/tmp", "patterns": ["*.log"], "count": 3}

    edited = {"root": "/tmp/cache", "patterns": ["*.log", "*.tmp"], "count": 3}
    await server.decide(record["id"], approved_args=edited)
    assert await asyncio.wait_for(task, 2) == 2
    assert calls == [("/tmp/cache", "*.log", "*.tmp")]


@pytest.mark.parametrize("kind", ["async", "async on the blocking client", "sync"])
async def test_a_rejected_call_raises_with_who_and_why(
    server: Server, client: ApprovalClient, sync_client: SyncApprovalClient, kind: str
) -> None:
    ran: list[str] = []

    if kind.startswith("async"):

        @requires_approval(client if kind == "async" else sync_client)
        async def drop_table(table: str) -> None:
            ran.append(table)

        call = asyncio.create_task(drop_table("users"))
    else:

        @requires_approval(sync_client, tool_name="drop_table")
        def drop_table_now(table: str) -> None:
            ran.append(table)

        call = asyncio.create_task(asyncio.to_thread(drop_table_now, "users"))

    record = await server.pending("drop_table")
    await server.decide(record["id"], approved=False, comment="hotfix only")

    with pytest.raises(ApprovalRejected) as caught:
        await asyncio.wait_for(call, 2)
    assert caught.value.decision.comment == "hotfix only"
    assert "alice" in str(caught.value)
    assert "hotfix only" in str(caught.value)
    assert caught.value.refusal == "The user rejected this tool call (drop_table): hotfix only"
    assert not ran


async def reject(server: Server, client: ApprovalClient, approval_id: str) -> None:
    await server.decide(approval_id, approved=False, comment="hotfix only")


async def feedback(server: Server, client: ApprovalClient, approval_id: str) -> None:
    assert server.app is not None  # feedback is a Slack button; the service takes it the same
    await server.app[BOT].service.decide(
        approval_id,
        approved=False,
        decided_by="U0ALICE",
        comment="deploy to staging first",
        action=Action.FEEDBACK,
    )


async def cancel(server: Server, client: ApprovalClient, approval_id: str) -> None:
    await client.cancel(approval_id, "superseded")


@pytest.mark.parametrize(
    ("outcome", "message"),
    [
        pytest.param(
            reject, "The user rejected this tool call (deploy_service): hotfix only", id="reject"
        ),
        pytest.param(
            feedback,
            "The user did not run this tool call (deploy_service) and gave feedback instead: "
            "deploy to staging first",
            id="feedback",
        ),
        pytest.param(
            cancel,
            "This tool call (deploy_service) was cancelled and did not run: superseded",
            id="cancel",
        ),
    ],
)
async def test_on_reject_message_returns_a_refusal_for_the_model(
    server: Server, client: ApprovalClient, outcome: Any, message: str
) -> None:
    @requires_approval(client, on_reject="message")
    async def deploy_service(version: str) -> str:
        raise AssertionError("must not run")

    task = asyncio.create_task(deploy_service("1.4.2"))
    record = await server.pending("deploy_service")
    await outcome(server, client, record["id"])
    assert await asyncio.wait_for(task, 2) == message


async def test_an_expired_call_returns_a_refusal(server: Server, client: ApprovalClient) -> None:
    @requires_approval(client, on_reject="message", timeout_seconds=1)
    async def page_oncall(team: str) -> str:
        raise AssertionError("must not run")

    refusal = await asyncio.wait_for(page_oncall("sre"), 4)
    assert refusal == "Nobody approved this tool call (page_oncall) in time, so it did not run."


async def test_a_caller_tool_call_id_resumes_instead_of_asking_again(
    server: Server, sync_client: SyncApprovalClient
) -> None:
    class Tools:
        def __init__(self) -> None:
            self.restarted: list[str] = []

        @requires_approval(sync_client)
        def restart(self, service: str, tool_call_id: str | None = None) -> str:
            self.restarted.append(service)
            return f"restarted {service} ({tool_call_id})"

    tools = Tools()
    task = asyncio.create_task(asyncio.to_thread(tools.restart, "api", tool_call_id="call_7"))
    record = await server.pending("restart")
    assert record["args"] == {"service": "api"}  # self and the id are not for review
    assert record["toolCallId"] == "call_7"
    await server.decide(record["id"])
    assert await asyncio.wait_for(task, 2) == "restarted api (call_7)"

    again = await asyncio.wait_for(asyncio.to_thread(tools.restart, "api", "call_7"), 2)
    assert again == "restarted api (call_7)"
    assert len(await server.all()) == 1
    assert tools.restarted == ["api", "api"]


async def test_a_plain_function_given_tool_call_id_keeps_it(
    server: Server, client: ApprovalClient
) -> None:
    @requires_approval(client)
    async def rotate_key(name: str) -> str:
        return name

    first = await client.submit("rotate_key", {"name": "deploy"}, tool_call_id="call_rotate")
    await server.decide(first.id)
    resumed = rotate_key("deploy", tool_call_id="call_rotate")  # type: ignore[call-arg]
    assert await asyncio.wait_for(resumed, 1) == "deploy"
    assert len(await server.all()) == 1


# -- approvedArgs: the complete arguments to run with ------------------------------------------


@pytest.mark.parametrize(
    "approved_args",
    [
        pytest.param({"version": "1.4.3"}, id="leaves-out-a-required-argument"),
        pytest.param({"version": "1.4.3", "region": "eu", "force": True}, id="adds-an-unknown-one"),
    ],
)
async def test_approved_args_the_function_cannot_take_are_refused_before_they_are_stored(
    server: Server, client: ApprovalClient, approved_args: dict[str, Any]
) -> None:
    ran: list[tuple[str, str]] = []

    @requires_approval(client)
    async def deploy(version: str, region: str) -> str:
        ran.append((version, region))
        return f"deployed {version} to {region}"

    task = asyncio.create_task(deploy("1.4.2", "eu"))
    record = await server.pending("deploy")
    status, answer = await server.try_decide(record["id"], approved_args)

    assert (status, answer["error"]) == (422, "invalid"), answer
    assert answer["path"].startswith("approvedArgs")
    assert (await server.pending("deploy"))["decision"] is None  # nothing was stored
    assert record["argsSchema"] == {
        "type": "object",
        "properties": {"version": {}, "region": {}},
        "required": ["version", "region"],
        "additionalProperties": False,
    }

    await server.decide(record["id"], approved_args={"version": "1.4.3", "region": "us"})
    assert await asyncio.wait_for(task, 2) == "deployed 1.4.3 to us"
    assert ran == [("1.4.3", "us")]


async def test_approved_args_replace_the_call_whole(server: Server, client: ApprovalClient) -> None:
    """An argument the approval leaves out takes its default, not the value the call gave."""
    ran: list[tuple[str, str]] = []

    @requires_approval(client)
    async def deploy(version: str, region: str = "us") -> None:
        ran.append((version, region))

    task = asyncio.create_task(deploy("1.4.2", "eu"))
    record = await server.pending("deploy")
    assert record["args"] == {"version": "1.4.2", "region": "eu"}
    await server.decide(record["id"], approved_args={"version": "1.4.3"})
    await asyncio.wait_for(task, 2)

    assert ran == [("1.4.3", "us")]


async def test_an_unedited_argument_is_the_object_the_call_gave(
    server: Server, client: ApprovalClient
) -> None:
    given = ("a.log", "b.log")
    seen: list[Any] = []

    @requires_approval(client)
    async def archive(paths: tuple[str, ...], label: str) -> None:
        seen.extend([paths, label])

    task = asyncio.create_task(archive(given, "old"))
    record = await server.pending("archive")
    await server.decide(record["id"], approved_args={"paths": ["a.log", "b.log"], "label": "new"})
    await asyncio.wait_for(task, 2)

    assert seen[0] is given and seen[1] == "new"


async def test_kwargs_take_any_name_but_the_passed_through_ones(
    server: Server, client: ApprovalClient
) -> None:
    ran: list[dict[str, Any]] = []

    class Deployer:
        @requires_approval(client)
        async def deploy(self, version: str, **options: Any) -> None:
            ran.append({"version": version, **options})

    task = asyncio.create_task(Deployer().deploy("1.4.2", canary=True))
    record = await server.pending("deploy")
    status, _ = await server.try_decide(record["id"], {"version": "1.4.2", "self": None})
    assert status == 422
    await server.decide(record["id"], approved_args={"version": "1.4.3", "region": "eu"})
    await asyncio.wait_for(task, 2)

    assert "additionalProperties" not in record["argsSchema"]
    assert ran == [{"version": "1.4.3", "region": "eu"}]


async def test_a_callers_own_schema_is_sent_and_the_gate_still_refuses_what_cannot_run(
    server: Server, client: ApprovalClient
) -> None:
    ran: list[str] = []
    loose = {"type": "object", "properties": {"version": {"type": "string"}}}

    @requires_approval(client, args_schema=loose)
    async def deploy(version: str, region: str) -> None:
        ran.append(version)

    task = asyncio.create_task(deploy("1.4.2", "eu"))
    record = await server.pending("deploy")
    await server.decide(record["id"], approved_args={"version": "1.4.3"})  # stored: it fits

    with pytest.raises(ApprovalError) as caught:
        await asyncio.wait_for(task, 2)
    assert record["argsSchema"] == loose
    assert caught.value.code == "invalid_edit"
    assert "leave out region" in caught.value.message
    assert not ran


ARGS = {"version": "1.4.2", "region": "eu"}
TYPED = {
    "type": "object",
    "properties": {"version": {"type": "string"}, "region": {"type": "string"}},
    "required": ["version", "region"],
}
SHAPE = {
    "type": "object",
    "properties": {"version": {}, "region": {}},
    "required": ["version", "region"],
    "additionalProperties": False,
}
#: a tool schema past the bot's 64 KiB: an enum of 9,000 regions
HUGE = {
    **TYPED,
    "properties": {
        **TYPED["properties"],
        "region": {"enum": [f"r{i:05}" for i in range(9000)] + ["eu"]},
    },
}


@pytest.mark.parametrize(
    ("schema", "args", "sent"),
    [
        pytest.param(TYPED, ARGS, {**TYPED, "additionalProperties": False}, id="closed"),
        pytest.param({**TYPED, "additionalProperties": True}, ARGS, None, id="left-open"),
        pytest.param(TYPED, {**ARGS, "version": 142}, SHAPE, id="types-broken-shape-kept"),
        pytest.param(TYPED, {"version": "1.4.2"}, None, id="required-missing"),
        pytest.param(HUGE, ARGS, SHAPE, id="over-64-KiB"),
        pytest.param(
            {**TYPED, "properties": {"version": {"$ref": "https://example.com/v.json"}}},
            ARGS,
            None,
            id="remote-ref",
        ),
        pytest.param(
            {**TYPED, "$schema": "http://json-schema.org/draft-07/schema#"},
            ARGS,
            {**TYPED, "additionalProperties": False},
            id="draft-07",
        ),
        pytest.param({"type": "array"}, ARGS, None, id="not-an-object"),
        pytest.param(None, ARGS, None, id="none"),
    ],
)
def test_a_tool_schema_is_sent_only_as_the_bot_takes_it_and_the_call_meets_it(
    schema: Any, args: dict[str, Any], sent: Any
) -> None:
    found = tool_schema(schema, args)

    if sent is None and schema is not None and "additionalProperties" in schema:
        assert found == schema  # open on purpose: left so
    else:
        assert found == sent
    if found is not None:  # what the bot checks at submission, within its limits
        compiled = compile_schema(found)
        compiled.compile()
        assert compiled.errors_now(args) == []


def test_pinned_arguments_fit_the_bot_or_are_not_sent() -> None:
    pinned = pinned_schema(ARGS)
    assert pinned is not None
    compiled = compile_schema(pinned)
    assert compiled.errors_now(ARGS) == []
    assert compiled.errors_now({**ARGS, "region": "us"}) != []
    assert pinned_schema({"blob": "x" * 70_000}) is None  # over 64 KiB


async def test_a_fallen_back_schema_is_one_the_bot_takes(
    server: Server, client: ApprovalClient
) -> None:
    schema = tool_schema(HUGE, ARGS)
    approval = await client.submit("deploy", ARGS, args_schema=schema)
    status, answer = await server.try_decide(approval.id, {"version": "1.4.3"})

    assert approval.args_schema == SHAPE
    assert status == 422 and "region" in answer["message"]


async def test_arguments_that_are_not_json_fail_before_submitting(
    server: Server, client: ApprovalClient
) -> None:
    @requires_approval(client)
    async def upload(blob: object) -> None:
        raise AssertionError("must not run")

    with pytest.raises(TypeError, match=r"'blob' \(object\) is not JSON-serializable"):
        await upload(object())
    assert await server.all() == []


async def test_mistakes_are_caught_at_decoration_time(client: ApprovalClient) -> None:
    def plain(version: str) -> None: ...

    async def gated(version: str) -> None: ...

    with pytest.raises(TypeError, match="SyncApprovalClient"):
        requires_approval(client)(plain)
    with pytest.raises(ValueError, match=r"\{env\}"):
        requires_approval(client, prompt="Deploy {version} to {env}?")(gated)
    with pytest.raises(TypeError, match="ApprovalClient"):
        requires_approval("http://127.0.0.1:3000")(gated)  # type: ignore[call-overload]
