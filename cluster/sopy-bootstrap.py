"""Be a deployment's first sopy_actors driver, once its nodes are up (run on the head node).

The first driver of a namespace decides where the Monitor's `/metrics` binds and how many SOP
hosts the pool has, and hosts are placed over the nodes alive when they are created: so wait
for the expected nodes (or the timeout), then `init()` and exit. The detached system actors
(Store, hosts, Monitor) stay. Used by cluster/kuberay/raycluster.yaml (a postStart hook) and
cluster/launcher/*.yaml (head_start_ray_commands); needs RAY_AUTH_MODE=token and the token,
and SOPY_STORE_URL for the PostgreSQL Store, in the environment.

    python sopy-bootstrap.py --address 127.0.0.1:6379 --nodes 4 --hosts 4 --metrics-port 9464
"""

from __future__ import annotations

import argparse
import sys
import time


def _wait_for_nodes(address: str, nodes: int, timeout: float) -> int:
    import ray

    deadline = time.monotonic() + timeout
    while True:
        try:
            ray.init(address=address, logging_level="ERROR", log_to_driver=False)
            break
        except Exception as error:  # Ray not up yet
            if time.monotonic() > deadline:
                raise SystemExit(f"sopy-bootstrap: Ray at {address} did not answer: {error}") from error
            time.sleep(3)
    try:
        while True:
            alive = sum(1 for node in ray.nodes() if node["Alive"])
            if alive >= nodes or time.monotonic() > deadline:
                return alive
            time.sleep(3)
    finally:
        ray.shutdown()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--address", default="auto")
    parser.add_argument("--namespace", default="sopy")
    parser.add_argument("--nodes", type=int, default=1, help="wait until this many nodes are alive")
    parser.add_argument("--timeout", type=float, default=600.0, help="seconds to wait for them")
    parser.add_argument("--hosts", type=int, default=2, help="size of the SOP host pool")
    parser.add_argument("--metrics-host", default="0.0.0.0")
    parser.add_argument("--metrics-port", type=int, default=9464)
    arguments = parser.parse_args()

    alive = _wait_for_nodes(arguments.address, arguments.nodes, arguments.timeout)
    import sopy_actors

    info = sopy_actors.init(
        arguments.address,
        namespace=arguments.namespace,
        hosts=arguments.hosts,
        metrics_host=arguments.metrics_host,
        metrics_port=arguments.metrics_port,
    )
    print(
        f"sopy-bootstrap: nodes={alive} hosts={info.hosts} store={info.store_path} "
        f"metrics={info.metrics_host}:{info.metrics_port}",
        file=sys.stderr,
    )
    sopy_actors.shutdown()


if __name__ == "__main__":
    main()
