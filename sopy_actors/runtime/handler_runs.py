"""Running one batch of handler calls so that a slow or hung handler holds up only its own SOP.

Plain threads (no Ray): the calls of a batch go to a pool of workers that each take the next
call when free, so a hung handler blocks one worker, not the calls queued behind it. A batch
answers as soon as every call finished, or when nothing has finished for `stall_seconds`; the
calls still running then are answered `{"pending": token}` and their results are fetched
with `collect(token)`, which gives up at the call's handler timeout.
"""

from __future__ import annotations

import threading
import time
import uuid
from collections import deque
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor

from sopy_actors.errors import TimedOut, error_to_wire
from sopy_actors.runtime.messages import HandlerCall, HandlerResult

__all__ = ["DEFAULT_HANDLER_TIMEOUT", "HandlerRuns"]

DEFAULT_HANDLER_TIMEOUT = 300.0
_FORGET_AFTER = 60.0  # seconds past its deadline an uncollected straggler is kept


def _timeout_of(call: HandlerCall) -> float:
    options = call.procedure.get("options") or {}
    return float(options.get("handler_timeout", DEFAULT_HANDLER_TIMEOUT))


class HandlerRuns:
    """Runs handler calls on `workers` threads; thread-safe.

    Args:
        workers: threads running handlers at once.
        run: runs one call and returns its result (never raises: errors are results).
        stall_seconds: how long a batch waits with no call finishing before it answers.
    """

    def __init__(self, workers: int, run: Callable[[HandlerCall], HandlerResult], *, stall_seconds: float = 1.0) -> None:
        self._pool = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="sopy-handler")
        self._workers = workers
        self._run = run
        self._stall = stall_seconds
        self._lock = threading.Lock()
        self._stragglers: dict[str, tuple[Future[HandlerResult], HandlerCall, float]] = {}

    def run_batch(self, calls: list[HandlerCall]) -> list[HandlerResult]:
        """Run the calls; their results in order, `{"pending": token}` for those still running."""
        received = time.monotonic()
        futures: list[Future[HandlerResult]] = [Future() for _ in calls]
        queue = deque(range(len(calls)))
        progress = threading.Condition()
        finished = 0

        def work() -> None:
            nonlocal finished
            while True:
                with progress:
                    if not queue:
                        return
                    index = queue.popleft()
                futures[index].set_result(self._run(calls[index]))
                with progress:
                    finished += 1
                    if finished == len(calls):  # one wake-up per batch, not per call
                        progress.notify()

        for _ in range(min(self._workers, len(calls))):
            self._pool.submit(work)
        with progress:  # until all finished, or none finished for stall_seconds (checked each period)
            while finished < len(calls):
                before = finished
                progress.wait(timeout=self._stall)
                if finished == before:
                    break
        results: list[HandlerResult] = []
        with self._lock:
            self._forget_old(received)
            for call, future in zip(calls, futures, strict=True):
                if future.done():
                    results.append(future.result())
                    continue
                token = uuid.uuid4().hex
                self._stragglers[token] = (future, call, received + _timeout_of(call))
                results.append({"pending": token})
        return results

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
        future, call, deadline = entry
        try:
            return future.result(timeout=max(0.0, deadline - time.monotonic()))
        except TimeoutError:
            event_type = str(call.event.get("type", "?")).rpartition(":")[2]
            error = TimedOut(
                f"sop=<{call.sop_id}>, procedure=<{call.procedure.get('name')}>, event=<{event_type}> | the handler "
                f"ran longer than its handler_timeout of {_timeout_of(call)} s; nothing was committed (raise "
                "handler_timeout in the procedure's sop_options if it needs longer)"
            )
            return {"error": error_to_wire(error), "seconds": _timeout_of(call)}

    def _forget_old(self, now: float) -> None:
        """Drop stragglers nobody collected (their host died) long after their deadline."""
        for token in [t for t, (_, _, deadline) in self._stragglers.items() if now > deadline + _FORGET_AFTER]:
            del self._stragglers[token]
