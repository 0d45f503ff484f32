"""SOPy's `sopy.interface.strands`: strands agents whose tool calls the SOP can veto.

    @tool(eFileCopied, eCopyRequest)
    def cp(source: str, dest: str): ...

    agent = StrandsAgent(tools=[read_dir, cp, delete], system_prompt=sop_prompt)
    with sop:
        agent("Move all files from /files to /migrated_files ...")

`tool`, `ToolDefException`, `eToolUse` and `eToolResult` are the agents layer's
(`sopy_actors.agents`). `StrandsAgent` is the agents layer's handle, run where `with sop:`
runs: on the actor runtime (after `sopy_actors.init()`) in its own agent actor, and in this
process before that (`sopy_actors.agents.local`). Either way each tool call of a call made
inside `with sop:` becomes the tool's use event, sent to that SOP before the tool runs (a
rejection means the tool never runs and the model gets SOPy's "An error occured in Procedure
..." text), then its result event. The other events SOPy declares here are plain events that
nothing sends by itself (as in SOPy); push them yourself. Importing this module imports
strands and Ray.
"""

from __future__ import annotations

from typing import Any

from sopy_actors.agents import handle
from sopy_actors.agents.events import eToolResult, eToolUse
from sopy_actors.agents.local import local_agent
from sopy_actors.agents.results import AgentResult
from sopy_actors.agents.tools import ToolDefException, tool
from sopy_actors.core.events import Event
from sopy_actors.errors import RuntimeUnavailable
from sopy_actors.runtime.engine import current_engine
from sopy_actors.runtime.handle import SOPHandle

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


def _on_runtime() -> bool:
    """Whether `with sop:` runs on the actor runtime in this process (`_runs.start_run`'s rule)."""
    try:
        current_engine()
    except RuntimeUnavailable:
        return False
    return True


class StrandsAgent(handle.StrandsAgent):
    """SOPy's StrandsAgent: the agents layer's handle, which runs in this process without a runtime.

    Takes the arguments of `sopy_actors.agents.StrandsAgent` (`tools=`, `system_prompt=`,
    `model=`, `name=`, ...). After `sopy_actors.init()` every method works as there. Before,
    `agent(...)` runs a strands Agent in this process (built once per spec and conversation,
    with the same model, tools and guard as the agent actor's), whose tool calls go to the
    innermost `with sop:` block run here, and `messages` reads its conversations; `submit`,
    `statistics` and `shutdown` need the runtime.
    """

    def __call__(
        self,
        prompt: str,
        *,
        sop: SOPHandle | None = None,
        conversation: str | None = None,
        timeout: float | None = None,
    ) -> AgentResult:
        """Run the agent on `prompt` and wait for its result (blocking).

        On the actor runtime in its agent actor; without one, in this process (in a thread
        of its own, the caller waiting).

        Args:
            prompt: the user prompt.
            sop: the SOP whose tool events this call sends (runtime only; default: the SOP
                of the innermost `with sop:` block).
            conversation: the conversation to continue; default `sop-<id>` of the owning SOP,
                else a new one.
            timeout: seconds to wait; the call goes on after a timeout.

        Raises:
            AgentError: the model or the agent loop failed, or the call was cancelled.
            InputError: bad arguments; in process, also `sop=` (an SOPHandle needs the runtime).
            TimeoutError: no result within `timeout`.
        """
        if _on_runtime():
            return super().__call__(prompt, sop=sop, conversation=conversation, timeout=timeout)
        return local_agent(self.spec)(prompt, sop=sop, conversation=conversation, timeout=timeout)

    def messages(self, conversation: str) -> list[dict[str, Any]]:
        """The strands messages of a conversation: the agent actor's, or without a runtime this process's."""
        if _on_runtime():
            return super().messages(conversation)
        return local_agent(self.spec).messages(conversation)


class eHumanMessage(Event[Any]):
    """A person said something to the agent (payload: the message)."""


class eAIResponse(Event[Any]):
    """The agent answered (payload: the answer)."""


class eA2A(Event[Any]):
    """A message from one agent to another (payload: the message)."""


class eContentBlock(Event[Any]):
    """A strands content block (payload: the block, a dict such as `{"text": ...}`)."""
