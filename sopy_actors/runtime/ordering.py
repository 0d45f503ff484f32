"""Per-sender ordering of one SOP's events: sequence numbers, held events, gaps. No Ray.

Ray delivers calls to an async actor in any order, so each sending process numbers its events
to an SOP 0, 1, 2, ... and the SOP's host admits them through a `SenderOrder`: an event whose
predecessors have all arrived is released at once (with any held successors); one that came
early is held until the gap closes, or until the host gives up on the gap (`skip_gap`).
The next expected number of each sender is checkpointed with the SOP (`advance_senders`), so a
restarted host resumes the order where the last commit left it.
"""

from __future__ import annotations

from typing import Generic, TypeVar

__all__ = ["MAX_SENDERS", "SenderOrder", "advance_senders"]

T = TypeVar("T")

MAX_SENDERS = 64
"""Senders remembered per SOP in its checkpoint; the oldest are forgotten first."""


def advance_senders(senders: dict[str, int], sender: str | None, seq: int | None) -> dict[str, int]:
    """The checkpointed next-expected numbers after committing `sender`'s event `seq`."""
    if sender is None or seq is None:
        return senders
    after = dict(senders)
    after[sender] = max(after.get(sender, 0), seq + 1)
    while len(after) > MAX_SENDERS:
        after.pop(next(iter(after)))
    return after


class SenderOrder(Generic[T]):
    """Releases each sender's items in sequence order.

    Args:
        expected: the next expected number per sender (from the checkpoint); 0 for new senders.
    """

    def __init__(self, expected: dict[str, int] | None = None) -> None:
        self._expected: dict[str, int] = dict(expected or {})
        self._held: dict[str, dict[int, T]] = {}

    def admit(self, sender: str | None, seq: int | None, item: T, *, floor: int | None = None) -> list[T]:
        """Admit `item`; returns the items now ready, in order (empty: `item` is held).

        An item without a sender or number, or with a number already passed (a redelivery),
        is ready at once: deduplication by event id is the host's job. `floor` says every lower
        number is settled: the missing ones will never arrive, so nothing waits for them.
        """
        if sender is None or seq is None:
            return [item]
        ready = self._skip_to(sender, floor) if floor is not None else []
        expected = self._expected.get(sender, 0)
        if seq > expected:
            self._held.setdefault(sender, {})[seq] = item
            return ready
        if seq < expected:
            return [*ready, item]
        return [*ready, item, *self._release(sender, seq + 1)]

    def take(self, sender: str | None, seq: int | None, *, floor: int | None = None) -> bool:
        """Admit an item that is in turn, without holding it: True when `admit` would release
        it, and only it, at once (its number is then taken); False, with nothing changed, when
        it would be held or would release others (held successors, or what `floor` skips to)."""
        if sender is None or seq is None:
            return True
        expected = self._expected.get(sender, 0)
        if floor is not None and floor > expected:
            return False
        if seq == expected and seq + 1 not in self._held.get(sender, {}):
            self._expected[sender] = seq + 1
            return True
        return seq < expected

    def ahead_of(self, senders: dict[str, int]) -> dict[str, int]:
        """The next expected numbers past those of `senders` (a checkpoint's): what events
        that committed nothing (a failed handler, a refusal) moved on without it. Of the
        `MAX_SENDERS` senders seen last, as a checkpoint keeps."""
        ahead = [(sender, number) for sender, number in self._expected.items() if number > senders.get(sender, 0)]
        return dict(ahead[-MAX_SENDERS:])

    def catch_up(self, expected: dict[str, int]) -> None:
        """Expect at least `expected`'s numbers (from `ahead_of` of an earlier copy of this SOP)."""
        for sender, number in expected.items():
            if number > self._expected.get(sender, 0):
                self._expected[sender] = number

    def is_held(self, sender: str, seq: int) -> bool:
        """True while `sender`'s item `seq` waits for a predecessor."""
        return seq in self._held.get(sender, {})

    def skip_gap(self, sender: str, seq: int) -> list[T]:
        """Give up on the missing predecessors of a held `seq`: release from the lowest held on.

        Returns nothing if `seq` is no longer held (its gap closed meanwhile).
        """
        held = self._held.get(sender, {})
        if seq not in held:
            return []
        return self._release(sender, min(held))

    def held(self) -> int:
        """How many items wait for a gap to close."""
        return sum(len(items) for items in self._held.values())

    def _skip_to(self, sender: str, floor: int) -> list[T]:
        """Stop waiting for numbers below `floor`: release what was held before it, in order."""
        if floor <= self._expected.get(sender, 0):
            return []
        held = self._held.get(sender, {})
        ready = [held.pop(seq) for seq in sorted(s for s in held if s < floor)]
        return ready + self._release(sender, floor)

    def _release(self, sender: str, expected: int) -> list[T]:
        held = self._held.get(sender, {})
        ready = []
        while expected in held:
            ready.append(held.pop(expected))
            expected += 1
        self._expected[sender] = expected
        if not held:
            self._held.pop(sender, None)
        return ready
