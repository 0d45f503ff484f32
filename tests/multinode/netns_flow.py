"""The workflow the namespace cluster runs: each step takes a while and records where it ran.

A step's handler sleeps `work` seconds (so events are in flight when a node is lost), then
appends the step's index and the node that ran it to the state: a step applied twice shows
as a repeated index, a lost one as a gap.
"""

from __future__ import annotations

import time

import ray
from pydantic import BaseModel, Field

from sopy_actors import SOP, End, Event, Procedure, ProcedureOptions, handler, make_prompt


class Tally(BaseModel):
    expected: int
    seen: list[int] = Field(default_factory=list)
    nodes: list[str] = Field(default_factory=list)


class Step(BaseModel):
    index: int
    work: float


class StepDone(Event[Step]):
    pass


class Counting(Procedure[Tally]):
    prompt = make_prompt("Count every step once.")
    sop_options = ProcedureOptions(replicas=3)  # spread over the nodes as Ray places them (best effort)

    @handler
    def on_step(self, state: Tally, event: StepDone) -> Procedure[Tally]:
        time.sleep(event.payload.work)
        state.seen.append(event.payload.index)
        state.nodes.append(ray.get_runtime_context().get_node_id()[:8])
        return End() if len(state.seen) == state.expected else self


def make_sop(expected: int) -> SOP[Tally]:
    return SOP(state=Tally(expected=expected), init_proc=Counting())
