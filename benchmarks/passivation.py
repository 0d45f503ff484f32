"""Passivation: host memory stays bounded however many SOPs are stored; one JSON line.

    python benchmarks/passivation.py [--stored 100000] [--active 10000] [--max-live 10000]

Starts `--stored` ledger SOPs with `start_many` (chunks of 5,000) on a deployment whose hosts
keep at most `--max-live` idle SOPs in memory, recording the hosts' resident memory (psutil) as
the stored count grows; then sends one event to each of `--active` SOPs chosen at random (most
of them passivated, so each reloads from the Store) and reports that throughput next to the
throughput of events to SOPs still in memory, in the same run. Not a test: nothing asserts.
"""

from __future__ import annotations

import argparse
import json
import random
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import psutil
import ray

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import sopy_actors
from sopy_actors import SOPHandle, start_many
from sopy_actors.runtime.options import pool_host
from tests.support import ledger

CHUNK = 5000


def _hosts(namespace: str, count: int) -> list[Any]:
    return [ray.get_actor(pool_host(index), namespace=namespace) for index in range(count)]


def _host_memory(hosts: list[Any]) -> dict[str, int]:
    stats = ray.get([host.statistics.remote() for host in hosts])
    return {
        "rss_mb": sum(psutil.Process(int(s["pid"])).memory_info().rss for s in stats) // 2**20,
        "in_memory": sum(int(s["instances"]) for s in stats),
        "passivated": sum(int(s["passivated"]) for s in stats),
    }


def _send_to(handles: list[SOPHandle]) -> float:
    """Events per second for one event to each SOP (all in flight together)."""
    started = time.perf_counter()
    futures = [h.submit(ledger.EntryAdded(payload=ledger.EntryData(sender="bench", index=0))) for h in handles]
    for future in futures:
        future.result(timeout=600)
    return len(handles) / (time.perf_counter() - started)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--stored", type=int, default=100_000)
    parser.add_argument("--active", type=int, default=10_000)
    parser.add_argument("--max-live", type=int, default=10_000)
    args = parser.parse_args()
    info = sopy_actors.init(
        store_dir=tempfile.mkdtemp(prefix="sopy-passivation-"), log_to_driver=False, metrics_port=0,
        max_live_sops=args.max_live, passivate_after=600,
    )
    hosts = _hosts(info.namespace, info.hosts)
    try:
        handles: list[SOPHandle] = []
        growth = []
        started = time.perf_counter()
        while len(handles) < args.stored:
            count = min(CHUNK, args.stored - len(handles))
            handles += start_many([ledger.make_sop(2) for _ in range(count)])
            if len(handles) % (CHUNK * 4) == 0 or len(handles) == args.stored:
                growth.append({"stored": len(handles), **_host_memory(hosts)})
        start_rate = args.stored / (time.perf_counter() - started)
        recent = handles[-min(args.max_live // 2, args.active):]  # started last: still in memory
        in_memory_rate = _send_to(recent)
        chosen = random.Random(1).sample(handles[: len(handles) - len(recent)], min(args.active, args.stored - len(recent)))
        reload_rate = _send_to(chosen)
        print(json.dumps({
            "stored": args.stored,
            "max_live": args.max_live,
            "starts_per_second": round(start_rate),
            "hosts_as_stored_grows": growth,
            "events_per_second_in_memory": round(in_memory_rate),
            "events_per_second_reloading": round(reload_rate),
            "ratio_reloading_vs_in_memory": round(reload_rate / in_memory_rate, 3),
            "after": _host_memory(hosts),
        }))
    finally:
        sopy_actors.shutdown()


if __name__ == "__main__":
    main()
