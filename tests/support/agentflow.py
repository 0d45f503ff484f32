"""A guarded publishing workflow and its tools, for the agent tests (importable by Ray workers).

Every tool appends its name to `<directory>/calls.log`, so a test can see which tools really
ran. `publish` before a draft exists is off-procedure: the SOP refuses it with a prompt that
names the path, so a test can tell which SOP answered.
"""

from __future__ import annotations

import shutil
import time
from pathlib import Path

from pydantic import BaseModel, Field

from sopy_actors import SOP, End, Event, Procedure, handler, make_prompt, tool
from sopy_actors.agents import AgentCompleted, ToolFailed, ToolResultReady, ToolUseRequested
from sopy_actors.agents.future import AgentFuture


class PubState(BaseModel):
    drafts: list[str] = Field(default_factory=list)
    published: list[str] = Field(default_factory=list)
    answer: str = ""


class DraftRequest(BaseModel):
    path: str
    text: str


class FileNote(BaseModel):
    path: str
    size: int


class DraftRequested(Event[DraftRequest]):
    pass


class DraftWritten(Event[FileNote]):
    pass


class PublishRequested(Event[str]):
    pass


class Published(Event[FileNote]):
    pass


def _log(path: str, name: str) -> None:
    with (Path(path).parent / "calls.log").open("a") as log:
        log.write(name + "\n")


@tool(DraftWritten, DraftRequested)
def write_draft(path: str, text: str) -> FileNote:
    """Write the draft to a file.

    Args:
        path: the draft file.
        text: the draft's text.
    """
    _log(path, "write_draft")
    Path(path).write_text(text)
    return FileNote(path=path, size=len(text))


@tool(Published, PublishRequested)
def publish(path: str) -> FileNote:
    """Publish a draft (copies it to <path>.published).

    Args:
        path: the draft file.
    """
    _log(path, "publish")
    target = shutil.copy(path, path + ".published")
    return FileNote(path=str(target), size=Path(target).stat().st_size)


@tool
def slow_step(path: str, seconds: float) -> str:
    """Mark that the step started, then take a while.

    Args:
        path: a marker file written when the step starts.
        seconds: how long the step takes.
    """
    Path(path).write_text("started")
    time.sleep(seconds)
    return "slow step finished"


@tool
def shout(text: str) -> str:
    """Return the text in capitals.

    Args:
        text: what to shout.
    """
    return text.upper()


class Drafting(Procedure[PubState]):
    prompt = make_prompt("Write the draft with write_draft.")

    @handler
    def on_request(self, state: PubState, event: DraftRequested) -> Procedure[PubState]:
        return self

    @handler
    def on_written(self, state: PubState, event: DraftWritten) -> Procedure[PubState]:
        state.drafts.append(event.payload.path)
        return Publishing()

    @handler
    def on_publish(self, state: PubState, event: PublishRequested) -> str:
        return f"Cannot publish {event.payload}: write the draft first with write_draft."


class Publishing(Procedure[PubState]):
    prompt = make_prompt("Publish the draft with publish.")

    @handler
    def on_request(self, state: PubState, event: PublishRequested) -> Procedure[PubState] | str:
        if event.payload not in state.drafts:
            return f"Publish the draft you wrote ({', '.join(state.drafts)}), not {event.payload}."
        return self

    @handler
    def on_published(self, state: PubState, event: Published) -> Procedure[PubState]:
        state.published.append(event.payload.path)
        return End(prompt=make_prompt("The draft is published."))

    @handler
    def on_redraft(self, state: PubState, event: DraftRequested) -> str:
        return "The draft is written; publish it now."


def publishing_sop() -> SOP[PubState]:
    return SOP(state=PubState(), init_proc=Drafting(), retry_limits=5)


# -- completions delivered as events ---------------------------------------------------------


class Dispatch(Event[str]):
    """Start a dispatcher; the payload is the prompt."""


class Dispatching(Procedure[PubState]):
    """Submits an agent call from a handler and waits for its completion event."""

    def __init__(self, agent: object) -> None:
        self.agent = agent

    @handler
    def on_dispatch(self, state: PubState, event: Dispatch) -> Procedure[PubState]:
        import sopy_actors

        future = self.agent.submit(event.payload, deliver_to=sopy_actors.current_sop())  # type: ignore[attr-defined]
        return AwaitingAgent(future)


class AwaitingAgent(Procedure[PubState]):
    """Holds the AgentFuture as an attribute (it crosses the JSON checkpoint)."""

    def __init__(self, future: AgentFuture) -> None:
        self.future = future

    @handler
    def on_completed(self, state: PubState, event: AgentCompleted) -> Procedure[PubState] | str:
        if event.payload.call_id != self.future.call_id:
            return "Not the call this SOP is waiting for."
        assert event.payload.result is not None, event.payload.message
        state.answer = event.payload.result.text
        return End()


class SlowlyReceiving(Procedure[PubState]):
    """Takes seconds to handle AgentCompleted; the answer names a file it writes first."""

    @handler
    def on_completed(self, state: PubState, event: AgentCompleted) -> Procedure[PubState]:
        assert event.payload.result is not None, event.payload.message
        Path(event.payload.result.text).write_text("receiving")
        time.sleep(3)
        state.answer = event.payload.result.text
        return End()


def slowly_receiving_sop() -> SOP[PubState]:
    return SOP(state=PubState(), init_proc=SlowlyReceiving())


class Delegating(Procedure[PubState]):
    """Calls an agent inside a handler (blocking): its tools run unguarded (deadlock rule)."""

    def __init__(self, agent: object) -> None:
        self.agent = agent

    @handler
    def on_dispatch(self, state: PubState, event: Dispatch) -> Procedure[PubState]:
        result = self.agent(event.payload)  # type: ignore[operator]
        state.answer = result.text
        return End()


# -- a watcher that accepts every tool call and records how each one ended ------------------


class WatchState(BaseModel):
    uses: list[str] = Field(default_factory=list)  # tool use ids, in order
    results: list[str] = Field(default_factory=list)  # "<tool use id>: <result text>"
    failures: list[str] = Field(default_factory=list)  # "<tool use id>: <status>: <message>"


class Watching(Procedure[WatchState]):
    """Accepts every generic tool event and tool failure, and records it."""

    @handler
    def on_use(self, state: WatchState, event: ToolUseRequested) -> Procedure[WatchState]:
        state.uses.append(str(event.toolUseId))
        return self

    @handler
    def on_result(self, state: WatchState, event: ToolResultReady) -> Procedure[WatchState]:
        state.results.append(f"{event.toolUseId}: {event.payload.text}")
        return self

    @handler
    def on_failed(self, state: WatchState, event: ToolFailed) -> Procedure[WatchState]:
        state.failures.append(f"{event.toolUseId}: {event.payload.status}: {event.payload.message}")
        return self


def watching_sop() -> SOP[WatchState]:
    return SOP(state=WatchState(), init_proc=Watching())


# -- a result handler that cannot refuse by its code, but raises in code it calls -------------


class NoteRequested(Event[str]):
    pass


class Noted(Event[str]):
    pass


@tool(Noted, NoteRequested)
def note(text: str) -> str:
    """Take a note.

    Args:
        text: the note.
    """
    return text


def _checked(text: str) -> str:
    if text == "bad":
        raise ValueError("a bad note")
    return text


class Noting(Procedure[PubState]):
    """Takes notes: its result handler has no refusal of its own (an agent's model goes on
    without waiting for it), but a bad note raises in the code it calls (SOPy: a rejection)."""

    @handler
    def on_request(self, state: PubState, event: NoteRequested) -> Procedure[PubState]:
        return self

    @handler
    def on_noted(self, state: PubState, event: Noted) -> Procedure[PubState]:
        state.drafts.append(_checked(event.payload))
        return self


def noting_sop() -> SOP[PubState]:
    return SOP(state=PubState(), init_proc=Noting())
