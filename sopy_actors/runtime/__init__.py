"""The actor runtime: SOPs on SOPHost actors, handlers in ProcedureActors, a SQLite Store."""

from sopy_actors.runtime.engine import RuntimeInfo, attach, current_sop, init, list_sops, shutdown
from sopy_actors.runtime.handle import Receipt, SendFuture, SOPHandle, SOPStatus

__all__ = [
    "Receipt",
    "RuntimeInfo",
    "SOPHandle",
    "SOPStatus",
    "SendFuture",
    "attach",
    "current_sop",
    "init",
    "list_sops",
    "shutdown",
]
