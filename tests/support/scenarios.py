"""One scenario table, two engines: each scenario runs on LocalSOP and on the actor runtime."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from sopy_actors import Outcome
from sopy_actors.core.events import Event
from sopy_actors.core.options import STRICT, Semantics
from sopy_actors.errors import HandlerError, RecoveryExhausted, SOPFailed, TransitionError
from tests.support import docflow as d


@dataclass(frozen=True)
class Step:
    """Send `event()`; expect `outcome` (or an error class) and the procedure afterwards."""

    event: Callable[[], Event[Any]]
    outcome: Outcome | type[Exception]
    procedure: str
    prompt: str | None = None


@dataclass(frozen=True)
class Scenario:
    name: str
    steps: tuple[Step, ...]
    state: dict[str, Any]
    retry_limits: int = 3
    semantics: Semantics = STRICT


def draft(text: str) -> Callable[[], Event[Any]]:
    return lambda: d.DraftWritten(payload=d.Draft(text=text))


def review(approved: bool, comment: str) -> Callable[[], Event[Any]]:
    return lambda: d.ReviewDone(payload=d.Review(approved=approved, comment=comment))


SCENARIOS = (
    Scenario(
        "happy path ends with the approved draft",
        (
            Step(draft("hello"), Outcome.TRANSITIONED, "Reviewing"),
            Step(lambda: d.Commented(payload="nice"), Outcome.STAYED, "Reviewing"),
            Step(review(True, "ok"), Outcome.ENDED, "End", "The document is published."),
            Step(
                draft("again"),
                Outcome.REJECTED,
                "End",
                "Event DraftWritten(sender=None, target=None, payload=text='again') should not happen in "
                "procedure End. Please try again.",
            ),
        ),
        {"text": "hello", "reviews": 1, "log": ["draft attempt 1", "comment: nice", "review: ok"]},
    ),
    Scenario(
        "rejections leave the state unchanged but keep procedure attributes",
        (
            Step(draft(" "), Outcome.REJECTED, "Drafting", "Write a non-empty draft."),
            Step(draft("v1"), Outcome.TRANSITIONED, "Reviewing"),
            Step(draft("v2"), Outcome.REJECTED, "Reviewing", "Wait for the review before rewriting the draft."),
            Step(review(False, ""), Outcome.REJECTED, "Reviewing", "A review needs a comment."),
            Step(review(False, "more"), Outcome.TRANSITIONED, "Drafting"),
        ),
        {"text": "v1", "reviews": 1, "log": ["draft attempt 2", "review: more"]},
    ),
    Scenario(
        "unhandled events are rejected and ignored events pass",
        (
            Step(lambda: d.Noise(payload="x"), Outcome.IGNORED, "Drafting"),
            Step(
                lambda: d.Published(payload="x"),
                Outcome.REJECTED,
                "Drafting",
                "Event Published(sender=None, target=None, payload=x) should not happen in procedure "
                "Drafting. Please try again.",
            ),
        ),
        {"text": "", "reviews": 0, "log": []},
    ),
    Scenario(
        "handler failures commit nothing",
        (
            Step(lambda: d.Exploded(payload="boom"), HandlerError, "Drafting"),
            Step(lambda: d.Misbehaved(payload=42), TransitionError, "Drafting"),
            Step(draft("ok"), Outcome.TRANSITIONED, "Reviewing"),
        ),
        {"text": "ok", "reviews": 0, "log": ["draft attempt 1"]},
    ),
    Scenario(
        "consecutive rejections past the limit exhaust recovery",
        (
            Step(draft(""), Outcome.REJECTED, "Drafting"),
            Step(draft(""), RecoveryExhausted, "Drafting"),
            Step(draft("too late"), SOPFailed, "Drafting"),
        ),
        {"text": "", "reviews": 0, "log": []},
        retry_limits=1,
    ),
    Scenario(
        "a success resets the retry count",
        (
            Step(draft(""), Outcome.REJECTED, "Drafting"),
            Step(draft("a"), Outcome.TRANSITIONED, "Reviewing"),
            Step(draft("b"), Outcome.REJECTED, "Reviewing"),
            Step(review(True, "fine"), Outcome.ENDED, "End"),
        ),
        {"text": "a", "reviews": 1, "log": ["draft attempt 2", "review: fine"]},
        retry_limits=1,
    ),
    Scenario(
        "SOPy: a rejecting or raising handler keeps its state changes",
        (
            Step(draft(" "), Outcome.REJECTED, "Drafting", "Write a non-empty draft."),
            Step(
                lambda: d.Exploded(payload="boom"),
                Outcome.REJECTED,
                "Drafting",
                "An error occurred while handling event Exploded(sender=None, target=None, payload=boom): boom. "
                "Please try again.",
            ),
            Step(draft("v1"), Outcome.TRANSITIONED, "Reviewing"),
            Step(draft("v2"), Outcome.REJECTED, "Reviewing", "Wait for the review before rewriting the draft."),
            Step(
                review(False, ""),
                Outcome.REJECTED,
                "Reviewing",
                "An error occurred while handling event ReviewDone(sender=None, target=None, payload=approved=False "
                "comment=''): A review needs a comment.. Please try again.",
            ),
        ),
        {"text": "v2", "reviews": 0, "log": ["draft attempt 1", "draft attempt 2"]},
        retry_limits=10,
        semantics=Semantics(),
    ),
    Scenario(
        "SOPy: every rejection counts, a success does not reset the count",
        (
            Step(draft(""), Outcome.REJECTED, "Drafting"),
            Step(draft("a"), Outcome.TRANSITIONED, "Reviewing"),
            Step(draft("b"), Outcome.REJECTED, "Reviewing"),
            Step(review(False, ""), RecoveryExhausted, "Reviewing"),
            Step(review(True, "late"), SOPFailed, "Reviewing"),
        ),
        {"text": "b", "reviews": 0, "log": ["draft attempt 1", "draft attempt 2"]},
        retry_limits=2,
        semantics=Semantics(),
    ),
)
