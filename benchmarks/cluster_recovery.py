"""Time to recover after losing a worker node and after losing the head; one JSON line each.

    sudo .venv/bin/python benchmarks/cluster_recovery.py [--runs 1] [--partition]

Builds the network-namespace cluster of the multinode tests (tests/support/netns.py: a head
and two workers in Linux network namespaces, PostgreSQL and Redis beside them; needs root),
then, per run, lets 9 SOPs send 12 steps of 0.3 s each and breaks the cluster once every SOP
has committed two: SIGKILL a worker's raylet; SIGKILL every process of the head and start a
new head in its place; with `--partition`, unplug a worker's cable for 30 s. Figures:
- `recovery_seconds`: the longest any running SOP went without a commit after the fault
  (a run without a fault shows ~0.3-0.5 s: one step);
- `finished_seconds`: fault → the last SOP's last commit;
- `head_restart_seconds`: how long `ray start --head` took (part of the head's recovery).
Each run checks that every SOP finished with no step applied twice. Not a test: nothing
asserts a time.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from tests.multinode.netns_faults import Fault, cut_worker_link, lose_head, lose_worker_raylet, run_with_fault
from tests.support.netns import NetnsCluster, netns_unavailable, sigterm_raises

FIGURES = ("recovery_seconds", "finished_seconds", "head_restart_seconds", "partition_seconds")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", type=int, default=1, help="runs of each fault")
    parser.add_argument("--partition", action="store_true", help="also cut a worker's link for 30 s")
    args = parser.parse_args()
    reason = netns_unavailable()
    if reason is not None:
        print(json.dumps({"skipped": reason}))
        return
    faults: dict[str, Fault] = {"worker_loss": lose_worker_raylet, "head_loss": lose_head}
    if args.partition:
        faults["partition"] = cut_worker_link
    with sigterm_raises(), NetnsCluster() as cluster:
        for run in range(args.runs):
            for name, fault in faults.items():
                cluster.ensure_workers()
                report = run_with_fault(cluster, f"{name.replace('_', '-')}-{run}", fault)
                exact = report["completed"] == report["sops"] == report["log_exact"] and report["applied_twice"] == 0
                figures = {key: report[key] for key in FIGURES if key in report}
                print(json.dumps({"fault": name, "run": run, **figures, "every_sop_once": exact}), flush=True)


if __name__ == "__main__":
    main()
