"""The Slack edge, and nothing else speaks Slack: the Bolt app and its listeners, cards out
within Slack's rate tiers, the lookups they need, request signatures, and Block Kit rendering."""
