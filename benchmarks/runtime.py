"""Runtime overhead against bare Ray, measured in the same run; prints one JSON line.

    python benchmarks/runtime.py [--events 200] [--sops 1000] [--idle 10000]

Figures (each framework figure next to its bare-Ray baseline and their ratio):
- latency: one event, send -> committed (host -> procedure actor -> store -> reply) vs the same
  three hops written as plain async Ray actors;
- throughput: events/s with `--sops` SOPs each sent one event concurrently vs the same number
  of pipelined calls to one bare actor (median of 5 rounds after a warm-up, alternating);
- idle SOPs: `--idle` SOPs started and left idle; memory per idle SOP on the hosts;
- sub-SOP start on an existing host vs starting a Ray actor;
- monitoring: the throughput figure for SOPs of a namespace with the Monitor vs one without
  (`init(monitoring=False)`), alternating rounds in the same cluster; and the time to scrape
  `/metrics` with the `--idle` SOPs live.
Not a test: nothing here asserts a time.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
import urllib.request
from pathlib import Path
from typing import Any

import psutil
import ray

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import sopy_actors
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


def idle_sops(count: int, namespace: str, hosts: int) -> dict[str, float]:
    before = _host_rss(namespace, hosts)
    started = time.perf_counter()
    batch = 200
    for offset in range(0, count, batch):
        sops = [ledger.make_sop(1) for _ in range(min(batch, count - offset))]
        for sop in sops:
            sop.start()
    seconds = time.perf_counter() - started
    live = sum(
        ray.get(ray.get_actor(f"sopy-host-{i}", namespace=namespace).statistics.remote())["instances"]
        for i in range(hosts)
    )
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


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--events", type=int, default=200)
    parser.add_argument("--sops", type=int, default=1000)
    parser.add_argument("--idle", type=int, default=10000)
    arguments = parser.parse_args()
    namespace, hosts = "bench", 2
    store_dir = tempfile.mkdtemp()
    info = sopy_actors.init(namespace=namespace, store_dir=store_dir, hosts=hosts, log_to_driver=False, metrics_port=0)
    report: dict[str, Any] = {"benchmark": "runtime"}
    report.update(latency(arguments.events))
    report.update(throughput(arguments.sops))
    report.update(sub_sop_start())
    report.update(monitoring_cost(arguments.sops, namespace, store_dir, hosts))
    report.update(idle_sops(arguments.idle, namespace, hosts))
    assert info.metrics_port is not None
    report.update(scrape_time(info.metrics_port, report["live_sop_instances"]))
    print(json.dumps(report))
    sopy_actors.shutdown()


if __name__ == "__main__":
    main()
