"""GoCua wiring: configuration, command line, start-up and channel adapters."""
