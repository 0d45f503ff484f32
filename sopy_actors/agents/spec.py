"""AgentSpec: everything that defines a specialist agent, as plain, hashable data.

Equal specs name the same `AgentActor` (`AgentSpec.actor_name()`), so every handle built from
the same tools, prompt and model shares one actor. Tools are stored as `module:qualname`
references that the actor imports (`sopy_actors.core.references`); they must live at the top
level of an importable module.

A tool method of an object (`tools=[db.connect, db.query]`, SOPy tutorial 7 "Stateful Tools")
is stored as a `BoundTool`: the method's name and the digest of the pickled object. The object
itself is not data of the spec: the spec holds it beside its data (pickling the spec or its
handle carries it; JSON drops it), and the handle gives it to the agent actor as a constructor
argument, pickled by Ray between the cluster's processes; nothing is ever unpickled from disk
or from the spec's JSON. The actor works on its own copy: the tool calls change the actor's
object, not the caller's, and a restarted actor starts again from the copy it was given.
Objects that pickle alike are one object to the spec (same digest, same actor).
"""

from __future__ import annotations

import hashlib
import inspect
import re
from collections.abc import Mapping
from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field, PrivateAttr, ValidationError, field_validator

from sopy_actors.agents.providers import ModelConfig, model_config_from
from sopy_actors.core.events import input_error
from sopy_actors.core.references import reference_of, resolve_reference
from sopy_actors.errors import DefinitionError, InputError
from sopy_actors.recovery.breaker import BreakerSettings

__all__ = ["AgentSpec", "BoundTool", "load_tool", "tool_reference"]

_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$")


class BoundTool(BaseModel):
    """A tool that is a method of an object: which method, of which object.

    Build one with `BoundTool.of(obj.method)`; it holds the object beside its data (see the
    module docstring). Equality is by data: equal BoundTools name the same tool of the same
    object, whether or not they hold it.

    Attributes:
        owner: the object's class as `module:qualname` (for people; never imported).
        method: the name of the tool method on the object.
        digest: the sha256 of the pickled object, which names it among the agent's objects.
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    owner: str
    method: str
    digest: str = Field(pattern=r"^[0-9a-f]{64}$")

    _instance: Any = PrivateAttr(default=None)

    def __eq__(self, other: object) -> bool:
        return isinstance(other, BoundTool) and (self.owner, self.method, self.digest) == (
            other.owner, other.method, other.digest
        )

    def __hash__(self) -> int:
        return hash((self.owner, self.method, self.digest))

    @classmethod
    def of(cls, method: Any, where: str = "tools") -> BoundTool:
        """The BoundTool of a tool method bound to its object (`db.connect`).

        Raises:
            InputError: the object cannot be pickled (so it cannot reach the agent actor), or
                the method is not reachable on it under its name.
        """
        import ray.cloudpickle

        bound = getattr(method, "__wrapped__", method)
        instance, name = bound.__self__, bound.__func__.__name__
        subject = f"{type(instance).__qualname__}.{name}"
        if getattr(type(instance), name, None) is None:
            raise InputError(f"Invalid {where}: {subject} is not an attribute of its class under its own name", fields=(where,))
        try:
            pickled: bytes = ray.cloudpickle.dumps(instance)  # type: ignore[no-untyped-call]  # as Ray ships it
        except Exception as error:
            raise InputError(
                f"Invalid {where}: {subject} is a method of an object that cannot be pickled ({type(error).__name__}: "
                f"{error}), so it cannot be shipped to the agent actor; make the object picklable (open connections "
                "and files lazily, in the tool methods)",
                fields=(where,),
            ) from None
        tool = cls(
            owner=f"{type(instance).__module__}:{type(instance).__qualname__}",
            method=name,
            digest=hashlib.sha256(pickled).hexdigest(),
        )
        tool._instance = instance
        return tool

    def instance(self) -> Any:
        """The object the method is bound to.

        Raises:
            InputError: this BoundTool was rebuilt from data (JSON), which never carries the
                object.
        """
        if self._instance is None:
            raise InputError(
                f"Invalid tools: {self.owner}.{self.method} is a method of an object this spec does not hold: it was "
                "rebuilt from JSON (a checkpoint, a procedure's attributes), which never carries objects. Call the "
                "agent once from the process that built it from the object, so its actor runs, or build the agent "
                "again from the object's methods",
                fields=("tools",),
            )
        return self._instance

    def bind(self, objects: Mapping[str, Any]) -> Any:
        """The tool method bound to its object, taken from `objects` (by digest): in the agent actor.

        Raises:
            InputError: `objects` does not hold this tool's object.
        """
        if self.digest not in objects:
            raise InputError(f"Invalid tools: no object for {self.owner}.{self.method}", fields=("tools",))
        return getattr(objects[self.digest], self.method)


def _is_bound_method(tool: Any) -> bool:
    """True for a method bound to an object: `obj.method`, a plain or a strands `@tool` one."""
    return inspect.ismethod(getattr(tool, "__wrapped__", tool))


def tool_reference(tool: Any, where: str = "tools") -> str:
    """The `module:qualname` of a tool (a `@tool` function or a plain function), checked to import.

    Raises:
        InputError: the tool is not a function, is a lambda or defined inside a function or
            in an unshipped `__main__`, or the reference does not lead back to it.
    """
    if isinstance(tool, str):
        load_tool(tool, where)
        return tool
    if not callable(tool):
        raise InputError(f"Invalid {where}: {tool!r} is not a tool function", fields=(where,))
    try:
        # A strands @tool copies its function's __module__ and __qualname__ onto itself.
        return reference_of(tool, what="tool")
    except InputError as error:
        raise _field_error(where, error) from None


def load_tool(reference: str, where: str = "tools") -> Any:
    """Import the object a `module:qualname` tool reference names.

    Raises:
        InputError: the reference is malformed or does not import.
    """
    try:
        return resolve_reference(reference)
    except InputError as error:
        raise _field_error(where, error) from None


def _field_error(where: str, error: InputError) -> InputError:
    return InputError(f"Invalid {where}: {error}", fields=(where,))


class AgentSpec(BaseModel):
    """A specialist agent as plain data: what the AgentActor builds its strands Agents from.

    Attributes:
        name: the agent's name: event `sender`, metrics label, log field (letters, digits, ._-).
        system_prompt: the agent's system prompt.
        tools: its tools: `module:qualname` references (functions may be given; they are
            stored as references) and `BoundTool`s (tool methods of objects may be given:
            `db.connect`).
        model: the model configuration (see `sopy_actors.agents.providers`).
        max_concurrency: model calls the actor makes at once (calls of different conversations
            run at once; waiting on tools and SOPs holds no slot).
        persist_sessions: keep each conversation in a file, so a restarted actor
            resumes it, and resume calls that were running when the actor died.
        breaker: a circuit breaker on the agent's invocations (target `agent:<name>`), or
            None; see `sopy_actors.agents.breakers`.
        tool_breakers: circuit breakers on tools, by tool name (the strands tool name, which
            the model calls; target `tool:<name>`, shared by every agent using that tool).
        resources: custom Ray resources the agent's actor needs, e.g. `{"llm": 0.01}`: it runs
            only on nodes that offer them (a GPU or model-serving node group). Empty: any node.

    Raises:
        InputError: a field is invalid (a `tool_breakers` key that names none of the tools
            too); the message names it.
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    name: str
    system_prompt: str = ""
    tools: tuple[str | BoundTool, ...] = ()
    model: ModelConfig = Field(default=None, validate_default=True)
    max_concurrency: int = Field(default=4, ge=1, le=1024)
    persist_sessions: bool = True
    breaker: BreakerSettings | None = None
    tool_breakers: dict[str, BreakerSettings] = Field(default_factory=dict)
    resources: dict[str, Annotated[float, Field(gt=0, allow_inf_nan=False)]] = Field(default_factory=dict)

    def __init__(self, /, **data: Any) -> None:
        try:
            super().__init__(**data)
        except ValidationError as error:
            raise input_error("AgentSpec", error) from None
        # Here, not in a validator: tool names need the tools' objects, which JSON (the actor's
        # copy of the spec) does not carry.
        unknown = sorted(set(self.tool_breakers) - set(self.tool_names())) if self.tool_breakers else []
        if unknown:
            raise InputError(
                f"Invalid AgentSpec: tool_breakers names {', '.join(map(repr, unknown))}, which is not a tool of "
                f"agent {self.name!r} (its tools: {', '.join(self.tool_names()) or 'none'})",
                fields=("tool_breakers",),
            )

    @field_validator("name")
    @classmethod
    def _check_name(cls, name: str) -> str:
        if not _NAME.match(name):
            raise ValueError("must be 1-64 letters, digits or ._- (it names files and metrics)")
        return name

    @field_validator("tools", mode="before")
    @classmethod
    def _check_tools(cls, tools: Any) -> tuple[str | BoundTool, ...]:
        if tools is None:
            return ()
        if isinstance(tools, str) or not isinstance(tools, list | tuple):
            raise ValueError("must be a list of tools")
        references = tuple(_tool_entry(t, f"tools[{i}]") for i, t in enumerate(tools))
        if len(set(references)) != len(references):
            raise ValueError("lists a tool twice")
        return references

    @field_validator("breaker", mode="before")
    @classmethod
    def _check_breaker(cls, breaker: Any) -> BreakerSettings | None:
        return None if breaker is None else _breaker_settings(breaker)

    @field_validator("tool_breakers", mode="before")
    @classmethod
    def _check_tool_breakers(cls, breakers: Any) -> dict[str, BreakerSettings]:
        if not isinstance(breakers, Mapping):
            raise ValueError("must map tool names to BreakerSettings")
        settings = {}
        for name, value in breakers.items():
            try:
                settings[name] = _breaker_settings(value)
            except ValueError as error:
                raise ValueError(f"{name}: {error}") from None
        return settings

    @field_validator("model", mode="before")
    @classmethod
    def _check_model(cls, model: Any) -> ModelConfig:
        return model_config_from(model)

    def tool_names(self) -> list[str]:
        """The names the model calls its tools by (strands `tool_name`, else the function's name).

        Raises:
            InputError: a tool does not import, or the spec was rebuilt from JSON and holds a
                tool method without its object.
        """
        tools = [getattr(t.instance(), t.method) if isinstance(t, BoundTool) else load_tool(t) for t in self.tools]
        return [str(getattr(tool, "tool_name", None) or tool.__name__) for tool in tools]

    def tool_objects(self) -> dict[str, Any]:
        """The objects of its tool methods, by digest: what the agent actor gets beside the spec.

        Raises:
            InputError: the spec was rebuilt from JSON, which does not carry them.
        """
        return {tool.digest: tool.instance() for tool in self.tools if isinstance(tool, BoundTool)}

    def digest(self) -> str:
        """A stable hash of the spec (same in every process)."""
        return hashlib.sha256(self.model_dump_json().encode()).hexdigest()

    def actor_name(self) -> str:
        """The name of the AgentActor that serves this spec."""
        return f"sopy-agent-{self.name}-{self.digest()[:12]}"


def _breaker_settings(value: Any) -> BreakerSettings:
    """BreakerSettings from itself or its fields; ValueError listing the problems otherwise."""
    if isinstance(value, BreakerSettings):
        return value
    if not isinstance(value, Mapping):
        raise ValueError(f"must be BreakerSettings or a dict of its fields, got {type(value).__name__}")
    try:
        return BreakerSettings(**value)
    except DefinitionError as error:
        raise ValueError("; ".join(error.problems)) from None


def _tool_entry(tool: Any, where: str) -> str | BoundTool:
    """One entry of `AgentSpec.tools`: a reference, or a BoundTool (given, as JSON data, or a bound method)."""
    if isinstance(tool, BoundTool):
        return tool
    if isinstance(tool, dict):
        return BoundTool.model_validate(tool)
    if _is_bound_method(tool):
        return BoundTool.of(tool, where)
    return tool_reference(tool, where)
