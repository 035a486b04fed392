"""A task a serving process keeps running beside its channel (the housekeeper, the scheduler):
started once, cancelled on stop. Subclasses give `name` and the loop `_run`."""

from __future__ import annotations

import asyncio
import contextlib
from typing import Self


class BackgroundTask:
    name = "gocua.background"

    def __init__(self) -> None:
        self._task: asyncio.Task[None] | None = None

    def start(self) -> Self:
        if self._task is None or self._task.done():
            self._task = asyncio.create_task(self._run(), name=self.name)
        return self

    async def stop(self) -> None:
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task

    async def _run(self) -> None:
        raise NotImplementedError
