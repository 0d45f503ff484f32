"""Every error sopy_actors raises, in one tree.

```
SopyError                    root; `retryable` tells recovery whether trying again can help
├── DefinitionError          a procedure, SOP or workflow is built wrong (raised when it is built)
├── InputError               bad input: an event, payload or argument that fails validation
│   └── UnknownSOP           an SOP id that no host and no store knows
├── TransitionError          a handler returned something that is not a transition
├── HandlerError             a handler raised; carries sop id, procedure, event type, cause
├── StateError               state cannot be committed, loaded or rolled back
│   └── VersionConflict      a commit does not follow the stored version (another writer was first)
├── SOPFailed                an SOP ended in failure (its `result()` raises this or the cause)
│   └── SOPCancelled         an SOP (or its parent) was cancelled
├── RuntimeUnavailable       Ray, a host or a system actor cannot be reached (retryable)
│   └── TimedOut             no answer within the timeout (also a TimeoutError)
├── AgentError               an agent, its model or a tool failed
├── CircuitOpen              a call refused at once: its target's circuit breaker is open (retryable)
├── AwaitingHuman            an SOP paused for a person takes no events until resolved (retryable)
└── RecoveryExhausted        rejections or recovery attempts went past the retry limit
    └── SOPViolation         a `with sop:` block ended before End (SOPy's name)
```

Errors cross actor boundaries in one wire format, `error_to_wire` / `error_from_wire`: a JSON
dict of the class name, the message and the attributes. Only the classes of this tree are
rebuilt (by name, never by import); any other exception is first turned into a `SopyError` by
`as_sopy_error`, whose `retryable` comes from one isinstance map. Every class also round-trips
through pickle: the base class's `__reduce__` rebuilds it from its message and attributes.
"""

from __future__ import annotations

import sys
from typing import Any

__all__ = [
    "AgentError",
    "AwaitingHuman",
    "CircuitOpen",
    "DefinitionError",
    "HandlerError",
    "InputError",
    "RecoveryExhausted",
    "RuntimeUnavailable",
    "SOPCancelled",
    "SOPFailed",
    "SOPViolation",
    "SopyError",
    "StateError",
    "TimedOut",
    "TransitionError",
    "UnknownSOP",
    "VersionConflict",
    "as_sopy_error",
    "error_from_wire",
    "error_to_wire",
    "is_retryable",
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
        self.problems = tuple(problems)
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


class VersionConflict(StateError):
    """A commit was refused: its version does not follow the SOP's stored version.

    Two writers committed for one SOP (e.g. a host split from the cluster and its replacement):
    the other one was first. Nothing of this commit was written; the SOP goes on from the
    stored version. Not retryable as such: whether the event still applies to the state the
    other writer left is the caller's decision.

    Attributes:
        sop_id: the SOP.
        stored: the version in the store.
        attempted: the version of the refused commit (a commit with an event must be
            stored + 1; one without an event, stored or stored + 1).
    """

    def __init__(self, sop_id: str, *, stored: int, attempted: int) -> None:
        self.sop_id = sop_id
        self.stored = stored
        self.attempted = attempted
        super().__init__(
            f"sop=<{sop_id}> | version conflict: a commit of version {attempted} does not follow the "
            f"stored version {stored}; another writer committed this SOP first, nothing was written "
            "(send the event again if it still applies to the stored state)"
        )


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


class TimedOut(RuntimeUnavailable, TimeoutError):
    """No answer within the timeout; the operation may still complete (try again or wait)."""


class AgentError(SopyError):
    """An agent, its model or one of its tools failed.

    Attributes:
        agent: the agent's name.
    """

    def __init__(self, message: str, *, agent: str = "", retryable: bool = False) -> None:
        self.agent = agent
        self.retryable = retryable
        super().__init__(message)


class CircuitOpen(SopyError):
    """A call was refused without being made: the target's circuit breaker is open.

    Retryable: the target may answer once the cool-down is over (recovery skips to a fallback).

    Attributes:
        target: the agent or tool whose circuit is open.
        retry_after: seconds until a probe call may be let through (0: now, if no other caller
            takes the probe first).
    """

    retryable = True

    def __init__(self, target: str, *, retry_after: float) -> None:
        self.target = target
        self.retry_after = max(0.0, float(retry_after))
        super().__init__(
            f"circuit=<{target}> | open: calls fail fast for {self.retry_after:.1f} s more, then one "
            "probe call is let through; use a fallback meanwhile"
        )


class AwaitingHuman(SopyError):
    """An event was refused: the SOP waits for a person (a `Manual` recovery step).

    Retryable: the SOP takes events again once someone resolves it (`handle.resolve`,
    `sopy-actors resolve`).

    Attributes:
        sop_id: the SOP.
        reason: what the person is asked.
    """

    retryable = True

    def __init__(self, sop_id: str, reason: str) -> None:
        self.sop_id = sop_id
        self.reason = reason
        super().__init__(
            f"sop=<{sop_id}> | waits for a person: {reason}; it takes events again once resolved "
            f"(sopy-actors resolve {sop_id} --action ...)"
        )


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


class SOPViolation(RecoveryExhausted):
    """A `with sop:` block ended before End and its error handler did not finish the SOP.

    Built as SOPy builds it, `SOPViolation(message)`; the message is SOPy's ("SOP left
    unfinished: current procedure is X with prompt P.").

    Args:
        message: what was violated.
        sop_id: the SOP's id, when known.
        attempts: the rejections and recovery attempts counted, when known.
    """

    def __init__(self, message: str, *, sop_id: str = "", attempts: int = 0) -> None:
        self.sop_id = sop_id
        self.attempts = attempts
        self.last_prompt = message
        SopyError.__init__(self, message)


# Errors worth retrying, by class (checked with isinstance): the one map. Third-party classes
# are named by module and looked up in `sys.modules` only: an error of a module that was never
# imported cannot occur, so nothing is imported here.
_RETRYABLE: tuple[type[BaseException], ...] = (TimeoutError, ConnectionError)
_RETRYABLE_ELSEWHERE = (
    ("httpx", "ConnectError"),
    ("httpx", "ConnectTimeout"),
    ("strands.types.exceptions", "ModelThrottledException"),
)
_WIRE_ATTRIBUTES = (str, int, float, bool, type(None))


def is_retryable(error: BaseException) -> bool:
    """Whether calling again may succeed: a SopyError says so itself, others by their class."""
    if isinstance(error, SopyError):
        return error.retryable
    if isinstance(error, _RETRYABLE):
        return True
    for module_name, class_name in _RETRYABLE_ELSEWHERE:
        cls = getattr(sys.modules.get(module_name), class_name, None)
        if isinstance(cls, type) and isinstance(error, cls):
            return True
    return False


def _error_classes() -> dict[str, type[SopyError]]:
    classes: dict[str, type[SopyError]] = {}
    pending: list[type[SopyError]] = [SopyError]
    while pending:
        cls = pending.pop()
        classes[cls.__name__] = cls
        pending.extend(cls.__subclasses__())
    return classes


def as_sopy_error(error: BaseException, *, wrap: type[SopyError] | None = None) -> SopyError:
    """`error` itself if it is a SopyError, else a `wrap` (default RuntimeUnavailable) saying what it was.

    The wrapper's `retryable` comes from the error's class (timeouts and connection errors are).
    """
    if isinstance(error, SopyError):
        return error
    cls = wrap or RuntimeUnavailable
    wrapped = _rebuild(cls, f"{type(error).__name__}: {error}", {})
    wrapped.retryable = is_retryable(error)
    return wrapped


def error_to_wire(error: BaseException) -> dict[str, Any]:
    """The error as JSON data: `{"type", "message", "attributes"}`; see `error_from_wire`."""
    sopy_error = as_sopy_error(error)
    attributes = {
        name: list(value) if isinstance(value, tuple | list) else value
        for name, value in vars(sopy_error).items()
        if isinstance(value, (*_WIRE_ATTRIBUTES, tuple, list))
    }
    return {"type": type(sopy_error).__name__, "message": str(sopy_error), "attributes": attributes}


def error_from_wire(data: dict[str, Any]) -> SopyError:
    """The error `error_to_wire` encoded, as the same class with the same attributes.

    A type name outside this module's tree (a newer peer, a tampered record) becomes a
    `SopyError` with the same message; nothing is imported.
    """
    cls = _error_classes().get(str(data.get("type")), SopyError)
    attributes = {
        name: tuple(value) if isinstance(value, list) else value
        for name, value in dict(data.get("attributes") or {}).items()
    }
    return _rebuild(cls, str(data.get("message", "")), attributes)
