"""The host's event path without Ray: a held event after a lost one, a cancel of an ended SOP.

Its collaborators are small stand-ins recording what the path asked of them; the path's own
logic (queues, ordering, the commit rule, replies) is the real one.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any, cast

import pytest

from sopy_actors.errors import HandlerError, error_to_wire
from sopy_actors.runtime import event_path
from sopy_actors.runtime.background import Background
from sopy_actors.runtime.event_path import EventPath
from sopy_actors.runtime.instances import Instance, Instances
from sopy_actors.runtime.messages import HandlerResult, SendItem
from sopy_actors.runtime.records import SOPRecord, StoredSOP
from tests.support.records import entry, record


class _Procedures:
    """Runs every event as a handler that keeps the SOP where it is; one whose payload is "end"
    ends it, "boom" fails."""

    def __init__(self) -> None:
        self.ran: list[str] = []
        self.batches: list[list[str]] = []
        self.slow_done = asyncio.Event()

    async def run(self, sop: SOPRecord, event: dict[str, Any]) -> HandlerResult:
        self.ran.append(event["data"]["id"])
        payload = event["data"]["payload"]
        if payload == "boom":
            failure = HandlerError(sop_id=sop.sop_id, procedure="Drafting", event_type="DraftWritten", cause=ValueError("x"))
            return {"error": error_to_wire(failure), "event_type": "DraftWritten"}
        return {
            "outcome": "ended" if payload == "end" else "stayed", "procedure": sop.procedure, "state": sop.state,
            "prompt": None, "handler": "on_draft", "event_type": "DraftWritten",
        }

    async def class_policy(self, sop: SOPRecord) -> None:
        return None  # no recovery policy: a failed handler fails its event

    async def run_many(
        self, runs: list[tuple[SOPRecord, dict[str, Any]]], answered: Callable[[list[int], list[HandlerResult]], Awaitable[None]]
    ) -> None:
        """As one actor: every event in one call; a "slow" payload's result is left pending."""
        self.batches.append([event["data"]["id"] for _, event in runs])
        results: list[HandlerResult] = []
        for sop, event in runs:
            slow = event["data"]["payload"] == "slow"
            results.append({"pending": event["data"]["id"]} if slow else await self.run(sop, event))
        await answered(list(range(len(runs))), results)

    async def collect(self, sop: SOPRecord, event: dict[str, Any], result: HandlerResult) -> HandlerResult:
        await self.slow_done.wait()
        return await self.run(sop, event)


class _Commits:
    """Writes nothing; counts commits and the writes they came in, each taking `pause` seconds."""

    def __init__(self, pause: float = 0.0) -> None:
        self.written = 0
        self.writes: list[int] = []
        self.pause = pause

    async def commit(self, rows: Any) -> str | None:
        (result,) = await self.commit_many([rows])
        return result

    async def commit_many(self, rows: list[Any]) -> list[str | None]:
        await asyncio.sleep(self.pause)
        self.written += len(rows)
        self.writes.append(len(rows))
        return [None] * len(rows)


class _Store:
    """The Store actor's `load`, answering `stored` (what another writer committed)."""

    def __init__(self, stored: SOPRecord) -> None:
        self.stored = stored
        self.load = self

    async def remote(self, sop_id: str, recent: int = 256) -> StoredSOP:
        return StoredSOP(record=self.stored, recent=[])


class _Parents:
    async def notify(self, sop: SOPRecord) -> None:
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


def _path(instances: Instances, procedures: _Procedures, commits: _Commits, store: Any = None) -> EventPath:
    return EventPath(
        store=store, instances=instances, procedures=cast(Any, procedures), commits=cast(Any, commits),
        timers=cast(Any, None), shared=cast(Any, _Shared()), parents=cast(Any, _Parents()), metrics=cast(Any, _Metrics()),
        spawn=Background("test").spawn,
    )


def _event(event_id: str, payload: str = "x") -> dict[str, Any]:
    return {"type": "m:DraftWritten", "data": {"id": event_id, "payload": payload, "sender": None}}


def _host(*sop_ids: str, pause: float = 0.0) -> tuple[EventPath, Instances, _Procedures, _Commits]:
    """An event path over idle running SOPs `sop_ids`."""
    instances = Instances("h", store=None)
    for sop_id in sop_ids:
        instances.add(Instance.of(record(sop_id)))
    procedures, commits = _Procedures(), _Commits(pause)
    return _path(instances, procedures, commits), instances, procedures, commits


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


def test_a_batch_of_idle_sops_events_runs_in_one_handler_call_and_commits_in_one_write() -> None:
    async def run() -> tuple[list[Any], _Procedures, _Commits]:
        path, _, procedures, commits = _host("s1", "s2", "s3")
        replies = await path.send_many([SendItem(f"s{n}", _event(f"e{n}")) for n in (1, 2, 3)])
        return replies, procedures, commits

    replies, procedures, commits = asyncio.run(run())
    assert procedures.batches == [["e1", "e2", "e3"]]
    assert commits.writes == [3]
    assert [(reply["outcome"], reply["version"]) for reply in replies] == [("stayed", 1)] * 3


def test_events_of_one_sop_in_a_batch_are_applied_in_order_and_a_repeated_id_once() -> None:
    async def run() -> tuple[list[Any], _Procedures, _Commits, Instances]:
        path, instances, procedures, commits = _host("s1", "s2")
        items = [
            SendItem("s1", _event("a1"), sender="d", seq=0),
            SendItem("s2", _event("b1"), sender="d", seq=0),
            SendItem("s1", _event("a3"), sender="d", seq=2),  # early: held until 1 arrives
            SendItem("s1", _event("a2"), sender="d", seq=1),
            SendItem("s1", _event("a1"), sender="d", seq=0),  # redelivered
        ]
        return await path.send_many(items), procedures, commits, instances

    replies, procedures, commits, instances = asyncio.run(run())
    assert procedures.batches == [["a1", "b1"]]  # the lane: the first event of each SOP
    assert procedures.ran == ["a1", "b1", "a2", "a3"]  # s1's others behind it, in sender order
    assert [reply["version"] for reply in replies] == [1, 1, 3, 2, 1]
    assert replies[4] == replies[0]  # the redelivery gets the first reply, nothing committed
    assert commits.written == 4
    s1 = instances.find("s1")
    assert s1 is not None and s1.record.version == 3 and not s1.busy and not s1.queue


def test_a_failed_handler_in_a_batch_fails_its_event_alone() -> None:
    async def run() -> tuple[list[Any], _Commits, Instances]:
        path, instances, _, commits = _host("s1", "s2")
        replies = await path.send_many([SendItem("s1", _event("e1", "boom")), SendItem("s2", _event("e2"))])
        return replies, commits, instances

    replies, commits, instances = asyncio.run(run())
    assert replies[0]["error"]["type"] == "HandlerError" and replies[1]["version"] == 1
    assert commits.writes == [1]
    s1 = instances.find("s1")
    assert s1 is not None and s1.record.version == 0 and s1.record.phase == "running" and not s1.busy


def test_a_cancel_asked_while_the_event_that_ends_the_sop_commits_is_done_once_it_ended() -> None:
    async def run(batch: bool) -> tuple[Any, str, bool]:
        path, instances, _, _ = _host("s1", pause=0.05)
        item = SendItem("s1", _event("e1", "end"))
        sent = asyncio.ensure_future(path.send_many([item]) if batch else path.queue(item))
        await asyncio.sleep(0.02)  # the handler ran; the commit is being written
        instance = instances.find("s1")
        assert instance is not None and instance.busy
        await asyncio.wait_for(path.cancel(instance, "late", notify_parent=False), 1)
        reply = await sent
        return reply[0] if batch else await reply, instance.record.phase, instance.busy

    for batch in (False, True):
        reply, phase, busy = asyncio.run(run(batch))
        assert reply["outcome"] == "ended" and phase == "done" and not busy


def test_a_cancelled_sop_is_idle_once_its_cancel_is_committed() -> None:
    async def run() -> tuple[str, bool, int]:
        path, instances, _, commits = _host("s1")
        instance = instances.find("s1")
        assert instance is not None
        await asyncio.wait_for(path.cancel(instance, "stop", notify_parent=False), 1)
        return instance.record.phase, instance.idle(), commits.written

    phase, idle, written = asyncio.run(run())
    assert phase == "cancelled" and written == 1
    assert idle  # it may leave memory: nothing of the cancel is pending any more


def test_events_of_a_batch_that_fails_to_queue_a_later_item_still_run_in_order() -> None:
    async def run() -> tuple[bool, list[str], Any, Instances]:
        path, instances, procedures, _ = _host("s1")
        items = [
            SendItem("s1", _event("e0"), sender="d", seq=0),  # claimed by the lane
            SendItem("s1", _event("e1"), sender="d", seq=1),  # queued behind it
            SendItem("gone", _event("x")),  # not in memory, and loading it fails: the batch raises
        ]
        try:
            await path.send_many(items)
            raised = False
        except Exception:
            raised = True
        s1 = instances.find("s1")
        assert s1 is not None
        for _ in range(100):  # the claimed and queued events still run, in the background
            if s1.record.version == 2 and not s1.busy:
                break
            await asyncio.sleep(0.01)
        retried = await asyncio.wait_for(path.send_many([SendItem("s1", _event("e0"), sender="d", seq=0)]), 1)
        return raised, procedures.ran, retried[0], instances

    raised, ran, retried, instances = asyncio.run(run())
    assert raised
    assert ran == ["e0", "e1"]  # in the sender's order, each once
    assert retried["version"] == 1  # the sender's retry gets the first receipt
    s1 = instances.find("s1")
    assert s1 is not None and s1.record.version == 2 and not s1.busy


def test_a_slow_handler_in_a_batch_does_not_hold_up_the_other_sops() -> None:
    async def run() -> tuple[int, bool, bool, list[Any]]:
        path, instances, procedures, _ = _host("fast", "slow")
        sent = asyncio.ensure_future(
            path.send_many([SendItem("fast", _event("e1")), SendItem("slow", _event("e2", "slow"))])
        )
        await asyncio.sleep(0.02)
        fast, slow = instances.find("fast"), instances.find("slow")
        assert fast is not None and slow is not None
        seen = (fast.record.version, fast.busy, slow.busy)
        procedures.slow_done.set()
        return *seen, await sent

    fast_version, fast_busy, slow_busy, replies = asyncio.run(run())
    assert fast_version == 1 and not fast_busy and slow_busy  # committed and handed back meanwhile
    assert [reply["version"] for reply in replies] == [1, 1]


def test_a_cancel_the_store_refuses_is_committed_again_on_the_stored_version() -> None:
    class Refusing(_Commits):
        async def commit_many(self, rows: list[Any]) -> list[str | None]:
            written = await super().commit_many(rows)
            return ['{"error": {"type": "VersionConflict"}}'] if self.written == 1 else written

    async def run() -> tuple[str, int, int]:
        instances = Instances("h", store=None)
        instances.add(Instance.of(record("s1")))
        commits = Refusing()
        moved_on = record("s1", version=4)  # another writer committed versions 1-4 meanwhile
        path = _path(instances, _Procedures(), commits, store=_Store(moved_on))
        instance = instances.find("s1")
        assert instance is not None
        await asyncio.wait_for(path.cancel(instance, "stop", notify_parent=False), 1)
        return instance.record.phase, instance.record.version, commits.written

    phase, version, written = asyncio.run(run())
    assert phase == "cancelled" and version == 4 and written == 2


def test_an_event_discarded_by_a_cancel_but_committed_by_another_writer_gets_its_receipt() -> None:
    committed = entry("s1", 1, "e1")  # the other writer applied e1 as version 1, then the SOP ended

    class CommittedElsewhere(_Commits):
        async def commit_many(self, rows: list[Any]) -> list[str | None]:
            written = await super().commit_many(rows)
            return [committed.model_dump_json()] if self.written == 1 else written

    async def run() -> tuple[Any, str, bool]:
        instances = Instances("h", store=None)
        instances.add(Instance.of(record("s1")))
        procedures = _Procedures()
        path = _path(instances, procedures, CommittedElsewhere(), store=_Store(record("s1", version=1, phase="done")))
        instance = instances.find("s1")
        assert instance is not None
        sent = asyncio.ensure_future(path.send_many([SendItem("s1", _event("e1", "slow"))]))
        await asyncio.sleep(0.01)  # e1's handler runs ...
        cancelled = path.cancel(instance, "stop", notify_parent=False)  # ... when the cancel comes
        procedures.slow_done.set()
        (reply,) = await sent
        await asyncio.wait_for(cancelled, 1)
        return reply, instance.record.phase, instance.busy

    reply, phase, busy = asyncio.run(run())
    assert phase == "done" and not busy  # the other writer's end stands
    assert (reply["outcome"], reply["version"]) == ("stayed", 1)  # its receipt, not a cancel error


class _Stored:
    """The Store actor's `load_many`, answering the checkpoint it is given (the last commit)."""

    def __init__(self, stored: SOPRecord) -> None:
        self.stored = stored
        self.load_many = self

    async def remote(self, sop_ids: list[str]) -> list[StoredSOP]:
        return [StoredSOP(record=self.stored, recent=[]) for _ in sop_ids]


def test_a_reloaded_sop_expects_the_numbers_its_uncommitted_events_took(monkeypatch: pytest.MonkeyPatch) -> None:
    # A sender that does not read its replies keeps its floor at 0; its event 1 fails and
    # commits nothing, so the checkpoint still expects 1 when the SOP is passivated.
    monkeypatch.setattr(event_path, "_GAP_SECONDS", 5.0)  # a hold would show as a timeout below

    async def run() -> Any:
        path, instances, _, _ = _host("s1")
        assert "outcome" in await (await path.queue(SendItem("s1", _event("e0"), "S", 0, 0)))
        assert "error" in await (await path.queue(SendItem("s1", _event("e1", "boom"), "S", 1, 0)))
        live = instances.find("s1")
        assert live is not None and live.record.senders == {"S": 1}
        instances._store = _Stored(live.record.model_copy(update={"host": "h"}))
        live.used -= 400  # idle past `idle_after`
        assert instances.passivate() == 1
        later = await path.queue(SendItem("s1", _event("e2"), "S", 2, 0))
        return await asyncio.wait_for(later, 1)  # not held waiting for event 1 again

    reply = asyncio.run(run())
    assert reply.get("outcome") == "stayed", reply
