"""A small document-review SOP used by the scenario table (both engines import it)."""

from __future__ import annotations

from pydantic import BaseModel, Field

from sopy_actors import SOP, End, Event, Procedure, cond, handler, make_prompt
from sopy_actors.core.options import STRICT, Semantics


class DocState(BaseModel):
    text: str = ""
    reviews: int = 0
    log: list[str] = Field(default_factory=list)


class Draft(BaseModel):
    text: str


class Review(BaseModel):
    approved: bool
    comment: str


class DraftWritten(Event[Draft]):
    pass


class ReviewDone(Event[Review]):
    pass


class Commented(Event[str]):
    pass


class Published(Event[str]):
    pass


class Noise(Event[str]):
    pass


class Exploded(Event[str]):
    pass


class Misbehaved(Event[int]):
    pass


class Drafting(Procedure[DocState]):
    prompt = make_prompt("Write a draft of the document.")
    ignore = (Noise,)

    def __init__(self) -> None:
        self.attempts = 0

    @handler
    def on_draft(self, state: DocState, event: DraftWritten) -> Procedure[DocState] | str:
        self.attempts += 1
        state.log.append(f"draft attempt {self.attempts}")
        if cond(not event.payload.text.strip(), "the draft is empty"):
            return "Write a non-empty draft."
        state.text = event.payload.text
        return Reviewing()

    @handler
    def on_exploded(self, state: DocState, event: Exploded) -> Procedure[DocState]:
        state.text = "corrupted"
        raise RuntimeError(event.payload)

    @handler
    def on_misbehaved(self, state: DocState, event: Misbehaved) -> object:
        return event.payload


class Reviewing(Procedure[DocState]):
    prompt = make_prompt("Review the draft and approve it or ask for changes.")

    @handler
    def on_review(self, state: DocState, event: ReviewDone) -> Procedure[DocState]:
        assert event.payload.comment, "A review needs a comment."
        state.reviews += 1
        state.log.append(f"review: {event.payload.comment}")
        if cond(event.payload.approved, "the reviewer approved the draft"):
            return End(prompt=make_prompt("The document is published."))
        return Drafting()

    @handler
    def on_comment(self, state: DocState, event: Commented) -> Procedure[DocState]:
        state.log.append(f"comment: {event.payload}")
        return self

    @handler
    def on_late_draft(self, state: DocState, event: DraftWritten) -> str:
        state.text = event.payload.text  # discarded: the event is rejected below
        return "Wait for the review before rewriting the draft."


def make_sop(retry_limits: int = 3, semantics: Semantics = STRICT) -> SOP[DocState]:
    """The document SOP; strict semantics unless a test asks for SOPy's (the default of SOP)."""
    return SOP(state=DocState(), init_proc=Drafting(), retry_limits=retry_limits, semantics=semantics)
