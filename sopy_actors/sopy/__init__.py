"""SOPy's names and module layout over sopy_actors: a SOPy program ports by its imports.

    from sopy_actors.sopy import Procedure, Event, SOP, handler, make_prompt, End, Prompt
    from sopy_actors.sopy.core.event import EventBus
    from sopy_actors.sopy.prompt import cond
    from sopy_actors.sopy.prompt.prompt_generator import make_prompt_from_procedure
    from sopy_actors.sopy.interface.strands import StrandsAgent, tool
    from sopy_actors.sopy.utils import Log, LogLevel

Modules: `core` (`core.event`, `core.procedure`, `core.sop`), `prompt`
(`prompt.prompt_generator`), `interface.strands` (agents and tools; imports strands and Ray),
`utils`. SOPy's semantics throughout: a rejecting handler keeps its state changes, every
rejection counts, a handler that raises rejects the event, prompts are worded as SOPy words
them. `with sop:` runs in this process until `sopy_actors.init()` has run, then on the actor
runtime. Importing this package (without `interface`) imports neither Ray nor strands.
"""

from sopy_actors.core.procedure import Prompt, make_prompt
from sopy_actors.sopy import core
from sopy_actors.sopy.core.event import Event, EventTranslator, show
from sopy_actors.sopy.core.procedure import End, Procedure, handler
from sopy_actors.sopy.core.sop import SOP
from sopy_actors.sopy.prompt.prompt_generator import make_prompt_from_procedure

__all__ = [
    "SOP",
    "End",
    "Event",
    "EventTranslator",
    "Procedure",
    "Prompt",
    "core",
    "handler",
    "make_prompt",
    "make_prompt_from_procedure",
    "show",
]
