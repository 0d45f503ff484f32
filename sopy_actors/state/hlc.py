"""A hybrid logical clock: wall-clock milliseconds, a logical counter and a node id.

Stamps are totally ordered by (physical, logical, node): a later event on one clock always gets
a larger stamp, an event after receiving a stamp gets a larger one than it (whatever the wall
clocks of the two nodes say), and two different nodes never make equal stamps, so the node id
breaks ties. Pure: the wall clock is injected, nothing here reads time by itself unless given
`time.time`.

Runs anywhere (procedure actors, SOP hosts, the shared-state actor); no Ray import.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime

from sopy_actors.errors import InputError

__all__ = ["HybridClock", "Stamp"]

_SEPARATOR = "."
_PHYSICAL_DIGITS = 15  # milliseconds since 1970 fit in 13 digits until the year 2286
_LOGICAL_DIGITS = 6


@dataclass(frozen=True, order=True, slots=True)
class Stamp:
    """One HLC time: compared by (physical, logical, node).

    Attributes:
        physical: wall-clock milliseconds since the Unix epoch (the largest seen so far).
        logical: counter of events within one millisecond (or while the wall clock lags).
        node: the writer that made it; breaks ties between equal times.
    """

    physical: int
    logical: int
    node: str

    def __str__(self) -> str:
        # Zero-padded: the text form sorts as the stamp does for node ids without the separator.
        return f"{self.physical:0{_PHYSICAL_DIGITS}d}{_SEPARATOR}{self.logical:0{_LOGICAL_DIGITS}d}{_SEPARATOR}{self.node}"

    @classmethod
    def parse(cls, text: str) -> Stamp:
        """The stamp `str(stamp)` wrote.

        Raises:
            InputError: the text is not a stamp.
        """
        physical, _, rest = str(text).partition(_SEPARATOR)
        logical, separator, node = rest.partition(_SEPARATOR)
        if not (separator and physical.isdigit() and logical.isdigit()):
            raise InputError(f"Invalid HLC stamp {text!r}: expected PHYSICAL.LOGICAL.NODE", fields=("stamp",))
        return cls(int(physical), int(logical), node)

    def isoformat(self) -> str:
        """The physical part as an ISO 8601 UTC time, e.g. "2026-01-02T03:04:05.678000+00:00"
        (past the year 9999, which a broken clock may claim: the milliseconds, e.g. "1e+18 ms")."""
        try:
            return datetime.fromtimestamp(self.physical / 1000, tz=UTC).isoformat()
        except (ValueError, OverflowError, OSError):
            return f"{self.physical:.0e} ms"


def _wall_ms(wall: Callable[[], float]) -> int:
    return int(wall() * 1000)


@dataclass(slots=True)
class HybridClock:
    """The clock of one node (writer): `now()` for a local event, `observe()` for a received stamp.

    Args:
        node: this clock's node id, carried by every stamp it makes.
        wall: seconds since the epoch (`time.time` by default); tests inject a fake.
        last: the last stamp this clock made or observed, to resume a clock from a checkpoint.
    """

    node: str
    wall: Callable[[], float] = field(default=time.time, repr=False)
    physical: int = 0
    logical: int = 0

    @classmethod
    def resume(cls, node: str, last: Stamp | str | None, *, wall: Callable[[], float] = time.time) -> HybridClock:
        """A clock for `node` that continues after `last` (e.g. the stamp a checkpoint holds)."""
        clock = cls(node, wall)
        if last is not None:
            clock.observe(last)
        return clock

    def now(self) -> Stamp:
        """The stamp of a local event (a write): larger than every stamp made or observed here."""
        wall = _wall_ms(self.wall)
        if wall > self.physical:
            self.physical, self.logical = wall, 0
        else:
            self.logical += 1
        return Stamp(self.physical, self.logical, self.node)

    def observe(self, stamp: Stamp | str) -> None:
        """Take in a stamp received from another node, so later `now()` stamps follow it.

        Unlike the textbook receive rule this does not read the wall clock: `now()` does, and
        the next local stamp is larger than the observed one either way.
        """
        seen = stamp if isinstance(stamp, Stamp) else Stamp.parse(stamp)
        if (seen.physical, seen.logical) > (self.physical, self.logical):
            self.physical, self.logical = seen.physical, seen.logical

    @property
    def last(self) -> Stamp:
        """The largest time this clock made or observed, as a stamp of this node."""
        return Stamp(self.physical, self.logical, self.node)
