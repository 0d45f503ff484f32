"""Telling a parent that its child ended (`ParentNotifier`), without Ray: a parent that waits for
a person is asked again for as long as it waits, and only then is the child marked as having
told it; other failures are tried a few times, then left to the host's next start; a parent
that never can take it (it ended) is not asked again."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from sopy_actors.errors import AwaitingHuman, RuntimeUnavailable, SOPFailed, error_to_wire
from sopy_actors.runtime import parents
from sopy_actors.runtime.commits import CommitRows
from sopy_actors.runtime.messages import Reply
from sopy_actors.runtime.records import SOPRecord, StoredSOP
from tests.support.records import record


class _Remote:
    def __init__(self, function: Any) -> None:
        self.remote = function


class _Store:
    def __init__(self, parent: SOPRecord) -> None:
        async def load(sop_id: str, recent: int) -> StoredSOP:
            return StoredSOP(record=parent, recent=[])

        self.load = _Remote(load)


class _ParentHost:
    """Answers each send with the next reply given."""

    def __init__(self, replies: list[Reply]) -> None:
        self.sent: list[dict[str, Any]] = []

        async def send(sop_id: str, wire: dict[str, Any], sender: Any, number: Any) -> Reply:
            self.sent.append(wire)
            return replies.pop(0)

        self.send = _Remote(send)


class _Commits:
    def __init__(self) -> None:
        self.rows: list[CommitRows] = []

    async def commit(self, rows: CommitRows) -> None:
        self.rows.append(rows)


def _notify(monkeypatch: pytest.MonkeyPatch, replies: list[Reply]) -> tuple[_ParentHost, _Commits, list[SOPRecord]]:
    host, commits, told = _ParentHost(replies), _Commits(), list[SOPRecord]()
    monkeypatch.setattr(parents.ray, "get_actor", lambda name, namespace=None: host)

    async def no_wait(seconds: float) -> None:
        return None

    monkeypatch.setattr(parents.asyncio, "sleep", no_wait)
    parent = record("parent", 3, phase="waiting_for_human", waiting={"reason": "check the figures"})
    notifier = parents.ParentNotifier("ns", _Store(parent), commits, lambda _: None, told.append)  # type: ignore[arg-type]
    asyncio.run(notifier.notify(record("child", 5, parent_id="parent", phase="done")))
    return host, commits, told


def test_a_parent_waiting_for_a_person_is_told_once_it_takes_the_event(monkeypatch: pytest.MonkeyPatch) -> None:
    waiting: Reply = {"error": error_to_wire(AwaitingHuman("parent", "check the figures"))}
    waits = parents._ATTEMPTS + 4  # waiting is no failed try: more than the tries a failure gets
    host, commits, told = _notify(monkeypatch, [waiting] * waits + [{"outcome": "transitioned", "version": 4}])
    assert [wire["type"].rpartition(":")[2] for wire in host.sent] == ["SubSOPCompleted"] * (waits + 1)
    assert len(commits.rows) == 1 and [record.parent_notified for record in told] == [True]


def test_a_parent_that_keeps_failing_is_left_to_the_hosts_next_start(monkeypatch: pytest.MonkeyPatch) -> None:
    down: Reply = {"error": error_to_wire(RuntimeUnavailable("procedure actor unavailable"))}
    host, commits, told = _notify(monkeypatch, [down] * parents._ATTEMPTS)
    assert len(host.sent) == parents._ATTEMPTS
    assert commits.rows == [] and told == []  # still pending in the Store: sent again at the next start


def test_a_parent_that_ended_is_not_asked_again(monkeypatch: pytest.MonkeyPatch) -> None:
    host, _, told = _notify(monkeypatch, [{"error": error_to_wire(SOPFailed("parent", "failed"))}])
    assert len(host.sent) == 1
    assert [record.parent_notified for record in told] == [True]  # nothing more to do: not sent again
