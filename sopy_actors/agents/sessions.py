"""Where an agent actor keeps what must outlive its process: conversations and running calls.

Layout, next to the Store's SQLite file (`<store dir>/agents/<actor name>/`):

    sessions/   strands FileSessionManager files, one session per conversation id
    pending/    one JSON file per call that has started and not finished (the request)

A restarted actor restores a conversation when it next serves it (strands reads the session
files when the Agent is built) and starts every pending call again. JSON only, never pickle.
"""

from __future__ import annotations

import json
import logging
import os
import re
from pathlib import Path
from typing import Any

from strands.session.file_session_manager import FileSessionManager

__all__ = ["PendingCalls", "agents_directory", "safe_id", "session_manager"]

logger = logging.getLogger(__name__)

_UNSAFE = re.compile(r"[^A-Za-z0-9._:-]")


def agents_directory(store_path: str) -> Path:
    """The agents directory that sits beside the Store's database file."""
    return Path(store_path).parent / "agents"


def safe_id(value: str) -> str:
    """A file-name-safe form of a conversation or call id."""
    cleaned = _UNSAFE.sub("_", value)
    return cleaned if cleaned not in ("", ".", "..") else f"_{cleaned}"


def session_manager(directory: Path, conversation: str) -> FileSessionManager:
    """The strands session manager of one conversation."""
    return FileSessionManager(session_id=safe_id(conversation), storage_dir=str(directory / "sessions"))


class PendingCalls:
    """The calls an actor is running, on disk, so a restart can run them again."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory / "pending"
        self.directory.mkdir(parents=True, exist_ok=True)

    def _path(self, call_id: str) -> Path:
        return self.directory / f"{safe_id(call_id)}.json"

    def add(self, request: dict[str, Any]) -> None:
        """Record a started call (atomically: write then rename)."""
        path = self._path(request["call_id"])
        temporary = path.with_suffix(".tmp")
        temporary.write_text(json.dumps(request))
        os.replace(temporary, path)

    def remove(self, call_id: str) -> None:
        """Forget a finished call."""
        self._path(call_id).unlink(missing_ok=True)

    def load(self) -> list[dict[str, Any]]:
        """Every recorded call; unreadable files are logged and skipped."""
        requests = []
        for path in sorted(self.directory.glob("*.json")):
            try:
                requests.append(json.loads(path.read_text()))
            except (OSError, json.JSONDecodeError) as error:
                logger.warning("path=<%s> | unreadable pending call skipped: %s", path, error)
        return requests
