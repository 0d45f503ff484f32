"""The SOP prompt: the procedure graph written as instructions for an LLM, in SOPy's shape.

```
Here is the standard operating procedure (SOP) for <objective>:
Procedure <Name>:
    Instruction: <prompt text without trailing period>. <transitions in words>
    Action: <EventA>, <EventB>

Procedure <Next>:
    ...
```

One block per node except End, entry first, then breadth-first. Transitions in words, per edge
in graph order, identical sentences once:

- to another procedure: "If <cond>, then go to <Target>." or "Then proceed to <Target>."
- to End: "If <cond>, then finish the procedure." or "Then finish the procedure."
- to itself: "If <cond>, stay in this procedure." (an unconditional stay says nothing new).

A prompt ending in "!" or "?" keeps its mark; other lines of a multi-line prompt are indented
under the Instruction. The Action line lists the event types the procedure handles (omitted
when none). Pure Python.
"""

from __future__ import annotations

import textwrap
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from sopy_actors.core.graph import Edge, Node, ProcedureGraph

__all__ = ["write_sop_prompt"]

_INDENT = " " * 4


def write_sop_prompt(graph: ProcedureGraph, objective: str = "") -> str:
    """Write the SOP prompt for `graph` (the module docstring shows the exact shape).

    Args:
        graph: the procedure graph.
        objective: what the SOP is for; omitted from the header when empty.

    Returns:
        The prompt, without a trailing newline.
    """
    goal = objective.strip().rstrip(".")
    header = "Here is the standard operating procedure (SOP)"
    header += f" for {goal}:" if goal else ":"
    blocks = [_block(graph, node) for node in graph.nodes if not node.terminal]
    return "\n".join([header, "\n\n".join(blocks)])


def _block(graph: ProcedureGraph, node: Node) -> str:
    sentences = dict.fromkeys(
        sentence
        for edge in graph.edges_from(node)
        if (sentence := _transition_sentence(edge)) is not None
    )
    instruction = " ".join(part for part in (_as_sentence(node.prompt), *sentences) if part)
    first, _, rest = instruction.partition("\n")
    lines = [f"Procedure {node.name}:", f"{_INDENT}Instruction: {first}"]
    if rest:
        lines.append(textwrap.indent(rest, _INDENT * 2))
    events = [event.__name__ for event in node.procedure.sop_handlers]
    if events:
        lines.append(f"{_INDENT}Action: {', '.join(events)}")
    return "\n".join(lines)


def _transition_sentence(edge: Edge) -> str | None:
    if edge.target == edge.source:
        return None if edge.condition is None else f"If {edge.condition}, stay in this procedure."
    if edge.target.terminal:
        action, unconditional = "finish the procedure", "Then finish the procedure."
    else:
        action, unconditional = f"go to {edge.target.name}", f"Then proceed to {edge.target.name}."
    return unconditional if edge.condition is None else f"If {edge.condition}, then {action}."


def _as_sentence(text: str) -> str:
    """The prompt as one sentence: exactly one final period, unless it ends in ! or ?."""
    text = text.strip().rstrip(".").rstrip()
    return text if not text or text.endswith(("!", "?")) else f"{text}."
