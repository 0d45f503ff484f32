"""Store records and log entries for backend tests (no Ray)."""

from __future__ import annotations

from typing import Any

from sopy_actors.runtime.records import LogEntry, SOPRecord


def record(
    sop_id: str = "s1", version: int = 0, parent_id: str | None = None, *, host: str = "sopy-host-0", **changes: Any
) -> SOPRecord:
    """A Docflow SOP's checkpoint at `version` (its state names the version)."""
    return SOPRecord(
        sop_id=sop_id,
        name="Docflow",
        host=host,
        parent_id=parent_id,
        procedure={"type": "m:Drafting", "name": "Drafting", "data": {}},
        state={"type": "m:Doc", "data": {"text": f"v{version}"}},
        version=version,
        **changes,
    )


def entry(sop_id: str, version: int, event_id: str) -> LogEntry:
    """The log entry of event `event_id`, committed as `version`."""
    return LogEntry(
        sop_id=sop_id, version=version, event_id=event_id, event_type="DraftWritten",
        outcome="stayed", from_procedure="Drafting", to_procedure="Drafting",
    )
