"""`make bench`: the bot as its own process, agents as concurrent HTTP clients."""
