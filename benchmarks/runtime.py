"""Runtime overhead against bare Ray, measured in the same run; prints one JSON line.

    python benchmarks/runtime.py [--events 200] [--sops 1000] [--idle 10000] [--timers 10000]
                                 [--recovery-rounds 9]

Figures (each framework figure next to its bare-Ray baseline and their ratio):
- latency: one event, send -> committed (host -> procedure actor -> the host's SQLite commit ->
  reply) vs the same two hops and write done by bare actors with the same JSON and the same
  SQLite rows (`bare_batched`, a batch of one);
- throughput: events/s with `--sops` SOPs each sent one event concurrently vs the same pattern
  written with bare batched actors (`bare_batched`: 2 hosts, one JSON batch per host, one worker
  call and one SQLite transaction per batch, the same rows); median of 5 rounds after a
  warm-up, alternating which goes first;
- CPU per event: psutil CPU seconds of each process kind (driver, hosts, procedure actors,
  Store, Monitor, Ray's own processes) over those rounds / events, for both sides (`cpu`);
- starts: `--sops` SOPs started one by one from the driver (`start()`), and `--sops` more with
  one `start_many()`; starts/s (and CPU per start) vs the event throughput;
- idle SOPs: `--idle` SOPs started and left idle (0 skips it); memory per idle SOP on the hosts;
  how long a host takes to answer `statistics()` (what the Monitor asks each second) with them live;
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
from benchmarks.bare_batched import BareBatched
from benchmarks.cpu import CPUMeter
from sopy_actors import SOP, SOPHandle
from sopy_actors.recovery import Manual, RecoveryPolicy, Retry
from sopy_actors.runtime.options import STORE_ACTOR
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


def _stored_record(handle: SOPHandle) -> dict[str, Any]:
    """The SOP's stored record (JSON form): what a commit of it writes to the `sops` table."""
    stored = ray.get(ray.get_actor(STORE_ACTOR, namespace=handle.namespace).load.remote(handle.sop_id))
    record: dict[str, Any] = stored.record.model_dump(mode="json")
    return record


def latency(events: int, bare: BareBatched) -> dict[str, float]:
    handle = ledger.make_sop(10**9).start()
    handle.send(_event(-1))  # warm: actors exist
    framework = []
    for i in range(events):
        started = time.perf_counter()
        handle.send(_event(i))
        framework.append(time.perf_counter() - started)
    bare.send(["latency"], -1)
    samples = []
    for i in range(events):
        started = time.perf_counter()
        bare.send(["latency"], i)
        samples.append(time.perf_counter() - started)
    f, b = statistics.median(framework), statistics.median(samples)
    return {"latency_ms": round(f * 1000, 3), "bare_latency_ms": round(b * 1000, 3), "latency_ratio": round(f / b, 2)}


def _per_event_us(seconds: list[dict[str, float]], events: int) -> dict[str, float]:
    """CPU µs per event by process kind (and "total"), from per-round CPU seconds by kind."""
    kinds = sorted({kind for round_ in seconds for kind in round_})
    used = {kind: sum(round_.get(kind, 0.0) for round_ in seconds) for kind in kinds}
    used["total"] = sum(used.values())
    return {kind: round(value / events * 1e6, 1) for kind, value in used.items()}


def _spread(values: list[float]) -> list[float]:
    return [round(min(values), 1), round(max(values), 1)]


def _starts(meter: CPUMeter, start: Callable[[], list[SOPHandle]]) -> tuple[list[SOPHandle], float, dict[str, float]]:
    """The SOPs `start()` started, how many per second, and the CPU µs per start by process kind."""
    meter.start()
    started = time.perf_counter()
    handles = start()
    rate = len(handles) / (time.perf_counter() - started)
    return handles, rate, _per_event_us([meter.stop()], len(handles))


def throughput(sops: int, bare: BareBatched, rounds: int = 5) -> dict[str, Any]:
    """Events/s and CPU per event, framework vs the bare batched pattern; starts/s, `start()` one
    by one and `start_many()` at once, each of `sops` SOPs."""
    meter = CPUMeter()
    handles, start_rate, start_cpu = _starts(meter, lambda: [ledger.make_sop(10**9).start() for _ in range(sops)])
    _, many_rate, many_cpu = _starts(meter, lambda: sopy_actors.start_many([ledger.make_sop(10**9) for _ in range(sops)]))
    keys = [f"bare-{i}" for i in range(sops)]
    rates: dict[str, list[float]] = {"framework": [], "bare": []}
    cpu: dict[str, list[dict[str, float]]] = {"framework": [], "bare": []}
    for round_ in range(rounds + 1):  # round 0 warms up both sides; the order alternates
        for side in ("framework", "bare") if round_ % 2 else ("bare", "framework"):
            meter.start()
            began = time.perf_counter()
            if side == "framework":
                for future in [h.submit(_event(round_)) for h in handles]:
                    future.result()
            else:
                bare.send(keys, round_)
            rate, used = sops / (time.perf_counter() - began), meter.stop()
            if round_:
                rates[side].append(rate)
                cpu[side].append(used)
    framework, baseline = statistics.median(rates["framework"]), statistics.median(rates["bare"])
    framework_cpu = _per_event_us(cpu["framework"], sops * rounds)
    bare_cpu = _per_event_us(cpu["bare"], sops * rounds)
    return {
        "events_per_s": round(framework, 1),
        "events_per_s_range": _spread(rates["framework"]),
        "bare_batched_events_per_s": round(baseline, 1),
        "bare_batched_events_per_s_range": _spread(rates["bare"]),
        "throughput_ratio": round(framework / baseline, 3),
        "cpu_us_per_event": framework_cpu,
        "bare_cpu_us_per_event": bare_cpu,
        "cpu_per_event_ratio": round(framework_cpu["total"] / bare_cpu["total"], 2),
        "start_per_s": round(start_rate, 1),
        "cpu_us_per_start": start_cpu,
        "start_over_event_throughput": round(start_rate / framework, 3),
        "start_many_per_s": round(many_rate, 1),
        "cpu_us_per_start_many": many_cpu,
        "start_many_over_event_throughput": round(many_rate / framework, 3),
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
    host = ray.get_actor("sopy-host-0", namespace=namespace)
    asked = []
    for _ in range(20):
        began = time.perf_counter()
        ray.get(host.statistics.remote())
        asked.append(time.perf_counter() - began)
    return {
        "idle_sops_started": count,
        "live_sop_instances": live,
        "start_per_s": round(count / seconds, 1),
        "host_bytes_per_idle_sop": round(max(after - before, 0) / count),
        "host_statistics_ms": round(statistics.median(asked) * 1e3, 2),
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
    bare = BareBatched(str(Path(store_dir) / "bare.db"), _stored_record(ledger.make_sop(10**9).start()), hosts)
    report.update(latency(arguments.events, bare))
    report.update(throughput(arguments.sops, bare))
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
