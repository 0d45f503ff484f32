"""`WorkflowTemplate`: workflows from a YAML or JSON file (or a dict), with parameters.

A template names its steps by type; the types, the events its handlers name and the agents
its steps use come from a `WorkflowRegistry` in a user module that the file names, the job's
code (its classes travel by `module:qualname`, as every procedure class does):

```yaml
name: data_analysis_workflow
registry: steps                 # the module (or module:attribute, default attribute `registry`)
parameters:
  source: the CSV file to read  # a description: required
  algorithm: {description: outlier rule, default: iqr}
steps:
  - type: data_collection
    agent: collector
    prompt_template: "Collect {data_type} data from {source}"
    handlers:
      data_collected: next      # next step (End after the last), end, stay, a step name or type
  - type: analysis
    prompt_template: "Analyse the data using {algorithm}"
    handlers:
      analysis_complete:        # routes, tried in order; a `when` is a declarative condition
        - {to: review, when: {field: state.outliers, op: ">", value: 0}}
        - {to: next}
```

The file is validated with pydantic when loaded; every problem is reported at once as
`FILE:LINE: steps[1].type: ...`. `instantiate(parameters)` checks the parameters against the
declared ones and fills each prompt template by plain-name substitution
(`sopy_actors.workflows.substitution`): `{source}` works, `{0.__class__}`, `{x[0]}`,
`{a.__globals__}` and format specs are refused. Step names default to the type in CamelCase
(`data_collection` → `DataCollection`); give `name:` when a type appears twice. Pure Python.
"""

from __future__ import annotations

import importlib
import json
import sys
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any, TypeVar

import yaml  # type: ignore[import-untyped]  # PyYAML ships no type hints
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from sopy_actors.core.codec import encode_value
from sopy_actors.core.events import Event, event_type_name
from sopy_actors.core.options import Semantics
from sopy_actors.core.procedure import End, Procedure
from sopy_actors.core.references import reference_of
from sopy_actors.core.sop import ErrorHandler
from sopy_actors.core.transition import SOPY as SOPY_SEMANTICS
from sopy_actors.errors import DefinitionError, InputError, SopyError
from sopy_actors.recovery.policy import RecoveryPolicy
from sopy_actors.workflows.builder import Workflow
from sopy_actors.workflows.definition import END, Condition, StepSpec, TransitionSpec, WorkflowDefinition, is_step_name
from sopy_actors.workflows.substitution import ParameterValue, fill_template, placeholders

__all__ = ["ParameterConfig", "RouteConfig", "StepConfig", "TemplateConfig", "WorkflowRegistry", "WorkflowTemplate"]

F = TypeVar("F", bound=Callable[..., Any])

ACTIONS = ("next", "end", "stay")
"""Handler targets besides step names: the following step (End after the last), End, the same step."""

Driver = Callable[[Any, Workflow[Any]], Any]


class WorkflowRegistry:
    """What a template's steps may name: procedure types, events, agents; its state and driver.

    Define one at the top level of a module (the template names the module), e.g.

        registry = WorkflowRegistry()
        registry.procedure("data_collection", DataCollection)
        registry.event("data_collected", DataCollected)
        registry.agent("collector", StrandsAgent(tools=[read_csv], ...))

        @registry.state
        def initial_state(parameters): return AnalysisState(source=parameters["source"])

        @registry.driver
        def drive(handle, workflow): ...   # sends the events (`sopy-actors run FILE.yaml` calls it)
    """

    def __init__(self) -> None:
        self.procedures: dict[str, type[Procedure[Any]]] = {}
        self.events: dict[str, type[Event[Any]]] = {}
        self.agents: dict[str, Any] = {}
        self.state_factory: Callable[[dict[str, ParameterValue]], Any] | None = None
        self.driver_function: Driver | None = None

    def procedure(self, name: str, procedure_class: type[Procedure[Any]]) -> type[Procedure[Any]]:
        """Register a procedure class as step type `name` (its handlers are kept in the steps).

        Raises:
            DefinitionError: not a Procedure subclass of an importable module, or a taken name.
        """
        problems = self._name_problems(name, self.procedures, "step type")
        if not (isinstance(procedure_class, type) and issubclass(procedure_class, Procedure)) or issubclass(
            procedure_class, End
        ):
            problems.append(f"step type {name!r}: {procedure_class!r} is not a Procedure subclass (other than End)")
        else:
            try:
                reference_of(procedure_class)
            except InputError as error:
                problems.append(f"step type {name!r}: {error}")
        if problems:
            raise DefinitionError("workflow registry", problems)
        self.procedures[name] = procedure_class
        return procedure_class

    def event(self, name: str, event_class: type[Event[Any]]) -> type[Event[Any]]:
        """Register an event class under the name template handlers use.

        Raises:
            DefinitionError: not an Event subclass, or a taken name.
        """
        problems = self._name_problems(name, self.events, "event")
        if not (isinstance(event_class, type) and issubclass(event_class, Event)):
            problems.append(f"event {name!r}: {event_class!r} is not an Event subclass")
        if problems:
            raise DefinitionError("workflow registry", problems)
        self.events[name] = event_class
        return event_class

    def agent(self, name: str, agent: Any) -> Any:
        """Register an agent (a `StrandsAgent`) that steps name with `agent:`.

        The step's class gets it as its class attribute `agent`; it travels as data.

        Raises:
            DefinitionError: the agent has no JSON form, or the name is taken.
        """
        problems = self._name_problems(name, self.agents, "agent")
        if not problems:
            try:
                encode_value(agent, f"agent {name}")
            except SopyError as error:
                problems.append(f"agent {name!r}: {error}")
        if problems:
            raise DefinitionError("workflow registry", problems)
        self.agents[name] = agent
        return agent

    def state(self, factory: F) -> F:
        """Register (as a decorator) the function `(parameters) -> state` of a new workflow."""
        self.state_factory = factory
        return factory

    def driver(self, function: F) -> F:
        """Register (as a decorator) the function `(handle, workflow) -> result` that drives a run."""
        self.driver_function = function
        return function

    @staticmethod
    def _name_problems(name: str, taken: Mapping[str, Any], what: str) -> list[str]:
        if not isinstance(name, str) or not name.isidentifier():
            return [f"{what} name {name!r} must be an identifier, e.g. data_collection"]
        if name in taken:
            return [f"{what} {name!r} is registered twice"]
        return []


# -- the file's schema ------------------------------------------------------------------------


class ParameterConfig(BaseModel):
    """A declared parameter: a description and, for an optional one, its default."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    description: str = ""
    default: ParameterValue | None = None


class RouteConfig(BaseModel):
    """One route of a handler: go `to` (a step or action) when `when` holds."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    to: str
    when: Condition | None = None
    description: str | None = None


class StepConfig(BaseModel):
    """One step of a template."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    name: str | None = None
    type: str
    prompt_template: str | None = None
    agent: str | None = None
    handlers: dict[str, str | RouteConfig | list[RouteConfig]] = Field(default_factory=dict)


class TemplateConfig(BaseModel):
    """A template file's content."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    name: str = Field(min_length=1)
    description: str = ""
    registry: str | None = None
    parameters: dict[str, ParameterConfig | str | None] = Field(default_factory=dict)
    steps: list[StepConfig] = Field(min_length=1)


# -- where things are in the file -------------------------------------------------------------


class _Lines:
    """Line numbers of the keys and items of a YAML/JSON document, by path."""

    def __init__(self, text: str | None) -> None:
        self._lines: dict[tuple[str | int, ...], int] = {}
        if text is not None:
            try:
                root = yaml.compose(text, Loader=yaml.SafeLoader)
            except yaml.YAMLError:
                root = None
            if root is not None:
                self._index(root, ())

    def _index(self, node: Any, path: tuple[str | int, ...]) -> None:
        self._lines.setdefault(path, node.start_mark.line + 1)
        if isinstance(node, yaml.MappingNode):
            for key, value in node.value:
                child = (*path, str(key.value))
                self._lines[child] = key.start_mark.line + 1
                self._index(value, child)
        elif isinstance(node, yaml.SequenceNode):
            for index, item in enumerate(node.value):
                self._index(item, (*path, index))

    def line(self, path: tuple[str | int, ...]) -> int | None:
        """The line of the deepest known prefix of `path`."""
        for end in range(len(path), -1, -1):
            if path[:end] in self._lines:
                return self._lines[path[:end]]
        return None


def _dotted(path: tuple[str | int, ...]) -> str:
    text = ""
    for part in path:
        text += f"[{part}]" if isinstance(part, int) else (f".{part}" if text else str(part))
    return text or "<root>"


def _data_path(data: Any, loc: tuple[str | int, ...], kind: str) -> tuple[str | int, ...]:
    """The part of a pydantic error location that exists in the data (drops union member tags)."""
    path: list[str | int] = []
    for part in loc:
        inside = isinstance(data, dict) and part in data
        inside = inside or (isinstance(data, list) and isinstance(part, int) and 0 <= part < len(data))
        if inside:
            data = data[part]
        else:
            if kind in ("missing", "extra_forbidden"):
                path.append(part)
            break
        path.append(part)
    return tuple(path)


class _Problems:
    """Problems of one template, each as `SOURCE:LINE: field: message`."""

    def __init__(self, source: str, lines: _Lines) -> None:
        self.source = source
        self.lines = lines
        self.items: list[str] = []

    def add(self, path: tuple[str | int, ...], message: str) -> None:
        line = self.lines.line(path)
        where = self.source if line is None else f"{self.source}:{line}"
        self.items.append(f"{where}: {_dotted(path)}: {message}")

    def raise_if_any(self) -> None:
        if self.items:
            raise DefinitionError(f"workflow template {self.source}", self.items)


# -- the template -----------------------------------------------------------------------------


class WorkflowTemplate:
    """A parameterised workflow: `instantiate(parameters)` makes a `Workflow` (an SOP).

    Args:
        template_config: the template as data (the file's content).
        registry: the registry of its step types; default: the one the config's `registry`
            names (imported here: it is the job's code).
        source: how errors name where the config came from (a file name).

    Raises:
        DefinitionError: the config is invalid: every problem with its line and field.
    """

    def __init__(
        self,
        template_config: Mapping[str, Any],
        *,
        registry: WorkflowRegistry | None = None,
        source: str = "<template>",
        _text: str | None = None,
    ) -> None:
        self.source = source
        problems = _Problems(source, _Lines(_text))
        data = dict(template_config) if isinstance(template_config, Mapping) else template_config
        try:
            self.config = TemplateConfig.model_validate(data)
        except ValidationError as error:
            for item in error.errors():
                problems.add(_data_path(data, tuple(item["loc"]), item["type"]), item["msg"])
            problems.raise_if_any()
            raise  # unreachable: there was at least one error
        self.registry = registry if registry is not None else _import_registry(self.config.registry, problems)
        self.parameters = {name: _parameter(value) for name, value in self.config.parameters.items()}
        self.step_names: list[str] = []
        self._by_type: dict[str, str] = {}
        self._check(problems)
        problems.raise_if_any()

    @classmethod
    def from_file(cls, path: str | Path, *, registry: WorkflowRegistry | None = None) -> WorkflowTemplate:
        """Load a `.yaml`/`.yml` or `.json` template (its directory is where its registry module is looked for first).

        Raises:
            DefinitionError: the file does not parse or is invalid: every problem with its line.
            InputError: no such file.
        """
        file = Path(path)
        if not file.is_file():
            raise InputError(f"no such template file: {file}", fields=("path",))
        text = file.read_text()
        try:
            data = json.loads(text) if file.suffix == ".json" else yaml.safe_load(text)
        except json.JSONDecodeError as error:
            raise DefinitionError(f"workflow template {file}", [f"{file}:{error.lineno}: invalid JSON: {error.msg}"]) from None
        except yaml.YAMLError as error:
            mark = getattr(error, "problem_mark", None)
            where = f"{file}:{mark.line + 1}" if mark is not None else str(file)
            raise DefinitionError(f"workflow template {file}", [f"{where}: invalid YAML: {error}"]) from None
        if not isinstance(data, dict):
            raise DefinitionError(f"workflow template {file}", [f"{file}:1: <root>: expected a mapping of name, registry, steps"])
        directory = str(file.resolve().parent)
        if registry is None and directory not in sys.path:
            sys.path.insert(0, directory)  # as `python FILE.py` would: its registry module sits beside it
        return cls(data, registry=registry, source=str(file), _text=text)

    @property
    def name(self) -> str:
        """The template's (and its workflows') name."""
        return self.config.name

    def _check(self, problems: _Problems) -> None:
        registry = self.registry
        names: list[str] = []
        for index, step in enumerate(self.config.steps):
            at: tuple[str | int, ...] = ("steps", index)
            name = step.name or "".join(part.capitalize() for part in step.type.split("_"))
            if not is_step_name(name):
                problems.add((*at, "name"), f"step name {name!r} must be an identifier other than a keyword and End")
            if name in names:
                where = (*at, "name") if step.name else (*at, "type")
                problems.add(where, f"step name {name} is used twice; give the step a name:")
            names.append(name)
            if step.type not in registry.procedures:
                problems.add((*at, "type"), f"unknown step type {step.type!r} (registered: {_listed(registry.procedures)})")
            if step.agent is not None and step.agent not in registry.agents:
                problems.add((*at, "agent"), f"unknown agent {step.agent!r} (registered: {_listed(registry.agents)})")
            if step.prompt_template is not None:
                try:
                    used = placeholders(step.prompt_template, where=_dotted((*at, "prompt_template")))
                except InputError as error:
                    problems.add((*at, "prompt_template"), str(error).split(": ", 1)[1])
                    used = []
                for parameter in used:
                    if parameter not in self.parameters:
                        problems.add(
                            (*at, "prompt_template"),
                            f"placeholder {{{parameter}}} is not a declared parameter (declared: {_listed(self.parameters)})",
                        )
        self.step_names = names
        types = [step.type for step in self.config.steps]
        # A target may name a step by its type when only one step has that type.
        self._by_type = {kind: name for kind, name in zip(types, names, strict=True) if types.count(kind) == 1}
        for index, step in enumerate(self.config.steps):
            for event, routes in step.handlers.items():
                at = ("steps", index, "handlers", event)
                if event not in registry.events:
                    problems.add(at, f"unknown event {event!r} (registered: {_listed(registry.events)})")
                for position, route in enumerate(_routes(routes)):
                    if route.to not in ACTIONS and route.to not in names and route.to not in self._by_type:
                        where = at
                        if isinstance(routes, list):
                            where = (*at, position, "to")
                        elif isinstance(routes, RouteConfig):
                            where = (*at, "to")
                        problems.add(
                            where,
                            f"unknown target {route.to!r}: a step name ({', '.join(names)}), the type of one step, "
                            f"or {', '.join(ACTIONS)}",
                        )

    def definition(self, parameters: Mapping[str, ParameterValue] | None = None) -> WorkflowDefinition:
        """The workflow definition for these parameters (prompts filled, routes resolved).

        Raises:
            InputError: unknown or missing parameters, values of the wrong type (names them).
        """
        values = self._values(dict(parameters or {}))
        registry = self.registry
        steps = []
        uses: dict[str, list[str]] = {}
        for index, (step, name) in enumerate(zip(self.config.steps, self.step_names, strict=True)):
            base = reference_of(registry.procedures[step.type])
            uses.setdefault(base, []).append(name)
            prompt = None
            if step.prompt_template is not None:
                prompt = fill_template(step.prompt_template, values, where=f"steps[{index}].prompt_template")
            transitions = tuple(
                TransitionSpec(
                    event=event_type_name(registry.events[event]),
                    to=self._target(route.to, index, name),
                    when=route.when,
                    description=route.description,
                )
                for event, routes in step.handlers.items()
                for route in _routes(routes)
            )
            agent = None if step.agent is None else encode_value(registry.agents[step.agent], f"agent {step.agent}")
            steps.append(StepSpec(name=name, base=base, prompt=prompt, agent=agent, transitions=transitions))
        return WorkflowDefinition(
            name=self.config.name,
            entry=self.step_names[0],
            steps=tuple(steps),
            # A procedure's own `return Other()` lands in the step of that type, when only one step has it.
            redirects={base: names[0] for base, names in uses.items() if len(names) == 1},
        )

    def instantiate(
        self,
        parameters: Mapping[str, ParameterValue] | None = None,
        *,
        state: Any = None,
        retry_limits: int = 3,
        error_handler: ErrorHandler | None = None,
        semantics: Semantics = SOPY_SEMANTICS,
        recovery: RecoveryPolicy | None = None,
    ) -> Workflow[Any]:
        """A workflow of this template: its SOP, validated, ready to `start()`.

        Args:
            parameters: values of the declared parameters (defaults fill the rest).
            state: the initial state; default: the registry's state factory called with the
                parameters, else a dict of the parameters.
            retry_limits, error_handler, semantics, recovery: as for `SOP`.

        Raises:
            InputError: unknown or missing parameters, or values of the wrong type.
            DefinitionError: the workflow does not validate (see `Workflow`).
        """
        values = self._values(dict(parameters or {}))
        definition = self.definition(values)
        if state is None:
            factory = self.registry.state_factory
            state = factory(dict(values)) if factory is not None else dict(values)
        workflow = Workflow(
            state, definition, retry_limits=retry_limits, error_handler=error_handler, semantics=semantics, recovery=recovery
        )
        workflow.template = self
        return workflow

    def _values(self, given: dict[str, Any]) -> dict[str, ParameterValue]:
        problems = []
        unknown = sorted(set(given) - set(self.parameters))
        if unknown:
            problems.append(f"unknown parameter(s) {', '.join(unknown)} (declared: {_listed(self.parameters)})")
        values: dict[str, ParameterValue] = {}
        for name, declared in self.parameters.items():
            value = given.get(name, declared.default)
            if value is None:
                problems.append(f"parameter {name!r} is required ({declared.description or 'no description'})")
            elif not isinstance(value, str | int | float | bool):
                problems.append(f"parameter {name!r} is a {type(value).__name__}; values are str, int, float or bool")
            else:
                values[name] = value
        if problems:
            raise InputError(
                f"Invalid parameters of workflow template {self.config.name}: " + "; ".join(problems),
                fields=tuple(unknown) + tuple(name for name in self.parameters if name not in values),
            )
        return values

    def _target(self, to: str, index: int, name: str) -> str:
        if to == "next":
            return self.step_names[index + 1] if index + 1 < len(self.step_names) else END
        if to == "end":
            return END
        if to == "stay":
            return name
        return to if to in self.step_names else self._by_type[to]


def _routes(value: str | RouteConfig | list[RouteConfig]) -> list[RouteConfig]:
    if isinstance(value, str):
        return [RouteConfig(to=value)]
    return [value] if isinstance(value, RouteConfig) else list(value)


def _parameter(value: ParameterConfig | str | None) -> ParameterConfig:
    if isinstance(value, ParameterConfig):
        return value
    return ParameterConfig(description=value or "")


def _listed(names: Mapping[str, Any]) -> str:
    return ", ".join(sorted(names)) or "none"


def _import_registry(reference: str | None, problems: _Problems) -> WorkflowRegistry:
    """The registry a template names (`module` or `module:attribute`)."""
    if reference is None:
        problems.add(("registry",), "name the module of the registry of step types, e.g. `registry: my_steps`")
        problems.raise_if_any()
    assert reference is not None
    module_name, _, attribute = reference.partition(":")
    try:
        module = importlib.import_module(module_name)
    except Exception as error:  # the user's module failed to import: report where it is named
        problems.add(("registry",), f"cannot import {module_name}: {type(error).__name__}: {error}")
        problems.raise_if_any()
        raise
    registry = getattr(module, attribute or "registry", None)
    if not isinstance(registry, WorkflowRegistry):
        problems.add(("registry",), f"{module_name}.{attribute or 'registry'} is not a WorkflowRegistry")
        problems.raise_if_any()
    assert isinstance(registry, WorkflowRegistry)
    return registry
