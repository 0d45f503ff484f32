"""Versions (time travel): each commit's procedure and state as a compact row, and back.

Pure: rows are computed on the host, where a commit is made, and read back by the Store.
"""

from __future__ import annotations

import time
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from sopy_actors.errors import InputError
from sopy_actors.runtime.records import LogEntry, SOPRecord
from sopy_actors.state.compression import compress_json, decompress_json
from sopy_actors.state.deltas import apply_delta, json_delta

__all__ = [
    "KEYFRAME_EVERY",
    "VersionInfo",
    "VersionRetention",
    "first_version_row",
    "prune_from",
    "version_info",
    "version_row",
    "versions_upto",
]

KEYFRAME_EVERY = 16
"""Every 16th version (and the first, and any whose delta is not smaller) is a full snapshot;
the others are deltas against the version before. Reading version v replays at most 15 deltas."""

_VERSION_THRESHOLD = 256  # bytes of JSON below which a version's body is stored raw
_SNAPSHOT, _DELTA = "s", "d"


class VersionRetention(BaseModel):
    """Which old versions of an SOP the store keeps; the default (no field set) keeps all.

    Old versions are dropped in whole keyframe chains (a snapshot and the deltas built on it),
    when a new snapshot is written: the store keeps at least what the rule asks, and at most
    `KEYFRAME_EVERY - 1` versions more. The current version is always kept; the event log
    (`history()`) is never pruned.

    Attributes:
        last: keep the newest `last` versions.
        newer_than: keep the versions committed within the last `newer_than` seconds.
    """

    model_config = ConfigDict(frozen=True)

    last: int | None = Field(default=None, ge=1)
    newer_than: float | None = Field(default=None, gt=0)

    def model_post_init(self, context: Any) -> None:
        if self.last is not None and self.newer_than is not None:
            raise InputError("a version retention takes one of last= and newer_than=, not both", fields=("retention",))

    @property
    def keeps_all(self) -> bool:
        """No rule: every version is kept."""
        return self.last is None and self.newer_than is None


class VersionInfo(BaseModel):
    """One stored version of an SOP (`SOPHandle.versions()`).

    Attributes:
        version: the SOP's version number.
        event: the type of the event (or runtime step: `Rollback`, `Started`, `Forked`...) that made it.
        procedure: the procedure the SOP was in at that version.
        at: when it was committed (Unix time).
        description: what happened (the event's outcome, a rollback's reason).
        kind: "snapshot" or "delta" (against the version before).
        size: the bytes stored for it.
    """

    model_config = ConfigDict(frozen=True)

    sop_id: str
    version: int
    event: str
    procedure: str
    at: float
    description: str
    kind: Literal["snapshot", "delta"]
    size: int


def _content(record: SOPRecord) -> dict[str, Any]:
    return {"procedure": record.procedure, "state": record.state}


def version_row(
    record: SOPRecord,
    previous: SOPRecord | None,
    *,
    entry: LogEntry | None = None,
    event: str | None = None,
    description: str | None = None,
    size_hint: int = 0,
) -> tuple[Any, ...]:
    """The `versions` row of `record`'s version (procedure and state), compact.

    A delta against `previous` when that is the version just before and the version is not a
    keyframe (`KEYFRAME_EVERY`) and the delta is smaller than the snapshot (taken at once when
    under half of `size_hint`, the record's JSON length); else a snapshot. Bodies go through
    `compress_json` (raw under 256 bytes). Pure: computed on the host, where the commit is made.

    Returns:
        (sop id, version, time, kind, event, procedure name, description, body, retention):
        the last item is the SOP's retention rule `(last, newer_than)`, set on a snapshot row
        when the SOP has one (the store prunes then), else None; it is not a column.
    """
    content = _content(record)
    kind, body = _SNAPSHOT, b""
    if previous is not None and previous.version == record.version - 1 and record.version % KEYFRAME_EVERY:
        kind, body = _DELTA, compress_json(json_delta(_content(previous), content), threshold=_VERSION_THRESHOLD)
    # A delta under half the record's JSON is kept without encoding the snapshot (the common
    # case, and the costly half of this function); else the smaller of the two.
    if kind == _SNAPSHOT or len(body) * 2 >= size_hint:
        snapshot = compress_json(content, threshold=_VERSION_THRESHOLD)
        if kind == _SNAPSHOT or len(snapshot) <= len(body):
            kind, body = _SNAPSHOT, snapshot
    if entry is not None:
        event = event or entry.event_type
        if description is None:
            description = entry.outcome if entry.prompt is None else f"{entry.outcome}: {entry.prompt}"
    prune = None
    if kind == _SNAPSHOT and record.version_retention is not None:  # None keeps every version
        retention = VersionRetention.model_validate(record.version_retention)
        prune = None if retention.keeps_all else (retention.last, retention.newer_than)
    at = entry.at if entry is not None else time.time()
    return (
        record.sop_id, record.version, at, kind, event or "?", str(record.procedure.get("name", "?")),
        description or "", body, prune,
    )


def versions_upto(rows: list[tuple[int, str, bytes]], version: int) -> dict[str, Any] | None:
    """Version `version`'s `{"procedure", "state"}` from its chain: rows (version, kind, body)
    from its snapshot up to it, in order; None when the chain is not whole (pruned or never
    written). Pure."""
    if not rows or rows[0][1] != _SNAPSHOT or rows[-1][0] != version:
        return None
    content: dict[str, Any] | None = None
    expected = rows[0][0]
    for number, kind, body in rows:
        if number != expected:
            return None
        value = decompress_json(bytes(body))
        content = value if kind == _SNAPSHOT else apply_delta(content, value)
        expected += 1
    return content


def version_info(sop_id: str, row: tuple[Any, ...]) -> VersionInfo:
    """A `VersionInfo` from the columns (version, at, kind, event, procedure, description, size)."""
    version, at, kind, event, procedure, description, size = row
    return VersionInfo(
        sop_id=sop_id, version=int(version), at=float(at), kind="snapshot" if kind == _SNAPSHOT else "delta",
        event=str(event), procedure=str(procedure), description=str(description), size=int(size),
    )


def first_version_row(record: SOPRecord) -> tuple[Any, ...]:
    """The `versions` row of a new SOP's first checkpoint (started, or forked from another)."""
    origin = record.forked_from
    if origin is None:
        return version_row(record, None, event="Started", description="started")
    described = f"forked from {origin.get('sop_id')} at version {origin.get('version')}"
    return version_row(record, None, event="Forked", description=described)


def prune_from(retention: tuple[int | None, float | None], version: int, now: float) -> tuple[int | None, float | None]:
    """The retention rule as the store applies it: (first version kept by count, earliest time kept)."""
    last, newer_than = retention
    return (None if last is None else version - last + 1), (None if newer_than is None else now - newer_than)
