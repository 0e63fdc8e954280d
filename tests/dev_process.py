"""`python -m bot dev` as a real process: started in a directory of its own, read as the page
reads it (`/dev/state`), stopped with SIGTERM as Ctrl-C or `kill` stops it, started again."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
from pathlib import Path
from typing import Any

import aiohttp

from tests.conftest import until
from tests.processes import free_port


class DevProcess:
    """`approval-bot dev` in `workdir` on a fixed port; its output goes to `<workdir>/dev.log`."""

    def __init__(self, workdir: Path, http: aiohttp.ClientSession) -> None:
        self.workdir = workdir
        self.http = http
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.log = workdir / "dev.log"
        self.env = {"PATH": os.environ.get("PATH", ""), "PYTHONDONTWRITEBYTECODE": "1"}
        self.process: subprocess.Popen[bytes] | None = None
        #: the agent token this run printed
        self.token = ""

    async def start(self, timeout: float = 20) -> None:
        """Start it and wait until it printed its agent token and answers `/healthz`."""
        printed = self.log.stat().st_size if self.log.exists() else 0
        with self.log.open("ab") as log:
            self.process = subprocess.Popen(
                [sys.executable, "-m", "bot", "dev", "--port", str(self.port)],
                env=self.env,
                cwd=self.workdir,
                stdout=log,
                stderr=subprocess.STDOUT,
            )
        self.token = await until(lambda: self._token_after(printed), timeout, interval=0.1)
        await until(self._healthy, timeout, interval=0.1)

    async def _token_after(self, offset: int) -> str | None:
        assert self.process is not None
        if self.process.poll() is not None:
            raise AssertionError(f"approval-bot dev ended: {self.output()}")
        for line in self.log.read_bytes()[offset:].decode(errors="replace").splitlines():
            if line.strip().startswith("agent token"):
                return line.split()[-1]
        return None

    async def _healthy(self) -> bool:
        try:
            async with self.http.get(self.url + "/healthz") as response:
                return response.status == 200
        except aiohttp.ClientError:
            return False

    def output(self) -> str:
        return self.log.read_text(errors="replace") if self.log.exists() else ""

    def stop(self) -> int:
        """SIGTERM, as `kill` or a closing terminal sends; its exit status."""
        assert self.process is not None
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(15)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(5)
        return self.process.returncode

    # -- the agent's side ----------------------------------------------------------------------

    def agent_headers(self, token: str | None = None) -> dict[str, str]:
        return {"Authorization": f"Bearer {token or self.token}"}

    async def submit(self, **body: Any) -> dict[str, Any]:
        async with self.http.post(
            self.url + "/v1/approvals", json=body, headers=self.agent_headers()
        ) as response:
            assert response.status == 201, await response.text()
            return dict(await response.json())

    async def record(self, approval_id: str, token: str | None = None) -> dict[str, Any]:
        url = f"{self.url}/v1/approvals/{approval_id}"
        async with self.http.get(url, headers=self.agent_headers(token)) as response:
            assert response.status == 200, await response.text()
            return dict(await response.json())

    async def posted(self, approval_id: str) -> dict[str, Any]:
        """The record once its card's `ts` is saved."""

        async def with_card() -> dict[str, Any] | None:
            record = await self.record(approval_id)
            return record if record["slack"]["ts"] else None

        return await until(with_card, timeout=15)

    # -- a terminal beside it ------------------------------------------------------------------

    async def cli(self, *args: str) -> subprocess.CompletedProcess[str]:
        """`approval-bot ARGS` run in the bot's directory as a person types it there: the same
        database by default, no Slack token, no `APPROVAL_DB`."""
        return await asyncio.to_thread(
            subprocess.run,
            [sys.executable, "-m", "bot", *args],
            env=self.env,
            cwd=self.workdir,
            capture_output=True,
            text=True,
            timeout=30,
            check=False,
        )

    # -- the page's side -----------------------------------------------------------------------

    async def state(self, user: str = "U0ALICE") -> dict[str, Any]:
        async with self.http.get(self.url + "/dev/state", params={"user": user}) as response:
            assert response.status == 200, await response.text()
            return dict(await response.json())

    async def message(self, channel: str, ts: str) -> dict[str, Any] | None:
        """A top-level message as the page shows it, with its thread's replies (`replies`)."""
        state = await self.state()
        for message in state["messages"].get(channel, []):
            if message["ts"] == ts:
                replies = state["threads"].get(channel, {}).get(ts, [])
                return {**message, "replies": replies}
        return None


async def wait_for_exit(process: DevProcess) -> int:
    """`process.stop()` without blocking the event loop."""
    return await asyncio.to_thread(process.stop)
