"""`make bench`: the bot as its own process, agents as concurrent HTTP clients.

One module per measure (`submissions`, `wake`, `idle`, `ack`, `cards`, `peers`), each driving a
fresh `Rig` — `approval-bot serve` on a fresh database with the local Slack emulator as its Web
API. `suite` runs them, `report` prints the table against the targets, `plot` draws the PNGs.
"""
