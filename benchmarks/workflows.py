"""Generated workflow steps against the same procedure classes imported; prints one JSON line.

    python benchmarks/workflows.py [--sops 1000] [--rounds 5]

Both sides run the same handlers (`tests/unit/workflows/flows.py`) through the same two events
per SOP: `RowsLoaded` (ValidateData -> ProcessData) and `ProcessRequested` (-> AnalyzeData).
The generated side starts the builder's adaptive workflow (its steps are classes built from
its definition, which travels as data); the imported side starts an SOP whose procedures are
the imported classes. Each round starts `--sops` SOPs of one side with `start_many`, then
submits every SOP's first event, waits, and the second the same way; the sides take turns.
Figures per side (median over rounds): events/s, the hosts' handler-call bytes sent per event
(JSON to procedure actors), and CPU µs per event over all of the cluster's processes. The
imported side is the baseline: the ratios are the cost of steps built from data.
Not a test: nothing here asserts a time.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
import time
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

import ray

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # the repo root: `tests` and `benchmarks` import

import sopy_actors
from benchmarks.cpu import CPUMeter
from sopy_actors import SOP, SOPHandle, start_many
from tests.unit.workflows import flows

ROOT = Path(__file__).resolve().parents[1]
EVENTS = (flows.RowsLoaded(payload=[1, 5, 9]), flows.ProcessRequested(payload=None))


def generated() -> SOP[flows.Data]:
    return flows.full_workflow()


def imported() -> SOP[flows.Data]:
    return SOP(state=flows.Data(), init_proc=flows.ValidateData())


def _sent(hosts: set[str], namespace: str) -> int:
    stats = ray.get([ray.get_actor(host, namespace=namespace).statistics.remote() for host in hosts])
    return sum(int(stat["handler_bytes"]["sent"]) for stat in stats)


def one_round(make: Callable[[], SOP[flows.Data]], sops: int, namespace: str) -> dict[str, float]:
    """Start `sops` SOPs of one kind, then drive each through both events; figures per event."""
    handles: list[SOPHandle] = start_many([make() for _ in range(sops)])
    hosts = {handle.host for handle in handles}
    meter, sent = CPUMeter(), _sent(hosts, namespace)
    meter.start()
    started = time.perf_counter()
    for event in EVENTS:
        for future in [handle.submit(event) for handle in handles]:
            future.result(timeout=600)
    seconds = time.perf_counter() - started
    cpu = sum(meter.stop().values())
    events = sops * len(EVENTS)
    return {
        "events_per_s": events / seconds,
        "bytes_sent_per_event": (_sent(hosts, namespace) - sent) / events,
        "cpu_us_per_event": cpu / events * 1e6,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sops", type=int, default=1000)
    parser.add_argument("--rounds", type=int, default=5)
    arguments = parser.parse_args()
    namespace = f"bench-workflows-{uuid.uuid4().hex[:6]}"
    sopy_actors.init(
        namespace=namespace,
        store_dir=tempfile.mkdtemp(),
        log_to_driver=False,
        runtime_env={"py_modules": [str(ROOT / "tests")], "excludes": ["__pycache__"]},
    )
    sides = {"generated": generated, "imported": imported}
    one_round(generated, 20, namespace)  # warm-up: actors created, code loaded
    one_round(imported, 20, namespace)
    rounds: dict[str, list[dict[str, float]]] = {side: [] for side in sides}
    for turn in range(arguments.rounds):
        order = list(sides) if turn % 2 == 0 else list(reversed(sides))
        for side in order:
            rounds[side].append(one_round(sides[side], arguments.sops, namespace))
    figures = {
        side: {name: statistics.median(figure[name] for figure in results) for name in results[0]}
        for side, results in rounds.items()
    }
    report: dict[str, Any] = {"benchmark": "workflows", "cpus": os.cpu_count(), "sops": arguments.sops}
    for side, values in figures.items():
        report.update({f"{name}_{side}": round(value, 1) for name, value in values.items()})
    report["throughput_generated_over_imported"] = round(
        figures["generated"]["events_per_s"] / figures["imported"]["events_per_s"], 2
    )
    report["cpu_generated_over_imported"] = round(
        figures["generated"]["cpu_us_per_event"] / figures["imported"]["cpu_us_per_event"], 2
    )
    print(json.dumps(report))
    sopy_actors.shutdown()


if __name__ == "__main__":
    main()
