"""A workflow's definition: plain JSON data that every process can build the workflow from.

A `WorkflowDefinition` names its steps (each a generated subclass of an importable procedure
class, with an optional prompt and agent), the declared transitions of each step (event type,
target step, optional condition) and where the steps' own handlers' returns lead
(`redirects`). It is what `WorkflowBuilder.build` and `WorkflowTemplate.instantiate` produce,
what travels with every generated procedure (see `sopy_actors.core.references.Definition`),
and what checkpoints carry; `digest()` keys it by content. Pure data: no classes are built here.

Conditions that travel as data are declarative (`Condition`: a field, a comparison, a value);
a condition may also name a top-level function `(state, event) -> bool` of an importable module
by `module:qualname`, loaded under the same rules as procedure classes.
"""

from __future__ import annotations

import hashlib
import json
import keyword
import re
from collections.abc import Mapping
from dataclasses import fields as dataclass_fields
from dataclasses import is_dataclass
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, JsonValue, field_validator, model_validator

__all__ = ["END", "Comparison", "Condition", "StepSpec", "TransitionSpec", "WorkflowDefinition"]

END = "End"
"""The target name of the terminal procedure in transitions and redirects."""

Comparison = Literal["==", "!=", "<", "<=", ">", ">=", "in", "not in"]

_FIELD_PATH = re.compile(r"^(state|event)(\.[A-Za-z][A-Za-z0-9_]*)+$")
_MISSING = object()


class Condition(BaseModel):
    """A declarative condition: `field op value`, evaluated on the state and event (no code).

    Attributes:
        field: a dotted path starting at `state` or `event`, e.g. `state.outliers` or
            `event.payload.rows`; names are public attributes or dict keys (no `_` prefix).
        op: the comparison: ==, !=, <, <=, >, >=, in, not in (`in`: the field's value is one
            of `value`, a list).
        value: JSON data to compare with.

    A field that is missing, or values that cannot be compared, make the condition false.
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    field: str
    op: Comparison = "=="
    value: JsonValue = None

    @field_validator("field")
    @classmethod
    def _check_field(cls, field: str) -> str:
        if not _FIELD_PATH.match(field):
            raise ValueError(
                "must be a dotted path of public names starting at 'state' or 'event', e.g. 'state.outliers'"
            )
        return field

    @model_validator(mode="after")
    def _check_value(self) -> Condition:
        if self.op in ("in", "not in") and not isinstance(self.value, list):
            raise ValueError(f"value must be a list for op {self.op!r}")
        return self

    def holds(self, state: Any, event: Any) -> bool:
        """Whether the condition is true for this state and event."""
        root, *path = self.field.split(".")
        found = _walk(state if root == "state" else event, path)
        if found is _MISSING:
            return False
        try:
            return _compare(self.op, found, self.value)
        except TypeError:
            return False

    def describe(self) -> str:
        """The condition in words for graphs and prompts: `state.outliers > 0`."""
        return f"{self.field} {self.op} {json.dumps(self.value)}"


def _walk(value: Any, path: list[str]) -> Any:
    for name in path:
        if isinstance(value, Mapping):
            value = value.get(name, _MISSING)
        elif isinstance(value, BaseModel):
            value = getattr(value, name) if name in type(value).model_fields else _MISSING
        elif is_dataclass(value) and not isinstance(value, type):
            value = getattr(value, name) if name in {f.name for f in dataclass_fields(value)} else _MISSING
        else:
            return _MISSING
        if value is _MISSING:
            return _MISSING
    return value


def _compare(op: str, left: Any, right: Any) -> bool:
    if op == "==":
        return bool(left == right)
    if op == "!=":
        return bool(left != right)
    if op == "<":
        return bool(left < right)
    if op == "<=":
        return bool(left <= right)
    if op == ">":
        return bool(left > right)
    if op == ">=":
        return bool(left >= right)
    if op == "in":
        return bool(left in right)
    return bool(left not in right)


def is_step_name(name: str) -> bool:
    """A step name is a Python identifier other than a keyword and `End` (it names a class)."""
    return name.isidentifier() and not keyword.iskeyword(name) and name != END


class TransitionSpec(BaseModel):
    """One declared transition of a step: on `event`, go to `to` if the condition holds.

    Attributes:
        event: the event class's wire name (`module:QualName`).
        to: a step name, or "End".
        when: a declarative condition, or None.
        check: `module:qualname` of a top-level function `(state, event) -> bool`, or None.
        description: how graphs and prompts word the condition (default: from when/check).
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    event: str
    to: str
    when: Condition | None = None
    check: str | None = None
    description: str | None = None

    @property
    def conditional(self) -> bool:
        """True when the transition has a condition."""
        return self.when is not None or self.check is not None

    def condition_text(self) -> str | None:
        """The condition in words, or None when unconditional."""
        if self.description is not None:
            return self.description
        parts = []
        if self.when is not None:
            parts.append(self.when.describe())
        if self.check is not None:
            parts.append(f"{self.check.rpartition(':')[2]}(state, event)")
        return " and ".join(parts) or None


class StepSpec(BaseModel):
    """One step: a generated subclass of `base` with the step's prompt, agent and transitions.

    Attributes:
        name: the step's (and its class's) name, unique in the workflow.
        base: `module:QualName` of the procedure class it extends (its handlers are kept).
        prompt: the step's prompt text; None keeps the base class's prompt.
        agent: an agent in `sopy_actors.core.codec.encode_value` form (a `StrandsAgent`), set
            as the class attribute `agent`; None for none.
        transitions: the declared transitions, in the order their conditions are tried.
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    name: str
    base: str
    prompt: str | None = None
    agent: dict[str, JsonValue] | None = None
    transitions: tuple[TransitionSpec, ...] = ()

    @field_validator("name")
    @classmethod
    def _check_name(cls, name: str) -> str:
        if not is_step_name(name):
            raise ValueError(f"step name {name!r} must be a Python identifier other than a keyword and 'End'")
        return name


class WorkflowDefinition(BaseModel):
    """A whole workflow as data (see the module docstring).

    Attributes:
        name: the workflow's name (the SOP's name in status, logs and metrics).
        entry: the name of the step the SOP starts in.
        steps: the steps, in their declared order.
        redirects: where a step's own handler returning an instance of a class leads, by the
            class's `module:QualName`: a step name or "End" (steps left out of a built workflow
            redirect to the next active step).
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    format: Literal[1] = 1
    name: str = Field(min_length=1)
    entry: str
    steps: tuple[StepSpec, ...] = Field(min_length=1)
    redirects: dict[str, str] = Field(default_factory=dict)

    def digest(self) -> str:
        """The content hash (hex, 24 characters) of the definition's canonical JSON."""
        canonical = json.dumps(self.model_dump(mode="json"), sort_keys=True, separators=(",", ":"))
        return hashlib.sha256(canonical.encode()).hexdigest()[:24]

    def step(self, name: str) -> StepSpec | None:
        """The step of that name, or None."""
        return next((step for step in self.steps if step.name == name), None)

    def problems(self) -> list[str]:
        """Structural problems: duplicate names, an unknown entry, transitions to unknown steps."""
        found: list[str] = []
        names = [step.name for step in self.steps]
        for name in sorted({name for name in names if names.count(name) > 1}):
            found.append(f"step name {name} is used {names.count(name)} times; step names must be unique")
        if self.entry not in names:
            found.append(f"the entry {self.entry!r} is not a step (steps: {', '.join(names)})")
        targets = {*names, END}
        for step in self.steps:
            for transition in step.transitions:
                if transition.to not in targets:
                    found.append(
                        f"step {step.name}: the transition on {_short(transition.event)} goes to {transition.to!r}, "
                        f"which is not a step of workflow {self.name} (steps: {', '.join(names)}, or End)"
                    )
        for reference, target in self.redirects.items():
            if target not in targets:
                found.append(f"redirect of {reference} goes to {target!r}, which is not a step or End")
        return found


def _short(reference: str) -> str:
    return reference.rpartition(":")[2] or reference
