"""`WorkflowBuilder` and `Workflow`: SOPs assembled at run time, validated when built.

    builder = WorkflowBuilder("adaptive")
    builder.add_procedure(ValidateData)
    builder.add_procedure(AnalyzeData, condition=lambda state, context: context.analysis_enabled)
    builder.add_transition(AnalyzeData, ReviewFindings, AnomalyFound, Condition(field="state.anomalies", op=">", value=0))
    workflow = builder.build(state, context)      # a Workflow: an SOP, validated
    workflow.start()                              # runs on the actor runtime like any SOP

Procedure conditions are functions of `(state, context)` run once, in `build`; transition
conditions are evaluated at event time, in the procedure actor: a declarative `Condition`, or a
top-level function `(state, event) -> bool` of an importable module (a lambda cannot travel).
A procedure left out of the workflow is skipped: a handler returning it lands in the next
active procedure (in the order they were added), or End after the last. Pure Python: building
never imports Ray.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from typing import Any, Generic, TypeVar

from pydantic import BaseModel, ValidationError

from sopy_actors.core.events import Event, event_type_name
from sopy_actors.core.graph import ProcedureGraph
from sopy_actors.core.options import Semantics
from sopy_actors.core.procedure import End, Procedure
from sopy_actors.core.references import reference_of
from sopy_actors.core.sop import SOP, ErrorHandler
from sopy_actors.core.transition import SOPY as SOPY_SEMANTICS
from sopy_actors.errors import DefinitionError, InputError
from sopy_actors.recovery.policy import RecoveryPolicy
from sopy_actors.workflows.definition import END, Condition, StepSpec, TransitionSpec, WorkflowDefinition
from sopy_actors.workflows.generate import classes_of
from sopy_actors.workflows.graph import workflow_graph

__all__ = ["Workflow", "WorkflowBuilder"]

S = TypeVar("S")

ProcedureCondition = Callable[[Any, Any], Any]
TransitionCondition = Condition | Callable[[Any, Any], Any]


class Workflow(SOP[S], Generic[S]):
    """An SOP whose procedures are generated from a `WorkflowDefinition`; validated when made.

    Start it, use it in `with`, draw it: it is an ordinary SOP whose steps travel to other
    processes as their definition (data), never by import.

    Args:
        state: the initial state (as for `SOP`).
        definition: the workflow.
        retry_limits, error_handler, semantics, recovery: as for `SOP`.

    Attributes:
        definition: the workflow's definition.
        steps: the generated step classes by step name.
        template: the `WorkflowTemplate` it was instantiated from, or None.

    Raises:
        DefinitionError: the definition does not make a runnable workflow; every problem is
            listed (unknown steps, classes that cannot be loaded, steps that handle no event,
            unreachable steps, steps with no path to End, condition fields the state lacks).
    """

    def __init__(
        self,
        state: S,
        definition: WorkflowDefinition,
        *,
        retry_limits: int = 3,
        error_handler: ErrorHandler | None = None,
        semantics: Semantics = SOPY_SEMANTICS,
        recovery: RecoveryPolicy | None = None,
    ) -> None:
        subject = f"workflow {definition.name}"
        problems = definition.problems()
        if problems:
            raise DefinitionError(subject, problems)
        self.definition = definition
        self.steps = classes_of(definition)
        graph, problems = workflow_graph(definition, self.steps)
        problems += graph.validate().errors
        problems += _quiet_steps(definition, self.steps)
        problems += _condition_fields(definition, state)
        entry = None
        for name, cls in self.steps.items():
            try:
                made = cls()
            except Exception as error:  # a base class whose constructor needs arguments
                problems.append(
                    f"step {name}: {cls.__bases__[0].__name__}() cannot be created with no arguments "
                    f"({type(error).__name__}: {error}); steps are entered by creating their class"
                )
                continue
            if name == definition.entry:
                entry = made
        if problems or entry is None:
            raise DefinitionError(subject, problems)
        self._graph = graph
        self.template: Any = None  # the WorkflowTemplate it was instantiated from, if any
        super().__init__(
            state, entry, retry_limits=retry_limits, error_handler=error_handler, semantics=semantics, recovery=recovery
        )

    @property
    def name(self) -> str:
        """The workflow's name."""
        return self.definition.name

    def graph(self) -> ProcedureGraph:
        """The workflow's procedure graph (Mermaid, SOP prompt, `validate()`)."""
        return self._graph


def _quiet_steps(definition: WorkflowDefinition, steps: dict[str, type[Procedure[Any]]]) -> list[str]:
    """Steps that handle no event at all: nothing could ever leave them."""
    return [
        f"step {name} handles no event: give {cls.__bases__[0].__name__} a handler or declare a transition from it"
        for name, cls in steps.items()
        if not cls.sop_handlers
    ]


def _condition_fields(definition: WorkflowDefinition, state: Any) -> list[str]:
    """Conditions on `state.<field>` whose field the state's model, dataclass or dict lacks."""
    if isinstance(state, BaseModel):
        known: set[str] | None = set(type(state).model_fields)
    elif dataclasses.is_dataclass(state) and not isinstance(state, type):
        known = {field.name for field in dataclasses.fields(state)}
    elif isinstance(state, dict):
        known = set(state)
    else:
        known = None
    problems = []
    for step in definition.steps:
        for transition in step.transitions:
            when = transition.when
            if known is None or when is None or not when.field.startswith("state."):
                continue
            first = when.field.split(".")[1]
            if first not in known:
                problems.append(
                    f"step {step.name}: condition field {when.field}: the state {type(state).__name__} has no "
                    f"field {first!r} (fields: {', '.join(sorted(known))})"
                )
    return problems


@dataclasses.dataclass
class _Added:
    procedure: type[Procedure[Any]]
    condition: ProcedureCondition | None
    prompt: str | None


@dataclasses.dataclass
class _Declared:
    source: Any
    target: Any
    event: Any
    condition: TransitionCondition | None
    description: str | None


class WorkflowBuilder:
    """Assembles a workflow from procedure classes and transitions; `build` validates it.

    Args:
        name: the workflow's name (default: "workflow").
    """

    def __init__(self, name: str = "workflow") -> None:
        self.name = name
        self.procedures: list[_Added] = []
        self.transitions: list[_Declared] = []

    def add_procedure(
        self, procedure_class: type[Procedure[Any]], condition: ProcedureCondition | None = None, *, prompt: str | None = None
    ) -> WorkflowBuilder:
        """Add a procedure class as a step, if `condition(state, context)` holds at build time.

        Args:
            procedure_class: a Procedure subclass defined at the top level of an importable
                module; its own handlers are kept.
            condition: a function of `(state, context)`, or None (always active).
            prompt: the step's prompt text (default: the class's prompt).

        Returns:
            The builder, to chain calls.
        """
        self.procedures.append(_Added(procedure_class, condition, prompt))
        return self

    def add_transition(
        self,
        from_proc: type[Procedure[Any]],
        to_proc: type[Procedure[Any]],
        event_type: type[Event[Any]],
        condition: TransitionCondition | None = None,
        *,
        description: str | None = None,
    ) -> WorkflowBuilder:
        """Declare that `from_proc` moves to `to_proc` on `event_type` (if `condition` holds then).

        Transitions of one procedure and event are tried in the order they were added; the
        first whose condition holds is taken. With none holding, the event is rejected.

        Args:
            from_proc: an added procedure class.
            to_proc: an added procedure class, or End.
            event_type: the Event subclass.
            condition: a `Condition`, a top-level function `(state, event) -> bool`, or None.
            description: how the graph and prompt word the condition.

        Returns:
            The builder, to chain calls.
        """
        self.transitions.append(_Declared(from_proc, to_proc, event_type, condition, description))
        return self

    def build(
        self,
        state: S,
        context: Any = None,
        *,
        retry_limits: int = 3,
        error_handler: ErrorHandler | None = None,
        semantics: Semantics = SOPY_SEMANTICS,
        recovery: RecoveryPolicy | None = None,
    ) -> Workflow[S]:
        """Choose the active procedures for `context`, generate the workflow and validate it.

        Returns:
            The workflow, an SOP starting in the first active procedure.

        Raises:
            DefinitionError: every problem found: an argument that is not a procedure class or
                event type, a transition naming a procedure that was not added, a condition
                that cannot travel, no active procedure, unreachable steps, steps with no path
                to End, a handler returning a procedure that is not in the workflow.
        """
        problems: list[str] = []
        order: list[type[Procedure[Any]]] = []
        references: dict[type[Procedure[Any]], str] = {}
        active: dict[type[Procedure[Any]], _Added] = {}
        for index, added in enumerate(self.procedures):
            procedure = added.procedure
            if not (isinstance(procedure, type) and issubclass(procedure, Procedure)) or issubclass(procedure, End):
                problems.append(f"add_procedure #{index + 1}: {procedure!r} is not a Procedure subclass (other than End)")
                continue
            if procedure in references:
                problems.append(f"procedure {procedure.__name__} is added twice; add each procedure class once")
                continue
            try:
                references[procedure] = reference_of(procedure)
            except InputError as error:
                problems.append(str(error))
                continue
            order.append(procedure)
            try:
                if added.condition is None or added.condition(state, context):
                    active[procedure] = added
            except Exception as error:  # a user condition failed: report it with the others
                problems.append(f"the condition of {procedure.__name__} failed: {type(error).__name__}: {error}")
        if order and not active and not problems:
            problems.append(f"no procedure is active for this context (added: {', '.join(p.__name__ for p in order)})")
        successor = _successors(order, active)
        transitions: dict[type[Procedure[Any]], list[TransitionSpec]] = {procedure: [] for procedure in active}
        for declared in self.transitions:
            spec = self._transition(declared, references, successor, problems)
            if spec is not None and declared.source in active:
                transitions[declared.source].append(spec)
        if not order and not problems:
            problems.append("no procedure was added")
        if problems:
            raise DefinitionError(f"workflow {self.name}", problems)
        try:
            definition = WorkflowDefinition(
                name=self.name,
                entry=next(iter(active)).__name__,
                steps=tuple(
                    StepSpec(name=procedure.__name__, base=references[procedure], prompt=added.prompt,
                             transitions=tuple(transitions[procedure]))
                    for procedure, added in active.items()
                ),
                redirects={references[procedure]: successor[procedure] for procedure in order},
            )
        except ValidationError as error:
            raise DefinitionError(f"workflow {self.name}", [str(error)]) from None
        return Workflow(
            state, definition, retry_limits=retry_limits, error_handler=error_handler, semantics=semantics, recovery=recovery
        )

    def _transition(
        self,
        declared: _Declared,
        references: dict[type[Procedure[Any]], str],
        successor: dict[type[Procedure[Any]], str],
        problems: list[str],
    ) -> TransitionSpec | None:
        label = f"transition {_label(declared.source)} -> {_label(declared.target)} on {_label(declared.event)}"
        found = []
        if declared.source not in references:
            found.append(f"{label}: unknown procedure {_label(declared.source)}: add it with add_procedure first")
        if declared.target is not End and declared.target not in references:
            found.append(f"{label}: unknown procedure {_label(declared.target)}: add it with add_procedure first (or go to End)")
        if not (isinstance(declared.event, type) and issubclass(declared.event, Event)):
            found.append(f"{label}: {declared.event!r} is not an Event subclass")
        check, when = None, None
        if isinstance(declared.condition, Condition):
            when = declared.condition
        elif callable(declared.condition):
            try:
                check = reference_of(declared.condition, what="transition condition")
            except InputError as error:
                found.append(f"{label}: {error} (or write it as a Condition(field=..., op=..., value=...))")
        elif declared.condition is not None:
            found.append(f"{label}: the condition must be a Condition or a function (state, event) -> bool")
        problems.extend(found)
        if found:
            return None
        target = END if declared.target is End else successor[declared.target]
        return TransitionSpec(
            event=event_type_name(declared.event), to=target, when=when, check=check, description=declared.description
        )


def _successors(order: list[type[Procedure[Any]]], active: dict[type[Procedure[Any]], _Added]) -> dict[type[Procedure[Any]], str]:
    """Each added class's step: itself when active, else the next active one, else End."""
    found: dict[type[Procedure[Any]], str] = {}
    following = END
    for procedure in reversed(order):
        if procedure in active:
            following = procedure.__name__
        found[procedure] = following
    return found


def _label(value: Any) -> str:
    return value.__name__ if isinstance(value, type) else repr(value)
