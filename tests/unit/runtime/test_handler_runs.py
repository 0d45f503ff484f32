"""A batch of handler calls answers without waiting for a hung handler; stragglers time out."""

from __future__ import annotations

import threading
import time

from sopy_actors.errors import TimedOut, error_from_wire
from sopy_actors.runtime.handler_runs import HandlerRuns
from sopy_actors.runtime.messages import HandlerCall, HandlerResult


def _call(sop_id: str, timeout: float = 300.0) -> HandlerCall:
    procedure = {"name": "P", "options": {"handler_timeout": timeout}}
    return HandlerCall(sop_id, procedure, {}, {"type": "m:E", "data": {}}, {"observed": [], "agents": []}, {})


def test_a_hung_call_is_answered_pending_and_the_rest_of_its_batch_does_not_wait() -> None:
    release = threading.Event()

    def run(call: HandlerCall) -> HandlerResult:
        if call.sop_id == "hung":
            release.wait(30)
        return {"outcome": "stayed", "handler": call.sop_id}

    runs = HandlerRuns(4, run, stall_seconds=0.2)
    calls = [_call("a"), _call("hung"), *(_call(f"b{i}") for i in range(20))]
    started = time.monotonic()
    results = runs.run_batch(calls)
    assert time.monotonic() - started < 5
    assert [r.get("handler") for r in results if "pending" not in r] == ["a", *(f"b{i}" for i in range(20))]
    (pending,) = [r["pending"] for r in results if "pending" in r]
    release.set()
    assert runs.collect(pending) == {"outcome": "stayed", "handler": "hung"}


def test_a_straggler_past_its_handler_timeout_fails_with_timed_out() -> None:
    runs = HandlerRuns(2, lambda call: (time.sleep(3), {"outcome": "stayed"})[1], stall_seconds=0.1)
    (result,) = runs.run_batch([_call("slow", timeout=0.5)])
    collected = runs.collect(result["pending"])
    error = error_from_wire(collected["error"])
    assert isinstance(error, TimedOut) and "handler_timeout of 0.5 s" in str(error)
    unknown = error_from_wire(runs.collect("no-such-token")["error"])
    assert isinstance(unknown, TimedOut)


def test_blocking_calls_of_one_batch_run_side_by_side_up_to_the_worker_count() -> None:
    together = threading.Barrier(6, timeout=10)  # passes only once all six calls run at once

    def run(call: HandlerCall) -> HandlerResult:
        together.wait()
        return {"outcome": "stayed", "handler": call.sop_id}

    runs = HandlerRuns(6, run, stall_seconds=5)
    results = runs.run_batch([_call(f"c{i}") for i in range(6)])
    assert [r.get("handler") for r in results] == [f"c{i}" for i in range(6)]


def test_a_lone_call_runs_on_the_callers_thread_while_a_worker_slot_is_free() -> None:
    threads: list[int] = []

    def run(call: HandlerCall) -> HandlerResult:
        threads.append(threading.get_ident())
        return {"outcome": "stayed", "handler": call.sop_id}

    runs = HandlerRuns(2, run)
    assert runs.run_alone(_call("a")) == {"outcome": "stayed", "handler": "a"}
    assert threads == [threading.get_ident()]


def test_lone_calls_and_batches_together_never_run_more_calls_than_workers() -> None:
    release, running = threading.Event(), threading.Semaphore(0)

    def run(call: HandlerCall) -> HandlerResult:
        running.release()
        release.wait(30)
        return {"outcome": "stayed", "handler": call.sop_id}

    runs = HandlerRuns(2, run, stall_seconds=0.2)
    alone = threading.Thread(target=runs.run_alone, args=(_call("alone"),))
    alone.start()
    assert running.acquire(timeout=5)
    (pending,) = runs.run_batch([_call("batched")])  # takes the second slot, answered pending
    assert running.acquire(timeout=5)
    assert runs.run_alone(_call("third")) is None  # both slots busy: the caller must batch it
    (queued,) = runs.run_batch([_call("queued")])  # waits for a slot
    assert not running.acquire(timeout=0.5)
    release.set()
    alone.join(5)
    assert runs.collect(pending["pending"])["handler"] == "batched"
    assert runs.collect(queued["pending"])["handler"] == "queued"


def test_a_call_its_host_gave_up_on_is_answered_timed_out_without_running() -> None:
    ran: list[str] = []

    def run(call: HandlerCall) -> HandlerResult:
        ran.append(call.sop_id)
        return {"outcome": "stayed"}

    runs = HandlerRuns(2, run)
    late = _call("late", timeout=0.5)._replace(deadline=time.time() - 5)
    for result in (runs.run_alone(late), *runs.run_batch([late])):
        assert result is not None and isinstance(error_from_wire(result["error"]), TimedOut)
    assert runs.run_alone(_call("on time")._replace(deadline=time.time() + 5)) == {"outcome": "stayed"}
    assert ran == ["on time"]
