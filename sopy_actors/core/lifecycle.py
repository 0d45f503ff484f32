"""Events the runtime itself sends to SOPs: a child SOP finished or failed, a procedure's
time ran out, an SOP waits for a person, values of a shared space changed.

They are optional: a procedure without a handler for them ignores them instead of rejecting.
"""

from __future__ import annotations

from typing import Any, ClassVar, TypeVar

from pydantic import BaseModel, ConfigDict

from sopy_actors.core.events import Event
from sopy_actors.errors import SopyError, error_from_wire

__all__ = [
    "HumanIntervention",
    "HumanInterventionRequested",
    "ProcedureTimedOut",
    "ProcedureTimeout",
    "SharedChange",
    "SharedEntry",
    "SharedStateChanged",
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


class SharedEntry(BaseModel):
    """One value of a shared space: the last write of `key`, by whom and when.

    Attributes:
        key: the key in the space.
        value: its JSON value.
        stamp: the hybrid logical clock stamp of the write (`sopy_actors.state.hlc.Stamp` as text).
        source_node: the `node_id` of the state that wrote it.
    """

    model_config = ConfigDict(frozen=True)

    key: str
    value: Any = None
    stamp: str
    source_node: str


class SharedChange(BaseModel):
    """Values of a shared space that changed (or that an SOP's own writes settled as)."""

    model_config = ConfigDict(frozen=True)

    space: str
    entries: list[SharedEntry]


class SharedStateChanged(Event[SharedChange]):
    """Sent by the shared-state service to the SOPs whose distributed state shares the space.

    The SOP host merges the entries into the state it commits (last writer wins on the
    stamps, `sopy_actors.state.distributed`), with or without a handler for this event; a
    handler sees the changes in `event.payload` (`state.merge(event.payload)` shows it the
    merged values first).
    """

    sop_optional: ClassVar[bool] = True
    sop_from_runtime: ClassVar[bool] = True
