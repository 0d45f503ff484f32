"""Procedure classes generated from a `WorkflowDefinition`, in any process.

Each step becomes a subclass of its base procedure class named after the step, with the step's
prompt and agent as class attributes and one handler per event it routes. A routing handler
first runs the base's own handler for the event, if it has one (its state changes and its
rejections stand), then takes the first declared transition whose condition holds; with none
declared for the event, the own handler's return is redirected (`WorkflowDefinition.redirects`)
so that a procedure returning `ProcessData()` lands in the workflow's `ProcessData` step, or in
the next active step when that one was left out.

Generated classes carry their definition (`sopy_actors.core.references.Definition`, reference
`sopy_actors.workflows@<digest>.<step>`), so the codec ships them as data. Importing
`sopy_actors.workflows` registers `decode_step`, the decoder that rebuilds them: a procedure
actor that never saw the workflow builds it from the data alone. Classes are cached per digest
(`classes_of`), so each process builds a workflow once and its classes stay the same objects.
"""

from __future__ import annotations

import functools
import logging
import operator
import threading
from collections import OrderedDict
from collections.abc import Callable
from typing import Any, cast

from pydantic import ValidationError

from sopy_actors.core.codec import decode_value
from sopy_actors.core.events import Event, input_error
from sopy_actors.core.options import ProcedureOptions
from sopy_actors.core.procedure import End, Procedure, Prompt, handler
from sopy_actors.core.references import Definition, reference_of, register_definition_decoder, resolve_reference
from sopy_actors.errors import DefinitionError, InputError, SopyError
from sopy_actors.workflows.definition import END, StepSpec, TransitionSpec, WorkflowDefinition

__all__ = ["DECODER_MODULE", "Route", "classes_of", "decode_step", "step_reference"]

logger = logging.getLogger(__name__)

DECODER_MODULE = "sopy_actors.workflows"
"""The module whose import registers the decoder of generated steps (the `module@` of their references)."""

_GENERATED_MODULE = "sopy_actors.workflows.generated"  # not importable, on purpose: classes are data
_CACHE_SIZE = 256  # workflows kept per process; a workflow evicted is rebuilt from its data
_cache: OrderedDict[str, dict[str, type[Procedure[Any]]]] = OrderedDict()
_lock = threading.Lock()  # a procedure actor decodes on many threads
# Light by default: a generated step whose base declares no options shares the shared procedure actor.
SHARED = ProcedureOptions(placement="shared")

ProcedureClass = type[Procedure[Any]]
EventClass = type[Event[Any]]


def step_reference(digest: str, step: str) -> str:
    """The reference of a generated step: `sopy_actors.workflows@<digest>.<step>`."""
    return f"{DECODER_MODULE}@{digest}.{step}"


class Route:
    """A declared transition with its event class and check function loaded (in this process)."""

    def __init__(self, spec: TransitionSpec, event: EventClass, check: Callable[[Any, Any], Any] | None) -> None:
        self.spec = spec
        self.event = event
        self.check = check

    def holds(self, state: Any, event: Event[Any]) -> bool:
        """Whether this transition applies to `event` in `state`."""
        if self.spec.when is not None and not self.spec.when.holds(state, event):
            return False
        return self.check is None or bool(self.check(state, event))


def classes_of(definition: WorkflowDefinition, data: Any = None) -> dict[str, ProcedureClass]:
    """The generated classes of a workflow by step name, built once per process and digest.

    Args:
        definition: the workflow.
        data: its JSON form as it travelled (default: `definition.model_dump(mode="json")`).

    Raises:
        DefinitionError: a base class, event class or check function cannot be loaded, or a
            generated class is not a valid procedure; every problem is listed.
    """
    digest = definition.digest()
    with _lock:
        cached = _cache.get(digest)
        if cached is not None:
            _cache.move_to_end(digest)
            return cached
    classes = _build(definition, digest, definition.model_dump(mode="json") if data is None else data)
    with _lock:
        cached = _cache.setdefault(digest, classes)  # another thread may have built it meanwhile
        _cache.move_to_end(digest)
        while len(_cache) > _CACHE_SIZE:
            _cache.popitem(last=False)
    return cached


def decode_step(key: str, data: Any) -> ProcedureClass:
    """The decoder of generated steps (registered for `sopy_actors.workflows@...` references).

    Args:
        key: `<digest>.<step>` from the reference.
        data: the workflow definition's JSON data that travelled with it.

    Raises:
        InputError: the data is not a valid definition, does not match the digest, or has no
            such step, or the workflow cannot be built here.
    """
    digest, _, step = key.partition(".")
    with _lock:
        cached = _cache.get(digest)
        if cached is not None:
            _cache.move_to_end(digest)  # in use: the last to be dropped
    if cached is None:
        try:
            definition = WorkflowDefinition.model_validate(data)
        except ValidationError as error:
            raise input_error("workflow definition", error) from None
        if definition.digest() != digest:
            raise InputError(
                f"workflow definition {definition.name!r} does not match its content hash {digest} "
                "(it was changed after it was built)"
            )
        try:
            cached = classes_of(definition, data)
        except DefinitionError as error:
            raise InputError(f"Cannot build workflow {definition.name!r} here: {error}") from None
    found = cached.get(step)
    if found is None:
        raise InputError(f"workflow {digest} has no step {step!r}")
    return found


register_definition_decoder(DECODER_MODULE, decode_step)


def _load(reference: str, base: type[Any] | None, what: str, problems: list[str]) -> Any:
    try:
        return resolve_reference(reference) if base is None else resolve_reference(reference, base)
    except InputError as error:
        problems.append(f"{what}: {error}")
        return None


def _build(definition: WorkflowDefinition, digest: str, data: Any) -> dict[str, ProcedureClass]:
    """Generate every step's class; raise one DefinitionError listing every problem."""
    problems = definition.problems()
    bases: dict[str, ProcedureClass] = {}
    routes: dict[str, list[Route]] = {}
    for step in definition.steps:
        base = _load(step.base, Procedure, f"step {step.name}: base class {step.base}", problems)
        if base is not None and issubclass(base, End):
            problems.append(f"step {step.name}: the base class {step.base} is End, which cannot be a step")
        elif base is not None:
            bases[step.name] = base
        routes[step.name] = []
        for transition in step.transitions:
            event = _load(transition.event, Event, f"step {step.name}: event {transition.event}", problems)
            check = None
            if transition.check is not None:
                check = _load(transition.check, None, f"step {step.name}: check {transition.check}", problems)
                if check is not None and not callable(check):
                    problems.append(f"step {step.name}: check {transition.check} is not a function")
            if event is not None:
                routes[step.name].append(Route(transition, event, check))
    if problems:
        raise DefinitionError(f"workflow {definition.name}", problems)

    classes: dict[str, ProcedureClass] = {}
    for step in definition.steps:
        try:
            # Run by the base class's procedure actors: every workflow built on it shares them.
            carried = Definition(step_reference(digest, step.name), data, runs_as=step.base)
            classes[step.name] = _generate(step, bases[step.name], routes[step.name], classes, definition, carried)
        except DefinitionError as error:
            problems.extend(f"step {step.name}: {problem}" for problem in error.problems)
        except SopyError as error:
            problems.append(f"step {step.name}: {error}")
    if problems:
        raise DefinitionError(f"workflow {definition.name}", problems)
    logger.debug("workflow=<%s>, digest=<%s> | classes generated", definition.name, digest)
    return classes


def _generate(
    step: StepSpec,
    base: ProcedureClass,
    routes: list[Route],
    classes: dict[str, ProcedureClass],
    definition: WorkflowDefinition,
    carried: Definition,
) -> ProcedureClass:
    namespace: dict[str, Any] = {
        "__module__": _GENERATED_MODULE,
        "__qualname__": step.name,
        "__doc__": f"Step {step.name} of workflow {definition.name} (a {base.__name__}, generated from its definition).",
        "__sop_definition__": carried,
    }
    if step.prompt is not None:
        namespace["prompt"] = Prompt(step.prompt)
    if step.agent is not None:
        namespace["agent"] = decode_value(step.agent)
    if getattr(base, "sop_options", None) is None:
        namespace["sop_options"] = SHARED
    router = _Router(step.name, routes, classes, definition.redirects)
    own: dict[str, list[EventClass]] = {}
    for event_type, name in base.sop_handlers.items():
        own.setdefault(name, []).append(event_type)
    routed = {route.event for route in routes}
    for name, events in own.items():
        namespace[name] = _handler(name, tuple(events), getattr(base, name), router)
        routed -= set(events)
    for event in dict.fromkeys(route.event for route in routes if route.event in routed):
        name = f"sop_on_{event.__name__}"
        while name in namespace or hasattr(base, name):
            name += "_"
        namespace[name] = _handler(name, (event,), None, router)
    return cast(ProcedureClass, type(step.name, (base,), namespace))


def _handler(
    name: str, events: tuple[EventClass, ...], own: Callable[..., Any] | None, router: _Router
) -> Callable[..., Any]:
    """A handler for `events`: the base's own handler (if any), then the step's routing."""

    def route(self: Procedure[Any], state: Any, event: Event[Any]) -> Any:
        result = self if own is None else own(self, state, event)
        if isinstance(result, str):
            return result  # the own handler rejected the event: its recovery prompt stands
        return router.next(self, state, event, result)

    route.__name__ = route.__qualname__ = name
    route.__doc__ = f"Routes {', '.join(e.__name__ for e in events)} (generated)."
    route.__annotations__ = {"event": functools.reduce(operator.or_, events), "return": Any}
    return handler(route)


class _Router:
    """Where a step goes after an event: declared transitions, else the redirected own return."""

    def __init__(
        self, step: str, routes: list[Route], classes: dict[str, ProcedureClass], redirects: dict[str, str]
    ) -> None:
        self._step = step
        self._routes = routes
        self._classes = classes  # filled with every step once all are generated
        self._redirects = redirects

    def next(self, current: Procedure[Any], state: Any, event: Event[Any], result: Any) -> Any:
        applicable = [route for route in self._routes if isinstance(event, route.event)]
        if applicable:
            for route in applicable:
                if route.holds(state, event):
                    return self._enter(current, route.spec.to)
            conditions = "; ".join(route.spec.condition_text() or "always" for route in applicable)
            return (
                f"No transition of step {self._step} applies to {type(event).__name__} now "
                f"(its conditions: {conditions}); change what the conditions test and try again."
            )
        return self._redirect(result)

    def _enter(self, current: Procedure[Any], target: str) -> Procedure[Any]:
        if target == END:
            return End()
        if target == self._step:
            return current
        return self._classes[target]()

    def _redirect(self, result: Any) -> Any:
        if not isinstance(result, Procedure) or isinstance(result, End) or type(result) in self._classes.values():
            return result
        try:
            target = self._redirects.get(reference_of(type(result)))
        except InputError:
            return result
        if target is None:
            return result
        if target == END:
            return End()
        cls = self._classes[target]
        if cls.__bases__[0] is type(result):  # the step of that very class: keep what the handler gave it
            moved = cls.__new__(cls)
            vars(moved).update(vars(result))
            return moved
        return cls()
