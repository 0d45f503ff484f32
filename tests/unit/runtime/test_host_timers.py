"""A host's timers (`HostTimers`), without Ray: each fires when due even while another timer's
delivery is still under way (its SOP busy with a hung handler), and a timer whose delivery or
deletion failed is tried again."""

from __future__ import annotations

import asyncio
import time
from typing import Any

import pytest

from sopy_actors.runtime import timers as timers_module
from sopy_actors.runtime.records import Timer
from sopy_actors.runtime.timers import HostTimers


class _Remote:
    def __init__(self, function: Any) -> None:
        self.remote = function


class _Store:
    def __init__(self, *, failing_deletes: int = 0) -> None:
        self.deleted: list[str] = []
        self.failing_deletes = failing_deletes

        async def timers(host: str) -> list[Timer]:
            return []

        async def delete_timer(timer_id: str) -> None:
            if self.failing_deletes:
                self.failing_deletes -= 1
                raise ConnectionError("the store is unreachable")
            self.deleted.append(timer_id)

        self.timers = _Remote(timers)
        self.delete_timer = _Remote(delete_timer)


def _timer(timer_id: str, after: float) -> Timer:
    return Timer(timer_id=timer_id, sop_id=f"sop-{timer_id}", host="h", due=time.time() + after, event={"type": "E"})


def test_a_timer_fires_when_due_while_another_timers_delivery_hangs() -> None:
    async def scenario() -> dict[str, float]:
        fired: dict[str, float] = {}
        hung = asyncio.Event()  # never set: the first timer's SOP never answers

        async def fire(timer: Timer) -> bool:
            fired[timer.timer_id] = time.time()
            if timer.timer_id == "slow":
                await hung.wait()
            return True

        store = _Store()
        timers = HostTimers("h", store, fire)
        runner = asyncio.ensure_future(timers.run())
        await asyncio.sleep(0)
        started = time.time()
        timers.arm(_timer("slow", 0.0))
        timers.arm(_timer("next", 0.1))
        for _ in range(100):  # until it fired (1 s at most): the hung delivery does not hold it up
            await asyncio.sleep(0.01)
            if store.deleted:
                break
        runner.cancel()
        assert store.deleted == ["next"]  # done with; the hung one is not
        return {name: at - started for name, at in fired.items()}

    fired = asyncio.run(scenario())
    assert set(fired) == {"slow", "next"} and fired["next"] < 1.0, fired


def test_a_timer_whose_deletion_failed_is_delivered_again_then_forgotten(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(timers_module, "_RETRY_SECONDS", 0.05)

    async def scenario() -> tuple[list[str], list[str]]:
        fired: list[str] = []

        async def fire(timer: Timer) -> bool:
            fired.append(timer.timer_id)
            return True

        store = _Store(failing_deletes=1)
        timers = HostTimers("h", store, fire)
        runner = asyncio.ensure_future(timers.run())
        await asyncio.sleep(0)
        timers.arm(_timer("t", 0.0))
        for _ in range(100):  # the retry comes 0.05 s after the failure
            await asyncio.sleep(0.01)
            if store.deleted:
                break
        runner.cancel()
        return fired, store.deleted

    fired, deleted = asyncio.run(scenario())
    assert fired == ["t", "t"] and deleted == ["t"]
