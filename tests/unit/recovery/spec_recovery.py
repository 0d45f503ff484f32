"""The spec's Multi-Level Recovery (spec/advanced-patterns.md, "Advanced Error Recovery", 1.).

`MultiLevelRecovery` is the spec's procedure as written, imports adapted to sopy_actors (only
trailing whitespace was dropped). The spec leaves the rest to the reader; here it is:

- `RecoveryState`: the fields the strategies read and write;
- `OperationFailed`: the failure event; its payload has the `retryable` flag `_quick_retry` reads;
- `RecoveryResult`: what a strategy returns;
- `ContinueOperation`: the operation running again with what recovery chose (the primary method,
  the fallback, or the current approach). Its success ends the SOP; its failure goes back to
  the ladder, marking a failed fallback as spent first (the spec's state has no other way to say
  "the fallback failed too", so the fallback would otherwise be chosen forever).
"""

from __future__ import annotations

from pydantic import BaseModel, Field

from sopy_actors import SOP, End, Event, Procedure, handler, make_prompt


class RecoveryState(BaseModel):
    retry_count: int = 0
    has_fallback_available: bool = True
    using_fallback: bool = False
    alternative_approaches: list[str] = Field(default_factory=list)
    current_approach: str | None = None
    requires_manual_intervention: bool = False


class Failure(BaseModel):
    message: str
    retryable: bool = True


class OperationFailed(Event[Failure]):
    pass


class OperationSucceeded(Event[str]):
    pass


class RecoveryResult(BaseModel):
    success: bool
    action: str | None = None


# --- the spec's procedure, as written -----------------------------------------------------


class MultiLevelRecovery(Procedure[RecoveryState]):
    def __init__(self):
        self.recovery_strategies = [
            self._quick_retry,
            self._fallback_method,
            self._alternative_approach,
            self._manual_intervention
        ]
        self.current_strategy = 0

    @handler
    def handle_operation_failed(self, state: RecoveryState, event: OperationFailed):
        failure = event.payload

        # Try recovery strategies in order
        if self.current_strategy < len(self.recovery_strategies):
            strategy = self.recovery_strategies[self.current_strategy]
            self.current_strategy += 1

            recovery_result = strategy(state, failure)
            if recovery_result.success:
                # Reset strategy counter on success
                self.current_strategy = 0
                return ContinueOperation()
            else:
                # Try next strategy
                return self.handle_operation_failed(state, event)
        else:
            # All strategies exhausted
            return "All recovery strategies failed. Manual intervention required."

    def _quick_retry(self, state, failure):
        """Simple retry strategy"""
        if failure.retryable and state.retry_count < 3:
            state.retry_count += 1
            return RecoveryResult(success=True, action="retry")
        return RecoveryResult(success=False)

    def _fallback_method(self, state, failure):
        """Try alternative method"""
        if state.has_fallback_available:
            state.using_fallback = True
            return RecoveryResult(success=True, action="fallback")
        return RecoveryResult(success=False)

    def _alternative_approach(self, state, failure):
        """Completely different approach"""
        if state.alternative_approaches:
            approach = state.alternative_approaches.pop(0)
            state.current_approach = approach
            return RecoveryResult(success=True, action="alternative")
        return RecoveryResult(success=False)

    def _manual_intervention(self, state, failure):
        """Request human intervention"""
        state.requires_manual_intervention = True
        return RecoveryResult(success=True, action="manual")


# --- what the spec leaves to the reader ---------------------------------------------------


class ContinueOperation(Procedure[RecoveryState]):
    prompt = make_prompt("Run the operation again with the method recovery chose.")

    @handler
    def on_succeeded(self, state: RecoveryState, event: OperationSucceeded) -> Procedure[RecoveryState]:
        return End(prompt=f"done: {event.payload}")

    @handler
    def on_failed(self, state: RecoveryState, event: OperationFailed) -> Procedure[RecoveryState] | str:
        if state.using_fallback:  # the fallback failed too: it is spent
            state.using_fallback = False
            state.has_fallback_available = False
        return MultiLevelRecovery().handle_operation_failed(state, event)


def recovery_sop(*approaches: str, has_fallback: bool = True) -> SOP[RecoveryState]:
    """The SOP: it starts in the ladder, as if the operation had just been started and may fail."""
    state = RecoveryState(has_fallback_available=has_fallback, alternative_approaches=list(approaches))
    return SOP(state=state, init_proc=MultiLevelRecovery())
