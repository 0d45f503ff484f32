"""SOPy's `sopy.core`: events and the EventBus, procedures, handlers and the SOP."""

from sopy_actors.sopy.core import event, procedure, sop
from sopy_actors.sopy.core.event import Event, EventBus, EventTranslator, show, subscribe
from sopy_actors.sopy.core.procedure import End, Procedure, Sigma, handler
from sopy_actors.sopy.core.sop import SOP

__all__ = [
    "SOP",
    "End",
    "Event",
    "EventBus",
    "EventTranslator",
    "Procedure",
    "Sigma",
    "event",
    "handler",
    "procedure",
    "show",
    "sop",
    "subscribe",
]
