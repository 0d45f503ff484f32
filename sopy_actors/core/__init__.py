"""The SOPy programming model in pure Python: events, procedures, SOPs, the procedure graph.

Nothing here imports Ray, strands or prometheus_client.
"""

from sopy_actors.core.events import Event
from sopy_actors.core.procedure import End, Procedure, Prompt, cond, handler, make_prompt
from sopy_actors.core.sop import SOP, current_sop
from sopy_actors.core.transition import Outcome, Snapshot, Transition, advance, run_handler

__all__ = [
    "SOP",
    "End",
    "Event",
    "Outcome",
    "Procedure",
    "Prompt",
    "Snapshot",
    "Transition",
    "advance",
    "cond",
    "current_sop",
    "handler",
    "make_prompt",
    "run_handler",
]
