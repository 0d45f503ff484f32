"""Events the runtime itself sends to SOPs: a child SOP finished or failed.

They are optional: a procedure without a handler for them ignores them instead of rejecting.
"""

from __future__ import annotations

from typing import Any, ClassVar, TypeVar

from pydantic import BaseModel

from sopy_actors.core.events import Event
from sopy_actors.errors import SopyError, error_from_wire

__all__ = ["SubSOPCompleted", "SubSOPError", "SubSOPFailed", "SubSOPResult"]

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
