"""Commits: what one atomic write holds, rendered as rows where it is made, and the rule by
which a backend writes a batch of them (each event id once, versions in order)."""

from __future__ import annotations

import json
import time
from typing import Any

from pydantic import ConfigDict

from sopy_actors.errors import VersionConflict
from sopy_actors.runtime.records import LogEntry, SOPRecord, Timer, Transported
from sopy_actors.runtime.versions import version_row

__all__ = ["Commit", "CommitRows", "WriteResult", "plan_writes", "record_row", "timer_row"]

class Commit(Transported):
    """An atomic write: the new checkpoint, the log entry of the event that caused it (if one
    did) and the timers it arms (a recovery retry, a procedure's timeout)."""

    model_config = ConfigDict(frozen=True)

    record: SOPRecord
    entry: LogEntry | None = None
    timers: tuple[Timer, ...] = ()

    def rows(self, previous: SOPRecord | None = None) -> CommitRows:
        """The commit rendered as rows; done where the commit is made, so only strings travel.

        Args:
            previous: the SOP's record before this commit: a new version is stored as a delta
                against it when it is the version just before (see `version_row`).
        """
        entry = self.entry
        event = None if entry is None else (entry.sop_id, entry.version, entry.event_id, entry.model_dump_json())
        timers = tuple(timer_row(timer) for timer in self.timers)
        row = record_row(self.record)
        version = None if entry is None else version_row(self.record, previous, entry=entry, size_hint=len(row[6]))
        return row, event, timers, version


# A rendered commit: the `sops` row (id, name, parent, phase, procedure, version, record JSON,
# time, parent pending, host), the `events` row (id, version, event id, entry JSON) if an event caused it, the
# `timers` rows it arms, and the `versions` row of the new version (with an event; see
# `version_row`: its last item, the retention rule to apply, is not a column).
CommitRows = tuple[tuple[Any, ...], tuple[Any, ...] | None, tuple[tuple[Any, ...], ...], tuple[Any, ...] | None]


WriteResult = str | VersionConflict | None
"""What `Store.write` says of one commit: None (written), the stored entry (JSON) of its event
id, logged before (skipped: exactly-once), or a `VersionConflict` (refused, nothing written)."""


def plan_writes(
    commits: list[CommitRows], stored: dict[str, int], logged: dict[tuple[str, str], str]
) -> tuple[list[WriteResult], list[CommitRows]]:
    """Which commits of a batch to write, in order; the one rule both backends apply.

    A commit whose event id is logged for its SOP (before, or earlier in this batch) is
    skipped with that entry. Otherwise its version must follow the SOP's: stored + 1 with an
    event; stored or stored + 1 without one (such commits, e.g. "the parent was told", rewrite
    the current version). A commit for an SOP the store does not hold is written as it is.

    Args:
        commits: the batch, in commit order.
        stored: the stored version of the batch's SOPs (those the store holds).
        logged: the stored entry (JSON) of each (sop id, event id) of the batch already logged.

    Returns:
        The result of each commit and the commits to write, in order.
    """
    versions = dict(stored)
    entries = dict(logged)
    results: list[WriteResult] = []
    fresh: list[CommitRows] = []
    for rows in commits:
        sop_id, version, event = rows[0][0], rows[0][5], rows[1]
        if event is not None and (entry := entries.get((event[0], event[2]))) is not None:
            results.append(entry)
            continue
        current = versions.get(sop_id)
        if current is not None and version != current + 1 and not (event is None and version == current):
            results.append(VersionConflict(sop_id, stored=current, attempted=version))
            continue
        versions[sop_id] = version
        if event is not None:
            entries[(event[0], event[2])] = event[3]
        results.append(None)
        fresh.append(rows)
    return results, fresh


def record_row(record: SOPRecord) -> tuple[Any, ...]:
    return (
        record.sop_id,
        record.name,
        record.parent_id,
        record.phase,
        record.procedure.get("name", "?"),
        record.version,
        record.model_dump_json(),
        time.time(),
        int(record.parent_pending),
        record.host,
    )


def timer_row(timer: Timer) -> tuple[Any, ...]:
    return (timer.timer_id, timer.sop_id, timer.host, timer.due, json.dumps(timer.event))
