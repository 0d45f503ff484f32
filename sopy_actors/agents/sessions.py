"""Where an agent actor keeps what must outlive its process: conversations and running calls.

Layout, next to the Store's SQLite file (`<store dir>/agents/<actor name>/`):

    sessions/        one file per conversation id, `<id>.jsonl`: its strands session snapshots
                     (messages, agent state, conversation manager, interrupts, model state),
                     one JSON line each; a call adds one when it ends and one at each change of
                     its tool calls. Earlier versions kept a conversation as strands
                     FileSessionManager files (`session_<id>/`), read once when it has no
                     `<id>.jsonl`
    pending/         one file per call that has started and not finished (a `PendingCall`), one
                     JSON line per change

Both kinds of file are JSON lines, appended to and read from the end: the last complete line is
the current value (a line cut short by a crash is skipped). Appending costs a small write,
where rewriting a file in place or renaming over it makes the filesystem flush it first (ext4's
`auto_da_alloc`: ~0.2-0.3 ms here); a file holding several lines' worth is rewritten with its
last line alone (`_append_line`).

A restarted actor restores a conversation when it next serves it, and starts every pending call
again, in the order they came. A call that had begun is not started over but continued: its
prompt message carries the call id (`prompt_message`), so the re-run finds where the
conversation stopped and sends no prompt twice. JSON only, never pickle.
"""

from __future__ import annotations

import base64
import json
import logging
import os
import re
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

from pydantic import BaseModel, Field
from strands import Agent, Snapshot
from strands.session.file_session_manager import FileSessionManager
from strands.types.content import Message, Messages
from strands.types.tools import ToolUse

from sopy_actors.agents.future import AgentRequest

__all__ = [
    "Conversation",
    "Conversations",
    "PendingCall",
    "PendingCalls",
    "agents_directory",
    "final_answer",
    "has_prompt",
    "open_tool_uses",
    "prompt_message",
    "safe_id",
]

logger = logging.getLogger(__name__)

T = TypeVar("T")

_UNSAFE = re.compile(r"[^A-Za-z0-9._:-]")
_CALL_KEY = "sopy_call_id"
_BYTES = "__bytes_encoded__"  # strands' marker for bytes in session JSON (`strands.types.session`)
_LINES_PER_FILE = 8  # a file longer than this many of its last line is rewritten with that line alone


def agents_directory(local_directory: str) -> Path:
    """The agents directory in the head node's directory for local files (`StoreActor.local_directory`:
    the SQLite file's directory, or the store directory given with a database URL)."""
    return Path(local_directory) / "agents"


def safe_id(value: str) -> str:
    """A file-name-safe form of a conversation or call id."""
    cleaned = _UNSAFE.sub("_", value)
    return cleaned if cleaned not in ("", ".", "..") else f"_{cleaned}"


# -- files of JSON lines -------------------------------------------------------------------------


def _append_line(path: Path, line: str) -> None:
    """Append `line` (one write); a file that grew past `_LINES_PER_FILE` times its size is
    replaced by one holding `line` alone (written, then renamed over it).

    The line goes after a newline, so it starts a line of its own even after a line that a
    crash cut short.
    """
    data = b"\n" + line.encode()
    descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
    try:
        os.write(descriptor, data)
        size = os.fstat(descriptor).st_size
    finally:
        os.close(descriptor)
    if size > _LINES_PER_FILE * len(data):
        temporary = path.with_suffix(".tmp")
        temporary.write_bytes(data)
        os.replace(temporary, path)


def _last_line(path: Path, parse: Callable[[str], T]) -> T | None:
    """The last line of the file that `parse` accepts (a line cut short is logged and skipped),
    or None: no file, or no line parses."""
    try:
        lines = path.read_bytes().splitlines()
    except FileNotFoundError:
        return None
    for line in reversed(lines):
        if line.strip():
            try:
                return parse(line.decode())
            except ValueError as error:  # pydantic's ValidationError and JSON's errors are ValueErrors
                logger.warning("path=<%s> | unreadable line skipped: %s", path, error)
    return None


# -- conversations -------------------------------------------------------------------------------


@dataclass
class Conversation:
    """One conversation between calls: what a strands Agent needs to serve its next call.

    Attributes:
        messages: its messages (the list itself: a call's Agent works on it, no copy).
        snapshot: the rest of its strands session snapshot (`Agent.take_snapshot(preset="session")`
            without messages: state, conversation manager, interrupts, model state).
    """

    messages: Messages
    snapshot: Snapshot

    @classmethod
    def of(cls, agent: Agent) -> Conversation:
        """The conversation an Agent holds now."""
        return cls(agent.messages, agent.take_snapshot(preset="session", exclude=["messages"]))

    def load_into(self, agent: Agent) -> None:
        """Make `agent` continue this conversation (whatever conversation it served before)."""
        agent.load_snapshot(self.snapshot)
        agent.messages = self.messages

    def to_json(self) -> str:
        """The JSON form: a strands snapshot (`Snapshot.to_dict`), messages included; bytes as
        strands' session files encode them."""
        snapshot = self.snapshot.to_dict()
        snapshot["data"] = {**snapshot["data"], "messages": self.messages}
        return json.dumps(snapshot, default=_encode_bytes)

    @classmethod
    def from_json(cls, text: str) -> Conversation:
        """The conversation saved as `text` (`to_json`).

        Raises:
            ValueError: `text` is not a saved conversation (bad JSON, or not a strands snapshot).
        """
        try:
            snapshot = json.loads(text, object_hook=_decode_bytes if _BYTES in text else None)
            fields = dict(snapshot["data"])
            messages = fields.pop("messages")
            return cls(messages, Snapshot.from_dict({**snapshot, "data": fields}))
        except Exception as error:  # bad JSON, a missing key, strands' SnapshotException
            raise ValueError(f"not a saved conversation: {error}") from error


def _encode_bytes(value: Any) -> Any:
    if isinstance(value, bytes):
        return {_BYTES: True, "data": base64.b64encode(value).decode()}
    raise TypeError(f"Object of type {type(value).__name__} is not JSON serializable")


def _decode_bytes(value: dict[str, Any]) -> Any:
    return base64.b64decode(value["data"]) if value.get(_BYTES) is True and "data" in value else value


class Conversations:
    """The conversations of one agent actor on disk, a file each.

    Args:
        directory: the actor's directory (`<agents directory>/<actor name>`).
    """

    def __init__(self, directory: Path) -> None:
        self.directory = directory / "sessions"
        self.directory.mkdir(parents=True, exist_ok=True)

    def _path(self, conversation: str) -> Path:
        return self.directory / f"{safe_id(conversation)}.jsonl"

    def load(self, conversation: str) -> Conversation | None:
        """The conversation as last saved, or None (never saved)."""
        return _last_line(self._path(conversation), Conversation.from_json)

    def save(self, conversation: str, saved: Conversation) -> None:
        """Save the conversation as it is now."""
        _append_line(self._path(conversation), saved.to_json())

    def legacy_session(self, conversation: str) -> FileSessionManager | None:
        """The strands session manager of the conversation's session files, if an earlier version
        wrote them (an Agent built with it restores the conversation); else None."""
        session = safe_id(conversation)
        if not (self.directory / f"session_{session}").is_dir():
            return None
        return FileSessionManager(session_id=session, storage_dir=str(self.directory))


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
        return self.directory / f"{safe_id(call_id)}.json"  # JSON lines (one line: as earlier versions wrote)

    def save(self, call: PendingCall) -> None:
        """Record a call or its progress."""
        _append_line(self._path(call.request.call_id), call.model_dump_json())

    def remove(self, call_id: str) -> None:
        """Forget a finished call."""
        self._path(call_id).unlink(missing_ok=True)

    def load(self) -> list[PendingCall]:
        """Every recorded call as last saved, oldest first; unreadable files are logged and skipped."""
        calls = []
        for path in self.directory.glob("*.json"):
            try:
                call = _last_line(path, PendingCall.model_validate_json)
            except OSError as error:
                logger.warning("path=<%s> | unreadable pending call skipped: %s", path, error)
                continue
            if call is not None:
                calls.append(call)
        return sorted(calls, key=lambda call: call.sequence)
