"""SOPy's `sopy.prompt.prompt_generator`: the SOP prompt read from the procedure graph.

Every name here writes SOPy's text (`style="sopy"` of `sopy_actors.core.prompt`): the graph
and the wording are the core's (`sopy_actors.core.graph`); this module gives them SOPy's names.
Pure Python; runs wherever it is called.
"""

from __future__ import annotations

from typing import Any

from sopy_actors.core.graph import ProcedureGraph
from sopy_actors.core.graph import make_prompt_from_procedure as _make_prompt
from sopy_actors.core.procedure import Procedure

__all__ = ["ProcedureGraph", "ProcedureGraphBuilder", "SOPPromptGenerator", "make_prompt_from_procedure"]


def make_prompt_from_procedure(entry_procedure: Procedure[Any], objective: str = "") -> str:
    """The SOP prompt SOPy generates for the procedures reachable from `entry_procedure`.

    Args:
        entry_procedure: the entry procedure instance (its own prompt is the first step's).
        objective: what the SOP is for; completes the header "Here is the standard operating
            procedure (SOP) for <objective>:".

    Returns:
        The prompt text, in SOPy's layout; each Action line lists its events sorted by name
        (SOPy's order changes from run to run).

    Raises:
        InputError: `entry_procedure` is not a procedure instance.
    """
    return _make_prompt(entry_procedure, objective, style="sopy")


class ProcedureGraphBuilder:
    """Builds the procedure graph from an entry procedure (SOPy's name for the graph reader)."""

    def build_graph(self, entry_proc: Procedure[Any]) -> ProcedureGraph:
        """The graph of the procedures reachable from `entry_proc`, read from the handlers' code.

        Raises:
            InputError: `entry_proc` is not a procedure instance (or is End).
        """
        return ProcedureGraph.build(entry_proc)


class SOPPromptGenerator:
    """Writes a procedure graph as SOPy's SOP prompt."""

    def generate_prompt(self, graph: ProcedureGraph, objective: str = "") -> str:
        """The SOP prompt of `graph` in SOPy's words (see `make_prompt_from_procedure`)."""
        return graph.to_prompt(objective, style="sopy")
