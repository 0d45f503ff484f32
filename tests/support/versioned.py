"""The spec's `VersionedState` (advanced-patterns.md, "Versioned State"), as written, used as an
ordinary SOP state; and a small workflow that edits it."""

from __future__ import annotations

from copy import deepcopy
from datetime import datetime
from typing import List  # noqa: UP035 (the spec's code, as written)

from pydantic import BaseModel, Field

from sopy_actors import SOP, End, Event, Procedure, handler, make_prompt


class VersionedState(BaseModel):
    version: int = 1
    data: dict = Field(default_factory=dict)  # type: ignore[type-arg]
    history: List[dict] = Field(default_factory=list)  # type: ignore[type-arg]  # noqa: UP006

    def update_data(self, new_data: dict, description: str = "") -> None:  # type: ignore[type-arg]
        """Update data with versioning"""
        self.history.append(
            {"version": self.version, "data": deepcopy(self.data), "timestamp": datetime.now(), "description": description}
        )
        self.version += 1
        self.data.update(new_data)

    def rollback_to_version(self, target_version: int) -> bool:
        """Rollback to a specific version"""
        for historical_state in reversed(self.history):
            if historical_state["version"] == target_version:
                self.data = deepcopy(historical_state["data"])
                self.version = target_version
                return True
        return False

    def get_version_history(self) -> List[dict]:  # type: ignore[type-arg]  # noqa: UP006
        """Get version history"""
        return [{"version": h["version"], "timestamp": h["timestamp"], "description": h["description"]} for h in self.history]


class Change(BaseModel):
    key: str = ""
    value: str = ""
    rollback_to: int | None = None


class Changed(Event[Change]):
    pass


class Finished(Event[None]):
    pass


class Editing(Procedure[VersionedState]):
    prompt = make_prompt("Apply each change; undo when asked.")

    @handler
    def on_change(self, state: VersionedState, event: Changed) -> Procedure[VersionedState] | str:
        if event.payload.rollback_to is not None:
            if not state.rollback_to_version(event.payload.rollback_to):
                return f"no version {event.payload.rollback_to} in the history"
            return self
        state.update_data({event.payload.key: event.payload.value}, description=f"set {event.payload.key}")
        return self

    @handler
    def on_finished(self, state: VersionedState, event: Finished) -> Procedure[VersionedState]:
        return End()


def make_sop() -> SOP[VersionedState]:
    return SOP(state=VersionedState(), init_proc=Editing())
