"""`RecoveryPolicy`: the recovery ladder a procedure or SOP declares, as plain data.

A policy is an ordered tuple of rungs. When something fails (a *cause*), the ladder
(`sopy_actors.recovery.ladder.decide`) takes the first rung that applies to the cause and has
attempts left:

```
RecoveryPolicy(rungs=[
    Retry(max_attempts=3, backoff=Backoff(initial=1, multiplier=2, cap=30)),  # retryable errors only
    Fallback(to="myco.flows:CheapSummary"),       # a procedure class, or an agent's name
    Alternative(approaches_field="approaches"),   # the next entry of a list kept in the state
    Manual(reason="The summary service is down", choices=["retry", "skip", "abort"]),
])
```

Everything here is frozen pydantic data: a policy travels in SOP records as
`model_dump(mode="json")` and comes back with `model_validate`. Code is named, never stored:
a fallback procedure and a retry predicate are `module:qualname` references (a class or a
top-level function given here is turned into one), so a lambda is refused. Building a rung or
a policy checks every field at once and raises one `DefinitionError` listing every problem.

Pure Python; no Ray. Runs wherever the policy is built (driver) or read (SOP host).
"""

from __future__ import annotations

import math
import re
import typing
from collections.abc import Callable
from typing import Annotated, Any, Literal, Self

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    ModelWrapValidatorHandler,
    ValidationError,
    field_validator,
    model_validator,
)
from pydantic_core import PydanticCustomError

from sopy_actors.core.procedure import Procedure
from sopy_actors.core.references import reference_of
from sopy_actors.errors import DefinitionError, InputError

__all__ = [
    "CAUSE_KINDS",
    "Alternative",
    "Backoff",
    "CauseKind",
    "Fallback",
    "Manual",
    "RecoveryPolicy",
    "Retry",
    "Rung",
]

CauseKind = Literal["handler_raised", "rejection_limit", "agent_error", "sub_sop_failed", "timeout"]
"""What failed: a handler raised, the rejection limit was reached, an agent call failed
(`AgentError`, also `CircuitOpen`), a child SOP failed (`SubSOPFailed`), or a timeout fired."""

CAUSE_KINDS: tuple[CauseKind, ...] = typing.get_args(CauseKind)

# The same rule as AgentSpec.name: an agent's name never contains ":", a reference always does.
_AGENT_NAME = re.compile(r"^[A-Za-z0-9._-]{1,64}$")
_DOTTED = re.compile(r"^[A-Za-z_]\w*(\.[A-Za-z_]\w*)*$")


def _problem(message: str) -> PydanticCustomError:
    """A validation error whose message is exactly `message` (no pydantic prefix)."""
    return PydanticCustomError("recovery_policy", "{problem}", {"problem": message})


def _whole(value: Any, *, minimum: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        raise _problem(f"must be a whole number >= {minimum}, got {value!r}")
    return value


def _number(value: Any, *, minimum: float, maximum: float = math.inf) -> float:
    """A finite int or float in range; bools and strings are refused (pydantic would coerce them)."""
    number = isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)
    if not number or not minimum <= value <= maximum:
        high = f" and <= {maximum:g}" if math.isfinite(maximum) else ""
        raise _problem(f"must be a finite number >= {minimum:g}{high}, got {value!r}")
    return float(value)


def _subject_problems(error: ValidationError) -> list[str]:
    """One line per pydantic error: where (`rungs[1] Fallback.to`) and what."""
    tags = {"retry": "Retry", "fallback": "Fallback", "alternative": "Alternative", "manual": "Manual"}
    lines = []
    for item in error.errors():
        where, previous = "", None
        for part in item["loc"]:
            if isinstance(part, int):
                where += f"[{part}]"
            elif isinstance(previous, int) and part in tags:  # the union's tag: name the rung's class
                where += f" {tags[part]}"
            else:
                where += f".{part}" if where else str(part)
            previous = part
        message = "unknown field (misspelt?)" if item["type"] == "extra_forbidden" else str(item["msg"])
        lines.append(f"{where}: {message}" if where else message)
    return lines


def _definition_error(subject: str, error: ValidationError) -> DefinitionError:
    return DefinitionError(subject, _subject_problems(error))


class _Frozen(BaseModel):
    """Frozen, no extra fields; building it directly raises one DefinitionError listing every problem."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    def __init__(self, /, **data: Any) -> None:
        try:
            super().__init__(**data)
        except ValidationError as error:
            raise _definition_error(type(self).__name__, error) from None

    # Pydantic calls a model's own __init__ when validating it nested in another (a rung in a
    # policy) unless told it is the base one: then a policy lists the problems of all its rungs.
    __init__.__pydantic_base_init__ = True  # type: ignore[attr-defined]


class Backoff(_Frozen):
    """How long a retry waits: exponential, capped, with jitter.

    The delay before retry number `attempt` (1-based) is
    `min(cap, initial * multiplier ** (attempt - 1)) * (1 - jitter * u)` with `u` uniform in
    [0, 1): jitter only shortens a wait, so `cap` is a hard upper bound and retries of many SOPs
    that failed together spread over `[base * (1 - jitter), base]`.

    Attributes:
        initial: seconds before the first retry (>= 0).
        multiplier: growth per retry (>= 1).
        cap: the longest wait, in seconds (>= initial).
        jitter: the fraction of each wait that is random, 0 (none) to 1 (anywhere from 0 to the wait).

    Raises:
        DefinitionError: a field is invalid; every problem is listed.
    """

    initial: float = 1.0
    multiplier: float = 2.0
    cap: float = 60.0
    jitter: float = 0.2

    @field_validator("initial", mode="before")
    @classmethod
    def _check_initial(cls, value: Any) -> float:
        return _number(value, minimum=0.0)

    @field_validator("multiplier", mode="before")
    @classmethod
    def _check_multiplier(cls, value: Any) -> float:
        return _number(value, minimum=1.0)

    @field_validator("cap", mode="before")
    @classmethod
    def _check_cap(cls, value: Any) -> float:
        return _number(value, minimum=0.0)

    @field_validator("jitter", mode="before")
    @classmethod
    def _check_jitter(cls, value: Any) -> float:
        return _number(value, minimum=0.0, maximum=1.0)

    @model_validator(mode="after")
    def _cap_covers_initial(self) -> Self:
        if self.cap < self.initial:
            raise _problem(f"cap ({self.cap:g} s) must be >= initial ({self.initial:g} s)")
        return self

    def base_delay(self, attempt: int) -> float:
        """The wait before retry `attempt` (1-based) without jitter, in seconds."""
        if attempt < 1:
            raise InputError(f"attempt must be >= 1, got {attempt}", fields=("attempt",))
        if self.initial == 0:
            return 0.0
        try:
            raw = self.initial * self.multiplier ** (attempt - 1)
        except OverflowError:  # thousands of retries: far past any cap
            return self.cap
        return min(self.cap, raw)

    def delay(self, attempt: int, *, rng: Callable[[], float]) -> float:
        """The wait before retry `attempt` (1-based), in seconds, with jitter drawn from `rng`.

        Args:
            attempt: which retry, 1 for the first.
            rng: returns a float in [0, 1), e.g. `random.Random(seed).random`.

        Raises:
            InputError: `attempt` < 1, or `rng` returned a value outside [0, 1).
        """
        base = self.base_delay(attempt)
        u = rng()
        if not 0.0 <= u < 1.0:
            raise InputError(f"the random source must return a number in [0, 1), got {u!r}", fields=("rng",))
        return base * (1.0 - self.jitter * u)


def _cause_kinds(value: Any) -> tuple[CauseKind, ...]:
    """`on=`: one cause kind or a list of them, known and without repeats."""
    kinds = (value,) if isinstance(value, str) else value
    if not isinstance(kinds, list | tuple) or not kinds:
        raise _problem(f"must name at least one cause: one or a list of {', '.join(CAUSE_KINDS)}; got {value!r}")
    unknown = [kind for kind in kinds if kind not in CAUSE_KINDS]
    if unknown:
        raise _problem(f"unknown cause {', '.join(map(repr, unknown))}; the causes are {', '.join(CAUSE_KINDS)}")
    if len(set(kinds)) != len(kinds):
        raise _problem(f"names a cause twice: {list(kinds)!r}")
    return tuple(kinds)


def _check_reference(value: str, what: str) -> str:
    """A `module:qualname` string, checked for its form only: data is never imported here."""
    module, _, qualname = value.partition(":")
    if not _DOTTED.match(module) or not _DOTTED.match(qualname):
        raise _problem(f"{what} {value!r} is not a 'module:qualname' reference such as 'myco.flows:Summarise'")
    return value


class _Rung(_Frozen):
    """What every rung has: the causes it applies to."""

    on: tuple[CauseKind, ...] = CAUSE_KINDS

    @field_validator("on", mode="before")
    @classmethod
    def _check_on(cls, value: Any) -> tuple[CauseKind, ...]:
        return _cause_kinds(value)

    def applies_to(self, kind: CauseKind) -> bool:
        """Whether this rung may handle a cause of `kind`."""
        return kind in self.on


class Retry(_Rung):
    """Try the failed step again after a backoff wait (a durable timer on the actor runtime).

    Applies only to errors that are retryable (`sopy_actors.errors.is_retryable`), or for
    which `retry_on` says so.

    Attributes:
        max_attempts: retries after the first failure (>= 1).
        backoff: how long each retry waits.
        retry_on: a predicate `(error: SopyError) -> bool` as `module:qualname` (a top-level
            function may be given; it is stored as its reference); None: the error's `retryable`.
        on: the causes it applies to (default: all).

    Raises:
        DefinitionError: a field is invalid; every problem is listed.
    """

    strategy: Literal["retry"] = "retry"
    max_attempts: int = 3
    backoff: Backoff = Backoff()
    retry_on: str | None = None

    @field_validator("max_attempts", mode="before")
    @classmethod
    def _check_max_attempts(cls, value: Any) -> int:
        return _whole(value, minimum=1)

    @field_validator("retry_on", mode="before")
    @classmethod
    def _check_retry_on(cls, value: Any) -> str | None:
        if value is None:
            return None
        if isinstance(value, str):
            return _check_reference(value, "predicate")
        if isinstance(value, type) or not callable(value):
            raise _problem(f"must be a function (error) -> bool or its 'module:qualname', got {value!r}")
        try:
            return reference_of(value, what="retry_on predicate")
        except InputError as error:
            raise _problem(str(error)) from None


class Fallback(_Rung):
    """Hand the work to something else: a procedure (the SOP moves there) or another agent.

    Attributes:
        to: a `Procedure` subclass as `module:qualname` (the class itself may be given), or an
            agent: a `StrandsAgent` handle or `AgentSpec` (stored as its name, with its spec in
            `agent`). When an agent fallback is taken, the SOP's calls to the agent that failed
            (every agent call, when the cause names none) go to this agent from then on.
        agent: the fallback agent's spec as JSON (`AgentSpec.model_dump(mode="json")`); set
            from `to` when an agent is given, required for an agent fallback.
        max_attempts: how many times this fallback is taken per incident (>= 1).
        on: the causes it applies to (default: all).

    Raises:
        DefinitionError: a field is invalid; every problem is listed.
    """

    strategy: Literal["fallback"] = "fallback"
    to: str
    agent: dict[str, Any] | None = None
    max_attempts: int = 1

    @model_validator(mode="before")
    @classmethod
    def _take_agent_spec(cls, data: Any) -> Any:
        """`to=agent`: keep the agent's spec (JSON) beside its name."""
        if not isinstance(data, dict) or data.get("agent") is not None:
            return data
        to = data.get("to")
        spec: Any = getattr(to, "spec", to)
        dump = getattr(spec, "model_dump", None)
        if not isinstance(to, str | type) and callable(dump) and hasattr(spec, "name"):
            return {**data, "agent": dump(mode="json")}
        return data

    @model_validator(mode="after")
    def _agent_needs_its_spec(self) -> Self:
        if self.target == "agent" and self.agent is None:
            raise _problem(
                f"to={self.to!r}: an agent fallback needs the agent itself, e.g. Fallback(to=backup_agent) with a "
                "StrandsAgent, so that any process can call it"
            )
        return self

    @field_validator("to", mode="before")
    @classmethod
    def _check_to(cls, value: Any) -> str:
        if isinstance(value, type):
            if not issubclass(value, Procedure):
                raise _problem(f"{value.__qualname__} is not a Procedure subclass; give a procedure class or an agent name")
            try:
                return reference_of(value, what="fallback procedure")
            except InputError as error:
                raise _problem(str(error)) from None
        if isinstance(value, Procedure):
            raise _problem(f"give the procedure class, not an instance: to={type(value).__name__}")
        name = getattr(getattr(value, "spec", value), "name", None)
        if not isinstance(value, str) and isinstance(name, str):  # an agent handle or AgentSpec
            value = name
        if not isinstance(value, str):
            raise _problem(f"must be a procedure class, its 'module:qualname', or an agent name; got {value!r}")
        if ":" in value:
            return _check_reference(value, "procedure")
        if not _AGENT_NAME.match(value):
            raise _problem(
                f"{value!r} is neither a 'module:qualname' procedure reference nor an agent name "
                "(1-64 letters, digits or ._-)"
            )
        return value

    @field_validator("max_attempts", mode="before")
    @classmethod
    def _check_max_attempts(cls, value: Any) -> int:
        return _whole(value, minimum=1)

    @property
    def target(self) -> Literal["procedure", "agent"]:
        """Whether `to` names a procedure class or an agent."""
        return "procedure" if ":" in self.to else "agent"


class Alternative(_Rung):
    """Switch to the next approach of a list kept in the state, one per attempt.

    The ladder reads `state[approaches_field]` (a list) and never changes it: attempt n uses
    entry n - 1, so the list must stay as it is while the incident lasts. The runtime writes the
    approach into `state[current_field]` and delivers the failed event again.

    Attributes:
        approaches_field: the name of the state's list field.
        current_field: the name of the state's field that receives the approach to use.
        max_attempts: at most this many approaches per incident (None: every entry of the list).
        on: the causes it applies to (default: all).

    Raises:
        DefinitionError: a field is invalid; every problem is listed.
    """

    strategy: Literal["alternative"] = "alternative"
    approaches_field: str
    current_field: str = "current_approach"
    max_attempts: int | None = None

    @field_validator("approaches_field", "current_field", mode="before")
    @classmethod
    def _check_field(cls, value: Any) -> str:
        if not isinstance(value, str) or not value.isidentifier():
            raise _problem(f"must be the name of a list field of the state, such as 'approaches'; got {value!r}")
        return value

    @field_validator("max_attempts", mode="before")
    @classmethod
    def _check_max_attempts(cls, value: Any) -> int | None:
        return None if value is None else _whole(value, minimum=1)


class Manual(_Rung):
    """Pause the SOP until a person resolves it with one of `choices`.

    Attributes:
        reason: what the person is told, e.g. "The payment provider rejects every call".
        choices: the actions offered (at least one, no repeats), e.g. retry, skip, abort.
        max_attempts: how many times a person is asked per incident (>= 1); a resolution
            starts a new incident.
        on: the causes it applies to (default: all).

    Raises:
        DefinitionError: a field is invalid; every problem is listed.
    """

    strategy: Literal["manual"] = "manual"
    reason: str
    choices: tuple[str, ...] = ("retry", "skip", "abort")
    max_attempts: int = 1

    @field_validator("reason", mode="before")
    @classmethod
    def _check_reason(cls, value: Any) -> str:
        if not isinstance(value, str) or not value.strip():
            raise _problem(f"must say in words why a person is needed; got {value!r}")
        return value

    @field_validator("choices", mode="before")
    @classmethod
    def _check_choices(cls, value: Any) -> tuple[str, ...]:
        if isinstance(value, str) or not isinstance(value, list | tuple) or not value:
            raise _problem(f"must be a list of at least one action, e.g. ['retry', 'skip', 'abort']; got {value!r}")
        bad = [choice for choice in value if not isinstance(choice, str) or not choice.strip()]
        if bad:
            raise _problem(f"every choice must be a non-empty string; got {', '.join(map(repr, bad))}")
        if len(set(value)) != len(value):
            raise _problem(f"offers a choice twice: {list(value)!r}")
        return tuple(value)

    @field_validator("max_attempts", mode="before")
    @classmethod
    def _check_max_attempts(cls, value: Any) -> int:
        return _whole(value, minimum=1)


Rung = Annotated[Retry | Fallback | Alternative | Manual, Field(discriminator="strategy")]
"""One rung of the ladder; in JSON its `strategy` ("retry", "fallback", ...) names its kind."""


class RecoveryPolicy(BaseModel):
    """An ordered recovery ladder: for each failure, the first rung that applies and has attempts left.

    Declare it per procedure class (`sop_recovery = RecoveryPolicy(...)`) or per SOP. It is
    JSON data: `RecoveryPolicy.model_validate(policy.model_dump(mode="json")) == policy`.

    Attributes:
        rungs: the rungs, tried in this order.

    Raises:
        DefinitionError: when built or validated from data: a rung or the ladder is invalid;
            every problem is listed ("Invalid RecoveryPolicy for 3 reasons: ...").
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    rungs: tuple[Rung, ...]

    @model_validator(mode="wrap")
    @classmethod
    def _checked(cls, data: Any, handler: ModelWrapValidatorHandler[RecoveryPolicy]) -> RecoveryPolicy:
        # Here rather than in __init__, so that model_validate(data) raises the same error.
        try:
            policy = handler(data)
        except ValidationError as error:
            raise _definition_error(cls.__name__, error) from None
        problems = _ladder_problems(policy.rungs)
        if problems:
            raise DefinitionError(cls.__name__, problems)
        return policy

    def rungs_for(self, kind: CauseKind) -> list[tuple[int, Retry | Fallback | Alternative | Manual]]:
        """The rungs that apply to a cause of `kind`, with their positions, in ladder order."""
        return [(index, rung) for index, rung in enumerate(self.rungs) if rung.applies_to(kind)]


def _ladder_problems(rungs: tuple[Retry | Fallback | Alternative | Manual, ...]) -> list[str]:
    """Problems of the ladder as a whole (each rung is valid by itself)."""
    if not rungs:
        return ["rungs: a policy needs at least one rung, e.g. rungs=[Retry(max_attempts=3), Manual(reason='...')]"]
    problems = []
    for index, rung in enumerate(rungs):
        first = rungs.index(rung)
        if first != index:
            problems.append(
                f"rungs[{index}] repeats rungs[{first}] ({type(rung).__name__}); raise its max_attempts instead"
            )
    return problems
