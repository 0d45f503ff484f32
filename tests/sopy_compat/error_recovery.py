"""SOPy tutorial 6 (error recovery), re-implemented from its descriptions.

Recovery texts by status code, assertions as recovery prompts, retry with backoff, a fallback,
a circuit breaker, a recovery procedure that counts errors in the state, multi-level recovery.
"""

from __future__ import annotations

import time
from typing import Any

from pydantic import BaseModel, Field

from sopy_actors.sopy import End, Event, Procedure, handler, make_prompt


class RecoveryState(BaseModel):
    api_data: dict[str, Any] = Field(default_factory=dict)
    validated_data: list[dict[str, Any]] = Field(default_factory=list)
    tried_fallback: bool = False
    error_count: int = 0
    recovery_attempted: bool = False


class Response(BaseModel):
    status_code: int = 200
    error_message: str = ""
    data: dict[str, Any] = Field(default_factory=dict)


class APIResponse(Event[Response]):
    pass


class DataReceived(Event[list[dict[str, Any]] | None]):
    pass


class CallAPI(Procedure[RecoveryState]):
    prompt = make_prompt("Call the API and validate what it returns")

    @handler
    def handle_api_response(self, state: RecoveryState, event: APIResponse):
        response = event.payload
        if response.status_code == 429:
            return "API rate limit exceeded. Please wait and try again."
        elif response.status_code >= 500:
            return f"Server error ({response.status_code}). Please retry the request."
        elif response.status_code >= 400:
            return f"Request error: {response.error_message}. Please check the request and try again."
        state.api_data = response.data
        return ValidateData()


class ValidateData(Procedure[RecoveryState]):
    prompt = make_prompt("Validate the data")

    @handler
    def handle_data_validation(self, state: RecoveryState, event: DataReceived):
        data = event.payload
        assert data is not None, "No data received. Please ensure data source is available."
        assert len(data) > 0, "Empty data set received. Please provide valid data."
        assert all(item.get("id") for item in data), "Data items missing required 'id' field. Please check data format."
        state.validated_data = data
        return End()


class OperationFailed(Event[str]):
    pass


class OperationSucceeded(Event[str]):
    pass


class RetryProcedure(Procedure[RecoveryState]):
    prompt = make_prompt("Run the operation, retrying with backoff")

    def __init__(self) -> None:
        self.attempt_count = 0
        self.max_attempts = 3
        self.backoff_seconds = [1, 2, 4]

    @handler
    def handle_operation_failed(self, state: RecoveryState, event: OperationFailed):
        self.attempt_count += 1
        if self.attempt_count >= self.max_attempts:
            return "Maximum retry attempts exceeded. Operation failed permanently."
        backoff = self.backoff_seconds[min(self.attempt_count - 1, len(self.backoff_seconds) - 1)]
        return f"Operation failed (attempt {self.attempt_count}/{self.max_attempts}). Waiting {backoff} seconds before retry."

    @handler
    def handle_operation_succeeded(self, state: RecoveryState, event: OperationSucceeded):
        return End()


class PrimaryMethodFailed(Event[str]):
    pass


class FallbackMethodFailed(Event[str]):
    pass


class FallbackProcedure(Procedure[RecoveryState]):
    prompt = make_prompt("Run the primary method")

    @handler
    def handle_primary_method_failed(self, state: RecoveryState, event: PrimaryMethodFailed):
        if not state.tried_fallback:
            state.tried_fallback = True
            return TryFallbackMethod()
        return "Both primary and fallback methods failed. Manual intervention required."


class TryFallbackMethod(Procedure[RecoveryState]):
    prompt = make_prompt("Run the fallback method")

    @handler
    def handle_fallback_method_failed(self, state: RecoveryState, event: FallbackMethodFailed):
        return FallbackProcedure()

    @handler
    def handle_operation_succeeded(self, state: RecoveryState, event: OperationSucceeded):
        return End()


class OperationRequest(Event[str]):
    pass


class CircuitBreakerProcedure(Procedure[RecoveryState]):
    prompt = make_prompt("Call the service unless the circuit is open")

    def __init__(self) -> None:
        self.failure_count = 0
        self.failure_threshold = 5
        self.circuit_open = False
        self.last_failure_time = 0.0
        self.recovery_timeout = 60.0

    @handler
    def handle_operation_request(self, state: RecoveryState, event: OperationRequest):
        if self.circuit_open:
            if time.time() - self.last_failure_time > self.recovery_timeout:
                self.circuit_open = False
                self.failure_count = 0
            else:
                return "Circuit breaker is open. Service temporarily unavailable."
        return End()

    @handler
    def handle_operation_failed(self, state: RecoveryState, event: OperationFailed):
        self.failure_count += 1
        self.last_failure_time = time.time()
        if self.failure_count >= self.failure_threshold:
            self.circuit_open = True
            return "Too many failures. Circuit breaker opened to prevent cascade failures."
        return "Operation failed. Will retry."


class Watching(Procedure[RecoveryState]):
    prompt = make_prompt("Run the operation")

    @handler
    def handle_operation_failed(self, state: RecoveryState, event: OperationFailed):
        state.error_count += 1
        state.recovery_attempted = True
        return RecoveryProcedure()


class RecoveryProcedure(Procedure[RecoveryState]):
    prompt = make_prompt("Recover from the failure")

    @handler
    def handle_operation_succeeded(self, state: RecoveryState, event: OperationSucceeded):
        return End()


class Failure(BaseModel):
    failure_type: str


class SystemFailed(Event[Failure]):
    pass


class MultiLevelRecovery(Procedure[RecoveryState]):
    prompt = make_prompt("Recover at the right level")

    @handler
    def handle_operation_failed(self, state: RecoveryState, event: SystemFailed):
        kind = event.payload.failure_type
        if kind == "TRANSIENT":
            return "Transient failure detected. Retrying immediately."
        elif kind == "RESOURCE":
            return WaitForResourcesProcedure()
        elif kind == "CONFIGURATION":
            return ReconfigureProcedure()
        else:
            return EscalateProcedure()


class WaitForResourcesProcedure(End):
    prompt = make_prompt("Wait for resources")


class ReconfigureProcedure(End):
    prompt = make_prompt("Reconfigure the system")


class EscalateProcedure(End):
    prompt = make_prompt("Escalate to an operator")
