"""Events the runtime itself sends to SOPs: a child SOP finished or failed, a procedure's
time ran out, an SOP waits for a person.

They are optional: a procedure without a handler for them ignores them instead of rejecting.
"""

from __future__ import annotations

from typing import Any, ClassVar, TypeVar

from pydantic import BaseModel

from sopy_actors.core.events import Event
from sopy_actors.errors import SopyError, error_from_wire

__all__ = [
    "HumanIntervention",
    "HumanInterventionRequested",
    "ProcedureTimedOut",
    "ProcedureTimeout",
    "SubSOPCompleted",
    "SubSOPError",
    "SubSOPFailed",
    "SubSOPResult",
]

M = TypeVar("M", bound=BaseModel)


class SubSOPResult(BaseModel):
    """A child SOP's final state, as JSON data; `state_as(Model)` validates it."""

    child_id: str
    name: str
    state: dict[str, Any]

    def state_as(self, model: type[M]) -> M:
        """The child's final state validated as `model`."""
        return model.model_validate(self.state)


class SubSOPError(BaseModel):
    """Why a child SOP failed: its error in the wire format of `sopy_actors.errors`."""

    child_id: str
    name: str
    error: dict[str, Any]

    @property
    def error_type(self) -> str:
        """The error's class name, e.g. "RecoveryExhausted" or "SOPCancelled"."""
        return str(self.error.get("type", "SopyError"))

    @property
    def message(self) -> str:
        """The error's message."""
        return str(self.error.get("message", ""))

    def exception(self) -> SopyError:
        """The child's error as the exception it raised (same class and fields)."""
        return error_from_wire(self.error)


class SubSOPCompleted(Event[SubSOPResult]):
    """A child SOP reached End."""

    sop_optional: ClassVar[bool] = True
    sop_from_runtime: ClassVar[bool] = True


class SubSOPFailed(Event[SubSOPError]):
    """A child SOP failed or was cancelled."""

    sop_optional: ClassVar[bool] = True
    sop_from_runtime: ClassVar[bool] = True


class ProcedureTimeout(BaseModel):
    """A procedure's `timeout` ran out: which procedure, entered at which version, after how long."""

    procedure: str
    entered_version: int
    timeout: float


class ProcedureTimedOut(Event[ProcedureTimeout]):
    """Sent by an SOP's durable timer when it stayed in a procedure past its `sop_options.timeout`.

    The host answers it itself (a `timeout` recovery cause) when the SOP is still in that
    procedure visit; otherwise it is ignored.
    """

    sop_optional: ClassVar[bool] = True
    sop_from_runtime: ClassVar[bool] = True


class HumanIntervention(BaseModel):
    """Why an SOP waits for a person, and what they may do (`handle.resolve`)."""

    sop_id: str
    name: str
    procedure: str
    reason: str
    choices: list[str]
    cause: dict[str, Any]


class HumanInterventionRequested(Event[HumanIntervention]):
    """A child SOP paused for a person (a `Manual` recovery step); sent to its parent SOP."""

    sop_optional: ClassVar[bool] = True
    sop_from_runtime: ClassVar[bool] = True
