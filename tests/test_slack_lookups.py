"""Display names and group members, looked up in the emulated Slack and cached: a burst of
clicks costs Slack one call, and so does a burst while Slack is failing."""

from __future__ import annotations

from typing import Any

from slack_sdk.web.async_client import AsyncWebClient

from bot.slack.lookups import SlackGroups, TtlCache, UserNames
from tests.conftest import BOT_TOKEN


def client_of(workspace: Any) -> AsyncWebClient:
    return AsyncWebClient(token=BOT_TOKEN, base_url=workspace.base_url)


async def test_a_name_is_asked_of_slack_once_for_many_clicks(workspace: Any) -> None:
    names = UserNames(client_of(workspace))
    assert [await names.name("U0ALICE") for _ in range(5)] == ["alice"] * 5
    assert len(workspace.calls_to("users.info")) == 1


async def test_a_failing_lookup_is_not_repeated_for_every_click(workspace: Any) -> None:
    names = UserNames(client_of(workspace))
    workspace.fail_next("users.info", status=503, error="service_unavailable", times=10)
    assert [await names.name("U0ALICE") for _ in range(5)] == [None] * 5
    # slack_sdk's own retries aside, the five clicks asked once: the failure is remembered
    assert len(workspace.calls_to("users.info")) == 1


async def test_a_failed_refresh_keeps_the_last_name_and_retries_later(workspace: Any) -> None:
    names = UserNames(client_of(workspace), cache=TtlCache(ttl=0.0, retry_after=0.0))
    assert await names.name("U0ALICE") == "alice"
    workspace.fail_next("users.info", error="ratelimited", status=429, retry_after=1)
    assert await names.name("U0ALICE") == "alice"  # stale, not None
    assert await names.name("U0ALICE") == "alice"  # asked again: the failure has expired
    assert [c.ok for c in workspace.calls_to("users.info")] == [True, False, True]


async def test_slack_out_of_reach_costs_one_try_and_no_error(workspace: Any) -> None:
    gone = AsyncWebClient(token=BOT_TOKEN, base_url="http://127.0.0.1:9/api/", timeout=2)
    groups = SlackGroups(gone)
    assert await groups.members("S0SRE") == set()
    cached = groups.cache._items["S0SRE"]  # remembered, so the next click does not wait again
    assert cached[1] == frozenset()
