"""Where a SOPy-style `with sop:` block runs, and what it reads of the run.

In process (`sopy_actors.testing.LocalSOP`) when this process has no runtime; on the actor
runtime (an `SOPHandle`) after `sopy_actors.init()` (or in a Ray worker of the runtime, where
handlers run). Both engines apply the same transition function, so the same program behaves
the same on either.
"""

from __future__ import annotations

import sys
from typing import Any

from sopy_actors.core.codec import decode_procedure
from sopy_actors.core.procedure import Procedure
from sopy_actors.core.sop import SOP
from sopy_actors.errors import RuntimeUnavailable
from sopy_actors.testing import LocalSOP

__all__ = ["run_procedure", "run_retries", "run_state", "start_run"]


def _runtime_installed() -> bool:
    # The runtime module is imported by init() (and by Ray workers of the runtime); a process
    # that never imported it has no runtime, and need not pay for importing Ray to learn that.
    if "sopy_actors.runtime.engine" not in sys.modules:
        return False
    from sopy_actors.runtime.engine import current_engine

    try:
        current_engine()
    except RuntimeUnavailable:
        return False
    return True


def start_run(sop: SOP[Any]) -> Any:
    """Start a run of `sop`: on the actor runtime if this process has one, else in process."""
    return sop.start() if _runtime_installed() else LocalSOP(sop)


def run_state(run: Any) -> Any:
    """The run's committed state (a copy)."""
    return run.state if isinstance(run, LocalSOP) else run.state()


def run_retries(run: Any) -> int:
    """The rejections the run has counted against its retry limit."""
    return int(run.retries if isinstance(run, LocalSOP) else run.status().retries)


def run_procedure(run: Any) -> Procedure[Any]:
    """The run's current procedure instance, with its attributes.

    On the actor runtime it is rebuilt from the SOP's last checkpoint in the Store (the
    SOPHandle reads its history from there too); the workflow's module must be importable.
    """
    if isinstance(run, LocalSOP):
        procedure: Procedure[Any] = run.procedure
        return procedure
    import ray

    from sopy_actors.runtime.options import STORE_ACTOR
    from sopy_actors.runtime.rayutil import wait

    store = ray.get_actor(STORE_ACTOR, namespace=run.namespace)
    stored = wait(store.load.remote(run.sop_id, 0), what="the Store")
    return decode_procedure(stored.record.procedure)
