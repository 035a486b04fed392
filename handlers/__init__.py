"""The channel-agnostic core: one Incoming in, a list of Reply out, one transaction per update."""
