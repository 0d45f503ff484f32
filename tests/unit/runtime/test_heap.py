"""The runtime actors' garbage-collector settings: frozen survivors, cycles still freed."""

from __future__ import annotations

import asyncio
import gc
import weakref
from collections.abc import Iterator

import pytest

from sopy_actors.runtime import heap


class _Node:
    def __init__(self) -> None:
        self.me = self  # a reference cycle: only the cyclic collector frees it


@pytest.fixture(autouse=True)
def restore_gc() -> Iterator[None]:
    threshold = gc.get_threshold()
    yield
    gc.unfreeze()
    gc.set_threshold(*threshold)


def test_settle_frees_cycles_then_freezes_the_survivors() -> None:
    kept, dropped = _Node(), _Node()
    gone = weakref.ref(dropped)
    del dropped
    heap.settle()
    assert gone() is None
    assert gc.get_freeze_count() > 0
    assert not any(obj is kept for obj in gc.get_objects())  # frozen: out of the collector's view
    assert gc.get_threshold()[0] == 10_000


def test_a_frozen_cycle_waits_for_the_next_settle_and_is_freed_then() -> None:
    frozen = _Node()
    gone = weakref.ref(frozen)
    heap.settle()
    del frozen
    gc.collect()
    assert gone() is not None  # frozen: full collections do not walk it
    heap.settle()
    assert gone() is None


def test_refreeze_collects_young_garbage_before_freezing() -> None:
    heap.settle()
    dropped, kept = _Node(), _Node()
    gone = weakref.ref(dropped)
    del dropped
    before = gc.get_freeze_count()
    heap.refreeze()
    assert gone() is None
    assert gc.get_freeze_count() > before
    assert not any(obj is kept for obj in gc.get_objects())


def test_keep_settled_refreezes_and_settles_on_schedule() -> None:
    async def run() -> tuple[int, int]:
        gc.unfreeze()
        task = asyncio.get_running_loop().create_task(heap.keep_settled(every=0.01, full_every=0.05))
        frozen = _Node()
        gone = weakref.ref(frozen)
        await asyncio.sleep(0.03)
        after_refreeze = gc.get_freeze_count()
        del frozen
        await asyncio.sleep(0.1)  # a full settle ran: the frozen cycle is freed
        task.cancel()
        return after_refreeze, int(gone() is None)

    frozen_count, freed = asyncio.run(run())
    assert frozen_count > 0
    assert freed == 1
