"""Cyclic garbage collection tuned for the runtime's long-lived actor processes.

CPython's collector walks every tracked object of the oldest generation in a full collection,
and starts one whenever the objects that survived since the last grew by a quarter. An actor
that decodes thousands of JSON messages a second (each a tree of dicts and lists that outlives
a young collection) triggers such collections over its whole heap (Ray, pydantic, strands,
the live SOPs) many times a second: measured, a third of the JSON decoding time of a handler
batch. Objects that stay (imports, then a host's live SOPs) are moved out of the collector's
view with `gc.freeze()`. Frozen objects are still freed by reference counting when dropped;
only garbage cycles among them wait for the next full `settle`.
"""

from __future__ import annotations

import asyncio
import gc
import time

__all__ = ["keep_settled", "refreeze", "settle"]

_YOUNG_THRESHOLD = 10_000  # allocations between young collections (CPython's default: 700)


def settle() -> None:
    """Collect all garbage (frozen objects too), then freeze what is alive: later collections
    walk only the objects made after this call. Called once an actor has started."""
    gc.unfreeze()
    gc.collect()
    gc.freeze()
    gc.set_threshold(_YOUNG_THRESHOLD, *gc.get_threshold()[1:])


def refreeze() -> None:
    """Collect the young generations, then freeze what survived (cheap: no full walk)."""
    gc.collect(1)
    gc.freeze()


async def keep_settled(every: float = 5.0, full_every: float = 600.0) -> None:
    """For an async actor whose live data turns over (a host's SOPs): `refreeze` every `every`
    seconds, a full `settle` every `full_every` seconds (frees cycles among frozen objects)."""
    settled = time.monotonic()
    while True:
        await asyncio.sleep(every)
        if time.monotonic() - settled >= full_every:
            settle()
            settled = time.monotonic()
        else:
            refreeze()
