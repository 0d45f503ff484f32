"""Durable timers of one SOP host: stored with the SOPs, fired once, soonest first.

A timer is a row in the Store (id, SOP, host, due time, the event in wire form) written before
`schedule` returns. The host keeps its timers in a heap, sleeps until the next is due and
delivers its event through the SOP's own queue, each timer on its own (one whose SOP is busy
with a hung handler holds up no other); the event's id is fixed when it is scheduled,
so a timer fired twice across a crash (delivered, then the host died before forgetting the
timer) is applied once. A restarted host, or a new cluster on the same store, loads the pending
timers and fires those that fell due meanwhile at once. Wall-clock time: timers survive
restarts of every process.
"""

from __future__ import annotations

import asyncio
import contextlib
import heapq
import logging
import time
from collections.abc import Awaitable, Callable
from typing import Any

from sopy_actors.runtime.background import Background
from sopy_actors.runtime.records import Timer

__all__ = ["HostTimers"]

logger = logging.getLogger(__name__)

_RETRY_SECONDS = 1.0  # a timer whose SOP could not take it is tried again this much later,
_RETRY_CAP = 60.0  # doubling up to this (an SOP may wait days for a person)


class HostTimers:
    """The timers of one host; runs on the host's event loop.

    Args:
        host: the host's name.
        store: the Store actor.
        fire: delivers a timer's event; True once the timer is done with (delivered, or its SOP
            can never take it), False to try again shortly.
    """

    def __init__(self, host: str, store: Any, fire: Callable[[Timer], Awaitable[bool]]) -> None:
        self._host = host
        self._store = store
        self._fire = fire
        self._heap: list[tuple[float, str]] = []
        self._pending: dict[str, Timer] = {}
        self._tries: dict[str, int] = {}
        self._wake = asyncio.Event()
        self._firing = Background(f"host=<{host}> timers")

    async def run(self) -> None:
        """Load the stored timers, then fire each when due, forever."""
        for timer in await self._store.timers.remote(self._host):
            self._push(timer)
        while True:
            delay = self._heap[0][0] - time.time() if self._heap else None
            if delay is None or delay > 0:
                self._wake.clear()
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._wake.wait(), timeout=delay)
                continue
            due = []
            now = time.time()
            while self._heap and self._heap[0][0] <= now:
                timer = self._pending.pop(heapq.heappop(self._heap)[1], None)
                if timer is not None:
                    due.append(timer)
            # Side by side (their events and commits go out in the host's batches), and not
            # waited for: the next timer fires when it is due, whatever became of these.
            for timer in due:
                self._firing.spawn(self._deliver(timer))

    async def schedule(self, timer: Timer) -> None:
        """Store `timer` durably (a retried call with the same id adds nothing), then arm it."""
        if await self._store.add_timer.remote(timer):
            self._push(timer)

    def arm(self, timer: Timer) -> None:
        """Arm a timer already stored (written with a commit)."""
        self._push(timer)

    def pending(self) -> int:
        """How many timers wait to fire."""
        return len(self._pending)

    def _push(self, timer: Timer) -> None:
        self._pending[timer.timer_id] = timer
        heapq.heappush(self._heap, (timer.due, timer.timer_id))
        self._wake.set()

    async def _deliver(self, timer: Timer) -> None:
        """Fire `timer`, then forget it; tried again later if either step failed (its event's
        fixed id makes a second delivery a no-op)."""
        try:
            done = await self._fire(timer)
            if done:
                await self._store.delete_timer.remote(timer.timer_id)
        except Exception:
            logger.exception("timer=<%s>, sop=<%s> | firing or forgetting the timer failed", timer.timer_id, timer.sop_id)
            done = False
        if done:
            self._tries.pop(timer.timer_id, None)
        else:
            tries = self._tries[timer.timer_id] = self._tries.get(timer.timer_id, 0) + 1
            delay = min(_RETRY_CAP, _RETRY_SECONDS * 2.0 ** (tries - 1))
            self._push(timer.model_copy(update={"due": time.time() + delay}))
