"""Rolling an SOP back to an earlier version: which rollbacks are allowed and the commit one
makes (pure; the host runs it in the SOP's queue, see `SOPHostActor.rollback`).

History is kept: a rollback is a new version equal to the old one (its procedure and state),
with a log entry of its own (event type `Rollback`, outcome `rolled_back`, the reason as its
prompt).
"""

from __future__ import annotations

from typing import Any

from sopy_actors.errors import InputError
from sopy_actors.runtime.commits import Commit
from sopy_actors.runtime.records import LogEntry, SOPRecord
from sopy_actors.runtime.recovering import timeout_timer

__all__ = ["check_rollback", "rollback_commit", "rollback_event_id"]


def rollback_event_id(record: SOPRecord, rollback_id: str | None) -> str:
    """The rollback's event id: the caller's `rollback_id` (kept across its retries, so a
    repeated call is recognised) or the version it makes."""
    return f"{record.sop_id}~rollback~{rollback_id or record.version + 1}"


def check_rollback(record: SOPRecord, version: Any) -> None:
    """Refuse a rollback of an SOP that is not running, or to a version it never had.

    Raises:
        InputError: naming `version`.
    """
    if record.phase != "running":
        raise InputError(
            f"sop=<{record.sop_id}> | cannot roll back an SOP that is {record.phase}; fork version {version} instead",
            fields=("version",),
        )
    if not isinstance(version, int) or isinstance(version, bool) or not 0 <= version <= record.version:
        raise InputError(
            f"sop=<{record.sop_id}> | version {version!r} does not exist: give one of 0..{record.version}",
            fields=("version",),
        )


def rollback_commit(
    record: SOPRecord, content: dict[str, Any] | None, *, version: int, reason: str, event_id: str, now: float
) -> Commit:
    """The commit of a rollback of `record` to `version`, whose stored `content` is its
    `{"procedure", "state"}`: a new version with them, retries and prompt reset, the procedure
    entered anew (its timeout, if it has one, armed from `now`).

    Raises:
        InputError: `content` is None: the version was pruned (naming `version`).
    """
    if content is None:
        raise InputError(
            f"sop=<{record.sop_id}> | version {version} was pruned by the SOP's version retention; "
            "see versions() for the versions kept",
            fields=("version",),
        )
    new_version = record.version + 1
    rolled = record.model_copy(
        update={
            "procedure": content["procedure"],
            "state": content["state"],
            "version": new_version,
            "retries": 0,
            "last_prompt": None,
            "entered_version": new_version,
        }
    )
    entry = LogEntry(
        sop_id=record.sop_id,
        version=new_version,
        event_id=event_id,
        event_type="Rollback",
        outcome="rolled_back",
        from_procedure=record.procedure["name"],
        to_procedure=rolled.procedure["name"],
        prompt=f"rolled back to version {version}: {reason}",
    )
    timer = timeout_timer(rolled, now=now)
    return Commit(record=rolled, entry=entry, timers=() if timer is None else (timer,))
