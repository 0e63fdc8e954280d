"""approval-bot: a Slack approval gate for AI agents' dangerous tool calls."""

__version__ = "0.1.0"
