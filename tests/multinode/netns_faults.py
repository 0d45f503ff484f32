"""Faults on the namespace cluster, each while SOPs are in flight: used by test_netns.py and
benchmarks/cluster_recovery.py.

A scenario starts the driver (tests/multinode/netns_driver.py) in worker w1's namespace with a
deployment of its own (Ray namespace and PostgreSQL database), waits until every SOP has
committed steps, breaks something, tells the driver when, and returns the driver's report with
the scenario's own figures added.
"""

from __future__ import annotations

import json
import queue
import sys
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tests.support.netns import NetnsCluster, killed_on_exit

ROOT = Path(__file__).resolve().parents[2]
PARTITION_SECONDS = 30.0
REPORT_TIMEOUT = 420.0


def _no_figures() -> dict[str, Any]:
    return {}


@dataclass
class Broken:
    """What a fault did: when (Unix time), and what follows once the driver knows (a restart, a
    heal), which returns the scenario's figures."""

    at: float
    then: Callable[[], dict[str, Any]] = _no_figures


Fault = Callable[[NetnsCluster], Broken]
"""Breaks the cluster (runs in the test process)."""


class DriverFailed(AssertionError):
    """The driver exited or went silent; the message holds the end of its stderr."""


class Driver:
    """A running driver: its JSON lines arrive on a queue, its stderr is kept for failures."""

    def __init__(self, cluster: NetnsCluster, deployment: str) -> None:
        worker = cluster.workers[0]
        store = cluster.new_database(deployment.replace("-", "_"))
        self.process = cluster.popen(worker, [
            sys.executable, "-m", "tests.multinode.netns_driver", "--address", cluster.address,
            "--node-ip", worker.namespace.address, "--namespace", deployment, "--store", store,
            "--store-dir", str(cluster.temp_root / deployment),
        ], cwd=ROOT)
        self.lines: queue.Queue[dict[str, Any]] = queue.Queue()
        self.stderr: deque[str] = deque(maxlen=60)
        threading.Thread(target=self._read_stdout, daemon=True).start()
        threading.Thread(target=self._read_stderr, daemon=True).start()

    def _read_stdout(self) -> None:
        assert self.process.stdout is not None
        for line in self.process.stdout:
            if line.startswith('{"phase"'):  # Ray prints its own lines here too
                self.lines.put(json.loads(line))

    def _read_stderr(self) -> None:
        assert self.process.stderr is not None
        for line in self.process.stderr:
            self.stderr.append(line)

    def next(self, timeout: float) -> dict[str, Any]:
        """The driver's next JSON line.

        Raises:
            DriverFailed: none came within `timeout` seconds.
        """
        try:
            return self.lines.get(timeout=timeout)
        except queue.Empty:
            raise DriverFailed(f"the driver said nothing for {timeout} s (exit {self.process.poll()}):\n"
                               + "".join(self.stderr)) from None

    def tell(self, line: str) -> None:
        """Write one line to the driver's stdin."""
        assert self.process.stdin is not None
        self.process.stdin.write(line + "\n")
        self.process.stdin.flush()


def run_with_fault(cluster: NetnsCluster, deployment: str, fault: Fault) -> dict[str, Any]:
    """Run the driver's load, apply `fault` once it is in flight; the report plus the fault's
    figures and `hosts_before` (pool host → the IP of its node when the fault hit)."""
    driver = Driver(cluster, deployment)
    with killed_on_exit(driver.process):
        ready = driver.next(timeout=300)
        broken = fault(cluster)
        driver.tell(str(broken.at))
        figures = broken.then()
        report = driver.next(timeout=REPORT_TIMEOUT)
        driver.process.wait(timeout=60)
    ip_of: dict[str, str] = ready["nodes"]
    return report | figures | {"hosts_before": {name: ip_of.get(node, node) for name, node in ready["hosts"].items()}}


def lose_worker_raylet(cluster: NetnsCluster) -> Broken:
    """SIGKILL worker w2's raylet (its actor processes find out by themselves)."""
    at = time.time()
    cluster.kill_raylet(cluster.workers[1])
    return Broken(at)


def lose_head(cluster: NetnsCluster) -> Broken:
    """SIGKILL every process of the head (GCS, raylet, Store, Monitor, hosts...), then start a
    new head in its place (same address, a fresh temp dir, GCS state from Redis)."""
    at = time.time()
    cluster.kill_node(cluster.head)

    def restart() -> dict[str, Any]:
        return {"head_restart_seconds": round(cluster.start_node(cluster.head), 1)}

    return Broken(at, restart)


RAYLET_EXIT_SECONDS = 60.0  # how long a healed, declared-dead node's raylet may take to exit


def cut_worker_link(cluster: NetnsCluster, seconds: float = PARTITION_SECONDS) -> Broken:
    """Unplug worker w2's cable for `seconds`, then plug it back (a network partition)."""
    namespace = cluster.workers[1].namespace
    at = time.time()
    namespace.link(up=False)

    def heal() -> dict[str, Any]:
        time.sleep(max(0.0, at + seconds - time.time()))
        namespace.link(up=True)
        healed = time.time()  # the cut-off node hears that it was declared dead, then its raylet exits
        while cluster.workers[1].raylet_running() and time.time() - healed < RAYLET_EXIT_SECONDS:
            time.sleep(0.5)
        return {
            "partition_seconds": seconds,
            "w2_raylet_after_heal": cluster.workers[1].raylet_running(),
            "w2_raylet_exit_seconds": round(time.time() - healed, 1),
            "w2_processes_after_heal": len(namespace.pids()),
        }

    return Broken(at, heal)
