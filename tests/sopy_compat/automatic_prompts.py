"""SOPy tutorial 5 (automatic prompts), re-implemented from its descriptions.

A small workflow whose handlers branch under `cond(...)` and on plain conditions, for checking
the SOP prompt `make_prompt_from_procedure` writes in SOPy's words.
"""

from __future__ import annotations

from pydantic import BaseModel, Field

from sopy_actors.sopy import End, Event, Procedure, handler, make_prompt
from sopy_actors.sopy.prompt import cond


class WorkState(BaseModel):
    ready: bool = Field(default=False, description="the system is ready")
    error_count: int = Field(default=0, description="the number of errors so far")
    completed_items: int = 0
    total_items: int = 2


class DataValidated(Event[bool]):
    """Data validation completed (a constructor with SOPy's default description)."""

    def __init__(self, payload: bool, description: str = "Data validation completed") -> None:
        super().__init__(payload, description=description)


class ItemDone(Event[bool]):
    """An item was processed (payload: whether it succeeded)."""


class MyStartProcedure(Procedure[WorkState]):
    prompt = make_prompt("Check that the system is ready.")

    @handler
    def handle_validated(self, state: WorkState, event: DataValidated):
        if cond(state.ready, "system is ready"):
            return ProcessItems()
        elif cond(state.error_count > 3, "too many errors"):
            return AbortWork()
        else:
            return "Please wait for system to be ready"


class ProcessItems(Procedure[WorkState]):
    prompt = make_prompt("Process every item")

    def __init__(self) -> None:
        self.retry_count = 0

    @handler
    def handle_item(self, state: WorkState, event: ItemDone):
        if cond(event.payload, "processing completed successfully"):
            state.completed_items += 1
            if cond(state.completed_items >= state.total_items, "all items processed"):
                return End()
            return self
        if self.retry_count < 2:
            self.retry_count += 1
            return self
        return AbortWork()


class AbortWork(Procedure[WorkState]):
    prompt = make_prompt("Stop and report what went wrong")

    @handler
    def handle_item(self, state: WorkState, event: ItemDone):
        return End()
