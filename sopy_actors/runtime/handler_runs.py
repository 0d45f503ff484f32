"""Running one batch of handler calls so that a slow or hung handler holds up only its own SOP.

Plain threads (no Ray): the calls of a batch go to workers of a pool that each take the next
call when free. A batch starts with one worker, and gains another whenever a call has run for
`ramp_seconds` while calls wait (up to `workers`): quick handlers run one after another without
a thread hand-off per call, and a handler that blocks or hangs holds up one worker, not the
calls queued behind it. A batch answers as soon as every call finished, or when nothing has
finished for `stall_seconds`; the calls still running then are answered `{"pending": token}`
and their results are fetched with `collect(token)`, which gives up at the call's handler
timeout.

A batch of one call runs on the caller's thread instead when a slot is free (`run_alone`):
no hand-off at all on the latency path. It is never answered pending: its caller bounds the
wait by the call's deadline (`HandlerCall.deadline`), past which no call is started.
"""

from __future__ import annotations

import math
import threading
import time
import uuid
from collections import deque
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from sopy_actors.errors import TimedOut, error_to_wire
from sopy_actors.runtime.messages import HandlerCall, HandlerResult

__all__ = ["DEFAULT_HANDLER_TIMEOUT", "HandlerRuns", "handler_timeout", "timed_out"]

DEFAULT_HANDLER_TIMEOUT = 300.0
_FORGET_AFTER = 60.0  # seconds past its deadline an uncollected straggler is kept
_CLOCK_LEEWAY = 1.0  # seconds a call may start past its host's deadline (clocks of other nodes)


def handler_timeout(procedure: dict[str, Any]) -> float:
    """Seconds a handler of `procedure` (its JSON form) may run: its `handler_timeout` option."""
    options = procedure.get("options") or {}
    return float(options.get("handler_timeout", DEFAULT_HANDLER_TIMEOUT))


def timed_out(call: HandlerCall) -> HandlerResult:
    """The result of a call whose handler ran past its handler timeout: a `TimedOut` error."""
    event_type = str(call.event.get("type", "?")).rpartition(":")[2]
    error = TimedOut(
        f"sop=<{call.sop_id}>, procedure=<{call.procedure.get('name')}>, event=<{event_type}> | the handler "
        f"ran longer than its handler_timeout of {handler_timeout(call.procedure)} s; nothing was committed "
        "(raise handler_timeout in the procedure's sop_options if it needs longer)"
    )
    return {"error": error_to_wire(error), "seconds": handler_timeout(call.procedure)}


class _Batch:
    """The calls of one `run_batch`, their results as they finish, and when each worker's
    current call started (`math.inf`: the worker is done)."""

    def __init__(self, calls: list[HandlerCall]) -> None:
        self.calls = calls
        self.results: list[HandlerResult | None] = [None] * len(calls)
        self.queue = deque(range(len(calls)))
        self.finished = 0
        self.started: list[float] = []
        self.answered = False  # then every finish wakes the stragglers' collectors
        self.changed = threading.Condition()


class HandlerRuns:
    """Runs handler calls, at most `workers` at once (on its threads, or a caller's); thread-safe.

    Args:
        workers: threads running handlers at once (per batch, and in all).
        run: runs one call and returns its result (never raises: errors are results).
        stall_seconds: how long a batch waits with no call finishing before it answers.
        ramp_seconds: how long a call runs, while others of its batch wait, before another
            worker takes them.
    """

    def __init__(
        self,
        workers: int,
        run: Callable[[HandlerCall], HandlerResult],
        *,
        stall_seconds: float = 1.0,
        ramp_seconds: float = 0.005,
    ) -> None:
        self._pool = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="sopy-handler")
        self._workers = workers
        self._run = run
        self._stall = stall_seconds
        self._ramp = min(ramp_seconds, stall_seconds)
        self._lock = threading.Lock()
        self._stragglers: dict[str, tuple[_Batch, int, float]] = {}
        self._slots = threading.BoundedSemaphore(workers)  # calls running, on any thread
        self._queued = 0  # pool workers waiting for a slot: they go first

    def run_alone(self, call: HandlerCall) -> HandlerResult | None:
        """Run one call on the calling thread if a slot is free and no pooled call waits for
        one, else None (then use `run_batch`). Returns only when the handler does: the caller
        bounds its wait (see `HandlerCall.deadline`)."""
        if self._queued or not self._slots.acquire(blocking=False):
            return None
        try:
            return self._started(call)
        finally:
            self._slots.release()

    def _started(self, call: HandlerCall) -> HandlerResult:
        """Run `call`, unless its caller has given up on it (past its deadline, with a second of
        leeway for clocks of other nodes): a handler must not act after its event failed."""
        if call.deadline is not None and time.time() > call.deadline + _CLOCK_LEEWAY:
            return timed_out(call)
        return self._run(call)

    def run_batch(self, calls: list[HandlerCall]) -> list[HandlerResult]:
        """Run the calls; their results in order, `{"pending": token}` for those still running."""
        received = time.monotonic()
        batch = _Batch(calls)
        width = min(self._workers, len(calls))
        if width:
            self._add_worker(batch)
        with batch.changed:  # until all finished, or none finished for stall_seconds
            progress, seen = received, 0
            while batch.finished < len(calls):
                now = time.monotonic()
                if batch.queue and len(batch.started) < width and min(batch.started) <= now - self._ramp:
                    self._add_worker(batch)  # a call ran a ramp period: another worker takes the next
                batch.changed.wait(timeout=self._ramp)
                now = time.monotonic()
                if batch.finished != seen:
                    progress, seen = now, batch.finished
                elif now - progress >= self._stall:
                    break
            batch.answered = True
            results: list[HandlerResult] = []
            stragglers: list[tuple[str, int]] = []
            for index, result in enumerate(batch.results):
                if result is None:
                    token = uuid.uuid4().hex
                    stragglers.append((token, index))
                    results.append({"pending": token})
                else:
                    batch.results[index] = None  # answered: the batch keeps only stragglers' results
                    results.append(result)
        with self._lock:
            self._forget_old(received)
            for token, index in stragglers:
                self._stragglers[token] = (batch, index, received + handler_timeout(calls[index].procedure))
        return results

    def _add_worker(self, batch: _Batch) -> None:
        slot = len(batch.started)
        batch.started.append(time.monotonic())  # a worker still waiting for a thread counts as busy
        self._pool.submit(self._work, batch, slot)

    def _work(self, batch: _Batch, slot: int) -> None:
        """Run the batch's next calls until none is left (a pool thread)."""
        while True:
            try:
                index = batch.queue.popleft()
            except IndexError:
                batch.started[slot] = math.inf
                return
            if not self._slots.acquire(blocking=False):  # all taken: wait, ahead of lone calls
                with self._lock:
                    self._queued += 1
                try:
                    self._slots.acquire()
                finally:
                    with self._lock:
                        self._queued -= 1
            try:
                batch.started[slot] = time.monotonic()
                result = self._started(batch.calls[index])
            finally:
                self._slots.release()
            with batch.changed:
                batch.results[index] = result
                batch.finished += 1
                if batch.finished == len(batch.calls) or batch.answered:  # one wake-up per batch until answered
                    batch.changed.notify_all()

    def collect(self, token: str) -> HandlerResult:
        """The result of a straggler, waiting up to its handler timeout.

        Returns:
            Its result, or a `TimedOut` error result once its handler ran past the timeout.
        """
        with self._lock:
            entry = self._stragglers.pop(token, None)
        if entry is None:
            error = TimedOut("the handler call is unknown here (its procedure actor restarted): send the event again")
            return {"error": error_to_wire(error)}
        batch, index, deadline = entry
        with batch.changed:
            batch.changed.wait_for(lambda: batch.results[index] is not None, max(0.0, deadline - time.monotonic()))
            result, batch.results[index] = batch.results[index], None
        return timed_out(batch.calls[index]) if result is None else result

    def _forget_old(self, now: float) -> None:
        """Drop stragglers nobody collected (their host died) long after their deadline."""
        for token in [t for t, (_, _, deadline) in self._stragglers.items() if now > deadline + _FORGET_AFTER]:
            del self._stragglers[token]
