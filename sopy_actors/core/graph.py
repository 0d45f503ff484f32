"""The procedure graph: which procedures each handler can return, and under which `cond(...)`.

The graph is read from the handlers' source code (AST), never by running them, starting at the
entry procedure instance and walking breadth-first. From it come the SOP prompt for the LLM
(`to_prompt`, written by `sopy_actors.core.prompt` in its default style or in SOPy's), a Mermaid
drawing (`to_mermaid`), plain data (`to_dict`) and the checks of `validate()`. Pure Python; runs
wherever it is called.

Choices, so that the output is predictable:

- A node is a procedure class with one prompt text. A class returned with a different prompt
  (`BackUpCopy(prompt=make_prompt("..."))`) is another node. Nodes are named by class name in
  discovery order; the second node of that name is `Name#2`, the third `Name#3` (two classes
  of the same name from different modules are numbered the same way).
- Every `End(...)` (and End subclass), whatever its prompt, is the one terminal node `End`.
- An edge is one `return` site of one handler. It carries every event type the handler takes,
  so a union handler's edge lists several events (Mermaid draws one arrow per event).
- Conditions come from the enclosing `if`s (and conditional expressions) of a `return`: a
  `cond(value, "description")` reads as its description, any other test as its source code,
  an `else` as "not <test>", nested tests joined with "and". A return after an `if` is not
  guarded by it. Each edge also carries the condition in SOPy's words (`Edge.sopy_condition`),
  for `to_prompt(style="sopy")`: comparisons spelled out ("is less than"), `not`/`and`/`or`
  without parentheses, and `state.field` read as the field's description in the state model.
- Procedures the walk cannot find are still reported: every Procedure subclass defined at the
  top level of the entry's module (when the entry class is defined there too, not inside a
  function), plus any passed as `extra`, that no node uses is "unreachable", except base
  classes of procedures that are reached (they are taken to be shared bases, not states)
  and the procedures of the module's other SOPs: those reachable from an entry the module
  names as `init_proc=X()` or `SOP(state, X())` (a sub-SOP) without touching this SOP.
- A procedure class's declared recovery (`sop_recovery`) adds a recovery edge to each procedure
  its `Fallback` rungs name: the fallback is reachable, drawn as `fallback (recovery)`.
- A `return` whose target cannot be read statically is a warning with file:line. The node it
  belongs to might reach End through it, so it is not reported as having no path to End.
"""

from __future__ import annotations

import ast
import inspect
import re
import sys
import textwrap
from collections import ChainMap, Counter, deque
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any, TypeGuard, cast, get_args, get_origin

from pydantic import BaseModel

from sopy_actors.core.events import Event
from sopy_actors.core.procedure import End, Procedure, Prompt, cond, make_prompt
from sopy_actors.core.prompt import PromptStyle, write_sop_prompt
from sopy_actors.core.references import resolve_reference
from sopy_actors.errors import InputError

__all__ = ["Edge", "Node", "ProcedureGraph", "Validation", "make_prompt_from_procedure", "may_refuse"]

_MISSING = object()
_END_NAME = "End"
# ";" ends a Mermaid statement and ":" breaks a transition label; Mermaid reads "#59;" as ";".
_MERMAID_SPECIAL = re.compile(r"[;:]")

ProcedureClass = type[Procedure[Any]]
EventClass = type[Event[Any]]
_Guard = tuple[tuple[ast.expr, bool], ...]  # enclosing tests of a return, each maybe negated
# SOPy's words for comparison operators.
_SOPY_COMPARISONS: dict[type[ast.cmpop], str] = {
    ast.Eq: "is",
    ast.NotEq: "is not",
    ast.Lt: "is less than",
    ast.LtE: "is less than or equal to",
    ast.Gt: "is greater than",
    ast.GtE: "is greater than or equal to",
    ast.Is: "is",
    ast.IsNot: "is not",
    ast.In: "is in",
    ast.NotIn: "is not in",
}


@dataclass(frozen=True)
class Node:
    """A procedure in the graph: one procedure class with one prompt text.

    Attributes:
        name: unique name in prompts and drawings: the class name, or `Name#2`, `Name#3` ...
            for further nodes of that name.
        procedure: the procedure class (`End` for the terminal node).
        prompt: the prompt text the procedure has in this node.
    """

    name: str
    procedure: ProcedureClass
    prompt: str

    @property
    def terminal(self) -> bool:
        """True for the End node."""
        return issubclass(self.procedure, End)


@dataclass(frozen=True)
class Edge:
    """A transition some handler can make: one `return` site.

    Attributes:
        source: the node whose handler returns.
        target: the node returned (the source itself for `return self`).
        events: the event types the handler takes, in the procedure's handler table order.
        condition: the guarding condition in words, or None when unconditional.
        handler: the handler method's name.
        sopy_condition: the same condition in SOPy's words (for `to_prompt(style="sopy")`),
            or None when unconditional.
    """

    source: Node
    target: Node
    events: tuple[EventClass, ...]
    condition: str | None
    handler: str
    sopy_condition: str | None


@dataclass(frozen=True)
class Validation:
    """Everything `ProcedureGraph.validate()` found, all at once.

    Attributes:
        errors: problems that make the SOP wrong (unreachable procedures, no path to End).
        warnings: what the graph could not see (returns that cannot be read statically).
    """

    errors: list[str]
    warnings: list[str]

    @property
    def ok(self) -> bool:
        """True when there are no errors (warnings allowed)."""
        return not self.errors


@dataclass(frozen=True)
class ProcedureGraph:
    """The procedures reachable from an entry procedure and the transitions between them.

    Build it with `ProcedureGraph.build(entry)`; the module docstring lists how the code is read.

    Attributes:
        entry: the entry node.
        nodes: every reachable node, entry first, then in breadth-first order (End included
            when some handler returns it).
        edges: every transition, grouped by source node in `nodes` order, then by handler,
            then in source order.
        unreachable: procedure classes known to the graph that no reachable handler returns.
        warnings: what the code reading could not resolve, each with file:line.
        dynamic_nodes: names of the nodes with a return (or a handler source) that could not be
            read, so their transitions are incomplete.
        recovery_edges: where the runtime may move an SOP on its own: a procedure class's
            `sop_recovery` falling back to another procedure (no events; handler "sop_recovery").
    """

    entry: Node
    nodes: tuple[Node, ...]
    edges: tuple[Edge, ...]
    unreachable: tuple[ProcedureClass, ...]
    warnings: tuple[str, ...]
    dynamic_nodes: frozenset[str]
    recovery_edges: tuple[Edge, ...] = ()

    @classmethod
    def build(
        cls, entry: Procedure[Any], *, extra: Iterable[ProcedureClass] = ()
    ) -> ProcedureGraph:
        """Read the graph from the handlers' code, starting at `entry`.

        Args:
            entry: the entry procedure instance; its own prompt is the entry node's prompt.
            extra: more procedure classes to report as unreachable if the walk misses them
                (classes defined in the entry's module are considered without being listed).

        Returns:
            The graph.

        Raises:
            InputError: `entry` is not a procedure instance (or is End), or `extra` holds
                something other than Procedure subclasses.
        """
        if not isinstance(entry, Procedure) or isinstance(entry, End):
            raise InputError(
                f"The entry must be a procedure instance other than End, got {entry!r}: "
                "write ProcedureGraph.build(MyProcedure())"
            )
        extras = tuple(extra)
        wrong = [item for item in extras if not _is_procedure_class(item)]
        if wrong:
            raise InputError(f"extra must hold Procedure subclasses, got {wrong!r}")
        return _Builder().build(entry, extras)

    def edges_from(self, node: Node) -> tuple[Edge, ...]:
        """The edges leaving `node`, in graph order."""
        return tuple(edge for edge in self.edges if edge.source == node)

    def validate(self) -> Validation:
        """Check the graph: unreachable procedures and nodes with no path to End are errors.

        Returns:
            The errors and warnings, each a one-line message.
        """
        errors = [
            f"procedure {procedure.__name__} is unreachable from the entry {self.entry.name}: "
            "no reachable handler returns it"
            for procedure in self.unreachable
        ]
        finishing = self._nodes_that_may_finish()
        errors.extend(
            f"procedure {node.name} has no path to End: no chain of transitions from it "
            "reaches a return of End()"
            for node in self.nodes
            if node not in finishing
        )
        return Validation(errors=errors, warnings=list(self.warnings))

    def to_prompt(self, objective: str = "", *, style: PromptStyle = "default") -> str:
        """The SOP prompt for the LLM; see `sopy_actors.core.prompt.write_sop_prompt`.

        Args:
            objective: what the SOP is for; completes the header.
            style: "default" for this project's fuller text, "sopy" for SOPy's generated text
                (Kahn order, SOPy's wording, Action events sorted).

        Returns:
            The prompt text.

        Raises:
            InputError: `style` is not "default" or "sopy".
        """
        return write_sop_prompt(self, objective, style=style)

    def to_mermaid(self) -> str:
        """A Mermaid `stateDiagram-v2` of the graph: End is drawn as `[*]`.

        Each edge is one arrow per event, labelled `Event` or `Event [condition]`. Node names
        that are not Mermaid identifiers (`Review#2`) get a safe id and keep their name as label.
        """
        ids = _mermaid_ids(node.name for node in self.nodes if not node.terminal)
        lines = ["stateDiagram-v2"]
        lines.extend(f'    state "{name}" as {i}' for name, i in ids.items() if name != i)
        lines.append(f"    [*] --> {ids[self.entry.name]}")
        for edge in self.edges:
            target = "[*]" if edge.target.terminal else ids[edge.target.name]
            suffix = "" if edge.condition is None else f" [{edge.condition}]"
            for event in edge.events:
                label = _mermaid_label(f"{event.__name__}{suffix}")
                lines.append(f"    {ids[edge.source.name]} --> {target}: {label}")
        lines.extend(
            f"    {ids[edge.source.name]} --> {ids[edge.target.name]}: fallback (recovery)" for edge in self.recovery_edges
        )
        return "\n".join(lines)

    def to_dict(self) -> dict[str, Any]:
        """The graph as JSON-compatible data, with the result of `validate()` as problems."""
        validation = self.validate()
        return {
            "entry": self.entry.name,
            "nodes": [
                {"id": node.name, "class": _qualified_name(node.procedure), "prompt": node.prompt}
                for node in self.nodes
            ],
            "edges": [
                {
                    "from": edge.source.name,
                    "to": edge.target.name,
                    "events": [event.__name__ for event in edge.events],
                    "condition": edge.condition,
                    "handler": edge.handler,
                }
                for edge in self.edges
            ],
            "recovery_edges": [{"from": edge.source.name, "to": edge.target.name} for edge in self.recovery_edges],
            "problems": {"errors": validation.errors, "warnings": validation.warnings},
        }

    def _nodes_that_may_finish(self) -> set[Node]:
        """End, the dynamic nodes, and every node with a path to one of them."""
        predecessors: dict[Node, list[Node]] = {}
        for edge in (*self.edges, *self.recovery_edges):
            predecessors.setdefault(edge.target, []).append(edge.source)
        seeds = [n for n in self.nodes if n.terminal or n.name in self.dynamic_nodes]
        found, queue = set(seeds), deque(seeds)
        while queue:
            for source in predecessors.get(queue.popleft(), ()):
                if source not in found:
                    found.add(source)
                    queue.append(source)
        return found


def _fallbacks_of(procedure: ProcedureClass, warnings: list[str]) -> list[ProcedureClass]:
    """The procedure classes the `Fallback` rungs of `procedure.sop_recovery` name."""
    rungs = getattr(getattr(procedure, "sop_recovery", None), "rungs", ())
    found = []
    for rung in rungs:
        to = getattr(rung, "to", "")
        if getattr(rung, "strategy", None) != "fallback" or ":" not in to:
            continue
        try:
            found.append(resolve_reference(to, Procedure))
        except InputError as error:
            warnings.append(f"{procedure.__name__}.sop_recovery: fallback {to} cannot be loaded: {error}")
    return found


def may_refuse(procedure: ProcedureClass, event: type[Event[Any]]) -> bool:
    """Whether procedure class `procedure` may refuse an event of type `event`, read from its
    handler's code: False only when the class ignores the event, or its handler returns nothing
    but procedures, `self` and `End(...)` on every path and has no `raise` or `assert` of its
    own. An exception raised deeper, in code the handler calls, is not foreseen."""
    if issubclass(procedure, End):
        return True
    name = procedure.sop_handler_for(event)
    if name is None:
        return not (event.sop_optional or issubclass(event, tuple(procedure.ignore)))
    reading = _HandlerReader(procedure, name).read()
    return reading.refuses or reading.dynamic  # code not read whole may do anything


def make_prompt_from_procedure(
    entry: Procedure[Any], objective: str = "", *, style: PromptStyle = "default"
) -> str:
    """The SOP prompt for the LLM, read from the procedures reachable from `entry`.

    Args:
        entry: the entry procedure instance.
        objective: what the SOP is for; completes the header "Here is the standard operating
            procedure (SOP) for <objective>:".
        style: "default" for this project's fuller text; "sopy" for the text SOPy's
            `make_prompt_from_procedure` generates, except that each Action line lists its
            events sorted by name where SOPy's order varies from run to run.

    Returns:
        The prompt text; `sopy_actors.core.prompt` documents the exact shape of each style.

    Raises:
        InputError: `entry` is not a procedure instance, or `style` is not "default" or "sopy".
    """
    return ProcedureGraph.build(entry).to_prompt(objective, style=style)


@dataclass(frozen=True)
class _Site:
    """A statically resolved `return` of a handler (target None means `return self`)."""

    target: ProcedureClass | None
    prompt: str | None
    condition: str | None
    sopy_condition: str | None


@dataclass
class _Reading:
    """What reading one handler's code found."""

    sites: list[_Site] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    dynamic: bool = False
    refuses: bool = False  # a str return, a raise or assert of its own, or a path with no return


class _Builder:
    """Walks the handlers breadth-first from the entry, creating nodes and edges."""

    def __init__(self) -> None:
        self._nodes: dict[tuple[ProcedureClass, str], Node] = {}
        # "End" is reserved so that a user class named End becomes End#2, not the terminal.
        self._names: Counter[str] = Counter({_END_NAME: 1})
        self._readings: dict[tuple[ProcedureClass, str], _Reading] = {}
        self._recovery_edges: dict[Edge, None] = {}

    def build(self, entry: Procedure[Any], extra: tuple[ProcedureClass, ...]) -> ProcedureGraph:
        start = self._node(type(entry), str(entry.prompt))
        edges, warnings, dynamic = self._walk(start)
        nodes = tuple(self._nodes.values())
        reached = {node.procedure for node in nodes}
        # Procedures of the module's other SOPs (entered by `init_proc=`, e.g. sub-SOPs) are
        # theirs, not orphans; an SOP that reaches ours is ours, checked from the middle.
        owned = set(reached)
        for sub_entry in _sop_entries(type(entry)):
            if sub_entry not in reached:
                other = _Builder()
                other._walk(other._node(sub_entry, str(sub_entry.prompt)))
                theirs = {node.procedure for node in other._nodes.values() if not node.terminal}
                if not theirs & reached:
                    owned |= theirs
        return ProcedureGraph(
            entry=start,
            nodes=nodes,
            edges=tuple(edges),
            unreachable=_unreachable(type(entry), extra, owned),
            warnings=tuple(warnings),
            dynamic_nodes=frozenset(dynamic),
            recovery_edges=tuple(self._recovery_edges),
        )

    def _walk(self, start: Node) -> tuple[dict[Edge, None], list[str], set[str]]:
        """Read every handler reachable from `start`: the edges, warnings and dynamic nodes."""
        edges: dict[Edge, None] = {}
        warnings: list[str] = []
        dynamic: set[str] = set()
        queue = deque([start])
        while queue:
            node = queue.popleft()
            for name, events in _handlers_of(node.procedure).items():
                reading = self._read(node.procedure, name, warnings)
                if reading.dynamic:
                    dynamic.add(node.name)
                for site in reading.sites:
                    target = (
                        node
                        if site.target is None
                        else self._target(site.target, site.prompt, queue)
                    )
                    edges[Edge(node, target, events, site.condition, name, site.sopy_condition)] = None
            for fallback in _fallbacks_of(node.procedure, warnings):
                edge = Edge(node, self._target(fallback, None, queue), (), "recovery fallback", "sop_recovery", None)
                self._recovery_edges[edge] = None
        return edges, warnings, dynamic

    def _target(self, procedure: ProcedureClass, prompt: str | None, queue: deque[Node]) -> Node:
        """The node a return leads to; a node seen for the first time is queued for reading."""
        known = len(self._nodes)
        node = self._node(procedure, str(procedure.prompt) if prompt is None else prompt)
        if len(self._nodes) > known and not node.terminal:
            queue.append(node)
        return node

    def _node(self, procedure: ProcedureClass, prompt: str) -> Node:
        if issubclass(procedure, End):
            key: tuple[ProcedureClass, str] = (End, "")
            procedure, prompt = End, str(End.prompt)
        else:
            key = (procedure, prompt)
        if key not in self._nodes:
            self._nodes[key] = Node(self._name(procedure), procedure, prompt)
        return self._nodes[key]

    def _name(self, procedure: ProcedureClass) -> str:
        if procedure is End:
            return _END_NAME
        base = procedure.__name__
        self._names[base] += 1
        count = self._names[base]
        return base if count == 1 else f"{base}#{count}"

    def _read(self, procedure: ProcedureClass, name: str, warnings: list[str]) -> _Reading:
        """Read a handler once per class, however many nodes the class has."""
        key = (procedure, name)
        if key not in self._readings:
            self._readings[key] = _HandlerReader(procedure, name).read()
            warnings.extend(self._readings[key].warnings)
        return self._readings[key]


class _HandlerReader:
    """Finds the returns of one handler method and the conditions guarding them."""

    def __init__(self, owner: ProcedureClass, name: str) -> None:
        self._owner = owner
        self._name = name
        self._function: Callable[..., Any] = inspect.unwrap(getattr(owner, name))
        self._namespace = _namespace(self._function, owner)
        self._reading = _Reading()
        self._first_line = self._function.__code__.co_firstlineno
        self._self_name = "self"
        self._state_name: str | None = None
        self._state_model: type[BaseModel] | None = None

    def read(self) -> _Reading:
        try:
            lines, self._first_line = inspect.getsourcelines(self._function)
            definition = _parse_definition("".join(lines))
        except (OSError, TypeError, SyntaxError) as error:
            self._reading.dynamic = True
            self._reading.warnings.append(
                f"{self._where(1)}: handler {self._label}: source code cannot be read "
                f"({type(error).__name__}: {error}); its transitions are left out of the graph"
            )
            return self._reading
        if isinstance(definition, ast.FunctionDef | ast.AsyncFunctionDef):
            parameters = [*definition.args.posonlyargs, *definition.args.args]
            self._self_name = parameters[0].arg if parameters else "self"
            if len(parameters) > 1:
                self._state_name = parameters[1].arg
                self._state_model = self._model_of(parameters[1].annotation)
            self._statements(definition.body, ())
            if not _always_returns(definition.body):
                self._reading.refuses = True  # falling off the end returns None: an error
        return self._reading

    @property
    def _label(self) -> str:
        return f"{self._owner.__name__}.{self._name}"

    def _where(self, line: int) -> str:
        """file:line in the module, from a line number within the handler's source."""
        return f"{self._function.__code__.co_filename}:{self._first_line + line - 1}"

    def _statements(self, statements: list[ast.stmt], guard: _Guard) -> None:
        for statement in statements:
            if isinstance(statement, ast.Return):
                self._return(statement.value, guard, statement.lineno)
            elif isinstance(statement, ast.If):
                self._statements(statement.body, (*guard, (statement.test, False)))
                self._statements(statement.orelse, (*guard, (statement.test, True)))
            elif isinstance(statement, ast.Raise | ast.Assert):
                self._reading.refuses = True
            elif not isinstance(statement, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef):
                # Nested definitions are skipped: their returns are not the handler's.
                for block in _nested_blocks(statement):
                    self._statements(block, guard)

    def _return(self, value: ast.expr | None, guard: _Guard, line: int) -> None:
        if isinstance(value, ast.JoinedStr) or (
            isinstance(value, ast.Constant) and isinstance(value.value, str)
        ):
            self._reading.refuses = True
            return  # a recovery prompt: the event is rejected, no transition
        if isinstance(value, ast.IfExp):
            self._return(value.body, (*guard, (value.test, False)), line)
            self._return(value.orelse, (*guard, (value.test, True)), line)
        elif isinstance(value, ast.Name) and value.id == self._self_name:
            self._reading.sites.append(_Site(None, None, *self._conditions(guard)))
        elif isinstance(value, ast.Call) and _is_procedure_class(
            target := self._resolve(value.func)
        ):
            prompt = self._prompt_argument(value, target, line)
            self._reading.sites.append(_Site(target, prompt, *self._conditions(guard)))
        else:
            self._reading.dynamic = True
            source = "None" if value is None else ast.unparse(value)
            self._reading.warnings.append(
                f"{self._where(line)}: handler {self._label} returns {source}, which cannot be "
                "resolved statically; its transition is left out of the graph (return a "
                "procedure instance such as Next(), self, End() or a str)"
            )

    def _prompt_argument(self, call: ast.Call, target: ProcedureClass, line: int) -> str | None:
        """The prompt text passed as `prompt=...`, or None when the class prompt applies."""
        argument = next((k.value for k in call.keywords if k.arg == "prompt"), None)
        if argument is None or (isinstance(argument, ast.Constant) and argument.value is None):
            return None
        text = self._static_prompt(argument)
        if text is None:
            self._reading.warnings.append(
                f"{self._where(line)}: handler {self._label} passes prompt="
                f"{ast.unparse(argument)} to {target.__name__}, which cannot be resolved "
                f"statically; the graph uses {target.__name__}'s class prompt"
            )
        return text

    def _static_prompt(self, expression: ast.expr) -> str | None:
        """Prompt text as `Procedure.__init__` would set it, if it is known without running."""
        value = self._static_value(expression)
        if isinstance(value, Prompt):
            return value.text
        if isinstance(value, str):
            return make_prompt(value).text
        if not isinstance(expression, ast.Call):
            return None
        factory = self._resolve(expression.func)
        text = self._static_value(_single_argument(expression, "text"))
        if not isinstance(text, str):
            return None
        if factory is make_prompt:
            return make_prompt(text).text
        return text if factory is Prompt else None

    def _conditions(self, guard: _Guard) -> tuple[str | None, str | None]:
        """The guard in this project's words and in SOPy's; (None, None) when unguarded."""
        if not guard:
            return None, None
        clauses = [self._clause(test, negated) for test, negated in guard]
        condition = clauses[0][0] if len(clauses) == 1 else " and ".join(_wrap(c, "and") for c in clauses)
        # SOPy words an else branch as "not <test>" even when the test is a `not` itself.
        sopy = " and ".join(("not " if negated else "") + self._sopy_words(test) for test, negated in guard)
        return condition, sopy

    def _clause(self, test: ast.expr, negated: bool) -> tuple[str, str | None]:
        if not negated:
            return self._describe(test)
        if isinstance(test, ast.UnaryOp) and isinstance(test.op, ast.Not):
            return self._describe(test.operand)
        return f"not {_wrap(self._describe(test), None)}", None

    def _describe(self, test: ast.expr) -> tuple[str, str | None]:
        """A test in words, and its top-level operator ("and"/"or") for parenthesising."""
        description = self._cond_description(test)
        if description is not None:
            return description, None
        operator = _bool_operator(test)
        inner = (node for node in ast.walk(test) if isinstance(node, ast.expr))
        if not any(self._cond_description(node) is not None for node in inner):
            return ast.unparse(test), operator
        if isinstance(test, ast.UnaryOp) and isinstance(test.op, ast.Not):
            return f"not {_wrap(self._describe(test.operand), None)}", None
        if isinstance(test, ast.BoolOp) and operator is not None:
            parts = (_wrap(self._describe(value), operator) for value in test.values)
            return f" {operator} ".join(parts), operator
        return ast.unparse(test), None

    def _sopy_words(self, test: ast.expr) -> str:
        """A test as SOPy words it: cond descriptions, comparisons and not/and/or spelled out."""
        if isinstance(test, ast.Call) and (description := self._cond_description(test)) is not None:
            return description
        if isinstance(test, ast.Compare):
            comparisons = (
                f"{_SOPY_COMPARISONS[type(op)]} {self._sopy_operand(right)}"
                for op, right in zip(test.ops, test.comparators, strict=True)
            )
            return " ".join([self._sopy_operand(test.left), *comparisons])
        if isinstance(test, ast.BoolOp):
            return f" {_bool_operator(test)} ".join(self._sopy_words(value) for value in test.values)
        if isinstance(test, ast.UnaryOp) and isinstance(test.op, ast.Not):
            return f"not {self._sopy_words(test.operand)}"
        return self._sopy_operand(test) if isinstance(test, ast.Attribute) else ast.unparse(test)

    def _sopy_operand(self, expression: ast.expr) -> str:
        """An operand as SOPy words it: a state field by its description, a str in quotes."""
        if isinstance(expression, ast.Attribute):
            dotted = f"{self._sopy_operand(expression.value)}.{expression.attr}"
            return self._field_description(expression) or dotted
        if isinstance(expression, ast.Constant) and isinstance(expression.value, str):
            return f"'{expression.value}'"
        return ast.unparse(expression)

    def _field_description(self, attribute: ast.Attribute) -> str | None:
        """The description the state model gives `<state parameter>.<field>`, if any."""
        on_state = isinstance(attribute.value, ast.Name) and attribute.value.id == self._state_name
        model_field = self._state_model.model_fields.get(attribute.attr) if on_state and self._state_model else None
        return model_field.description if model_field else None

    def _model_of(self, annotation: ast.expr | None) -> type[BaseModel] | None:
        """The state model: the state parameter's annotation, else the procedure's `Procedure[Model]`."""
        candidates = [
            self._static_value(annotation),
            *(
                argument
                for klass in self._owner.__mro__
                for base in vars(klass).get("__orig_bases__", ())
                if _is_procedure_class(get_origin(base))
                for argument in get_args(base)
            ),
        ]
        return next((c for c in candidates if isinstance(c, type) and issubclass(c, BaseModel)), None)

    def _cond_description(self, expression: ast.expr) -> str | None:
        """The description of a `cond(value, "description")` call, else None."""
        if not isinstance(expression, ast.Call) or self._resolve(expression.func) is not cond:
            return None
        arguments = [*expression.args, *(k.value for k in expression.keywords)]
        if len(arguments) != 2:
            return None
        description = self._static_value(arguments[1])
        text = description if isinstance(description, str) else ast.unparse(arguments[0])
        return " ".join(text.split())

    def _static_value(self, expression: ast.expr | None) -> object:
        if isinstance(expression, ast.Constant):
            return expression.value
        return _MISSING if expression is None else self._resolve(expression)

    def _resolve(self, expression: ast.expr) -> object:
        """The object a name or dotted name refers to in the handler's scope, if any."""
        if isinstance(expression, ast.Name):
            return self._namespace.get(expression.id, _MISSING)
        if isinstance(expression, ast.Attribute):
            base = self._resolve(expression.value)
            return _MISSING if base is _MISSING else getattr(base, expression.attr, _MISSING)
        return _MISSING


def _namespace(function: Callable[..., Any], owner: type) -> Mapping[str, Any]:
    """Names a handler sees: its closure, its globals, then its class's module."""
    cells = getattr(function, "__closure__", None) or ()
    closure: dict[str, Any] = {}
    for name, cell in zip(function.__code__.co_freevars, cells, strict=False):
        try:
            closure[name] = cell.cell_contents
        except ValueError:  # an empty cell: the name is not bound (yet)
            continue
    module = sys.modules.get(owner.__module__)
    return ChainMap(closure, function.__globals__, vars(module) if module else {})


def _parse_definition(source: str) -> ast.stmt:
    """The first statement (the handler's def) of an indented source snippet.

    Raises:
        SyntaxError: the snippet does not parse.
    """
    try:
        return ast.parse(textwrap.dedent(source)).body[0]
    except SyntaxError:
        # A string literal less indented than the def defeats dedent; under a block header
        # the def's own indentation is valid as it stands.
        wrapper = cast(ast.If, ast.parse(f"if True:\n{source}").body[0])
        ast.increment_lineno(wrapper, -1)
        return wrapper.body[0]


def _always_returns(statements: list[ast.stmt]) -> bool:
    """Whether every path through `statements` ends in a `return` (read simply: the last
    statement returns, or is an `if`/`else` whose branches both always return)."""
    if not statements:
        return False
    last = statements[-1]
    if isinstance(last, ast.Return):
        return True
    return isinstance(last, ast.If) and _always_returns(last.body) and _always_returns(last.orelse)


def _nested_blocks(statement: ast.stmt) -> list[list[ast.stmt]]:
    """The statement lists inside a compound statement (loops, with, try, match)."""
    blocks = [
        value
        for name in ("body", "orelse", "finalbody")
        if isinstance(value := getattr(statement, name, None), list)
    ]
    blocks.extend(handler.body for handler in getattr(statement, "handlers", ()))
    blocks.extend(case.body for case in getattr(statement, "cases", ()))
    return blocks


def _single_argument(call: ast.Call, keyword: str) -> ast.expr | None:
    """The one argument of `f(x)` or `f(keyword=x)`, else None."""
    if len(call.args) == 1 and not call.keywords:
        return call.args[0]
    if not call.args and len(call.keywords) == 1 and call.keywords[0].arg == keyword:
        return call.keywords[0].value
    return None


def _bool_operator(expression: ast.expr) -> str | None:
    if isinstance(expression, ast.BoolOp):
        return "and" if isinstance(expression.op, ast.And) else "or"
    return None


def _wrap(clause: tuple[str, str | None], joiner: str | None) -> str:
    """Parenthesise a compound clause inside a larger one, unless both use the same operator."""
    text, operator = clause
    return f"({text})" if operator is not None and operator != joiner else text


def _is_procedure_class(value: object) -> TypeGuard[ProcedureClass]:
    return isinstance(value, type) and issubclass(value, Procedure)


def _handlers_of(procedure: ProcedureClass) -> dict[str, tuple[EventClass, ...]]:
    """Handler name -> the event types it handles, in the class's handler table order."""
    grouped: dict[str, list[EventClass]] = {}
    for event_type, name in procedure.sop_handlers.items():
        grouped.setdefault(name, []).append(event_type)
    return {name: tuple(events) for name, events in grouped.items()}


def _sop_entries(entry: ProcedureClass) -> list[ProcedureClass]:
    """Entry procedures of the SOPs written in the entry's module (`init_proc=X()`, `SOP(s, X())`)."""
    module = sys.modules.get(entry.__module__)
    try:
        tree = ast.parse(inspect.getsource(module)) if module is not None else None
    except (OSError, TypeError, SyntaxError):
        return []
    if tree is None:
        return []
    names: list[str] = []
    for call in (node for node in ast.walk(tree) if isinstance(node, ast.Call)):
        candidates = [kw.value for kw in call.keywords if kw.arg == "init_proc"] + call.args[1:2]
        names += [c.func.id for c in candidates if isinstance(c, ast.Call) and isinstance(c.func, ast.Name)]
    scope = vars(module)
    return [scope[name] for name in dict.fromkeys(names) if _is_procedure_class(scope.get(name))]


def _unreachable(
    entry: ProcedureClass, extra: tuple[ProcedureClass, ...], reached: set[ProcedureClass]
) -> tuple[ProcedureClass, ...]:
    module = sys.modules.get(entry.__module__)
    # A workflow defined inside a function is not its module's workflow: scan only for an
    # entry defined at the module's top level.
    scanned = vars(module).values() if module and "<locals>" not in entry.__qualname__ else ()
    defined = [
        value
        for value in scanned
        if _is_procedure_class(value) and value.__module__ == entry.__module__
    ]
    candidates = dict.fromkeys([*defined, *extra])
    return tuple(
        candidate
        for candidate in candidates
        if candidate not in reached
        and not issubclass(candidate, End)
        and not any(issubclass(procedure, candidate) for procedure in reached)
    )


def _qualified_name(procedure: ProcedureClass) -> str:
    return f"{procedure.__module__}.{procedure.__qualname__}"


def _mermaid_ids(names: Iterable[str]) -> dict[str, str]:
    """A unique Mermaid-safe identifier for each node name."""
    ids: dict[str, str] = {}
    for name in names:
        ident = re.sub(r"\W", "_", name)
        while ident in ids.values():
            ident += "_"
        ids[name] = ident
    return ids


def _mermaid_label(text: str) -> str:
    return _MERMAID_SPECIAL.sub(lambda match: f"#{ord(match.group())};", " ".join(text.split()))
