"""Periodic: a coroutine the app's lifespan runs in its event loop from start() to stop().

The heartbeat flusher and the rollout checker are each one; their `run()` loops until
cancelled.
"""

from __future__ import annotations

import asyncio
import contextlib


class Periodic:
    """Runs `run()` as a task of the running event loop between start() and stop()."""

    def __init__(self) -> None:
        self._task: asyncio.Task[None] | None = None

    @property
    def running(self) -> bool:
        return self._task is not None and not self._task.done()

    async def run(self) -> None:
        raise NotImplementedError

    def start(self) -> None:
        """Start in the running event loop (the app's lifespan calls this)."""
        self._task = asyncio.get_running_loop().create_task(self.run())

    async def stop(self) -> None:
        """Cancel the task and wait until it ended."""
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None
