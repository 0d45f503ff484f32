"""The recovery ladder: retry with backoff, fallback, alternative approach, a person; circuit breakers.

Pure data and pure decisions, no Ray:

- `RecoveryPolicy` (`policy`): the ladder a procedure class or an SOP declares, JSON data that
  travels in SOP records.
- `decide` (`ladder`): for one failure (`Cause`) and the `RecoveryHistory` so far, the next
  `Step` (`RetryLater`, `UseFallback`, `UseAlternative`, `AwaitHuman`, `GiveUp`) and the
  `RecoveryEntry` that records it.
- `Circuit` / `CircuitBreaker` (`breaker`): the circuit-breaker state machine, and
  `CircuitOpen`, the retryable error of a refused call.

An engine applies a step: it schedules a retry as a durable timer, moves the SOP to the
fallback procedure or sends the work to the fallback agent, hands the next approach to the
procedure, or parks the SOP as waiting for a person until `resolve`; it appends each entry to
the SOP's history and counts it in `sopy_recovery_steps_total{strategy, outcome}`.

The spec's own form of the ladder, a `MultiLevelRecovery` procedure whose strategies are
methods, needs none of this: it is ordinary procedure code and runs on every engine.
"""

from sopy_actors.errors import CircuitOpen
from sopy_actors.recovery.breaker import (
    CIRCUIT_STATE_CODES,
    BreakerSettings,
    Circuit,
    CircuitBreaker,
    CircuitStateName,
)
from sopy_actors.recovery.ladder import (
    AwaitHuman,
    Cause,
    Decision,
    EntryOutcome,
    GiveUp,
    RecoveryEntry,
    RecoveryHistory,
    RetryLater,
    Step,
    Strategy,
    UseAlternative,
    UseFallback,
    decide,
)
from sopy_actors.recovery.policy import (
    CAUSE_KINDS,
    Alternative,
    Backoff,
    CauseKind,
    Fallback,
    Manual,
    RecoveryPolicy,
    Retry,
    Rung,
)

__all__ = [
    "CAUSE_KINDS",
    "CIRCUIT_STATE_CODES",
    "Alternative",
    "AwaitHuman",
    "Backoff",
    "BreakerSettings",
    "Cause",
    "CauseKind",
    "Circuit",
    "CircuitBreaker",
    "CircuitOpen",
    "CircuitStateName",
    "Decision",
    "EntryOutcome",
    "Fallback",
    "GiveUp",
    "Manual",
    "RecoveryEntry",
    "RecoveryHistory",
    "RecoveryPolicy",
    "Retry",
    "RetryLater",
    "Rung",
    "Step",
    "Strategy",
    "UseAlternative",
    "UseFallback",
    "decide",
]
