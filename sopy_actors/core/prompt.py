"""The SOP prompt: the procedure graph written as instructions for an LLM, in one of two styles.

Both styles walk the graph the same way (a node order, each node with its outgoing edges) and
write one block per procedure:

```
Here is the standard operating procedure (SOP) for <objective>:
Procedure <Name>:
    Instruction: <prompt text and transitions in words>
    Action: <EventA>, <EventB>
```

The default style (`style="default"`) is this project's fuller text:

- One block per node except End, entry first, then breadth-first, a blank line between blocks.
  The objective loses a trailing period.
- The prompt ends with exactly one period (a prompt ending in "!" or "?" keeps its mark; other
  lines of a multi-line prompt are indented under the Instruction), then the transitions per
  edge in graph order, identical sentences once:
  - to another procedure: "If <cond>, then go to <Target>." or "Then proceed to <Target>."
  - to End: "If <cond>, then finish the procedure." or "Then finish the procedure."
  - to itself: "If <cond>, stay in this procedure." (an unconditional stay says nothing new).
- The Action line lists the event types the procedure handles (omitted when none).

The SOPy style (`style="sopy"`) is the text SOPy's `make_prompt_from_procedure` generates:

- The objective is used as given; blocks follow each other with no blank line.
- Nodes come in Kahn topological order (self-loops ignored). SOPy leaves out every node on a
  cycle through other nodes (they never reach in-degree 0), which empties the prompt of most
  workflows that loop; here, when only cycles remain, the earliest-found remaining node comes
  next, so acyclic graphs read exactly as in SOPy and cyclic ones keep their procedures. Each
  node's edges are taken in SOPy's
  handler order (handler names sorted, then the returns in source order). A node is also left
  out when its prompt is blank, it is End, or its only edges lead back to itself. Procedures are
  named by class name, so two nodes of one class read alike, as in SOPy.
- The Instruction is the prompt without trailing periods, then words that depend on the edges
  to other nodes ("onward") and back to itself, then a final period if there is none:
  - one onward edge, no self-loop: " Then proceed to <Target>." or " If <cond>, then <target
    prompt lower-cased>." ("finish the procedure" for End). Nothing when the target's prompt is
    blank or the same as this one's.
  - two or more onward edges: ". If <cond>, then go to <Target>. ... Otherwise, go to <Target>."
    (guarded edges first, each in order; edges to a target with a blank or the same prompt are
    skipped).
  - one onward edge and self-loops: ". If <c1> or <c2>, try again. If <cond>, then <target
    prompt lower-cased>." (unguarded edges are not mentioned).
  - conditions are `Edge.sopy_condition`: SOPy's words, several guards joined with "and".
- SOPy's End prompt, "Finish the procedure, and report related results to the user", stands
  for End (the graph has one End node and does not keep a prompt passed to `End(...)`).
- The Action line lists the events of every outgoing edge, self-loops included, once each and
  sorted by name: SOPy lists them in set order, which changes from run to run.

Pure Python; runs wherever it is called.
"""

from __future__ import annotations

import textwrap
from collections import Counter, deque
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Literal, get_args

from sopy_actors.errors import InputError

if TYPE_CHECKING:
    from sopy_actors.core.graph import Edge, Node, ProcedureGraph

__all__ = ["PromptStyle", "write_sop_prompt"]

PromptStyle = Literal["default", "sopy"]

_INDENT = " " * 4
_HEADER = "Here is the standard operating procedure (SOP)"
# The class prompt of SOPy's End, which its prompts use when a handler returns End().
_SOPY_END_PROMPT = "Finish the procedure, and report related results to the user"

_Walk = Iterator[tuple["Node", Sequence["Edge"]]]


@dataclass(frozen=True)
class _Style:
    """How one style words the shared walk.

    Attributes:
        objective: the objective as it appears in the header (empty: no " for ...").
        walk: the nodes in prompt order, each with its outgoing edges.
        name: the name a node is written under.
        instruction: the Instruction text of a node and its edges, or None to leave it out.
        actions: the names on the node's Action line.
        separator: what goes between two procedure blocks.
    """

    objective: Callable[[str], str]
    walk: Callable[[ProcedureGraph], _Walk]
    name: Callable[[Node], str]
    instruction: Callable[[Node, Sequence[Edge]], str | None]
    actions: Callable[[Node, Sequence[Edge]], list[str]]
    separator: str


def write_sop_prompt(graph: ProcedureGraph, objective: str = "", *, style: PromptStyle = "default") -> str:
    """Write the SOP prompt for `graph` (the module docstring shows the exact shape of each style).

    Args:
        graph: the procedure graph.
        objective: what the SOP is for; omitted from the header when empty.
        style: "default" for this project's fuller text, "sopy" for SOPy's generated text with
            each Action line sorted.

    Returns:
        The prompt, without a trailing newline (unless the SOPy style leaves out every node).

    Raises:
        InputError: `style` is not "default" or "sopy".
    """
    if style not in _STYLES:
        allowed = " or ".join(repr(name) for name in get_args(PromptStyle))
        raise InputError(f"style must be {allowed}, got {style!r}", fields=("style",))
    words = _STYLES[style]
    goal = words.objective(objective)
    blocks = [
        _block(words.name(node), instruction, words.actions(node, edges))
        for node, edges in words.walk(graph)
        if (instruction := words.instruction(node, edges)) is not None
    ]
    return f"{_HEADER}{f' for {goal}' if goal else ''}:\n{words.separator.join(blocks)}"


def _block(name: str, instruction: str, actions: list[str]) -> str:
    lines = [f"Procedure {name}:", f"{_INDENT}Instruction: {instruction}"]
    if actions:
        lines.append(f"{_INDENT}Action: {', '.join(actions)}")
    return "\n".join(lines)


def _graph_order(graph: ProcedureGraph) -> _Walk:
    """Every node but End in graph order (entry first, then breadth-first)."""
    return ((node, graph.edges_from(node)) for node in graph.nodes if not node.terminal)


def _default_instruction(node: Node, edges: Sequence[Edge]) -> str:
    sentences = dict.fromkeys(sentence for edge in edges if (sentence := _transition_sentence(edge)) is not None)
    instruction = " ".join(part for part in (_as_sentence(node.prompt), *sentences) if part)
    first, _, rest = instruction.partition("\n")
    return f"{first}\n{textwrap.indent(rest, _INDENT * 2)}" if rest else first


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


def _kahn_order(graph: ProcedureGraph) -> _Walk:
    """SOPy's order: Kahn's algorithm over the nodes, self-loops ignored, edges by handler name;
    a cycle is entered at its earliest-found node (SOPy drops cycles: see the module docstring)."""
    outgoing = {node: sorted(graph.edges_from(node), key=lambda edge: edge.handler) for node in graph.nodes}
    waiting = Counter(edge.target for edge in graph.edges if edge.target != edge.source)
    ready = deque(node for node in graph.nodes if not waiting[node])
    done: set[Node] = set()
    while len(done) < len(graph.nodes):
        if not ready:  # only cycles left
            ready.append(next(node for node in graph.nodes if node not in done))
        node = ready.popleft()
        if node in done:
            continue
        done.add(node)
        yield node, outgoing[node]
        for target in (edge.target for edge in outgoing[node] if edge.target != node):
            waiting[target] -= 1
            if waiting[target] == 0 and target not in done:
                ready.append(target)


def _sopy_instruction(node: Node, edges: Sequence[Edge]) -> str | None:
    onward = [edge for edge in edges if edge.target != node]
    loops = [edge for edge in edges if edge.target == node]
    if not node.prompt.strip() or node.procedure.__name__ == "End" or (loops and not onward):
        return None
    if len(onward) == 1 and not loops:
        transitions = _sopy_sequence(onward[0])
    elif len(onward) > 1:
        transitions = _sopy_branches(onward)
    elif onward:
        transitions = _sopy_retries(loops, onward[0])
    else:
        transitions = ""
    text = node.prompt.strip().rstrip(".") + transitions
    return text if text.rstrip().endswith(".") else f"{text}."


def _sopy_sequence(edge: Edge) -> str:
    """The words for a node's only edge (none to itself)."""
    target = _sopy_target(edge)
    if target is None:
        return ""
    if edge.sopy_condition is None:
        return f" Then proceed to {edge.target.procedure.__name__}."
    return f" If {edge.sopy_condition}, then {target}."


def _sopy_branches(onward: Sequence[Edge]) -> str:
    """The words for two or more edges to other nodes: guarded ones, then the otherwise."""
    named = [
        (edge.sopy_condition, edge.target.procedure.__name__)
        for edge in onward
        if _sopy_prompt(edge.target) != edge.source.prompt and _sopy_target(edge) is not None
    ]
    parts = [f"If {condition}, then go to {target}" for condition, target in named if condition is not None]
    parts += [f"Otherwise, go to {target}" for condition, target in named if condition is None]
    return _sopy_sentences(parts)


def _sopy_retries(loops: Sequence[Edge], onward: Edge) -> str:
    """The words for self-loops plus one edge onward: when to try again, when to move on."""
    retries = [edge.sopy_condition for edge in loops if edge.sopy_condition is not None]
    parts = [f"If {' or '.join(retries)}, try again"] if retries else []
    if onward.sopy_condition is not None:
        parts.append(f"If {onward.sopy_condition}, then {_sopy_prompt(onward.target).lower()}")
    return _sopy_sentences(parts)


def _sopy_sentences(parts: list[str]) -> str:
    return f". {'. '.join(parts)}." if parts else ""


def _sopy_target(edge: Edge) -> str | None:
    """What moving on to the edge's target means: SOPy's "meaningful target description"."""
    if edge.target.terminal:
        return "finish the procedure"
    target = edge.target.prompt.strip()
    return None if not target or target == edge.source.prompt.strip() else target.lower()


def _sopy_prompt(node: Node) -> str:
    return _SOPY_END_PROMPT if node.terminal else node.prompt


def _sorted_events(node: Node, edges: Sequence[Edge]) -> list[str]:
    return sorted({event.__name__ for edge in edges for event in edge.events})


_STYLES: dict[str, _Style] = {
    "default": _Style(
        objective=lambda text: text.strip().rstrip("."),
        walk=_graph_order,
        name=lambda node: node.name,
        instruction=_default_instruction,
        actions=lambda node, edges: [event.__name__ for event in node.procedure.sop_handlers],
        separator="\n\n",
    ),
    "sopy": _Style(
        objective=lambda text: text,
        walk=_kahn_order,
        name=lambda node: node.procedure.__name__,
        instruction=_sopy_instruction,
        actions=_sorted_events,
        separator="\n",
    ),
}
