"""Sub-SOPs started from handlers: blocking, non-blocking, cancellation."""

from __future__ import annotations

import pytest

import sopy_actors
from sopy_actors.errors import SOPCancelled
from tests.support import family as f
from tests.support import whoami

pytestmark = pytest.mark.usefixtures("runtime")


def test_a_blocking_child_result_is_merged_into_the_parent_state() -> None:
    parent = f.parent_sop().start()
    parent.send(f.SpawnBlocking(payload="hello"), timeout=180)
    state = parent.state()
    assert state.results == {"hello": "HELLO"}
    assert parent.status().children == state.children


def test_a_non_blocking_child_reports_back_with_sub_sop_completed() -> None:
    parent = f.parent_sop().start()
    receipt = parent.send(f.SpawnAsync(payload="later"), timeout=180)
    assert receipt.procedure == "AwaitingChild"
    final = parent.result(timeout=180)
    assert final.results == {"later": "LATER"}


def test_cancelling_a_parent_cancels_its_children() -> None:
    from sopy_actors import attach

    parent = f.parent_sop().start()
    parent.send(f.SpawnIdle(payload="a"), timeout=180)
    parent.send(f.SpawnIdle(payload="b"), timeout=180)
    children = parent.status().children
    assert len(children) == 2
    parent.cancel()
    assert parent.status().phase == "cancelled"
    for child in children:
        assert attach(child).status().phase == "cancelled"
        with pytest.raises(SOPCancelled):
            attach(child).result(timeout=30)
    with pytest.raises(SOPCancelled):
        parent.result(timeout=30)


@pytest.mark.parametrize("placement", ["spread", "dedicated"])
def test_a_handler_gets_the_handle_of_its_own_sop(placement: str) -> None:
    handle = whoami.make_sop().start(placement=placement)  # type: ignore[arg-type]
    handle.send(whoami.Asked(payload="?"))
    final = handle.result(timeout=120)
    assert (final.sop_id, final.host) == (handle.sop_id, handle.host)
    assert sopy_actors.current_sop() is None  # the driver runs no handler
