"""Tasks an async actor runs in the background: kept referenced until they end, failures logged."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Coroutine
from typing import Any, TypeVar

__all__ = ["Background"]

T = TypeVar("T")

logger = logging.getLogger(__name__)


class Background:
    """Runs coroutines as tasks on the running loop, for one actor.

    Args:
        owner: who runs them (e.g. "host=<sopy-host-0>"), for the log line of a task that failed.

    asyncio keeps only weak references to tasks: one nobody holds may vanish mid-run.
    """

    def __init__(self, owner: str) -> None:
        self._owner = owner
        self._tasks: set[asyncio.Task[Any]] = set()

    def spawn(self, coroutine: Coroutine[Any, Any, T]) -> asyncio.Task[T]:
        """Run `coroutine` as a task (held here until done; its exception, if any, is logged)."""
        task = asyncio.get_running_loop().create_task(coroutine)
        self._tasks.add(task)
        task.add_done_callback(self._done)
        return task

    def _done(self, task: asyncio.Task[Any]) -> None:
        self._tasks.discard(task)
        if not task.cancelled() and task.exception() is not None:
            logger.error("%s | background task failed", self._owner, exc_info=task.exception())
