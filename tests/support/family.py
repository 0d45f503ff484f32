"""Parent SOPs that start child SOPs from handlers, blocking and non-blocking."""

from __future__ import annotations

from pydantic import BaseModel, Field

from sopy_actors import SOP, End, Event, Procedure, SubSOPCompleted, SubSOPFailed, handler, make_prompt


class ChildState(BaseModel):
    text: str
    output: str = ""


class WorkGiven(Event[str]):
    pass


class Working(Procedure[ChildState]):
    prompt = make_prompt("Shout the text.")

    @handler
    def on_work(self, state: ChildState, event: WorkGiven) -> Procedure[ChildState]:
        state.output = event.payload.upper()
        return End()


class ParentState(BaseModel):
    results: dict[str, str] = Field(default_factory=dict)
    children: list[str] = Field(default_factory=list)
    failures: list[str] = Field(default_factory=list)


class SpawnBlocking(Event[str]):
    pass


class SpawnAsync(Event[str]):
    pass


class SpawnIdle(Event[str]):
    pass


class Finish(Event[str]):
    pass


class SpawnAndWait(Event[str]):
    """Start a child that waits for work, and wait for its end."""


def child_sop(text: str) -> SOP[ChildState]:
    return SOP(state=ChildState(text=text), init_proc=Working())


class Coordinating(Procedure[ParentState]):
    prompt = make_prompt("Delegate work to child SOPs.")

    @handler
    def on_blocking(self, state: ParentState, event: SpawnBlocking) -> Procedure[ParentState]:
        child = child_sop(event.payload).start()
        child.send(WorkGiven(payload=event.payload))
        state.results[event.payload] = child.result(timeout=120).output
        state.children.append(child.sop_id)
        return self

    @handler
    def on_async(self, state: ParentState, event: SpawnAsync) -> Procedure[ParentState]:
        child = child_sop(event.payload).start()
        state.children.append(child.sop_id)
        child.submit(WorkGiven(payload=event.payload))
        return AwaitingChild()

    @handler
    def on_idle(self, state: ParentState, event: SpawnIdle) -> Procedure[ParentState]:
        state.children.append(child_sop(event.payload).start().sop_id)
        return self

    @handler
    def on_spawn_and_wait(self, state: ParentState, event: SpawnAndWait) -> Procedure[ParentState]:
        state.children.append(child_sop(event.payload).start().sop_id)
        return AwaitingChild()

    @handler
    def on_finish(self, state: ParentState, event: Finish) -> Procedure[ParentState]:
        return End()


class AwaitingChild(Procedure[ParentState]):
    prompt = make_prompt("Wait for the child SOP to finish.")

    @handler
    def on_done(self, state: ParentState, event: SubSOPCompleted) -> Procedure[ParentState]:
        child = event.payload.state_as(ChildState)
        state.results[child.text] = child.output
        return End()

    @handler
    def on_failed(self, state: ParentState, event: SubSOPFailed) -> Procedure[ParentState]:
        state.failures.append(event.payload.message)
        return End()


def parent_sop() -> SOP[ParentState]:
    return SOP(state=ParentState(), init_proc=Coordinating())
