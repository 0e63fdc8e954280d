"""What `approval-bot dev` keeps beside its database, so a restart changes nothing an agent or
a person holds: the agent token (`approvals.dev-token`, mode 0600), so a running `demo` or SDK
script goes on waiting, and the local workspace (`approvals.workspace.json`), so the cards of
approvals still pending, their threads and the links to them are where they were.

The workspace is saved a moment after each change to its messages or channels, and once more
when the app stops. A file that cannot be read never stops the bot: it starts fresh, with a
one-line warning, and the next save replaces the file.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
import re
import secrets
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

from aiohttp import web
from pydantic import ValidationError

from bot.devslack import Workspace
from bot.devslack.saved import dump, restore
from bot.store import is_postgres_url

__all__ = ["DevFiles", "WorkspaceKeeper", "kept_token", "load_workspace"]

log = logging.getLogger(__name__)

#: what a kept token may look like (`secrets.token_urlsafe`, or one written by hand)
_TOKEN = re.compile(r"[A-Za-z0-9._~+/=-]{16,512}")
#: feed changes that alter what is kept (messages, reactions, memberships)
_KEPT_CHANGES = ("message.", "reaction.", "channel.")


@dataclass(frozen=True)
class DevFiles:
    """Where a dev run keeps its state: beside the SQLite file, named after it."""

    token: Path
    workspace: Path

    @classmethod
    def beside(cls, db: str) -> DevFiles:
        """`./approvals.db` keeps `./approvals.dev-token` and `./approvals.workspace.json`; a
        PostgreSQL database has no directory, so its dev runs keep them in the working one."""
        base = Path("approvals.db") if is_postgres_url(db) else Path(db)
        return cls(base.with_suffix(".dev-token"), base.with_suffix(".workspace.json"))


def _write_private(path: Path, text: str) -> None:
    """Replace `path` with `text` at once (no half-written file after a crash), mode 0600."""
    fd, temporary = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")  # mode 0600
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as out:
            out.write(text)
        os.replace(temporary, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(temporary)
        raise


def _first_line(exc: Exception) -> str:
    if isinstance(exc, ValidationError):
        first = exc.errors()[0]
        where = ".".join(str(part) for part in first["loc"]) or "the document"
        return f"{where}: {first['msg']}"
    return (str(exc).splitlines() or [type(exc).__name__])[0]


def kept_token(path: Path) -> str:
    """The agent token an earlier run kept at `path`, else a new one, kept there (0600)."""
    try:
        token = path.read_text(encoding="utf-8").strip()
    except FileNotFoundError:
        token = ""
    except (OSError, UnicodeDecodeError) as exc:
        log.warning("cannot read the agent token in %s (%s); using a new one", path, exc)
        token = ""
    else:
        if not _TOKEN.fullmatch(token):
            log.warning("%s holds no agent token; using a new one", path)
            token = ""
    if token:
        with contextlib.suppress(OSError):
            path.chmod(0o600)  # it was written so; a copy or an editor may have loosened it
        return token
    token = secrets.token_urlsafe(24)
    try:
        _write_private(path, token + "\n")
    except OSError as exc:
        log.warning("cannot keep the agent token in %s (%s); it changes at restart", path, exc)
    return token


def load_workspace(path: Path) -> Workspace:
    """The workspace an earlier run kept at `path`; a fresh one when there is none, or (with a
    warning) when the file cannot be read back."""
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        return Workspace()
    except (OSError, UnicodeDecodeError) as exc:
        log.warning("cannot read the workspace in %s (%s); starting a fresh one", path, exc)
        return Workspace()
    try:
        return restore(json.loads(text))
    except (ValueError, RecursionError) as exc:  # not JSON, or not a saved workspace
        reason = _first_line(exc)
        log.warning("the workspace in %s is unreadable (%s); starting a fresh one", path, reason)
        return Workspace()


@dataclass
class WorkspaceKeeper:
    """Keeps `workspace` in `path` for the app's life: `install` it on the dev app."""

    workspace: Workspace
    path: Path
    #: seconds to gather changes into one save
    every: float = 0.5
    _task: asyncio.Task[None] | None = field(default=None, init=False)
    _failing: bool = field(default=False, init=False)

    def install(self, app: web.Application) -> None:
        """Save while the app runs, and once more after it stopped (the bot's last card
        rewrites included: `on_cleanup` runs after the bot's own cleanup)."""
        app.on_startup.append(self._start)
        app.on_cleanup.append(self._stop)

    async def _start(self, app: web.Application) -> None:
        self._task = asyncio.create_task(self.run(), name="keep-workspace")

    async def _stop(self, app: web.Application) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        self.save()

    async def run(self) -> None:
        """Save a moment after each change to what is kept."""
        feed = self.workspace.feed
        seen = feed.last_seq
        while True:
            changes = await feed.changes_since(seen, timeout=3600)
            if not changes:
                continue
            seen = changes[-1].seq
            if any(change.kind.startswith(_KEPT_CHANGES) for change in changes):
                await asyncio.sleep(self.every)  # what comes meanwhile goes in the same save
                seen = feed.last_seq
                self.save()

    def save(self) -> None:
        """Write the workspace now; a failure is logged (once until a save works again)."""
        try:
            _write_private(self.path, json.dumps(dump(self.workspace), separators=(",", ":")))
        except OSError as exc:
            if not self._failing:
                log.warning("cannot keep the workspace in %s: %s", self.path, exc)
            self._failing = True
        else:
            self._failing = False
