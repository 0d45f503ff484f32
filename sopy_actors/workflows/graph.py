"""The procedure graph of a workflow, read from its definition and its steps' own handlers.

Generated handlers route by data, so their code says nothing; the graph is built from the
definition instead: one node per step (named by the step, with its prompt), an edge per
declared transition (a later transition's condition reads "not <earlier ones> and <its own>",
as first-match routing means), and the edges of each base class's own handlers, read from
their code by `sopy_actors.core.graph.ProcedureGraph` and mapped through the redirects. The
result is an ordinary `ProcedureGraph`: Mermaid, the SOP prompt and `validate()` work as for
hand-written SOPs. Pure Python.
"""

from __future__ import annotations

from collections import deque
from typing import Any

from sopy_actors.core.events import event_type_name
from sopy_actors.core.graph import Edge, Node, ProcedureGraph
from sopy_actors.core.procedure import End, Procedure
from sopy_actors.core.references import reference_of
from sopy_actors.errors import InputError
from sopy_actors.workflows.definition import END, WorkflowDefinition
from sopy_actors.workflows.generate import ProcedureClass

__all__ = ["workflow_graph"]


def workflow_graph(definition: WorkflowDefinition, classes: dict[str, ProcedureClass]) -> tuple[ProcedureGraph, list[str]]:
    """The graph of a workflow and the problems only the definition shows.

    Args:
        definition: the workflow.
        classes: its generated classes (`generate.classes_of`).

    Returns:
        The graph, and problems such as an own handler returning a procedure that is not a
        step of the workflow (`ProcedureGraph.validate()` adds unreachable steps and steps with
        no path to End).
    """
    end = Node(END, End, str(End.prompt))
    nodes = {name: Node(name, cls, str(cls.prompt)) for name, cls in classes.items()}
    edges: list[Edge] = []
    warnings: list[str] = []
    dynamic: set[str] = set()
    problems: list[str] = []
    for step in definition.steps:
        cls, source = classes[step.name], nodes[step.name]
        base: ProcedureClass = cls.__bases__[0]
        routed = {_event_class(cls, name) for name in _routing_events(step.transitions)}
        own = ProcedureGraph.build(base.__new__(base))
        # Only handlers with an event the definition does not route decide where the step goes.
        deciding = {name for event, name in base.sop_handlers.items() if event not in routed}
        labels = tuple(f"handler {base.__name__}.{name}{end}" for name in deciding for end in (" ", ":"))
        relevant = [warning for warning in own.warnings if any(label in warning for label in labels)]
        warnings += relevant
        if relevant:
            dynamic.add(step.name)
        for edge in own.edges_from(own.entry):
            events = tuple(event for event in edge.events if event not in routed)
            if not events:
                continue
            target = _own_target(edge.target, own.entry, step.name, definition, problems, edge.handler)
            if target is not None:
                node = end if target == END else nodes[target]
                edges.append(Edge(source, node, events, edge.condition, edge.handler, edge.sopy_condition))
        earlier: list[str] = []
        for transition in step.transitions:
            event = _event_class(cls, transition.event)
            if event is None:
                continue
            text = transition.condition_text()
            guard = [f"not ({previous})" for previous in earlier if previous]
            condition = " and ".join([*guard, *([text] if text else [])]) or None
            earlier.append(text or "")
            node = end if transition.to == END else nodes[transition.to]
            edges.append(Edge(source, node, (event,), condition, cls.sop_handlers.get(event, "?"), condition))
    entry = nodes[definition.entry]
    reached = _reachable(entry, edges)
    ordered = [node for node in reached if node is not end]
    if end in reached:
        ordered.append(end)
    edges.sort(key=lambda edge: ordered.index(edge.source) if edge.source in ordered else len(ordered))
    graph = ProcedureGraph(
        entry=entry,
        nodes=tuple(ordered),
        edges=tuple(edge for edge in edges if edge.source in reached),
        unreachable=tuple(classes[name] for name in classes if nodes[name] not in reached),
        warnings=tuple(warnings),
        dynamic_nodes=frozenset(dynamic),
    )
    return graph, problems


def _routing_events(transitions: Any) -> list[str]:
    return [transition.event for transition in transitions]


def _event_class(cls: ProcedureClass, reference: str) -> Any:
    """The event class a step's handler table holds under this wire name, or None."""
    return next((event for event in cls.sop_handlers if event_type_name(event) == reference), None)


def _own_target(
    target: Node, own_entry: Node, step: str, definition: WorkflowDefinition, problems: list[str], handler: str
) -> str | None:
    """The step (or End) an own handler's return leads to in the workflow, else a problem."""
    if target.terminal:
        return END
    if target == own_entry:
        return step
    procedure: type[Procedure[Any]] = target.procedure
    try:
        redirected = definition.redirects.get(reference_of(procedure))
    except InputError:
        redirected = None
    if redirected is None:
        problems.append(
            f"step {step}: handler {handler} returns {procedure.__name__}(), which is not a step of workflow "
            f"{definition.name}: add it to the workflow, or declare the step's transition for that event instead"
        )
    return redirected


def _reachable(entry: Node, edges: list[Edge]) -> list[Node]:
    """Nodes reachable from `entry`, in breadth-first order of the edges."""
    order, queue = [entry], deque([entry])
    while queue:
        node = queue.popleft()
        for edge in edges:
            if edge.source == node and edge.target not in order:
                order.append(edge.target)
                queue.append(edge.target)
    return order
