"""Coalescing of Ray calls inside an async actor: the calls made in one event-loop turn go as one.

A host serving a thousand SOPs makes a thousand handler calls and commits at nearly the same
moment; sending each as its own Ray task costs more than the work. A `Coalescer` collects the
items that callers hand it until the loop is idle, then sends them as one list.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any, Generic, TypeVar

__all__ = ["Coalescer"]

T = TypeVar("T")
R = TypeVar("R")


class Coalescer(Generic[T, R]):
    """Batches `call(item)`s made in one event-loop turn into one `send_batch(items)`.

    Args:
        send_batch: sends the items; returns one result per item, or None when the items have
            no results. Its exception is raised to every caller of the batch.

    Runs on the event loop of an async actor; not thread-safe.
    """

    def __init__(self, send_batch: Callable[[list[T]], Awaitable[list[R] | None]]) -> None:
        self._send_batch = send_batch
        self._pending: list[tuple[T, asyncio.Future[R | None]]] = []
        self._sending: set[asyncio.Task[None]] = set()

    async def call(self, item: T) -> R | None:
        """Queue `item` for the next batch and wait for its result."""
        loop = asyncio.get_running_loop()
        future: asyncio.Future[R | None] = loop.create_future()
        self._pending.append((item, future))
        if len(self._pending) == 1:
            # Runs after every task already ready in this turn has had its chance to add items.
            loop.call_soon(self._flush)
        return await future

    def _flush(self) -> None:
        batch, self._pending = self._pending, []
        if batch:
            task = asyncio.get_running_loop().create_task(self._send(batch))
            self._sending.add(task)
            task.add_done_callback(self._sending.discard)

    async def _send(self, batch: list[tuple[T, asyncio.Future[R | None]]]) -> None:
        try:
            results: list[Any] | None = await self._send_batch([item for item, _ in batch])
        except BaseException as error:
            for _, future in batch:
                if not future.done():
                    future.set_exception(error)
            return
        for index, (_, future) in enumerate(batch):
            if not future.done():
                future.set_result(None if results is None else results[index])
