"""The blocking client: the async client on a private event loop, for code without one."""

from __future__ import annotations

import asyncio
import builtins
import concurrent.futures
import threading
from collections.abc import Coroutine, Iterator, Mapping
from typing import Any, Self, TypeVar, Unpack

from bot.models import Approval, Decision, Status
from bot.sdk.client import ApprovalClient
from bot.sdk.wire import SubmitFields

__all__ = ["SyncApprovalClient"]

T = TypeVar("T")


class SyncApprovalClient:
    """Blocking client: an `ApprovalClient` on a private event loop in a daemon thread.

    Safe from plain scripts, from many threads at once, and from worker threads of a program
    whose own event loop runs elsewhere.
    """

    def __init__(
        self, url: str | None = None, token: str | None = None, *, timeout: float | None = None
    ) -> None:
        self._client = ApprovalClient(url, token, timeout=timeout)
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(
            target=self._loop.run_forever, name="approval-client", daemon=True
        )
        self._thread.start()
        self._lock = threading.Lock()
        self._closed = False

    @property
    def url(self) -> str:
        """The bot's base URL."""
        return self._client.url

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def close(self) -> None:
        """Cancel what is still running, close the session and stop the private loop."""
        self._check_thread()
        with self._lock:
            if self._closed:
                return
            self._closed = True
        try:
            asyncio.run_coroutine_threadsafe(self._shutdown(), self._loop).result()
        finally:
            self._loop.call_soon_threadsafe(self._loop.stop)
            self._thread.join()
            self._loop.close()

    def submit(
        self, tool_name: str, args: Mapping[str, Any], **fields: Unpack[SubmitFields]
    ) -> Approval:
        """Ask for a decision without waiting; the same `tool_call_id` returns the same record."""
        return self._call(self._client.submit(tool_name, args, **fields))

    def get(self, approval_id: str) -> Approval:
        """The approval record as it stands."""
        return self._call(self._client.get(approval_id))

    def wait(self, approval: str | Approval, timeout: float | None = None) -> Approval:
        """The record once decided; `ApprovalTimeout` when `timeout` (or the client's) passes.

        Given the record `submit` answered rather than its id, every answer must be a record of
        that same call (`ApprovalMismatch` otherwise), as in `request`.
        """
        return self._call(self._client.wait(approval, timeout))

    def cancel(
        self, approval_id: str, reason: str | None = None, *, cancelled_by: str | None = None
    ) -> Approval:
        """Withdraw a pending request; the card says so. 409 when it was already decided."""
        return self._call(self._client.cancel(approval_id, reason, cancelled_by=cancelled_by))

    def list(
        self, status: Status | str | None = None, tool_name: str | None = None, limit: int = 100
    ) -> builtins.list[Approval]:
        """The newest `limit` approvals (at most 500), optionally of one status or tool."""
        return self._call(self._client.list(status, tool_name, limit))

    def pages(
        self,
        status: Status | str | None = None,
        tool_name: str | None = None,
        page_size: int = 100,
    ) -> Iterator[builtins.list[Approval]]:
        """Every matching approval, newest first, one page at a time."""
        cursor: str | None = None
        while True:
            items, cursor = self._call(self._client._page(status, tool_name, page_size, cursor))
            yield items
            if cursor is None:
                return

    def request(
        self,
        tool_name: str,
        args: Mapping[str, Any],
        *,
        timeout: float | None = None,
        **fields: Unpack[SubmitFields],
    ) -> Decision:
        """Submit and wait: the decision once made. A rejection is returned, not raised."""
        return self._call(self._client.request(tool_name, args, timeout=timeout, **fields))

    # -- internals ----------------------------------------------------------------------------

    def _start(self, coro: Coroutine[Any, Any, T]) -> concurrent.futures.Future[T]:
        if self._closed:
            coro.close()
            raise RuntimeError("this SyncApprovalClient is closed")
        return asyncio.run_coroutine_threadsafe(coro, self._loop)

    def _call(self, coro: Coroutine[Any, Any, T]) -> T:
        try:
            self._check_thread()
        except RuntimeError:
            coro.close()
            raise
        future = self._start(coro)
        try:
            return future.result()
        finally:
            future.cancel()  # a no-op once done; stops the work when the caller was interrupted

    def _check_thread(self) -> None:
        if threading.current_thread() is self._thread:
            raise RuntimeError("a SyncApprovalClient cannot be called from its own event loop")

    async def _shutdown(self) -> None:
        current = asyncio.current_task()
        others = [task for task in asyncio.all_tasks() if task is not current]
        for task in others:
            task.cancel()
        await asyncio.gather(*others, return_exceptions=True)
        await self._client.close()
