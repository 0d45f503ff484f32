"""SOPy's `sopy.core.procedure`: `Procedure`, `End`, `handler` and the state type `Sigma`.

`Procedure` and `End` are the core's classes with SOPy's remaining behaviour on top:

- an event type listed in `ignore` is accepted silently even when the procedure has a handler
  for it (SOPy's tutorial: the handler "will never be called");
- `str(procedure)` is `Name(prompt text)`;
- `End` has SOPy's prompt, "Finish the procedure, and report related results to the user",
  and takes its prompt positionally, `End(make_prompt("..."))`.

Everything else (handler tables, `recover_prompt` and its texts, attributes kept across
events) is the core's (`sopy_actors.core.procedure`). Pure Python.
"""

from __future__ import annotations

from typing import Any, TypeVar

from sopy_actors.core.events import Event
from sopy_actors.core.procedure import End as _CoreEnd
from sopy_actors.core.procedure import Procedure as _CoreProcedure
from sopy_actors.core.procedure import Prompt, handler, make_prompt

__all__ = ["End", "Procedure", "Sigma", "handler"]

Sigma = TypeVar("Sigma")
"""The state type of a procedure: `class Drafting(Procedure[DraftState])`."""


class Procedure(_CoreProcedure[Sigma]):
    """A state of an SOP: a prompt for the LLM and `@handler` methods for events.

    Attributes:
        prompt: what the LLM should do here (class attribute, or per instance).
        ignore: event types accepted silently, whether or not a handler exists for them.
    """

    @classmethod
    def sop_handler_for(cls, event_type: type[Event[Any]]) -> str | None:
        """Name of the method handling `event_type`; None when it is ignored or unhandled."""
        if any(isinstance(kind, type) and issubclass(event_type, kind) for kind in cls.ignore):
            return None
        return super().sop_handler_for(event_type)

    def __repr__(self) -> str:
        return f"{self.sop_name}({self.prompt})"


class End(_CoreEnd, Procedure[Any]):
    """The terminal procedure: a handler returning `End()` finishes the SOP.

    Args:
        prompt: what finishing means here; SOPy's default otherwise.
    """

    prompt = make_prompt("Finish the procedure, and report related results to the user")

    def __init__(self, prompt: Prompt | None = None) -> None:
        super().__init__(prompt=prompt)
