"""AgentSpec: everything that defines a specialist agent, as plain, hashable data.

Equal specs name the same `AgentActor` (`AgentSpec.actor_name()`), so every handle built from
the same tools, prompt and model shares one actor. Tools are stored as `module:qualname`
references that the actor imports; they must live at the top level of an importable module.
"""

from __future__ import annotations

import hashlib
import re
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from sopy_actors.agents.providers import ModelConfig, model_config_from
from sopy_actors.core.codec import import_reference
from sopy_actors.core.events import input_error
from sopy_actors.errors import InputError

__all__ = ["AgentSpec", "load_tool", "tool_reference"]

_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$")


def tool_reference(tool: Any, where: str = "tools") -> str:
    """The `module:qualname` of a tool (a `@tool` function or a plain function), checked to import.

    Raises:
        InputError: the tool is defined in `__main__` or inside a function, or the reference
            does not lead back to it.
    """
    if isinstance(tool, str):
        load_tool(tool, where)
        return tool
    function = getattr(tool, "_tool_func", tool)  # a strands DecoratedFunctionTool wraps its function
    module, qualname = getattr(function, "__module__", None), getattr(function, "__qualname__", None)
    if not callable(function) or not module or not qualname:
        raise InputError(f"Invalid {where}: {tool!r} is not a tool function", fields=(where,))
    if module == "__main__" or "<locals>" in qualname:
        place = "in __main__" if module == "__main__" else "inside a function"
        raise InputError(
            f"Invalid {where}: tool {qualname} is defined {place}; agent actors import tools by "
            "name, so define it at the top level of an importable module",
            fields=(where,),
        )
    reference = f"{module}:{qualname}"
    if load_tool(reference, where) is not tool:
        raise InputError(f"Invalid {where}: {reference} does not name this tool", fields=(where,))
    return reference


def load_tool(reference: str, where: str = "tools") -> Any:
    """Import the object a `module:qualname` tool reference names.

    Raises:
        InputError: the reference is malformed or does not import.
    """
    module_name, _, qualname = reference.partition(":")
    if not module_name or not qualname:
        raise InputError(f"Invalid {where}: {reference!r} is not 'module:qualname'", fields=(where,))
    try:
        target = import_reference(reference)
    except (ImportError, AttributeError) as error:
        raise InputError(
            f"Invalid {where}: cannot import {reference}: {error} (is its module on the "
            "cluster's runtime_env?)",
            fields=(where,),
        ) from None
    return target


class AgentSpec(BaseModel):
    """A specialist agent as plain data: what the AgentActor builds its strands Agents from.

    Attributes:
        name: the agent's name: event `sender`, metrics label, log field (letters, digits, ._-).
        system_prompt: the agent's system prompt.
        tools: `module:qualname` references of its tools (functions may be given; they are
            stored as references).
        model: the model configuration (see `sopy_actors.agents.providers`).
        max_concurrency: conversations the actor runs at once (model calls in parallel).
        persist_sessions: keep each conversation in session files, so a restarted actor
            resumes it, and resume calls that were running when the actor died.

    Raises:
        InputError: a field is invalid; the message names it.
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    name: str
    system_prompt: str = ""
    tools: tuple[str, ...] = ()
    model: ModelConfig = Field(default=None, validate_default=True)  # type: ignore[assignment]
    max_concurrency: int = Field(default=4, ge=1, le=1024)
    persist_sessions: bool = True

    def __init__(self, /, **data: Any) -> None:
        try:
            super().__init__(**data)
        except ValidationError as error:
            raise input_error("AgentSpec", error) from None

    @field_validator("name")
    @classmethod
    def _check_name(cls, name: str) -> str:
        if not _NAME.match(name):
            raise ValueError("must be 1-64 letters, digits or ._- (it names files and metrics)")
        return name

    @field_validator("tools", mode="before")
    @classmethod
    def _check_tools(cls, tools: Any) -> tuple[str, ...]:
        if tools is None:
            return ()
        if isinstance(tools, str) or not isinstance(tools, list | tuple):
            raise ValueError("must be a list of tools")  # noqa: TRY004 - pydantic reports ValueErrors
        references = tuple(tool_reference(t, f"tools[{i}]") for i, t in enumerate(tools))
        if len(set(references)) != len(references):
            raise ValueError("lists a tool twice")
        return references

    @field_validator("model", mode="before")
    @classmethod
    def _check_model(cls, model: Any) -> ModelConfig:
        return model_config_from(model)

    def digest(self) -> str:
        """A stable hash of the spec (same in every process)."""
        return hashlib.sha256(self.model_dump_json().encode()).hexdigest()

    def actor_name(self) -> str:
        """The name of the AgentActor that serves this spec."""
        return f"sopy-agent-{self.name}-{self.digest()[:12]}"
