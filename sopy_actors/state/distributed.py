"""Distributed state: the spec's `DistributedState`, and last-writer-wins merging on HLC stamps.

`DistributedState` keeps the spec's fields and methods (`update_local`, `update_shared`,
`get_effective_value`, `needs_sync`) and works as an SOP's state. Give it a space,
`DistributedState(node_id="east", sop_space="inventory")`, and the actor runtime shares it:
after each commit the SOP's host sends the keys that `needs_sync()` lists to the namespace's
shared-state service, which sends every SOP of the space a `SharedStateChanged` event; the host
merges those entries into the state it commits, whether or not a procedure handles the event.

The conflict rule (the same in the service and in every state):

- Every `update_local` stamps the key with the state's hybrid logical clock
  (`sopy_actors.state.hlc`): later than every write this state made or merged before.
- Of two writes of one key, the one with the larger stamp wins (physical milliseconds, then the
  logical counter, then the node id); equal stamps (two states claiming one node id) are
  ordered by the value's canonical JSON. That is a total order, and merging keeps the maximum,
  so replicas that have seen the same writes hold the same values, in whatever order and
  however often the writes arrived.
- Node-local values take precedence, as in the spec: a key written here stays in `local_data`
  (`pending_sync` until the service confirms it, then `synced`) until a later write from
  elsewhere arrives, which moves the key to `shared_data` with its source node and time.

The runtime recognises a distributed state by the `sop_space` key of its JSON form
(`space_of`); states without it cost the host one dict lookup per commit.

Pure: no Ray, no I/O; the wall clock is `DistributedState.sop_wall_clock`.
"""

from __future__ import annotations

import copy
import json
import time
from collections.abc import Callable, Iterable, Mapping
from typing import Any, ClassVar

from pydantic import BaseModel, Field

from sopy_actors.core.lifecycle import SharedChange, SharedEntry
from sopy_actors.state.hlc import HybridClock, Stamp

__all__ = [
    "PENDING",
    "SPACE_FIELD",
    "SYNCED",
    "DistributedState",
    "SharedChange",
    "SharedEntry",
    "entry_wins",
    "lww_merge",
    "merge_state_data",
    "pending_entries",
    "space_of",
]

SPACE_FIELD = "sop_space"
"""The key of a distributed state's JSON form that names its shared space (None: not shared)."""

PENDING = "pending_sync"
SYNCED = "synced"

_ZERO = Stamp(0, 0, "")


def _canonical(value: Any) -> str:
    return json.dumps(value, sort_keys=True, separators=(",", ":"), default=str)


def _rank(stamp: str | None, value: Any) -> tuple[Stamp, str]:
    """The LWW order of a write: its stamp, then (only for equal stamps) its value."""
    return (_ZERO if not stamp else Stamp.parse(stamp), _canonical(value))


def entry_wins(candidate: SharedEntry, current: SharedEntry | None) -> bool:
    """Whether `candidate` is a later write than `current` (None: nothing written yet)."""
    if current is None:
        return True
    return _rank(candidate.stamp, candidate.value) > _rank(current.stamp, current.value)


def lww_merge(current: Mapping[str, SharedEntry], incoming: Iterable[SharedEntry]) -> dict[str, SharedEntry]:
    """The last write of every key among `current` and `incoming` (a new dict; inputs unchanged).

    Commutative, associative and idempotent: merging the same writes in any order, any
    grouping, any number of times gives the same map.
    """
    merged = dict(current)
    for entry in incoming:
        if entry_wins(entry, merged.get(entry.key)):
            merged[entry.key] = entry
    return merged


def space_of(data: Any) -> str | None:
    """The shared space of a state's JSON data, or None when it is not a shared distributed state."""
    if not isinstance(data, dict):
        return None
    space = data.get(SPACE_FIELD)
    return space if isinstance(space, str) and space else None


def pending_entries(data: Mapping[str, Any]) -> list[SharedEntry]:
    """The writes a distributed state's JSON data still has to share (its `needs_sync()` keys)."""
    local, stamps, status = data.get("local_data") or {}, data.get("sop_stamps") or {}, data.get("sync_status") or {}
    node = str(data.get("node_id", ""))
    return [
        SharedEntry(key=key, value=local[key], stamp=stamps[key], source_node=node)
        for key, state in status.items()
        if state == PENDING and key in local and key in stamps
    ]


def _merge_fields(fields: dict[str, Any], entries: Iterable[SharedEntry]) -> None:
    """Merge `entries` into a distributed state's fields (its JSON data or the model's own
    dicts), in place: the one merge rule of the module docstring."""
    local: dict[str, Any] = fields.setdefault("local_data", {})
    shared: dict[str, Any] = fields.setdefault("shared_data", {})
    status: dict[str, Any] = fields.setdefault("sync_status", {})
    stamps: dict[str, Any] = fields.setdefault("sop_stamps", {})
    node = str(fields.get("node_id", ""))
    clock = HybridClock.resume(node, fields.get("sop_clock") or None)
    before = clock.last
    for entry in entries:
        key = entry.key
        incoming = _rank(entry.stamp, entry.value)
        mine = _rank(stamps.get(key), local[key]) if key in local else None
        theirs = _rank(shared[key].get("hlc"), shared[key].get("value")) if isinstance(shared.get(key), dict) else None
        clock.observe(entry.stamp)
        if mine is not None and incoming == mine:  # the service settled on this state's own write
            status[key] = SYNCED
        elif incoming > max((r for r in (mine, theirs) if r is not None), default=(_ZERO, "")):
            stamp = Stamp.parse(entry.stamp)
            shared[key] = {
                "value": copy.deepcopy(entry.value),
                "source_node": entry.source_node,
                "timestamp": stamp.isoformat(),
                "hlc": entry.stamp,
            }
            local.pop(key, None)
            stamps.pop(key, None)
            status[key] = SYNCED
    if clock.last != before:
        fields["sop_clock"] = str(clock.last)


def merge_state_data(data: Mapping[str, Any], entries: Iterable[SharedEntry]) -> dict[str, Any]:
    """A distributed state's JSON data with `entries` merged in (a new dict; `data` unchanged)."""
    fields = copy.deepcopy(dict(data))
    _merge_fields(fields, entries)
    return fields


class DistributedState(BaseModel):
    """The spec's distributed state, shared by the actor runtime when `sop_space` is set.

    Subclass it to add fields of your own. Handlers change it with the spec's methods; the
    runtime fills `shared_data` from other SOPs' writes (see the module docstring).

    Attributes:
        node_id: this writer's id: it must differ between the SOPs sharing a space (it breaks
            ties between equal clock times and names the source of shared values).
        local_data: values written here; they take precedence over shared ones.
        shared_data: values written elsewhere: `{"value", "source_node", "timestamp", "hlc"}`.
        sync_status: per key, "pending_sync" (written here, not yet confirmed by the shared-state
            service) or "synced".
        sop_space: the shared space this state writes to and receives from; None keeps it local
            (the spec's behaviour, no runtime sync).
        sop_stamps: the HLC stamp of each key in `local_data`.
        sop_clock: the last HLC stamp this state made or merged (its clock resumes from it).
    """

    node_id: str
    local_data: dict[str, Any] = Field(default_factory=dict)
    shared_data: dict[str, Any] = Field(default_factory=dict)
    sync_status: dict[str, Any] = Field(default_factory=dict)
    sop_space: str | None = None
    sop_stamps: dict[str, str] = Field(default_factory=dict)
    sop_clock: str | None = None

    sop_wall_clock: ClassVar[Callable[[], float]] = time.time
    """Seconds since the epoch for new stamps; a subclass may set a fake clock in tests."""

    def _clock(self) -> HybridClock:
        return HybridClock.resume(self.node_id, self.sop_clock, wall=type(self).sop_wall_clock)

    def update_local(self, key: str, value: Any) -> None:
        """Write `key` here: it takes precedence locally and is pending until shared."""
        stamp = self._clock().now()
        self.local_data[key] = value
        self.sync_status[key] = PENDING
        self.sop_stamps[key] = str(stamp)
        self.sop_clock = str(stamp)

    def update_shared(self, key: str, value: Any, source_node: str, *, stamp: str | None = None) -> None:
        """Record a value of `key` written on `source_node`.

        Without `stamp` this is the spec's method: the value is stored as received now (a local
        value of the key, if any, still takes precedence). With the writer's `stamp` it is merged
        last-writer-wins, as the runtime merges `SharedStateChanged` entries.
        """
        if stamp is not None:
            self.merge([SharedEntry(key=key, value=value, stamp=stamp, source_node=source_node)])
            return
        clock = self._clock()
        received = clock.now()
        self.shared_data[key] = {
            "value": value,
            "source_node": source_node,
            "timestamp": received.isoformat(),
            "hlc": str(Stamp(received.physical, received.logical, source_node)),
        }
        self.sync_status[key] = SYNCED
        self.sop_clock = str(received)

    def get_effective_value(self, key: str) -> Any:
        """The value of `key`: the local one if any, else the shared one, else None."""
        if key in self.local_data:
            return self.local_data[key]
        if key in self.shared_data:
            return self.shared_data[key]["value"]
        return None

    def needs_sync(self) -> list[str]:
        """The keys written here that the shared-state service has not confirmed yet."""
        return [key for key, status in self.sync_status.items() if status == PENDING]

    def effective_data(self) -> dict[str, Any]:
        """Every key's effective value (`get_effective_value`), shared and local together."""
        values = {key: entry["value"] for key, entry in self.shared_data.items() if isinstance(entry, dict)}
        values.update(self.local_data)
        return values

    def pending_entries(self) -> list[SharedEntry]:
        """The writes `needs_sync()` lists, as the runtime sends them to the shared-state service."""
        return pending_entries(self.model_dump(include={"node_id", "local_data", "sync_status", "sop_stamps"}))

    def merge(self, changes: SharedChange | Iterable[SharedEntry]) -> None:
        """Merge writes from elsewhere, last writer wins (what the runtime does with
        `SharedStateChanged`; merging the same entries again changes nothing)."""
        entries = changes.entries if isinstance(changes, SharedChange) else list(changes)
        fields: dict[str, Any] = {
            "node_id": self.node_id,
            "local_data": self.local_data,
            "shared_data": self.shared_data,
            "sync_status": self.sync_status,
            "sop_stamps": self.sop_stamps,
            "sop_clock": self.sop_clock,
        }
        _merge_fields(fields, entries)
        self.sop_clock = fields.get("sop_clock")
