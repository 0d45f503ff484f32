"""The records the runtime keeps per SOP: its checkpoint, its log entries, its timers (pydantic).

They cross actor boundaries in every commit, so `SOPRecord` and `LogEntry` pickle as their
field dicts and are rebuilt unvalidated (see `Transported`).
"""

from __future__ import annotations

import time
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from sopy_actors.core.options import Semantics

__all__ = ["LogEntry", "Phase", "SOPRecord", "SOPSummary", "StoredSOP", "Timer", "Transported"]

Phase = Literal["running", "waiting_for_human", "done", "failed", "cancelled"]
"""A stored SOP's phase; `error` holds the failure (wire form) of a failed or cancelled one;
`waiting` says what a person is asked while the SOP is `waiting_for_human`."""


def _rebuild(cls: type[BaseModel], fields: dict[str, Any]) -> BaseModel:
    return cls.model_construct(**fields)


class Transported(BaseModel):
    """Crosses actor boundaries in every commit: pickled as its field dict, rebuilt unvalidated.

    Pydantic's own pickling is several times slower than a dict's; these models are valid by
    construction and only travel between the runtime's actors.
    """

    def __reduce__(self) -> tuple[Any, ...]:
        return (_rebuild, (type(self), dict(self.__dict__)))


class SOPRecord(Transported):
    """One SOP's checkpoint: everything needed to resume it after a crash."""

    model_config = ConfigDict(frozen=True)

    sop_id: str
    name: str
    host: str
    start_token: str = ""  # tells a retried start() apart from a second SOP with the same id
    parent_id: str | None = None
    phase: Phase = "running"
    procedure: dict[str, Any]
    state: dict[str, Any]
    version: int = 0
    retries: int = 0
    retry_limits: int = 3
    semantics: Semantics = Field(default_factory=Semantics)
    filters: dict[str, Any] = Field(default_factory=dict)
    senders: dict[str, int] = Field(default_factory=dict)
    runtime_env: dict[str, Any] | None = None
    last_prompt: str | None = None
    error: dict[str, Any] | None = None
    parent_notified: bool = False  # the parent has been told of this child's end
    entered_version: int = 0  # the version at which the SOP entered its current procedure
    recovery: dict[str, Any] | None = None  # the SOP's RecoveryPolicy (JSON), if it declares one
    recovery_history: list[dict[str, Any]] = Field(default_factory=list)  # RecoveryEntry data
    waiting: dict[str, Any] | None = None  # while waiting_for_human: reason, choices, cause, event, since
    agent_substitutes: dict[str, dict[str, Any]] = Field(default_factory=dict)  # failed agent -> fallback spec
    version_retention: dict[str, Any] | None = None  # VersionRetention data; None keeps every version
    forked_from: dict[str, Any] | None = None  # {"sop_id", "version"} of the SOP version it was forked from

    @property
    def active(self) -> bool:
        """Not ended: running, or waiting for a person."""
        return self.phase in ("running", "waiting_for_human")

    @property
    def parent_pending(self) -> bool:
        """A finished child whose parent has not been told yet."""
        return self.parent_id is not None and self.phase != "running" and not self.parent_notified


class LogEntry(Transported):
    """One committed event of an SOP.

    `sender` is the event's own `sender` field (an agent's name for its tool events), if set.
    """

    model_config = ConfigDict(frozen=True)

    sop_id: str
    version: int
    event_id: str
    event_type: str
    sender: str | None = None
    outcome: str
    from_procedure: str
    to_procedure: str
    prompt: str | None = None
    at: float = Field(default_factory=time.time)


class Timer(BaseModel):
    """A durable timer: send `event` (wire form) to an SOP at `due` (Unix time), once."""

    model_config = ConfigDict(frozen=True)

    timer_id: str
    sop_id: str
    host: str
    due: float
    event: dict[str, Any]


class SOPSummary(BaseModel):
    """One line of `list_sops()`: which SOP, where it is."""

    model_config = ConfigDict(frozen=True)

    sop_id: str
    name: str
    phase: Phase
    procedure: str
    version: int
    parent_id: str | None = None
    host: str = ""


class StoredSOP(BaseModel):
    """A record with its most recent events (their replies) and every committed event id.

    Attributes:
        record: the last checkpoint.
        recent: the latest log entries, oldest first (a redelivered event gets its reply).
        event_ids: the id of every event the SOP ever committed (for its `SeenIds` filter).
    """

    record: SOPRecord
    recent: list[LogEntry]
    event_ids: list[str] = Field(default_factory=list)
