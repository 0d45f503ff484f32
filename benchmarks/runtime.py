"""Runtime overhead against bare Ray, measured in the same run; prints one JSON line.

    python benchmarks/runtime.py [--events 200] [--sops 1000] [--idle 10000] [--timers 10000]
                                 [--recovery-rounds 9]

Figures (each framework figure next to its bare-Ray baseline and their ratio):
- latency: one event, send -> committed (host -> procedure actor -> store -> reply) vs the same
  three hops written as plain async Ray actors;
- throughput: events/s with `--sops` SOPs each sent one event concurrently vs the same number
  of pipelined calls to one bare actor (median of 5 rounds after a warm-up, alternating);
- idle SOPs: `--idle` SOPs started and left idle (0 skips it); memory per idle SOP on the hosts;
- sub-SOP start on an existing host vs starting a Ray actor;
- monitoring: the throughput figure for SOPs of a namespace with the Monitor vs one without
  (`init(monitoring=False)`), alternating rounds in the same cluster; and the time to scrape
  `/metrics` with the `--idle` SOPs live;
- recovery declared: the latency and throughput figures for SOPs whose procedure class declares a
  recovery ladder (`sop_recovery = RecoveryPolicy(...)`, never taken: no event fails) vs the same
  SOPs without one, alternating `--recovery-rounds` rounds (0 skips it); ratios declared/undeclared;
- durable timers: `--timers` timers (0 skips it) scheduled one by one from the driver with
  `handle.schedule(event, at=...)` on `--timers`/10 SOPs (10 each, all due at one moment a few
  seconds after the last is stored), in a namespace of their own; the schedule rate (timers
  stored per second) and the fire rate (timers per second from the due moment until every SOP has
  committed its 10 events and ended: polling `list_sops("running", limit=1)` until empty) vs a bare async
  actor that keeps the same timers in SQLite (one row each, inserted before `schedule` returns,
  deleted once fired; WAL, synchronous=NORMAL as the Store), sleeps until they are due and
  delivers each to a bare worker + store (one key's events in order), its count polled alike.
Not a test: nothing here asserts a time.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import heapq
import json
import sqlite3
import statistics
import sys
import tempfile
import time
import urllib.request
from collections.abc import Callable
from pathlib import Path
from typing import Any

import psutil
import ray

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import sopy_actors
from sopy_actors import SOP
from sopy_actors.recovery import Manual, RecoveryPolicy, Retry
from tests.support import ledger


@ray.remote(num_cpus=0)
class BareWorker:
    def handle(self, state: dict[str, Any], event: dict[str, Any]) -> dict[str, Any]:
        return {**state, "n": state.get("n", 0) + 1}


@ray.remote(num_cpus=0)
class BareStore:
    def __init__(self) -> None:
        self.rows: dict[str, dict[str, Any]] = {}

    async def commit(self, key: str, row: dict[str, Any]) -> None:
        self.rows[key] = row


@ray.remote(num_cpus=0)
class BareHost:
    """The same message pattern as an SOP host: worker call, then store commit, then reply."""

    def __init__(self, worker: Any, store: Any) -> None:
        self.worker, self.store, self.states = worker, store, {}

    async def send(self, key: str, event: dict[str, Any]) -> dict[str, Any]:
        state = await self.worker.handle.remote(self.states.get(key, {}), event)
        await self.store.commit.remote(key, state)
        self.states[key] = state
        return state


@ray.remote(num_cpus=0)
class Echo:
    def ping(self) -> int:
        return 1


@ray.remote(num_cpus=0)
class BareTimers:
    """Durable timers the bare way: one SQLite row per timer, a heap, one loop sleeping until the next.

    A due timer's event goes to the worker, then the store (one key's events one at a time, in
    order, as an SOP applies them); then its row is deleted.
    """

    def __init__(self, path: str, worker: Any, store: Any) -> None:
        self.db = sqlite3.connect(path, isolation_level=None)
        self.db.execute("PRAGMA journal_mode=WAL")
        self.db.execute("PRAGMA synchronous=NORMAL")
        self.db.execute("CREATE TABLE timers (timer_id TEXT PRIMARY KEY, key TEXT, due REAL, event TEXT)")
        self.worker, self.store = worker, store
        self.heap: list[tuple[float, str, str, str]] = []
        self.states: dict[str, dict[str, Any]] = {}
        self.locks: dict[str, asyncio.Lock] = {}
        self.fired = 0
        self.wake = asyncio.Event()
        self.loop: asyncio.Task[None] | None = None

    async def schedule(self, timer_id: str, key: str, due: float, event: str) -> None:
        self.db.execute("INSERT INTO timers VALUES (?, ?, ?, ?)", (timer_id, key, due, event))
        heapq.heappush(self.heap, (due, timer_id, key, event))
        if self.loop is None:
            self.loop = asyncio.get_running_loop().create_task(self._run())
        self.wake.set()

    async def count(self) -> int:
        return self.fired

    async def _run(self) -> None:
        while True:
            delay = self.heap[0][0] - time.time() if self.heap else None
            if delay is None or delay > 0:
                self.wake.clear()
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self.wake.wait(), timeout=delay)
                continue
            due, now = [], time.time()
            while self.heap and self.heap[0][0] <= now:
                due.append(heapq.heappop(self.heap))
            await asyncio.gather(*(self._deliver(timer_id, key, event) for _, timer_id, key, event in due))

    async def _deliver(self, timer_id: str, key: str, event: str) -> None:
        async with self.locks.setdefault(key, asyncio.Lock()):
            state = await self.worker.handle.remote(self.states.get(key, {}), json.loads(event))
            await self.store.commit.remote(key, state)
            self.states[key] = state
        self.db.execute("DELETE FROM timers WHERE timer_id = ?", (timer_id,))
        self.fired += 1


class DeclaredRecording(ledger.Recording):
    """`ledger.Recording` with a recovery ladder declared; never taken here (no event fails)."""

    sop_recovery = RecoveryPolicy(rungs=[Retry(max_attempts=3), Manual(reason="benchmark: nothing fails")])


def _declared_sop(expected: int) -> SOP[ledger.Ledger]:
    return SOP(state=ledger.Ledger(expected=expected), init_proc=DeclaredRecording())


def _event(i: int) -> ledger.EntryAdded:
    return ledger.EntryAdded(payload=ledger.EntryData(sender="bench", index=i))


def latency(events: int) -> dict[str, float]:
    handle = ledger.make_sop(10**9).start()
    handle.send(_event(-1))  # warm: actors exist
    framework = []
    for i in range(events):
        started = time.perf_counter()
        handle.send(_event(i))
        framework.append(time.perf_counter() - started)
    host = BareHost.remote(BareWorker.remote(), BareStore.remote())
    ray.get(host.send.remote("k", {}))
    bare = []
    for i in range(events):
        started = time.perf_counter()
        ray.get(host.send.remote("k", {"i": i}))
        bare.append(time.perf_counter() - started)
    f, b = statistics.median(framework), statistics.median(bare)
    return {"latency_ms": round(f * 1000, 3), "bare_latency_ms": round(b * 1000, 3), "latency_ratio": round(f / b, 2)}


def throughput(sops: int, rounds: int = 5) -> dict[str, float]:
    handles = [ledger.make_sop(10**9).start() for _ in range(sops)]
    echo = Echo.remote()
    ray.get(echo.ping.remote())
    framework_rates, bare_rates = [], []
    for round_ in range(rounds + 1):  # round 0 warms up both sides
        started = time.perf_counter()
        futures = [h.submit(_event(round_)) for h in handles]
        for future in futures:
            future.result()
        framework_rates.append(sops / (time.perf_counter() - started))
        started = time.perf_counter()
        ray.get([echo.ping.remote() for _ in range(sops)])
        bare_rates.append(sops / (time.perf_counter() - started))
    framework, bare = statistics.median(framework_rates[1:]), statistics.median(bare_rates[1:])
    return {
        "events_per_s": round(framework, 1),
        "bare_calls_per_s": round(bare, 1),
        "throughput_ratio": round(framework / bare, 3),
    }


def _host_rss(namespace: str, hosts: int) -> int:
    total = 0
    for i in range(hosts):
        pid = ray.get(ray.get_actor(f"sopy-host-{i}", namespace=namespace).statistics.remote())["pid"]
        total += psutil.Process(pid).memory_info().rss
    return total


def _live_sops(namespace: str, hosts: int) -> int:
    return sum(
        ray.get(ray.get_actor(f"sopy-host-{i}", namespace=namespace).statistics.remote())["instances"]
        for i in range(hosts)
    )


def idle_sops(count: int, namespace: str, hosts: int) -> dict[str, float]:
    before = _host_rss(namespace, hosts)
    started = time.perf_counter()
    batch = 200
    for offset in range(0, count, batch):
        sops = [ledger.make_sop(1) for _ in range(min(batch, count - offset))]
        for sop in sops:
            sop.start()
    seconds = time.perf_counter() - started
    live = _live_sops(namespace, hosts)
    after = _host_rss(namespace, hosts)
    return {
        "idle_sops_started": count,
        "live_sop_instances": live,
        "start_per_s": round(count / seconds, 1),
        "host_bytes_per_idle_sop": round(max(after - before, 0) / count),
    }


def sub_sop_start() -> dict[str, float]:
    ledger.make_sop(1).start()  # host exists
    runs = 20
    started = time.perf_counter()
    for _ in range(runs):
        ledger.make_sop(1).start()
    sop_start = (time.perf_counter() - started) / runs
    started = time.perf_counter()
    actors = [Echo.remote() for _ in range(5)]
    ray.get([a.ping.remote() for a in actors])
    actor_start = (time.perf_counter() - started) / 5
    return {
        "sop_start_ms": round(sop_start * 1000, 2),
        "actor_start_ms": round(actor_start * 1000, 1),
        "sop_start_speedup": round(actor_start / sop_start, 1),
    }


def _rate(handles: list[Any], round_: int) -> float:
    started = time.perf_counter()
    futures = [h.submit(_event(round_)) for h in handles]
    for future in futures:
        future.result()
    return len(handles) / (time.perf_counter() - started)


def monitoring_cost(sops: int, namespace: str, store_dir: str, hosts: int, rounds: int = 9) -> dict[str, float]:
    """Events/s of SOPs whose hosts report to a Monitor vs SOPs of a namespace without one.

    Both namespaces are new and hold the same SOPs, so only the monitoring differs.
    """
    sopy_actors.init(namespace=f"{namespace}-unmonitored", store_dir=tempfile.mkdtemp(), hosts=hosts, monitoring=False)
    off = [ledger.make_sop(10**9).start() for _ in range(sops)]
    sopy_actors.init(namespace=f"{namespace}-monitored", store_dir=tempfile.mkdtemp(), hosts=hosts, metrics_port=0)
    on = [ledger.make_sop(10**9).start() for _ in range(sops)]
    on_rates, off_rates = [], []
    for round_ in range(rounds + 1):  # round 0 warms up both sides; the order alternates
        first, second = (on, off) if round_ % 2 else (off, on)
        rates = {id(first): _rate(first, round_), id(second): _rate(second, round_)}
        on_rates.append(rates[id(on)])
        off_rates.append(rates[id(off)])
    with_monitor, without = statistics.median(on_rates[1:]), statistics.median(off_rates[1:])
    sopy_actors.init(namespace=namespace, store_dir=store_dir)  # back to the main deployment
    return {
        "monitored_events_per_s": round(with_monitor, 1),
        "unmonitored_events_per_s": round(without, 1),
        "monitoring_throughput_ratio": round(with_monitor / without, 3),
    }


def scrape_time(port: int, live: int, runs: int = 5) -> dict[str, float]:
    """Median time of one `/metrics` scrape (with `live` SOPs on the hosts)."""
    times, size = [], 0
    for _ in range(runs):
        started = time.perf_counter()
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=30) as response:
            size = len(response.read())
        times.append(time.perf_counter() - started)
    return {"scrape_ms": round(statistics.median(times) * 1000, 2), "scrape_bytes": size, "scrape_live_sops": live}


def _latency_samples(make: Any, events: int) -> list[float]:
    """Send -> committed times of `events` events to a new SOP (warmed by one event first)."""
    handle = make(10**9).start()
    handle.send(_event(-1))
    samples = []
    for i in range(events):
        started = time.perf_counter()
        handle.send(_event(i))
        samples.append(time.perf_counter() - started)
    return samples


def recovery_cost(sops: int, events: int, rounds: int = 9) -> dict[str, float]:
    """Latency and events/s of SOPs whose procedure declares a recovery ladder vs the same without.

    Both kinds live side by side on the same hosts; each round measures both, in alternating order.
    """
    kinds = {
        "declared": (_declared_sop, [_declared_sop(10**9).start() for _ in range(sops)]),
        "plain": (ledger.make_sop, [ledger.make_sop(10**9).start() for _ in range(sops)]),
    }
    rates: dict[str, list[float]] = {kind: [] for kind in kinds}
    latencies: dict[str, list[float]] = {kind: [] for kind in kinds}
    for round_ in range(rounds + 1):  # round 0 warms up both sides; the order alternates
        for kind in ("declared", "plain") if round_ % 2 else ("plain", "declared"):
            make, handles = kinds[kind]
            rate, samples = _rate(handles, round_), _latency_samples(make, events)
            if round_:
                rates[kind].append(rate)
                latencies[kind].extend(samples)
    rate = {kind: statistics.median(values) for kind, values in rates.items()}
    latency = {kind: statistics.median(values) for kind, values in latencies.items()}
    return {
        "recovery_events_per_s": round(rate["declared"], 1),
        "no_recovery_events_per_s": round(rate["plain"], 1),
        "recovery_throughput_ratio": round(rate["declared"] / rate["plain"], 3),
        "recovery_latency_ms": round(latency["declared"] * 1000, 3),
        "no_recovery_latency_ms": round(latency["plain"] * 1000, 3),
        "recovery_latency_ratio": round(latency["declared"] / latency["plain"], 3),
    }


_TIMERS_PER_SOP = 10
_POLL_SECONDS = 0.02


def _timer_event(i: int) -> ledger.EntryAdded:
    return ledger.EntryAdded(payload=ledger.EntryData(sender="timer", index=i))


def _timer_batches(count: int) -> list[int]:
    """Timers per SOP (or bare key): 10 each, the rest on one more."""
    return [_TIMERS_PER_SOP] * (count // _TIMERS_PER_SOP) + ([count % _TIMERS_PER_SOP] if count % _TIMERS_PER_SOP else [])


def _schedule_sop_timers(count: int, due: float | None) -> tuple[int, float]:
    """Start SOPs for `count` timers and schedule them one by one (due at `due`, or now).

    Returns:
        How many SOPs, and the seconds scheduling took (the SOPs' starts not included).
    """
    batches = _timer_batches(count)
    handles = [ledger.make_sop(n).start() for n in batches]
    started = time.perf_counter()
    for handle, n in zip(handles, batches, strict=True):
        for i in range(n):
            if due is None:
                handle.schedule(_timer_event(i), after=0)
            else:
                handle.schedule(_timer_event(i), at=due)
    return len(handles), time.perf_counter() - started


def _schedule_bare_timers(actor: Any, count: int, due: float | None, prefix: str) -> float:
    """`_schedule_sop_timers` for `BareTimers`: the seconds scheduling took."""
    started = time.perf_counter()
    for key_index, n in enumerate(_timer_batches(count)):
        key = f"{prefix}-{key_index}"
        for i in range(n):
            when = time.time() if due is None else due
            ray.get(actor.schedule.remote(f"{key}:{i}", key, when, _timer_event(i).model_dump_json()))
    return time.perf_counter() - started


def _poll_until(finished: Callable[[], bool], timeout: float = 900.0) -> float:
    """Poll `finished()` every few ms until it is true; returns the Unix time it was."""
    deadline = time.time() + timeout
    while not finished():
        if time.time() > deadline:
            raise TimeoutError(f"timers not all fired after {timeout} s")
        time.sleep(_POLL_SECONDS)
    return time.time()


def _all_sops_done() -> bool:
    """No SOP of the namespace is still running: one row at most crosses, whatever the count."""
    return not sopy_actors.list_sops("running", limit=1)


def _timer_round(
    schedule: Callable[[int, float | None], float], count: int, warmed: Callable[[], bool], finished: Callable[[], bool]
) -> tuple[float, float, bool]:
    """Warm up with a few timers due at once; then `count` timers due at one moment, measured.

    The due moment is set from the warm-up's schedule rate, so that scheduling ends before it.

    Returns:
        Timers stored per second, timers fired per second from the due moment, whether
        scheduling overran the due moment (then the fire rate counts from the due moment anyway).
    """
    warm = min(200, count)
    warm_seconds = schedule(warm, None)
    _poll_until(warmed)
    due = time.time() + 2.0 + 1.5 * count * warm_seconds / warm
    seconds = schedule(count, due)
    overran = time.time() > due
    time.sleep(max(due - time.time() - 0.1, 0))
    finished_at = _poll_until(finished)
    return count / seconds, count / (finished_at - due), overran


def timer_throughput(count: int, namespace: str, hosts: int) -> dict[str, Any]:
    """Durable timers: schedule rate and fire rate, framework vs a bare SQLite-backed actor.

    The framework's timers go to a new namespace (its own hosts and Store); each SOP ends after
    its timers' events: once none is `running`, every timer has fired and its event is committed.
    """
    sopy_actors.init(namespace=f"{namespace}-timers", store_dir=tempfile.mkdtemp(), hosts=hosts, metrics_port=0)

    def schedule_sops(n: int, due: float | None) -> float:
        return _schedule_sop_timers(n, due)[1]

    scheduled, fired, overran = _timer_round(schedule_sops, count, _all_sops_done, _all_sops_done)
    bare = BareTimers.remote(str(Path(tempfile.mkdtemp()) / "timers.db"), BareWorker.remote(), BareStore.remote())

    def schedule_bare(n: int, due: float | None) -> float:
        return _schedule_bare_timers(bare, n, due, "warm" if due is None else "timed")

    def bare_fired(target: int) -> Callable[[], bool]:
        return lambda: int(ray.get(bare.count.remote())) >= target

    warm = min(200, count)
    bare_scheduled, bare_fired_rate, bare_overran = _timer_round(
        schedule_bare, count, bare_fired(warm), bare_fired(warm + count)
    )
    return {
        "timers": count,
        "timer_sops": len(_timer_batches(count)),
        "timers_scheduled_per_s": round(scheduled, 1),
        "bare_timers_scheduled_per_s": round(bare_scheduled, 1),
        "timer_schedule_ratio": round(scheduled / bare_scheduled, 3),
        "timers_fired_per_s": round(fired, 1),
        "bare_timers_fired_per_s": round(bare_fired_rate, 1),
        "timer_fire_ratio": round(fired / bare_fired_rate, 3),
        "timer_schedule_overran_due": overran or bare_overran,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--events", type=int, default=200)
    parser.add_argument("--sops", type=int, default=1000)
    parser.add_argument("--idle", type=int, default=10000, help="idle SOPs to start (0: skip)")
    parser.add_argument("--timers", type=int, default=10000, help="durable timers to fire (0: skip)")
    parser.add_argument("--recovery-rounds", type=int, default=9, help="declared vs undeclared rounds (0: skip)")
    arguments = parser.parse_args()
    namespace, hosts = "bench", 2
    store_dir = tempfile.mkdtemp()
    info = sopy_actors.init(namespace=namespace, store_dir=store_dir, hosts=hosts, log_to_driver=False, metrics_port=0)
    report: dict[str, Any] = {"benchmark": "runtime"}
    report.update(latency(arguments.events))
    report.update(throughput(arguments.sops))
    report.update(sub_sop_start())
    report.update(monitoring_cost(arguments.sops, namespace, store_dir, hosts))
    if arguments.recovery_rounds:
        report.update(recovery_cost(arguments.sops, arguments.events, arguments.recovery_rounds))
    if arguments.timers:
        report.update(timer_throughput(arguments.timers, namespace, hosts))
        sopy_actors.init(namespace=namespace, store_dir=store_dir)  # back to the main deployment
    if arguments.idle:
        report.update(idle_sops(arguments.idle, namespace, hosts))
    assert info.metrics_port is not None
    report.update(scrape_time(info.metrics_port, _live_sops(namespace, hosts)))
    print(json.dumps(report))
    sopy_actors.shutdown()


if __name__ == "__main__":
    main()
