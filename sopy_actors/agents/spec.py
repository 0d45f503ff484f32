"""AgentSpec: everything that defines a specialist agent, as plain, hashable data.

Equal specs name the same `AgentActor` (`AgentSpec.actor_name()`), so every handle built from
the same tools, prompt and model shares one actor. Tools are stored as `module:qualname`
references that the actor imports (`sopy_actors.core.references`); they must live at the top
level of an importable module.
"""

from __future__ import annotations

import hashlib
import re
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from sopy_actors.agents.providers import ModelConfig, model_config_from
from sopy_actors.core.events import input_error
from sopy_actors.core.references import reference_of, resolve_reference
from sopy_actors.errors import InputError

__all__ = ["AgentSpec", "load_tool", "tool_reference"]

_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$")


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
    model: ModelConfig = Field(default=None, validate_default=True)
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
            raise ValueError("must be a list of tools")
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
