"""A 3-node Ray cluster on this machine: SOP hosts and procedure actors spread over nodes, and a
worker node removed mid-run loses no SOP. Run as a script (it starts its own Ray cluster);
prints one JSON line that tests/multinode/test_cluster.py checks."""

from __future__ import annotations

import json
import os
import sys
import tempfile
import time
from typing import Any

import ray
from ray.cluster_utils import Cluster

import sopy_actors
from sopy_actors import ProcedureOptions
from sopy_actors.runtime.options import procedure_actor_name
from tests.support import ledger
from tests.support.processes import stop_processes_of

SOPS = 24
EVENTS = 6


def node_of(name: str, namespace: str) -> str:
    actor = ray.get_actor(name, namespace=namespace)
    where = actor.statistics.remote() if name.startswith("sopy-host-") else actor.location.remote()
    return str(ray.get(where)["node"])


def start_cluster() -> tuple[Cluster, list[Any]] | None:
    """Three raylets; retried because a slow machine can miss Ray's 15 s agent start window."""
    for attempt in range(3):
        try:
            cluster = Cluster(
                initialize_head=True,
                head_node_args={
                    "num_cpus": 1,
                    "include_dashboard": False,
                    "_system_config": {"health_check_period_ms": 1000, "health_check_failure_threshold": 3},
                },
            )
            workers = [cluster.add_node(num_cpus=2) for _ in range(2)]
            cluster.wait_for_nodes()
            return cluster, workers
        except Exception as error:
            if attempt == 2:
                print(json.dumps({"skipped": f"Ray nodes could not start on this machine: {error}"}))
                return None
            # The test gives this run a temp dir of its own (RAY_TMPDIR): stop exactly its nodes.
            stop_processes_of(os.environ["RAY_TMPDIR"])
    return None


def main() -> None:
    started = start_cluster()
    if started is None:
        return
    cluster, workers = started
    namespace = "multinode"
    sopy_actors.init(cluster.address, namespace=namespace, store_dir=tempfile.mkdtemp(), hosts=4, log_to_driver=False)
    handles = [ledger.make_sop(EVENTS).start() for _ in range(SOPS)]
    for handle in handles:
        handle.send(ledger.EntryAdded(payload=ledger.EntryData(sender="d", index=0)), timeout=300)
    runtime_env = ray.get_runtime_context().runtime_env
    recording = procedure_actor_name("tests.support.ledger:Recording", ProcedureOptions(), 0, runtime_env)
    names = [f"sopy-host-{i}" for i in range(4)] + [recording]
    placement = {name: node_of(name, namespace) for name in names}
    futures = [
        h.submit(ledger.EntryAdded(payload=ledger.EntryData(sender="d", index=i)))
        for h in handles
        for i in range(1, EVENTS)
    ]
    victim = next(w for w in workers if w.node_id in placement.values() and w.node_id != cluster.head_node.node_id)
    cluster.remove_node(victim, allow_graceful=False)
    removed_at = time.time()
    for future in futures:
        future.result(timeout=600)
    finals = [h.result(timeout=600) for h in handles]
    print(json.dumps({
        "nodes": 3,
        "placement_nodes": len(set(placement.values())),
        "placement": {name: node[:8] for name, node in placement.items()},
        "removed_node_had_actors": sum(1 for n in placement.values() if n == victim.node_id),
        "completed": sum(1 for f in finals if f.entries == {"d": list(range(EVENTS))}),
        "sops": SOPS,
        "recovery_seconds": round(time.time() - removed_at, 1),
    }))
    sopy_actors.shutdown()
    ray.shutdown()
    cluster.shutdown()


if __name__ == "__main__":
    sys.exit(main())
