"""`approval-bot dev`: the bot, an emulated Slack workspace and a page to use it, on one port.

examples    the three example tool calls (the agent panel and `approval-bot demo`)
agents      pretend agents that submit through the SDK and wait for their decision
snapshot    the workspace as the page draws it, for one member
workspace   the `DevWorkspace` extension: Web API at /slack/api/, the page, /dev/ endpoints
kept        the agent token and the workspace, kept beside the database across restarts
run         settings, the app, and the two commands
"""

from __future__ import annotations

from bot.dev.agents import AgentRun, AgentRuns, RunState
from bot.dev.examples import EXAMPLES, Example, example
from bot.dev.run import DEV, banner, create_dev_app, demo, dev_settings, run_demo, run_dev
from bot.dev.snapshot import snapshot
from bot.dev.workspace import SLACK_API_PREFIX, DevWorkspace

__all__ = [
    "DEV",
    "EXAMPLES",
    "SLACK_API_PREFIX",
    "AgentRun",
    "AgentRuns",
    "DevWorkspace",
    "Example",
    "RunState",
    "banner",
    "create_dev_app",
    "demo",
    "dev_settings",
    "example",
    "run_demo",
    "run_dev",
    "snapshot",
]
