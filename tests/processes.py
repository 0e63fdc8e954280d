"""`python -m bot serve` as a real process: a free port, its environment, start and wait until it
is healthy, kill -9 without warning, start again on the same port."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
from pathlib import Path
from typing import Any

import aiohttp

from tests.conftest import ADMIN_TOKEN, AGENT_TOKEN, BOT_TOKEN, SIGNING_SECRET, until

#: a Slack Web API nobody answers on
NO_SLACK = "http://127.0.0.1:9/api/"


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def serve_env(db: str | Path, slack_api_url: str = NO_SLACK) -> dict[str, str]:
    """The environment `approval-bot serve` is configured through, as in production."""
    return {
        "PATH": os.environ.get("PATH", ""),
        "APPROVAL_DB": str(db),
        "APPROVAL_API_TOKEN": AGENT_TOKEN,
        "APPROVAL_ADMIN_TOKEN": ADMIN_TOKEN,
        "APPROVAL_CHANNEL": "C0OPS",
        "SLACK_BOT_TOKEN": BOT_TOKEN,
        "SLACK_SIGNING_SECRET": SIGNING_SECRET,
        "SLACK_API_URL": slack_api_url,
    }


class ServeProcess:
    """`python -m bot serve` on a fixed port, killable without warning, restartable.

    It runs in `workdir` and appends its output to `<workdir>/<name>.log`.
    """

    def __init__(
        self, db: str | Path, slack_api_url: str, workdir: Path, name: str = "serve"
    ) -> None:
        self.name = name
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.env = serve_env(db, slack_api_url)
        self.workdir = workdir
        self.log = workdir / f"{name}.log"
        self.process: subprocess.Popen[bytes] | None = None

    def spawn(self) -> None:
        """Start the process; `healthy` waits until it answers."""
        with self.log.open("ab") as log:
            self.process = subprocess.Popen(
                [sys.executable, "-m", "bot", "serve", "--port", str(self.port)],
                env=self.env,
                cwd=self.workdir,
                stdout=log,
                stderr=subprocess.STDOUT,
            )

    async def healthz(self, http: aiohttp.ClientSession) -> dict[str, Any] | None:
        """The answer of `/healthz` when it is a 200, else None (not up, or not healthy)."""
        try:
            async with http.get(self.url + "/healthz") as response:
                return dict(await response.json()) if response.status == 200 else None
        except aiohttp.ClientError:
            return None

    async def healthy(self, http: aiohttp.ClientSession, timeout: float = 20) -> None:
        await until(lambda: self.healthz(http), timeout=timeout, interval=0.1)

    async def start(self, http: aiohttp.ClientSession, timeout: float = 20) -> None:
        """Start the process and wait until it is healthy."""
        self.spawn()
        await self.healthy(http, timeout)

    @property
    def running(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def kill(self) -> None:
        """kill -9: no shutdown, no goodbye."""
        assert self.process is not None
        self.process.send_signal(signal.SIGKILL)
        self.process.wait(10)

    def stop(self) -> None:
        """End the process if it still runs: SIGTERM, then SIGKILL if it does not go."""
        if not self.running:
            return
        assert self.process is not None
        self.process.terminate()
        try:
            self.process.wait(5)
        except subprocess.TimeoutExpired:
            self.kill()
