"""Stop a channel cleanly on SIGINT / SIGTERM (both channels' `run_*` commands)."""

from __future__ import annotations

import asyncio
import signal


def install_signal_handlers(stop: asyncio.Event) -> list[signal.Signals]:
    """SIGINT and SIGTERM set `stop`; returns the signals handled (remove them when done)."""
    loop = asyncio.get_running_loop()
    installed: list[signal.Signals] = []
    for sig in (signal.SIGINT, signal.SIGTERM):
        try:
            loop.add_signal_handler(sig, stop.set)
        except (NotImplementedError, RuntimeError):
            continue
        installed.append(sig)
    return installed
