"""Background tasks of an actor: a failure is logged with its owner, a cancel is not."""

from __future__ import annotations

import asyncio
import logging

import pytest

from sopy_actors.runtime.background import Background


def test_a_failed_task_is_logged_with_its_owner_and_a_cancelled_one_is_not(caplog: pytest.LogCaptureFixture) -> None:
    async def fails() -> None:
        raise ValueError("boom")

    async def run() -> None:
        background = Background("host=<h>")
        background.spawn(fails())
        background.spawn(asyncio.sleep(10))
        await asyncio.sleep(0.01)
        for task in asyncio.all_tasks() - {asyncio.current_task()}:
            task.cancel()
        await asyncio.sleep(0.01)

    with caplog.at_level(logging.ERROR, logger="sopy_actors.runtime.background"):
        asyncio.run(run())
    assert [record.getMessage() for record in caplog.records] == ["host=<h> | background task failed"]
    assert caplog.records[0].exc_info is not None and str(caplog.records[0].exc_info[1]) == "boom"
