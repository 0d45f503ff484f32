"""Group commit: commits that arrive during a write go together in the next one."""

from __future__ import annotations

import asyncio
import json
import logging

import pytest

from sopy_actors.errors import VersionConflict, error_from_wire
from sopy_actors.runtime import group_commit
from sopy_actors.runtime.commits import Commit, CommitRows, WriteResult
from sopy_actors.runtime.group_commit import GroupCommit
from tests.support.records import entry, record


def _rows(sop_id: str, version: int = 1) -> CommitRows:
    return Commit(record=record(sop_id, version), entry=entry(sop_id, version, f"{sop_id}-e{version}")).rows()


class _Backend:
    """Records each write's SOP ids; the first write waits for `release`."""

    def __init__(self) -> None:
        self.writes: list[list[str]] = []
        self.release = asyncio.Event()
        self.fail_next = False

    async def write(self, commits: list[CommitRows]) -> list[WriteResult]:
        self.writes.append([rows[0][0] for rows in commits])
        if len(self.writes) == 1:
            await self.release.wait()
        if self.fail_next:
            self.fail_next = False
            raise OSError("disk full")
        return [VersionConflict(rows[0][0], stored=3, attempted=1) if rows[0][0] == "conflict" else None for rows in commits]


def test_commits_that_arrive_during_a_write_go_together_in_the_next() -> None:
    async def run() -> tuple[list[list[str]], list[list[str | None]], list[float]]:
        backend, seconds = _Backend(), []
        group = GroupCommit(backend.write, seconds.append)
        first = asyncio.ensure_future(group.commit([_rows("a")]))
        await asyncio.sleep(0)  # the first write is under way and held
        later = [asyncio.ensure_future(group.commit([_rows(name)])) for name in ("b", "c")]
        await asyncio.sleep(0)
        backend.release.set()
        results = await asyncio.gather(first, *later)
        return backend.writes, results, seconds

    writes, results, seconds = asyncio.run(run())
    assert writes == [["a"], ["b", "c"]]
    assert results == [[None], [None], [None]]
    assert len(seconds) == 2 and all(value >= 0 for value in seconds)


def test_a_version_conflict_is_reported_as_its_error_in_wire_form_and_logged(caplog: pytest.LogCaptureFixture) -> None:
    async def run() -> list[str | None]:
        backend = _Backend()
        backend.release.set()
        return await GroupCommit(backend.write, lambda _: None).commit([_rows("ok"), _rows("conflict")])

    with caplog.at_level(logging.WARNING, logger="sopy_actors.runtime.group_commit"):
        ok, conflict = asyncio.run(run())
    assert ok is None and conflict is not None
    error = error_from_wire(json.loads(conflict)["error"])
    assert isinstance(error, VersionConflict) and error.sop_id == "conflict"
    assert [record.getMessage() for record in caplog.records] == [
        f"sop=<conflict>, stored=<{error.stored}>, attempted=<{error.attempted}> | version conflict: commit refused"
    ]


def test_a_failed_write_fails_every_caller_of_its_batch_and_the_next_batch_is_written() -> None:
    async def run() -> tuple[list[BaseException | list[str | None]], list[str | None]]:
        backend = _Backend()
        backend.release.set()
        backend.fail_next = True
        group = GroupCommit(backend.write, lambda _: None)
        failed = await asyncio.gather(group.commit([_rows("a")]), group.commit([_rows("b")]), return_exceptions=True)
        return failed, await group.commit([_rows("c")])

    failed, after = asyncio.run(run())
    assert all(isinstance(result, OSError) for result in failed)
    assert after == [None]


def test_a_failure_is_raised_not_swallowed() -> None:
    async def run() -> None:
        backend = _Backend()
        backend.release.set()
        backend.fail_next = True
        await GroupCommit(backend.write, lambda _: None).commit([_rows("a")])

    with pytest.raises(OSError, match="disk full"):
        asyncio.run(run())


def test_a_transaction_takes_up_to_the_commit_limit_but_never_splits_one_call(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(group_commit, "_MAX_COMMITS", 2)

    async def run() -> list[list[str]]:
        backend = _Backend()
        group = GroupCommit(backend.write, lambda _: None)
        first = asyncio.ensure_future(group.commit([_rows("a")]))
        await asyncio.sleep(0)  # the first write is under way and held
        later = [asyncio.ensure_future(group.commit([_rows(name)])) for name in ("b", "c", "d")]
        whole = asyncio.ensure_future(group.commit([_rows("e"), _rows("f"), _rows("g")]))
        await asyncio.sleep(0)
        backend.release.set()
        await asyncio.gather(first, *later, whole)
        return backend.writes

    assert asyncio.run(run()) == [["a"], ["b", "c"], ["d"], ["e", "f", "g"]]
