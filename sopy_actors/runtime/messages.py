"""The messages that cross the runtime's actors, one named shape per concept.

Hot-path shapes (send items, handler calls and results, replies) are NamedTuples and
TypedDicts: they cross as JSON, at no cost over plain lists and dicts. What users read
(`Receipt`, `SOPStatus`) are frozen pydantic models. Errors travel in the one wire format of
`sopy_actors.errors` (`error_to_wire` / `error_from_wire`).
"""

from __future__ import annotations

from typing import Any, NamedTuple, TypedDict

from pydantic import BaseModel, ConfigDict

from sopy_actors.core.transition import Outcome
from sopy_actors.errors import error_from_wire

__all__ = [
    "Answer",
    "ErrorWire",
    "FilterSpec",
    "HandlerCall",
    "HandlerResult",
    "Receipt",
    "Reply",
    "SendItem",
    "unwrap",
]

ErrorWire = dict[str, Any]
"""An error as `sopy_actors.errors.error_to_wire` writes it."""


class FilterSpec(TypedDict):
    """An SOP's event filters: accepted event wire names and agent senders (empty: all)."""

    observed: list[str]
    agents: list[str]


class SendItem(NamedTuple):
    """One event for one SOP (`SOPHostActor.send_batch` takes a JSON list of them).

    Attributes:
        sender: the sending process (events of one sender are applied in `seq` order).
        seq: the event's number among its sender's events to this SOP, from 0.
        floor: every number of this sender below it is settled (arrived, or never will).
    """

    sop_id: str
    event: dict[str, Any]
    sender: str | None = None
    seq: int | None = None
    floor: int | None = None


class HandlerCall(NamedTuple):
    """One handler run a host asks of a ProcedureActor; everything in JSON form."""

    sop_id: str
    procedure: dict[str, Any]
    state: dict[str, Any]
    event: dict[str, Any]
    filters: FilterSpec
    semantics: dict[str, Any]
    substitutes: dict[str, dict[str, Any]] = {}  # noqa: RUF012 (a NamedTuple default, never mutated)
    deadline: float | None = None  # Unix time past which the handler is not started (the host gave up)


class HandlerResult(TypedDict, total=False):
    """What a handler run did (`error` set instead of the rest when it failed; `pending` a
    token to collect the result of a handler still running when its batch answered; `raised`
    the exception the handler raised, in wire form, for a recovery policy to answer)."""

    outcome: str
    procedure: dict[str, Any]
    state: dict[str, Any]
    prompt: str | None
    handler: str | None
    event_type: str
    seconds: float
    error: ErrorWire
    pending: str
    raised: ErrorWire


class Reply(TypedDict, total=False):
    """A host's answer to one event: a receipt's fields, or `error`; `settles` answers a
    `probe` (see `SOPHostActor.send`)."""

    outcome: str
    procedure: str
    version: int
    prompt: str | None
    instruction: str | None
    error: ErrorWire
    settles: bool


class Answer(TypedDict, total=False):
    """A host's answer to a query about one SOP: `value`, or `error`."""

    value: Any
    error: ErrorWire


def unwrap(answer: Reply | Answer) -> Any:
    """The answer itself (a Reply) or its `value` (an Answer); raises the error it carries."""
    if "error" in answer:
        raise error_from_wire(answer["error"])
    return answer.get("value", answer)


class Receipt(BaseModel):
    """What a committed event did.

    Attributes:
        outcome: transitioned, stayed, rejected, ended or ignored.
        procedure: the procedure the SOP is in now.
        version: the SOP's version after this event.
        prompt: the recovery prompt (rejected) or the End prompt (ended).
        instruction: the instruction (prompt) of the procedure the SOP is in now, when known.
    """

    model_config = ConfigDict(frozen=True)

    outcome: Outcome
    procedure: str
    version: int
    prompt: str | None = None
    instruction: str | None = None

    @property
    def rejected(self) -> bool:
        """True when the SOP refused the event; `prompt` says what to do instead."""
        return self.outcome is Outcome.REJECTED
