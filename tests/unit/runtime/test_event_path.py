"""The host's event path without Ray: a held event after a lost one, a cancel of an ended SOP.

Its collaborators are small stand-ins recording what the path asked of them; the path's own
logic (queues, ordering, the commit rule, replies) is the real one.
"""

from __future__ import annotations

import asyncio
from typing import Any, cast

import pytest

from sopy_actors.runtime import event_path
from sopy_actors.runtime.background import Background
from sopy_actors.runtime.event_path import EventPath
from sopy_actors.runtime.instances import Instance, Instances
from sopy_actors.runtime.messages import HandlerResult, SendItem
from sopy_actors.runtime.records import SOPRecord
from tests.support.records import record


class _Procedures:
    """Runs every event as a handler that keeps the SOP where it is."""

    def __init__(self) -> None:
        self.ran: list[str] = []

    async def run(self, sop: SOPRecord, event: dict[str, Any]) -> HandlerResult:
        self.ran.append(event["data"]["id"])
        return {
            "outcome": "stayed", "procedure": sop.procedure, "state": sop.state, "prompt": None,
            "handler": "on_draft", "event_type": "DraftWritten",
        }


class _Commits:
    def __init__(self) -> None:
        self.written = 0

    async def commit(self, rows: Any) -> str | None:
        self.written += 1
        return None


class _Shared:
    def merged(self, event: dict[str, Any], result: HandlerResult) -> HandlerResult:
        return result

    def committed(self, sop: SOPRecord) -> None:
        return None


class _Metrics:
    def count(self, *args: Any) -> None:
        return None

    def observe(self, *args: Any) -> None:
        return None


def _path(instances: Instances, procedures: _Procedures, commits: _Commits) -> EventPath:
    return EventPath(
        store=None, instances=instances, procedures=cast(Any, procedures), commits=cast(Any, commits),
        timers=cast(Any, None), shared=cast(Any, _Shared()), parents=cast(Any, None), metrics=cast(Any, _Metrics()),
        spawn=Background("test").spawn,
    )


def _event(event_id: str) -> dict[str, Any]:
    return {"type": "m:DraftWritten", "data": {"id": event_id, "payload": "x", "sender": None}}


def test_an_event_held_behind_one_that_never_arrives_is_applied_once_the_gap_times_out(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(event_path, "_GAP_SECONDS", 0.05)  # 60 s in production

    async def run() -> tuple[bool, list[str], Any, int]:
        instances = Instances("h", store=None)
        instances.add(Instance.of(record("s1")))
        procedures, commits = _Procedures(), _Commits()
        path = _path(instances, procedures, commits)
        # The sender's event 0 is lost without an error anywhere; its event 1 arrives.
        late = await path.queue(SendItem("s1", _event("e1"), sender="driver", seq=1, floor=0))
        await asyncio.sleep(0.01)
        held = not late.done() and procedures.ran == []
        reply = await asyncio.wait_for(late, 5)
        return held, procedures.ran, reply, commits.written

    held, ran, reply, written = asyncio.run(run())
    assert held
    assert ran == ["e1"] and written == 1
    assert reply["outcome"] == "stayed" and reply["version"] == 1


def test_a_cancel_asked_of_an_sop_that_has_ended_is_done_at_once() -> None:
    async def run() -> bool:
        instances = Instances("h", store=None)
        ended = Instance.of(record("s1", phase="done"))
        instances.add(ended)
        path = _path(instances, _Procedures(), _Commits())
        await asyncio.wait_for(path.cancel(ended, "late", notify_parent=False), 1)
        return ended.cancelling is None and not ended.busy

    assert asyncio.run(run())
