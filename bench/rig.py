"""One bot under test: `approval-bot serve` in its own process on a fresh database, the local
Slack emulator (in this process) as its Web API, and an HTTP session for the agents.

Slack takes about one message a second per channel, and the bot paces its cards to match; a
measure that needs thousands of cards posted spreads them over enough channels
(`channels_for`) that no channel holds more than its burst.

The clicker is a named approver (`ROUTING`), as in a deployment that routes its tools: with
no `approvers`, the first click in each of those channels asks Slack who is in it
(`conversations.members`, Tier 4), and a thousand channels' worth of first clicks is minutes
of Slack's allowance: measures of the decision path would time Slack's rate limit instead.
"""

from __future__ import annotations

import asyncio
import os
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path

import aiohttp

from bot.devslack import Workspace, start_slack_api
from bot.edge import run_on_serve_loop

__all__ = [
    "ADMIN_TOKEN",
    "AGENT_TOKEN",
    "SIGNING_SECRET",
    "SLACK_TOKEN",
    "START_SECONDS",
    "Rig",
    "bot_environment",
    "channels_for",
    "free_port",
    "open_rig",
    "run",
]

AGENT_TOKEN = "bench-agent-token"
ADMIN_TOKEN = "bench-admin-token"
SIGNING_SECRET = "bench-signing-secret"
SLACK_TOKEN = "xoxb-bench"
START_SECONDS = 30.0
#: the routing file of every rig: whoever clicks (`U0ALICE`) may decide any tool
ROUTING = '[[rules]]\ntools = ["*"]\napprovers = ["U0ALICE"]\n'
#: cards per channel that Slack (and the bot's pacing) lets through at once
CARDS_PER_CHANNEL = 3


#: `asyncio.run` on the event loop the bot serves on: the agents' side and the emulated Slack
#: cost the bench less of the cores it shares with the bot
run = run_on_serve_loop


def channels_for(cards: int) -> int:
    """Enough channels that `cards` cards, spread evenly, all go out in one burst."""
    return max(1, -(-cards // CARDS_PER_CHANNEL))


def free_port() -> int:
    """A port on 127.0.0.1 nobody listens on right now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def bot_environment(workdir: Path, slack_api_url: str) -> dict[str, str]:
    """The bot's settings, with its routing file written into `workdir`; ours replace any
    APPROVAL_* or SLACK_* the caller has set."""
    (workdir / "approvals.toml").write_text(ROUTING)
    inherited = {
        key: value
        for key, value in os.environ.items()
        if not key.startswith(("APPROVAL_", "SLACK_"))
    }
    return {
        **inherited,
        "APPROVAL_DB": str(workdir / "bench.db"),
        "APPROVAL_CONFIG": str(workdir / "approvals.toml"),
        "APPROVAL_API_TOKEN": AGENT_TOKEN,
        "APPROVAL_ADMIN_TOKEN": ADMIN_TOKEN,
        "APPROVAL_CHANNEL": "C0OPS",
        "SLACK_BOT_TOKEN": SLACK_TOKEN,
        "SLACK_SIGNING_SECRET": SIGNING_SECRET,
        "SLACK_API_URL": slack_api_url,
    }


@dataclass
class Rig:
    """A running bot, the emulated workspace it posts to, and the agents' HTTP session."""

    process: subprocess.Popen[bytes]
    url: str
    workspace: Workspace
    http: aiohttp.ClientSession
    log: Path
    #: the channel ids cards may be spread over
    channels: tuple[str, ...]
    #: how the bot was started, to start it again on the same database (`restart`)
    command: tuple[str, ...] = ()
    env: dict[str, str] | None = None

    @property
    def pid(self) -> int:
        """The bot's process id: CPU and memory are read for this process only."""
        return self.process.pid

    @property
    def events_url(self) -> str:
        """Where Slack sends interactions."""
        return self.url + "/slack/events"

    async def wait_ready(self) -> None:
        """Until `/healthz` answers 200, or raise with the end of the bot's log."""
        deadline = time.monotonic() + START_SECONDS
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                break
            try:
                async with self.http.get(self.url + "/healthz") as response:
                    if response.status == 200:
                        return
            except aiohttp.ClientError:
                pass
            await asyncio.sleep(0.05)
        tail = self.log.read_text(errors="replace")[-2000:]
        raise RuntimeError(f"the bot did not start at {self.url}:\n{tail}")

    def kill(self) -> None:
        """`kill -9`: no shutdown of any kind."""
        self.process.kill()
        self.process.wait(10)

    async def restart(self) -> None:
        """Start the bot again, same port and database, once it has died; until it is ready."""
        with self.log.open("ab") as log_file:
            self.process = subprocess.Popen(
                self.command, env=self.env, cwd=self.log.parent, stdout=log_file, stderr=log_file
            )
        await self.wait_ready()

    def stop(self) -> None:
        """SIGTERM, then SIGKILL if it lingers."""
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(5)


@asynccontextmanager
async def open_rig(
    *,
    channels: int = 4,
    rate_limit_per_channel: float | None = None,
    rate_limit_burst: int = 3,
) -> AsyncIterator[Rig]:
    """Start a fresh emulator with `channels` channels, and a bot; stop both on the way out.

    With `rate_limit_per_channel`, the emulator answers `chat.postMessage` beyond that many
    messages a second per channel (after `rate_limit_burst`) with 429 and `Retry-After`.
    """
    workspace = Workspace()
    workspace.rate_limit_per_channel = rate_limit_per_channel
    workspace.rate_limit_burst = rate_limit_burst
    seeded = [c.id for c in workspace.channels.values() if not c.is_im]
    added = [
        workspace.add_channel(f"C0BENCH{n:05d}", f"bench-{n}").id
        for n in range(max(0, channels - len(seeded)))
    ]
    channel_ids = tuple([*seeded, *added][:channels])
    slack, slack_api_url = await start_slack_api(workspace, bot_token=SLACK_TOKEN)
    timeout = aiohttp.ClientTimeout(total=None)
    try:
        with tempfile.TemporaryDirectory(prefix="approval-bench-") as tmp:
            workdir = Path(tmp)
            port = free_port()
            log = workdir / "bot.log"
            command = (
                sys.executable,
                "-m",
                "bot",
                "serve",
                "--host",
                "127.0.0.1",
                "--port",
                str(port),
            )
            env = bot_environment(workdir, slack_api_url)
            with log.open("wb") as log_file:
                process = subprocess.Popen(
                    command, env=env, cwd=workdir, stdout=log_file, stderr=subprocess.STDOUT
                )
            connector = aiohttp.TCPConnector(limit=0)
            async with aiohttp.ClientSession(connector=connector, timeout=timeout) as http:
                url = f"http://127.0.0.1:{port}"
                rig = Rig(process, url, workspace, http, log, channel_ids, command, env)
                try:
                    await rig.wait_ready()
                    yield rig
                finally:
                    rig.stop()
    finally:
        await slack.cleanup()
