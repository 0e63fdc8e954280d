from __future__ import annotations

import csv
import io
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from bot.service import ApprovalService
from tests.test_service import request


def run_cli(*args: str, db_path: Path | str, **env: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "bot", *args],
        env={"APPROVAL_DB": str(db_path), "PATH": os.environ.get("PATH", ""), **env},
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )


async def test_list_shows_approvals_with_status_filter(
    service: ApprovalService, store_url: str
) -> None:
    pending, _ = await service.submit(request(toolName="send_email"))
    decided, _ = await service.submit(request(toolName="deploy_service"))
    await service.decide(decided.id, approved=True, decided_by="U0ALICE", decided_by_name="alice")

    table = run_cli("list", db_path=store_url)
    only_pending = run_cli("list", "--status", "pending", "--format", "json", db_path=store_url)

    assert table.returncode == 0, table.stderr
    assert pending.id in table.stdout and decided.id in table.stdout
    assert "alice" in table.stdout
    assert [a["id"] for a in json.loads(only_pending.stdout)] == [pending.id]


async def test_decide_approves_once_then_reports_the_conflict(
    service: ApprovalService, store_url: str
) -> None:
    approval, _ = await service.submit(request())

    first = run_cli(
        "decide", approval.id, "--approve", "--comment", "ok", "--as", "bob", db_path=store_url
    )
    second = run_cli("decide", approval.id, "--reject", db_path=store_url)

    assert first.returncode == 0, first.stderr
    decided = await service.get(approval.id)
    assert decided.decision is not None
    assert (decided.decision.decided_by, decided.decision.comment) == ("bob", "ok")
    assert second.returncode == 1 and "already approved by bob" in second.stderr


async def test_decide_unknown_id_fails_clearly(store_url: str, service: ApprovalService) -> None:
    result = run_cli("decide", "apr_nope", "--approve", db_path=store_url)
    assert result.returncode == 1 and "not_found" in result.stderr


@pytest.mark.parametrize("fmt", ["json", "csv"])
async def test_audit_exports_every_state_change(
    service: ApprovalService, store_url: str, fmt: str
) -> None:
    approval, _ = await service.submit(request())
    await service.decide(
        approval.id, approved=True, decided_by="U0ALICE", approved_args={"version": "2.0.0"}
    )

    result = run_cli("audit", "--since", "1h", "--format", fmt, db_path=store_url)

    assert result.returncode == 0, result.stderr
    rows = (
        json.loads(result.stdout)
        if fmt == "json"
        else list(csv.DictReader(io.StringIO(result.stdout)))
    )
    assert [row["kind"] for row in rows] == ["submitted", "approved"]
    assert rows[1]["actor"] == "U0ALICE"
    after = rows[1]["argsAfter"]
    assert (after if fmt == "json" else json.loads(after)) == {"version": "2.0.0"}


@pytest.mark.parametrize(
    ("env", "missing"),
    [
        pytest.param({}, "SLACK_BOT_TOKEN", id="no-slack-token"),
        pytest.param({"SLACK_BOT_TOKEN": "xoxb-1"}, "SLACK_SIGNING_SECRET", id="no-secret"),
        pytest.param(
            {"SLACK_BOT_TOKEN": "xoxb-1", "SLACK_SIGNING_SECRET": "s"},
            "APPROVAL_API_TOKEN",
            id="no-api-token",
        ),
        pytest.param(
            {"SLACK_BOT_TOKEN": "xoxb-1", "SLACK_SIGNING_SECRET": "s", "APPROVAL_API_TOKEN": "t"},
            "APPROVAL_CHANNEL",
            id="no-channel",
        ),
    ],
)
def test_serve_explains_what_to_set(db_path: Path, env: dict[str, str], missing: str) -> None:
    result = run_cli("serve", db_path=db_path, **env)
    assert result.returncode == 2
    assert missing in result.stderr


def test_socket_mode_needs_an_app_token(db_path: Path) -> None:
    env = {"SLACK_BOT_TOKEN": "xoxb-1", "APPROVAL_API_TOKEN": "t"}
    result = run_cli("serve", "--socket-mode", db_path=db_path, **env)
    assert result.returncode == 2 and "SLACK_APP_TOKEN" in result.stderr


def test_serve_fails_fast_when_slack_refuses_the_token(db_path: Path, unused_tcp_port: int) -> None:
    env = {
        "SLACK_BOT_TOKEN": "xoxb-1",
        "SLACK_SIGNING_SECRET": "s",
        "APPROVAL_API_TOKEN": "t",
        "APPROVAL_CHANNEL": "C0OPS",
        "SLACK_API_URL": f"http://127.0.0.1:{unused_tcp_port}/api/",
    }
    result = run_cli("serve", "--port", "0", db_path=db_path, **env)
    assert result.returncode == 1
    assert "Slack unreachable" in result.stderr


def test_bad_span_is_refused(db_path: Path) -> None:
    result = run_cli("audit", "--since", "soon", db_path=db_path)
    assert result.returncode == 2 and "30m" in result.stderr


def test_a_command_outside_the_bots_directory_says_there_is_no_database(tmp_path: Path) -> None:
    """`approval-bot list` run in the wrong directory created an empty approvals.db there and
    listed nothing; it now says there is no database and creates none."""
    missing = tmp_path / "approvals.db"
    for command in (["list"], ["audit"], ["decide", "apr_x", "--approve"]):
        result = run_cli(*command, db_path=missing)
        assert result.returncode == 2, result
        assert f"no database at {missing}" in result.stderr
        assert "Traceback" not in result.stderr
    assert not missing.exists()


async def test_audit_piped_into_head_ends_quietly(service: ApprovalService, store_url: str) -> None:
    for n in range(200):  # well over a pipe's 64 KiB of output
        await service.submit(request(toolName="send_email", args={"n": n}))
    piped = subprocess.run(
        f"{sys.executable} -m bot audit | head -n 3",
        shell=True,
        env={"APPROVAL_DB": store_url, "PATH": os.environ.get("PATH", "")},
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )
    assert piped.stdout.count("\n") == 3
    assert piped.stderr == ""


def test_the_try_it_command_runs_as_printed(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The banner's `try it` line names a command a shell can run, also when the
    environment's bin directory is not on PATH (`make run` does not activate it)."""
    from bot.dev.run import shell_command

    bare_path = ":".join(
        p for p in os.environ.get("PATH", "").split(":") if p != str(Path(sys.executable).parent)
    )
    monkeypatch.setenv("PATH", bare_path)
    ran = subprocess.run(
        f"{shell_command()} demo --help",
        shell=True,
        cwd=tmp_path,
        env={"PATH": bare_path},
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )
    assert ran.returncode == 0, ran.stderr
    assert "demo" in ran.stdout
