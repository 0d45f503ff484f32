"""The driver of the namespace cluster tests: runs inside worker w1's namespace.

`python -m tests.multinode.netns_driver --address HEAD:6379 --node-ip MY_IP --namespace NS
--store URL --store-dir DIR` joins the cluster, starts SOPs (tests/multinode/netns_flow.py)
and sends each its steps one after the other from a thread per SOP, resending a step (same
event id) when a send fails or times out. Once every SOP has committed two steps it prints
`{"phase": "ready", ...}` (the nodes, where the pool hosts run); the test then breaks something
and writes the Unix time it did so on stdin. The driver finishes every SOP and
prints one JSON report: completion, the exactly-once checks from the final states and the
Store's event log, where handlers ran, the recovery time (the longest any SOP in flight at the
fault waited for its next commit) and whether the Store and the Monitor answer.
"""

from __future__ import annotations

import argparse
import json
import sys
import threading
import time
from dataclasses import dataclass, field
from itertools import pairwise
from pathlib import Path
from typing import Any

import ray

import sopy_actors
from sopy_actors.errors import SopyError
from sopy_actors.runtime.handle import SOPHandle
from sopy_actors.runtime.options import STORE_ACTOR, pool_host
from sopy_actors.runtime.rayutil import alive_nodes
from sopy_actors.telemetry.reporter import MONITOR_ACTOR
from tests.multinode.netns_flow import Step, StepDone, make_sop

ROOT = Path(__file__).resolve().parents[2]
RUNTIME_ENV = {"py_modules": [str(ROOT / "tests")], "excludes": ["__pycache__"]}
SEND_TIMEOUT = 60.0
DEADLINE = 300.0


@dataclass
class Sender:
    """One SOP and the thread that sends it its steps; `commits` are the Unix times of its receipts."""

    handle: SOPHandle
    events: list[StepDone]
    commits: list[float] = field(default_factory=list)
    resends: int = 0
    errors: list[str] = field(default_factory=list)

    def run(self) -> None:
        """Send every step, each once committed the previous; resend the same event on failure."""
        deadline = time.monotonic() + DEADLINE
        for event in self.events:
            while True:
                try:
                    self.handle.send(event, timeout=SEND_TIMEOUT)
                    break
                except SopyError as error:
                    self.resends += 1
                    self.errors.append(f"{type(error).__name__}: {str(error)[:160]}")
                    if time.monotonic() > deadline:
                        return
                    time.sleep(0.5)
            self.commits.append(time.time())


def wait_for_nodes(count: int, timeout: float = 120) -> dict[str, str]:
    """Wait until `count` nodes are alive; returns node id → node IP."""
    deadline = time.monotonic() + timeout
    while True:
        nodes = {str(node["NodeID"]): str(node["NodeManagerAddress"]) for node in alive_nodes()}
        if len(nodes) >= count or time.monotonic() > deadline:
            return nodes
        time.sleep(0.5)


def host_placement(hosts: int, namespace: str) -> dict[str, str]:
    """Pool host name → id of the node it runs on."""
    names = [pool_host(index) for index in range(hosts)]
    stats: list[dict[str, Any]] = ray.get([ray.get_actor(name, namespace=namespace).statistics.remote() for name in names])
    return {name: str(stat["node"]) for name, stat in zip(names, stats, strict=True)}


def log_is_exact(sender: Sender) -> bool:
    """True if the Store's event log holds each sent step exactly once, versions 1..n in order."""
    entries = sender.handle.history()
    logged = [entry.event_id for entry in entries]
    sent = [event.id for event in sender.events]
    versions = [entry.version for entry in entries]
    return logged == sent and versions == list(range(1, len(sent) + 1))


def recovery_seconds(senders: list[Sender], fault: float) -> float:
    """The longest an SOP still running at `fault` went without a commit after it (its stall)."""
    stalls = [
        max(later - earlier for earlier, later in pairwise([fault, *after]))
        for after in ([at for at in sender.commits if at > fault] for sender in senders)
        if after
    ]
    return round(max(stalls, default=0.0), 2)


def system_actors(namespace: str) -> dict[str, str]:
    """Whether the Store and the Monitor answer a call: "alive", or the error's class."""
    calls = {STORE_ACTOR: "path", MONITOR_ACTOR: "endpoint"}
    states = {}
    for name, method in calls.items():
        try:
            ray.get(getattr(ray.get_actor(name, namespace=namespace), method).remote(), timeout=30)
            states[name] = "alive"
        except Exception as error:
            states[name] = type(error).__name__
    return states


def report(senders: list[Sender], nodes: dict[str, str], fault: float | None) -> dict[str, Any]:
    """What the test checks: completion and exactly-once, where handlers ran, recovery time."""
    finals = [sender.handle.result(timeout=SEND_TIMEOUT) for sender in senders if len(sender.commits) == len(sender.events)]
    ip_of = {node_id[:8]: ip for node_id, ip in nodes.items()}
    expected = list(range(len(senders[0].events)))
    return {
        "phase": "done",
        "sops": len(senders),
        "completed": sum(1 for final in finals if final.seen == expected),
        "applied_twice": sum(1 for final in finals if len(set(final.seen)) != len(final.seen)),
        "log_exact": sum(1 for sender in senders if log_is_exact(sender)),
        "handler_nodes": sorted({ip_of.get(node, node) for final in finals for node in final.nodes}),
        "resends": sum(sender.resends for sender in senders),
        "errors": sorted({error for sender in senders for error in sender.errors})[:10],
        "recovery_seconds": None if fault is None else recovery_seconds(senders, fault),
        "finished_seconds": None if fault is None else round(max(s.commits[-1] for s in senders if s.commits) - fault, 2),
    }


def join(args: argparse.Namespace) -> dict[str, str]:
    """Join the cluster as this node's driver and init sopy_actors; returns node id → IP."""
    # On one machine Ray finds raylets with `ps` and picks the head's unless given this node's
    # address: a driver attached to the head's raylet would die with the head.
    ray.init(
        address=args.address, namespace=args.namespace, runtime_env=RUNTIME_ENV, log_to_driver=False,
        _node_ip_address=args.node_ip,
    )
    nodes = wait_for_nodes(3)
    sopy_actors.init(args.address, namespace=args.namespace, store=args.store, store_dir=args.store_dir, hosts=3)
    return nodes


def start_senders(args: argparse.Namespace) -> tuple[list[Sender], list[threading.Thread]]:
    """Start the SOPs and a sending thread each; returns once every SOP committed two steps."""
    senders = [
        Sender(make_sop(args.steps).start(), [StepDone(payload=Step(index=i, work=args.work)) for i in range(args.steps)])
        for _ in range(args.sops)
    ]
    threads = [threading.Thread(target=sender.run, daemon=True) for sender in senders]
    for thread in threads:
        thread.start()
    while any(len(sender.commits) < 2 for sender in senders) and any(thread.is_alive() for thread in threads):
        time.sleep(0.05)
    return senders, threads


def main() -> None:
    parser = argparse.ArgumentParser()
    for option in ("--address", "--node-ip", "--namespace", "--store", "--store-dir"):
        parser.add_argument(option, required=True)
    parser.add_argument("--sops", type=int, default=9)
    parser.add_argument("--steps", type=int, default=12)
    parser.add_argument("--work", type=float, default=0.3)
    args = parser.parse_args()
    nodes = join(args)
    placement = host_placement(3, args.namespace)
    senders, threads = start_senders(args)
    print(json.dumps({"phase": "ready", "nodes": nodes, "hosts": placement}), flush=True)
    line = sys.stdin.readline().strip()
    fault = float(line) if line else None  # None: the test went away
    for thread in threads:
        thread.join()
    print(json.dumps(report(senders, nodes, fault) | {"system_actors": system_actors(args.namespace)}), flush=True)
    sopy_actors.shutdown()
    ray.shutdown()


if __name__ == "__main__":
    main()
