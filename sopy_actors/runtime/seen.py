"""Which event ids an SOP has committed, for its whole life, in a few bytes per event.

A scalable Bloom filter: no false negatives (a committed id always answers "maybe"), about 1%
false positives over all its layers, and memory that grows with the number of events (a few
bytes each; layers double in size). The SOP host asks it first: "no" means a new event (no
Store lookup); "maybe" means an indexed lookup of the id in the Store's event log, which has
the final word. No Ray, no I/O.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable

__all__ = ["SeenIds"]

_HASHES = 10  # k for about 0.1% false positives per layer at 14 bits per id
_BITS_PER_ID = 14
_FIRST_CAPACITY = 32


def _hashes(event_id: str) -> tuple[int, int]:
    """The two base hashes of an id (double hashing derives a layer's positions from them)."""
    digest = hashlib.blake2b(event_id.encode(), digest_size=16).digest()
    return int.from_bytes(digest[:8], "little"), int.from_bytes(digest[8:], "little") | 1


class _Layer:
    """One fixed-size Bloom filter holding up to `capacity` ids."""

    __slots__ = ("bits", "capacity", "count", "size")

    def __init__(self, capacity: int, bits: bytes | None = None, count: int = 0) -> None:
        self.capacity = capacity
        self.size = capacity * _BITS_PER_ID
        self.bits = bytearray(bits) if bits is not None else bytearray((self.size + 7) // 8)
        self.count = count

    def add(self, first: int, second: int) -> None:
        bits, size = self.bits, self.size
        for i in range(_HASHES):
            position = (first + i * second) % size
            bits[position >> 3] |= 1 << (position & 7)
        self.count += 1

    def holds(self, first: int, second: int) -> bool:
        bits, size = self.bits, self.size
        for i in range(_HASHES):  # a new id usually misses on the first probes
            position = (first + i * second) % size
            if not bits[position >> 3] & (1 << (position & 7)):
                return False
        return True


class SeenIds:
    """The set of an SOP's committed event ids, approximately (see the module docstring).

    Args:
        ids: ids committed already (e.g. read from the event log when an SOP is loaded).
    """

    __slots__ = ("_last", "_layers")

    def __init__(self, ids: Iterable[str] = ()) -> None:
        self._layers = [_Layer(_FIRST_CAPACITY)]
        self._last: tuple[str, int, int] = ("", 0, 0)  # an id is asked about, then added: hash once
        for event_id in ids:
            self.add(event_id)

    def _hashes(self, event_id: str) -> tuple[int, int]:
        last_id, first, second = self._last
        if last_id != event_id or not event_id:
            first, second = _hashes(event_id)
            self._last = (event_id, first, second)
        return first, second

    def add(self, event_id: str) -> None:
        """Record a committed id."""
        layer = self._layers[-1]
        if layer.count >= layer.capacity:
            layer = _Layer(layer.capacity * 2)
            self._layers.append(layer)
        layer.add(*self._hashes(event_id))

    def may_contain(self, event_id: str) -> bool:
        """False: `event_id` was never added. True: it probably was (check the event log)."""
        first, second = self._hashes(event_id)
        return any(layer.holds(first, second) for layer in self._layers)

    def __len__(self) -> int:
        return sum(layer.count for layer in self._layers)

    def nbytes(self) -> int:
        """Memory held by the filter's bits."""
        return sum(len(layer.bits) for layer in self._layers)
