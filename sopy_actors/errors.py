"""Every error sopy_actors raises, in one tree.

```
SopyError                    root; `retryable` tells recovery whether trying again can help
├── DefinitionError          a procedure, SOP or workflow is built wrong (raised when it is built)
├── InputError               bad input: an event, payload or argument that fails validation
│   └── UnknownSOP           an SOP id that no host and no store knows
├── TransitionError          a handler returned something that is not a transition
├── HandlerError             a handler raised; carries sop id, procedure, event type, cause
├── StateError               state cannot be committed, loaded or rolled back
├── SOPFailed                an SOP ended in failure (its `result()` raises this or the cause)
│   └── SOPCancelled         an SOP (or its parent) was cancelled
├── RuntimeUnavailable       Ray, a host or a system actor cannot be reached (retryable)
├── AgentError               an agent, its model or a tool failed
└── RecoveryExhausted        rejections or recovery attempts went past the retry limit
```

Errors cross actor boundaries, so every class round-trips through pickle: the base class's
`__reduce__` rebuilds an error from its message and attributes, whatever its constructor takes.
"""

from __future__ import annotations

from typing import Any

__all__ = [
    "AgentError",
    "DefinitionError",
    "HandlerError",
    "InputError",
    "RecoveryExhausted",
    "RuntimeUnavailable",
    "SOPCancelled",
    "SOPFailed",
    "SopyError",
    "StateError",
    "TransitionError",
    "UnknownSOP",
]


def _rebuild(cls: type[SopyError], message: str, attributes: dict[str, Any]) -> SopyError:
    error = cls.__new__(cls)
    Exception.__init__(error, message)
    error.__dict__.update(attributes)
    return error


class SopyError(Exception):
    """Root of every sopy_actors error.

    Attributes:
        retryable: True when the same call may succeed if tried again.
    """

    retryable: bool = False

    def __reduce__(self) -> tuple[Any, ...]:
        return (_rebuild, (type(self), str(self), dict(self.__dict__)))


class DefinitionError(SopyError):
    """A procedure, SOP or workflow definition is invalid; lists every problem found.

    Attributes:
        problems: one line per problem.
    """

    def __init__(self, subject: str, problems: list[str]) -> None:
        self.subject = subject
        self.problems = list(problems)
        count = len(self.problems)
        reasons = "reason" if count == 1 else "reasons"
        lines = "\n".join(f"  - {problem}" for problem in self.problems)
        super().__init__(f"Invalid {subject} for {count} {reasons}:\n{lines}")


class InputError(SopyError, ValueError):
    """Input failed validation; the message names each offending field.

    Attributes:
        fields: dotted paths of the offending fields (empty when the input as a whole is wrong).
    """

    def __init__(self, message: str, *, fields: tuple[str, ...] = ()) -> None:
        self.fields = tuple(fields)
        super().__init__(message)


class UnknownSOP(InputError):
    """No live host and no store knows this SOP id."""

    def __init__(self, sop_id: str) -> None:
        self.sop_id = sop_id
        super().__init__(f"No SOP with id {sop_id!r}: it was never started here or was deleted")


class TransitionError(SopyError):
    """A handler returned a value that is not a procedure, `self`, `End()` or a str."""


class HandlerError(SopyError):
    """A handler raised an exception other than AssertionError.

    Attributes:
        sop_id: the SOP whose event failed.
        procedure: name of the procedure whose handler raised.
        event_type: name of the event's class.
        cause_type: name of the exception's class.
        cause_message: the exception's message.
    """

    def __init__(
        self, *, sop_id: str, procedure: str, event_type: str, cause: BaseException
    ) -> None:
        self.sop_id = sop_id
        self.procedure = procedure
        self.event_type = event_type
        self.cause_type = type(cause).__name__
        self.cause_message = str(cause)
        super().__init__(
            f"sop=<{sop_id}>, procedure=<{procedure}>, event=<{event_type}> | handler raised "
            f"{self.cause_type}: {self.cause_message}"
        )


class StateError(SopyError):
    """State cannot be committed, loaded, validated or rolled back."""


class SOPFailed(SopyError):
    """An SOP finished in failure.

    Attributes:
        sop_id: the failed SOP.
        reason: what failed, in words.
    """

    def __init__(self, sop_id: str, reason: str) -> None:
        self.sop_id = sop_id
        self.reason = reason
        super().__init__(f"sop=<{sop_id}> | failed: {reason}")


class SOPCancelled(SOPFailed):
    """An SOP was cancelled, directly or through its parent."""

    def __init__(self, sop_id: str, reason: str = "cancelled") -> None:
        super().__init__(sop_id, reason)


class RuntimeUnavailable(SopyError):
    """Ray, an SOP host or a system actor could not be reached; try again."""

    retryable = True


class AgentError(SopyError):
    """An agent, its model or one of its tools failed.

    Attributes:
        agent: the agent's name.
    """

    def __init__(self, message: str, *, agent: str = "", retryable: bool = False) -> None:
        self.agent = agent
        self.retryable = retryable
        super().__init__(message)


class RecoveryExhausted(SopyError):
    """Rejections or recovery attempts went past the SOP's retry limit.

    Attributes:
        sop_id: the SOP that gave up.
        attempts: how many attempts were made.
        last_prompt: the last recovery prompt, if any.
    """

    def __init__(self, sop_id: str, attempts: int, last_prompt: str | None = None) -> None:
        self.sop_id = sop_id
        self.attempts = attempts
        self.last_prompt = last_prompt
        detail = f"; last recovery prompt: {last_prompt}" if last_prompt else ""
        super().__init__(f"sop=<{sop_id}> | recovery exhausted after {attempts} attempts{detail}")
