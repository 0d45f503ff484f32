"""Predictive recovery on the real Monitor: `sopy-actors run examples/predictive_recovery/main.py`."""

from __future__ import annotations

import json

import ray
from ray.util.scheduling_strategies import NodeAffinitySchedulingStrategy
from workflow import BUILDER, IndexBuilder, PredictiveRecovery, predictive_sop

import sopy_actors
import sopy_actors.monitoring
from sopy_actors.core.graph import ProcedureGraph
from sopy_actors.runtime.rayutil import head_node_id

_TARGET = 1.05  # the builder at full parallelism should read 5 % over the memory budget
_WORKERS = 8


def main() -> dict[str, object]:
    """Set a budget relative to the node's current memory, load it, and let the SOP react."""
    print(f"--- graph\n{ProcedureGraph.build(PredictiveRecovery()).to_mermaid()}")
    monitor = sopy_actors.monitoring.monitor()
    head = next(n for n in monitor.health().nodes.values() if n.head)
    used = head.memory_used_bytes
    available = head.memory_total_bytes - used
    # Bounded: twice what is in use now, at most half of what is free. The budget puts today's
    # reading near 0.35: far from the 0.8 warning line, so other processes' noise does not matter.
    load = min(2 * used, available // 2)
    if load < 0.4 * used:  # throttled to 1/8 of the load, the reading must fall back under 0.8
        raise RuntimeError(
            f"not enough free memory for this example: {available >> 20} MiB free, {used >> 20} MiB in use; "
            "it loads the node with up to half of what is free and needs that to be 40 % of what is in use"
        )
    budget = int((used + load) / _TARGET)
    print(f"memory: {used >> 20} MiB used now; budget {budget >> 20} MiB (reading {used / budget:.2f}); "
          f"the builder will hold {load >> 20} MiB")
    run = predictive_sop(memory_budget=budget).start()
    on_head = NodeAffinitySchedulingStrategy(head_node_id(), soft=False)  # the node whose memory we read
    builder = IndexBuilder.options(name=BUILDER, scheduling_strategy=on_head).remote(_WORKERS, load // _WORKERS)
    try:
        print(f"builder holds {ray.get(builder.held.remote()) >> 20} MiB with {_WORKERS} workers")
        final = run.result(timeout=180)
    finally:
        ray.get(builder.release.remote())
        ray.kill(builder)
    print("--- transitions")
    for entry in run.history():
        if entry.outcome != "stayed" or entry.from_procedure != "PredictiveRecovery":
            print(f"v{entry.version}: {entry.event_type} {entry.from_procedure} -> {entry.to_procedure} ({entry.outcome})")
    result = final.model_dump(mode="json")
    print(f"--- final state\n{json.dumps(result, indent=2)}")
    return result
