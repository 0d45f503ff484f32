"""SOPs whose state is a dict, a dataclass or a plain object, written as SOPy programs write them.

The handlers change the state in place (`state["last_message"] = ...`, `state.words.append(...)`).
Both engines import this module: the unit tests run it in process, the integration tests on Ray.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from sopy_actors import SOP, End, Event, Procedure, handler, make_prompt

Chat = dict[str, Any]


class UserMessage(Event[str]):
    pass


class UserWantsToExit(Event[bool]):
    pass


class Word(Event[str]):
    pass


class Task(Event[str]):
    pass


class Chatting(Procedure[Chat]):
    """SOPy's tutorial chat: a dict state with the messages so far."""

    prompt = make_prompt("Answer the user's messages until they want to exit.")

    @handler
    def on_message(self, state: Chat, event: UserMessage) -> Procedure[Chat] | str:
        state["messages"].append(event.payload)
        state["last_message"] = event.payload
        if not event.payload.strip():
            return "Write a message that is not empty."  # rejected; SOPy keeps the changes above
        return self

    @handler
    def on_exit(self, state: Chat, event: UserWantsToExit) -> Procedure[Chat]:
        state["farewell"] = {"said": event.payload, "after": len(state["messages"])}
        return End()


def chat_sop() -> SOP[Chat]:
    return SOP({"messages": [], "last_message": None}, Chatting())


@dataclass(frozen=True)
class Span:
    first: str
    last: str


@dataclass
class Tally:
    """A dataclass state: nested dataclass, tuple and an `init=False` field all survive checkpoints."""

    words: list[str] = field(default_factory=list)
    span: Span | None = None
    lengths: tuple[int, ...] = ()
    rounds: int = field(init=False, default=0)


class Counting(Procedure[Tally]):
    prompt = make_prompt("Count three words.")

    @handler
    def on_word(self, state: Tally, event: Word) -> Procedure[Tally]:
        state.words.append(event.payload)
        state.lengths = (*state.lengths, len(event.payload))
        state.span = Span(first=state.words[0], last=event.payload)
        state.rounds += 1
        return End() if len(state.words) == 3 else self


def tally_sop() -> SOP[Tally]:
    return SOP(Tally(), Counting())


class TaskState:
    """A plain class, as SOPy's README writes its state: works in process only."""

    def __init__(self) -> None:
        self.tasks: list[str] = []


class Planning(Procedure[TaskState]):
    prompt = make_prompt("Plan two tasks.")

    @handler
    def on_task(self, state: TaskState, event: Task) -> Procedure[TaskState]:
        state.tasks.append(event.payload)
        return End() if len(state.tasks) == 2 else self


def task_sop() -> SOP[TaskState]:
    return SOP(TaskState(), Planning())
