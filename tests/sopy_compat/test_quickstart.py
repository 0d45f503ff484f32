"""SOPy's README quick start, on both engines: SOPy's rejection, unfinished exit and reset."""

from __future__ import annotations

from typing import Any

import pytest

from sopy_actors.errors import RecoveryExhausted, StateError
from sopy_actors.sopy import SOP, End, Prompt
from sopy_actors.sopy.core.event import EventBus
from sopy_actors.sopy.core.sop import SOPRetryExceptionHook, SOPViolation
from tests.sopy_compat.quickstart import StartTask, TaskCompleted, TaskRecord, TaskState

UNFINISHED = "SOP left unfinished: current procedure is StartTask with prompt Begin the task and work towards completion."


def _sop(state: Any = None) -> SOP[Any]:
    return SOP(state=TaskRecord() if state is None else state, init_proc=StartTask()).observes(TaskCompleted)


def test_a_successful_task_ends_the_sop_and_the_state_is_reset_after_the_block(engine: str) -> None:
    sop = _sop()
    with sop:
        EventBus.push_event(TaskCompleted(payload=True))
        assert sop.state == TaskRecord(completed=True)
        assert isinstance(sop.current_proc, End)
    assert sop.state == TaskRecord(completed=False)  # SOPy resets state and procedure on a clean exit
    assert isinstance(sop.current_proc, StartTask)


def test_a_failed_task_is_rejected_to_the_pusher_with_the_handler_text_and_counted(engine: str) -> None:
    sop = _sop()
    with sop:
        with pytest.raises(SOPRetryExceptionHook) as hook:
            EventBus.push_event(TaskCompleted(False))
        assert str(hook.value) == "Task failed, please try again"
        assert isinstance(hook.value.prompt, Prompt) and hook.value.prompt.prompt == str(hook.value)
        assert isinstance(hook.value.current_procedure, StartTask)
        assert sop.num_retry == 1
        sop(TaskCompleted(True))  # calling the SOP is what the bus does
        assert isinstance(sop.current_proc, End)
    assert sop.num_retry == 1


def test_an_empty_block_calls_the_error_handler_with_a_prompt_until_the_limit_then_raises(engine: str) -> None:
    prompts: list[Prompt] = []
    sop = _sop().with_recovery(prompts.append, retry_limits=3)
    with pytest.raises(SOPViolation) as violation, sop:
        pass
    assert str(violation.value) == UNFINISHED
    assert [p.prompt for p in prompts] == [UNFINISHED] * 3


def test_the_default_error_handler_does_nothing_so_an_empty_block_raises_sopys_violation(engine: str) -> None:
    with pytest.raises(SOPViolation, match=r"^SOP left unfinished: current procedure is StartTask"), _sop():
        pass


def test_rejections_and_unfinished_exit_recoveries_share_one_budget(engine: str) -> None:
    prompts: list[Prompt] = []
    sop = _sop().with_recovery(prompts.append, retry_limits=3)
    with pytest.raises(SOPViolation), sop, pytest.raises(SOPRetryExceptionHook):
        sop(TaskCompleted(False))
    assert len(prompts) == 2
    assert sop.num_retry == 3


def test_an_error_handler_that_drives_the_sop_to_end_finishes_the_block(engine: str) -> None:
    sop = _sop()
    sop.with_recovery(lambda prompt: EventBus.push_event(TaskCompleted(True)), 3)
    with sop:
        pass
    assert sop.num_retry == 1


def test_the_rejection_past_the_limit_raises_recovery_exhausted_where_sopy_exits_the_process(engine: str) -> None:
    sop = SOP(TaskRecord(), StartTask(), retry_limits=1)
    with pytest.raises(RecoveryExhausted), sop:
        with pytest.raises(SOPRetryExceptionHook):
            sop(TaskCompleted(False))
        sop(TaskCompleted(False))


def test_events_the_sop_does_not_observe_are_dropped_and_events_outside_a_block_are_an_error(engine: str) -> None:
    from sopy_actors.sopy import Event

    class Unrelated(Event[str]):
        pass

    sop = _sop()
    sop(Unrelated("dropped before the context check, as in SOPy"))
    with pytest.raises(RuntimeError, match="`observe` should not be called outside of SOP context"):
        sop(TaskCompleted(True))


def test_a_plain_object_state_runs_in_process_and_cannot_cross_to_the_actor_runtime(engine: str) -> None:
    sop = _sop(TaskState())
    if engine == "actors":
        with pytest.raises(StateError, match="cannot cross processes"), sop:
            pass
        return
    with sop:
        EventBus.push_event(TaskCompleted(True))
        assert sop.state.completed is True
    assert sop.state.completed is False


def test_sop_copies_the_state_it_is_given_and_a_second_block_starts_afresh(engine: str) -> None:
    record = TaskRecord()
    sop = _sop(record)
    for _ in range(2):
        with sop:
            assert sop.state == TaskRecord(completed=False)
            sop(TaskCompleted(True))
    assert record == TaskRecord(completed=False)


def test_the_block_runs_in_process_without_a_runtime_and_on_the_actor_runtime_after_init(engine: str) -> None:
    from sopy_actors import SOPHandle, current_sop
    from sopy_actors.testing import LocalSOP

    with _sop() as sop:
        assert isinstance(current_sop(), SOPHandle if engine == "actors" else LocalSOP)
        sop(TaskCompleted(True))
