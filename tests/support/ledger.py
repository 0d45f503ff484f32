"""An SOP that records every entry per sender: ordering and exactly-once checks."""

from __future__ import annotations

from pydantic import BaseModel, Field

from sopy_actors import SOP, End, Event, Procedure, handler, make_prompt


class Ledger(BaseModel):
    expected: int
    entries: dict[str, list[int]] = Field(default_factory=dict)


class EntryData(BaseModel):
    sender: str
    index: int


class EntryAdded(Event[EntryData]):
    pass


class Recording(Procedure[Ledger]):
    prompt = make_prompt("Record every entry.")

    @handler
    def on_entry(self, state: Ledger, event: EntryAdded) -> Procedure[Ledger]:
        state.entries.setdefault(event.payload.sender, []).append(event.payload.index)
        if sum(len(v) for v in state.entries.values()) == state.expected:
            return End()
        return self


def make_sop(expected: int) -> SOP[Ledger]:
    return SOP(state=Ledger(expected=expected), init_proc=Recording())
