"""The actor runtime: SOPs on SOPHost actors, handlers in ProcedureActors, a SQLite Store.

`sopy_actors.init()` (in `sopy_actors.bootstrap`) connects this runtime and then starts the
Monitor, which sits above it.
"""

from sopy_actors.core.sop import SOPStatus
from sopy_actors.runtime.connect import RuntimeInfo
from sopy_actors.runtime.engine import attach, list_sops
from sopy_actors.runtime.handle import SendFuture, SOPHandle
from sopy_actors.runtime.messages import Receipt
from sopy_actors.runtime.records import SOPSummary

__all__ = [
    "Receipt",
    "RuntimeInfo",
    "SOPHandle",
    "SOPStatus",
    "SOPSummary",
    "SendFuture",
    "attach",
    "list_sops",
]
