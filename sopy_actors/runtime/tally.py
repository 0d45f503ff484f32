"""A host's live SOPs counted as they change, for monitoring: by SOP name and phase, busy ones,
and queued events by SOP name. Reading it costs the same at ten or a hundred thousand live
SOPs (counting them one by one once a second stalled a host's event loop for ~50 ms at
100,000); each change costs a dict update.
"""

from __future__ import annotations

from collections import Counter
from typing import Any

__all__ = ["Tally"]


class Tally:
    """Counts kept up to date by the instances counted in it (`Instance.count_in`)."""

    __slots__ = ("busy", "phases", "queued")

    def __init__(self) -> None:
        self.phases: Counter[tuple[str, str]] = Counter()  # (SOP name, phase) -> instances
        self.queued: Counter[str] = Counter()  # SOP name -> events queued
        self.busy = 0

    def counts(self) -> dict[str, Any]:
        """`sops` (instances by SOP name and phase), `queued_by_sop`, `busy` and `queued`."""
        sops: dict[str, dict[str, int]] = {}
        for (name, phase), count in self.phases.items():
            if count:
                sops.setdefault(name, {})[phase] = count
        queued = {name: count for name, count in self.queued.items() if count}
        return {"sops": sops, "queued_by_sop": queued, "busy": self.busy, "queued": sum(queued.values())}
