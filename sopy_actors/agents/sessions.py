"""Where an agent actor keeps what must outlive its process: conversations and running calls.

Layout, next to the Store's SQLite file (`<store dir>/agents/<actor name>/`):

    sessions/   strands FileSessionManager files, one session per conversation id
    pending/    one JSON file per call that has started and not finished (a `PendingCall`)

A restarted actor restores a conversation when it next serves it (strands reads the session
files when the Agent is built) and starts every pending call again, in the order they came.
A call that had begun is not started over but continued: its prompt message carries the call
id (`prompt_message`), so the re-run finds where the conversation stopped and sends no prompt
twice. JSON only, never pickle.
"""

from __future__ import annotations

import logging
import os
import re
from pathlib import Path
from typing import Any

from pydantic import BaseModel, Field, ValidationError
from strands.session.file_session_manager import FileSessionManager
from strands.types.content import Message, Messages
from strands.types.tools import ToolUse

from sopy_actors.agents.future import AgentRequest

__all__ = [
    "PendingCall",
    "PendingCalls",
    "agents_directory",
    "final_answer",
    "has_prompt",
    "open_tool_uses",
    "prompt_message",
    "safe_id",
    "session_manager",
]

logger = logging.getLogger(__name__)

_UNSAFE = re.compile(r"[^A-Za-z0-9._:-]")
_CALL_KEY = "sopy_call_id"


def agents_directory(local_directory: str) -> Path:
    """The agents directory in the head node's directory for local files (`StoreActor.local_directory`:
    the SQLite file's directory, or the store directory given with a database URL)."""
    return Path(local_directory) / "agents"


def safe_id(value: str) -> str:
    """A file-name-safe form of a conversation or call id."""
    cleaned = _UNSAFE.sub("_", value)
    return cleaned if cleaned not in ("", ".", "..") else f"_{cleaned}"


def session_manager(directory: Path, conversation: str) -> FileSessionManager:
    """The strands session manager of one conversation."""
    return FileSessionManager(session_id=safe_id(conversation), storage_dir=str(directory / "sessions"))


# -- a call's place in its conversation ----------------------------------------------------------


def prompt_message(prompt: str, call_id: str) -> Message:
    """The user message that starts a call, marked with the call's id.

    The mark lives in the message's `metadata`, which strands keeps in the session and strips
    before model calls.
    """
    return {"role": "user", "content": [{"text": prompt}], "metadata": {"custom": {_CALL_KEY: call_id}}}


def has_prompt(messages: Messages, call_id: str) -> bool:
    """Whether the call's prompt message is in the conversation (the call had begun)."""
    return any(message.get("metadata", {}).get("custom", {}).get(_CALL_KEY) == call_id for message in reversed(messages))


def open_tool_uses(messages: Messages) -> list[ToolUse]:
    """The tool uses of a last assistant message: the tool calls that have no result yet."""
    if not messages or messages[-1]["role"] != "assistant":
        return []
    return [block["toolUse"] for block in messages[-1]["content"] if "toolUse" in block]


def final_answer(messages: Messages) -> Message | None:
    """The last message when it is the model's answer (an assistant message with no tool use)."""
    if not messages or messages[-1]["role"] != "assistant" or open_tool_uses(messages):
        return None
    return messages[-1]


# -- calls in flight -----------------------------------------------------------------------------


class PendingCall(BaseModel):
    """One call an actor has taken and not finished, as kept on disk (mutable: the actor updates it).

    Attributes:
        request: the call.
        sequence: when the actor took it (`time.time_ns()`); pending calls resume in this order,
            so the calls of one conversation run again in the order they had.
        attempts: how many times the call began (0 while it waits for its turn).
        tool_calls: its tool-call records by tool use id, in call order (the guard's
            `CallContext.records`).
    """

    request: AgentRequest
    sequence: int
    attempts: int = 0
    tool_calls: dict[str, dict[str, Any]] = Field(default_factory=dict)


class PendingCalls:
    """The calls an actor is running, on disk, so a restart can run them again."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory / "pending"
        self.directory.mkdir(parents=True, exist_ok=True)

    def _path(self, call_id: str) -> Path:
        return self.directory / f"{safe_id(call_id)}.json"

    def save(self, call: PendingCall) -> None:
        """Record a call or its progress (atomically: write then rename)."""
        path = self._path(call.request.call_id)
        temporary = path.with_suffix(".tmp")
        temporary.write_text(call.model_dump_json())
        os.replace(temporary, path)

    def remove(self, call_id: str) -> None:
        """Forget a finished call."""
        self._path(call_id).unlink(missing_ok=True)

    def load(self) -> list[PendingCall]:
        """Every recorded call, oldest first; unreadable files are logged and skipped."""
        calls = []
        for path in self.directory.glob("*.json"):
            try:
                calls.append(PendingCall.model_validate_json(path.read_text()))
            except (OSError, ValidationError) as error:
                logger.warning("path=<%s> | unreadable pending call skipped: %s", path, error)
        return sorted(calls, key=lambda call: call.sequence)
