"""Lazy state: bytes an event moves when a handler does not touch a large section; one JSON line.

    python benchmarks/lazy.py [--rows 500000] [--events 5]

Two SOPs on one local cluster, each on its own host, hold the same rows (`--rows` of about
40 bytes of JSON each: 500,000 rows is ~20 MB): one as a `Lazy[list[Row]]` section, one as an
ordinary field (the baseline: how every state moves without lazy sections). Each gets
`--events` events whose handler only appends a note. Figures, per event, from the runtime's
own counters (`SOPHostActor.statistics()["handler_bytes"]`: JSON sent to and received from the
procedure actor) and the Store (bytes of the stored checkpoint), and the event's latency:
lazy / baseline as a ratio.
"""

from __future__ import annotations

import argparse
import json
import sqlite3
import statistics
import sys
import tempfile
import time
from pathlib import Path

import ray

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import sopy_actors
from sopy_actors import SOPHandle
from tests.support import lazyflow


def _handler_bytes(handle: SOPHandle, namespace: str) -> int:
    counted = ray.get(ray.get_actor(handle.host, namespace=namespace).statistics.remote())["handler_bytes"]
    return int(counted["sent"]) + int(counted["received"])


def _checkpoint_bytes(store: Path, sop_id: str) -> int:
    with sqlite3.connect(store) as db:
        (record,) = db.execute("SELECT record FROM sops WHERE sop_id = ?", (sop_id,)).fetchone()
    return len(record)


def _measure(handle: SOPHandle, namespace: str, store: Path, events: int) -> dict[str, float]:
    handle.send(lazyflow.Noted(payload="warm up"), timeout=600)  # the procedure actor exists now
    before = _handler_bytes(handle, namespace)
    seconds = []
    for index in range(events):
        started = time.perf_counter()
        handle.send(lazyflow.Noted(payload=f"note {index}"), timeout=600)
        seconds.append(time.perf_counter() - started)
    return {
        "handler_bytes_per_event": (_handler_bytes(handle, namespace) - before) / events,
        "checkpoint_bytes": _checkpoint_bytes(store, handle.sop_id),
        "latency_ms": statistics.median(seconds) * 1000,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rows", type=int, default=500_000)
    parser.add_argument("--events", type=int, default=5)
    args = parser.parse_args()
    store_dir = Path(tempfile.mkdtemp(prefix="sopy-lazy-bench-"))
    info = sopy_actors.init(store_dir=store_dir, log_to_driver=False, metrics_port=0)
    try:
        section = len(json.dumps([row.model_dump() for row in lazyflow.rows(args.rows)], separators=(",", ":")))
        store = store_dir / "store.sqlite3"
        started = time.perf_counter()
        lazy = lazyflow.make_sop(args.rows).start(placement="dedicated")
        lazy_start = time.perf_counter() - started
        started = time.perf_counter()
        plain = lazyflow.make_plain_sop(args.rows).start(placement="dedicated")
        plain_start = time.perf_counter() - started
        with_lazy = _measure(lazy, info.namespace, store, args.events)
        baseline = _measure(plain, info.namespace, store, args.events)
        moved_lazy = with_lazy["handler_bytes_per_event"] + with_lazy["checkpoint_bytes"]
        moved_plain = baseline["handler_bytes_per_event"] + baseline["checkpoint_bytes"]
        print(json.dumps({
            "rows": args.rows,
            "section_json_bytes": section,
            "lazy": with_lazy,
            "plain": baseline,
            "start_seconds": {"lazy": round(lazy_start, 3), "plain": round(plain_start, 3)},
            "bytes_moved_per_event": {"lazy": moved_lazy, "plain": moved_plain},
            "ratio_bytes_lazy_vs_plain": round(moved_lazy / moved_plain, 5),
            "ratio_latency_lazy_vs_plain": round(with_lazy["latency_ms"] / baseline["latency_ms"], 4),
        }))
    finally:
        sopy_actors.shutdown()


if __name__ == "__main__":
    main()
