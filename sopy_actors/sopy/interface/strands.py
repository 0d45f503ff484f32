"""SOPy's `sopy.interface.strands`: strands agents whose tool calls the SOP can veto.

    @tool(eFileCopied, eCopyRequest)
    def cp(source: str, dest: str): ...

    agent = StrandsAgent(tools=[read_dir, cp, delete], system_prompt=sop_prompt)
    with sop:
        agent("Move all files from /files to /migrated_files ...")

`StrandsAgent`, `tool`, `ToolDefException`, `eToolUse` and `eToolResult` are the agents layer's
(`sopy_actors.agents`): an agent runs in its own actor and each tool call of a call made inside
`with sop:` becomes the tool's use event, sent to that SOP before the tool runs (a rejection
means the tool never runs and the model gets SOPy's "An error occured in Procedure ..." text),
then its result event. The other events SOPy declares here are plain events that nothing
sends by itself (as in SOPy); push them yourself. Importing this module imports strands and Ray.
"""

from __future__ import annotations

from typing import Any

from sopy_actors.agents.events import eToolResult, eToolUse
from sopy_actors.agents.handle import StrandsAgent
from sopy_actors.agents.tools import ToolDefException, tool
from sopy_actors.core.events import Event

__all__ = [
    "StrandsAgent",
    "ToolDefException",
    "eA2A",
    "eAIResponse",
    "eContentBlock",
    "eHumanMessage",
    "eToolResult",
    "eToolUse",
    "tool",
]


class eHumanMessage(Event[Any]):
    """A person said something to the agent (payload: the message)."""


class eAIResponse(Event[Any]):
    """The agent answered (payload: the answer)."""


class eA2A(Event[Any]):
    """A message from one agent to another (payload: the message)."""


class eContentBlock(Event[Any]):
    """A strands content block (payload: the block, a dict such as `{"text": ...}`)."""
